"""Shared-prefix sessions: multi-turn conversations whose prompts chain prefix block ids.

Model (``workload.prefix``):

* ``sessions`` conversations are open at any time (default 64). Each arrival joins one of them
  uniformly at random; a conversation lasts a geometric number of turns with mean ``turns_mean``
  (default 1: every request is a fresh conversation) and is then replaced by a new one.
* Every conversation starts with one of ``system_prompts`` (default 1) shared system prompts of
  ``shared_system_tokens`` tokens (default 0), chosen uniformly.
* Turn ``k`` sends ``prompt_k = prompt_{k-1} + output_{k-1} + new_k`` tokens, where ``new_k`` is
  drawn from ``workload.input_tokens`` (for the first turn, ``prompt_0`` is the system prompt).
  So with sessions ``input_tokens`` describes the *new* tokens of each turn, not whole prompts.
* A conversation whose next prompt would exceed ``max_context_tokens`` (default: the
  ``input_tokens.max`` bound, else 131072) ends, and the request opens a fresh one instead.

Hash ids follow Mooncake's convention: one id per 512-token block of the prompt; a full block is
identified by the content before and including it (system prompt, then the conversation), so
equal prefixes get equal ids and a request's previously seen ids always form a prefix of its list.
A trailing partial block always gets a fresh id (its content changes when the prompt grows). Ids
are dense integers in order of first appearance.

Timing (``workload.prefix.loop``):

* ``closed`` (default): causal sessions. A conversation's first turn arrives at its drawn
  arrival time; turn k+1 arrives a think time (``think_time_s``, drawn up front from the
  workload seed) after turn k *ended*, so its ``arrival_s`` is ``nan`` in the workload and the
  simulator fills it in. The arrival process therefore times the conversation starts (about
  ``rate_rps / turns_mean`` of them per second; Schroeder et al.'s "partly-open" system,
  NSDI'06), and closed-loop turns follow service, as in vLLM's multi-turn benchmark
  (``benchmarks/multi_turn/benchmark_serving_multi_turn.py``: a client sends a conversation's
  next turn only after the previous answer has arrived, then sleeps). A rejected turn is
  retried or abandons its conversation (``on_reject``). Content (lengths, hash ids, think
  times) is the same for every policy under one seed: only the timing depends on service.
* ``open``: every turn keeps its drawn arrival time (turn k+1 may arrive before turn k ended).

Default think time: log-normal with ``THINK_TIME_MU``/``THINK_TIME_SIGMA``, fitted to the
Mooncake conversation trace by ``benchmarks/fit_think_time.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from prfaas_gym.workload.lengths import draw_seconds
from prfaas_gym.workload.request import BLOCK_TOKENS
from prfaas_gym.workload.spec import Fields

LOOPS = ("closed", "open")
"""Known values of ``workload.prefix.loop``."""

REJECT_ACTIONS = ("abandon", "retry")
"""Known values of ``workload.prefix.on_reject.action``."""

# Think time from reading a reply to sending the next turn: log-normal fitted (MLE on the logs)
# by benchmarks/fit_think_time.py to the Mooncake conversation trace (Kimi, FAST'25): 3,894
# follow-up turns found by hash-id chaining; arrival gap p10/p50/p90 = 42/123/474 s, minus the
# parent's service time at the paper's 25 ms TPOT: think time p10/p50/p90 = 34/113/466 s. The
# fit gives p10/p50/p90 = 29/117/470 s, mean 211 s. The trace spans one hour, so long gaps are
# censored: the true tail is heavier.
THINK_TIME_MU = 4.766
THINK_TIME_SIGMA = 1.0827
DEFAULT_THINK_TIME = {"dist": "lognormal", "mu": THINK_TIME_MU, "sigma": THINK_TIME_SIGMA}


@dataclass(frozen=True, slots=True)
class RejectPolicy:
    """What a closed-loop client does when a turn is rejected (``workload.prefix.on_reject``).

    ``abandon`` (default, as vLLM's multi-turn benchmark with its default ``--max-retries 0``):
    the conversation ends; its later turns never arrive and are recorded as rejected with
    reason ``abandoned``. ``retry``: the turn is sent again after ``backoff_s *
    backoff_factor ** attempt`` seconds (vLLM's ``exponential_backoff_sleep``: base 1 s, factor
    2; its +-10% jitter is left out), at most ``max_retries`` times, then abandoned.
    """

    action: str = "abandon"
    max_retries: int = 3
    backoff_s: float = 1.0
    backoff_factor: float = 2.0

    @classmethod
    def parse(cls, spec: Fields) -> "RejectPolicy":
        """Read and check an ``on_reject`` mapping."""
        out = cls(
            action=spec.choice("action", REJECT_ACTIONS, default="abandon"),
            max_retries=spec.integer("max_retries", 3, min=0),
            backoff_s=spec.number("backoff_s", 1.0, min=0.0),
            backoff_factor=spec.number("backoff_factor", 2.0, min=1.0),
        )
        spec.done()
        return out

    def backoff_s_after(self, attempt: int) -> float:
        """Delay before resending a turn whose attempt number ``attempt`` was rejected."""
        return self.backoff_s * self.backoff_factor ** attempt


def reject_policy(workload: dict, source: str = "<scenario>") -> RejectPolicy:
    """The `RejectPolicy` of a scenario's ``workload:`` mapping (the default without
    closed-loop sessions)."""
    prefix = workload.get("prefix") if isinstance(workload, dict) else None
    if not isinstance(prefix, dict) or prefix.get("on_reject") is None or prefix.get("loop") == "open":
        return RejectPolicy()  # open-loop turns arrive regardless: nothing to retry or abandon
    return RejectPolicy.parse(Fields(prefix["on_reject"], "workload.prefix.on_reject", source))


@dataclass(frozen=True, slots=True)
class PrefixSpec:
    """Validated ``workload.prefix`` settings (see the module docstring)."""

    sessions: int = 64
    turns_mean: float = 1.0
    shared_system_tokens: int = 0
    system_prompts: int = 1
    max_context_tokens: int = 131072
    loop: str = "closed"
    on_reject: RejectPolicy = RejectPolicy()

    @classmethod
    def parse(cls, spec: Fields, default_max_context: int) -> "PrefixSpec":
        """Read and check a ``prefix`` mapping (``think_time_s`` is read by `draw_think_times`)."""
        out = cls(
            sessions=spec.integer("sessions", 64, min=1),
            turns_mean=spec.number("turns_mean", 1.0, min=1.0),
            shared_system_tokens=spec.integer("shared_system_tokens", 0, min=0),
            system_prompts=spec.integer("system_prompts", 1, min=1),
            max_context_tokens=spec.integer("max_context_tokens", default_max_context, min=1),
            loop=spec.choice("loop", LOOPS, default="closed"),
            on_reject=RejectPolicy.parse(spec.sub("on_reject")),
        )
        spec.has("think_time_s")
        spec.done()
        if out.shared_system_tokens >= out.max_context_tokens:
            raise spec.error("shared_system_tokens",
                             f"must be < max_context_tokens ({out.max_context_tokens})")
        return out


@dataclass(slots=True)
class SessionRequests:
    """Prompt lengths, hash ids and session ids of session-structured requests."""

    input_tokens: np.ndarray
    hash_ids: list[tuple[int, ...]]
    session_id: np.ndarray
    turn: np.ndarray
    parent: np.ndarray


def build_sessions(
    prefix: PrefixSpec,
    new_tokens: np.ndarray,
    output_tokens: np.ndarray,
    rng: np.random.Generator,
) -> SessionRequests:
    """Turn per-request new-token counts (in arrival order) into chained conversation prompts."""
    n = int(new_tokens.size)
    slot_of = rng.integers(0, prefix.sessions, n).tolist()
    turns = rng.geometric(1.0 / prefix.turns_mean, n).tolist()  # one per possible conversation
    sys_of = rng.integers(0, prefix.system_prompts, n).tolist()
    new_list = new_tokens.tolist()
    out_list = output_tokens.tolist()

    sys_blocks = prefix.shared_system_tokens // BLOCK_TOKENS
    sys_ids: dict[int, list[int]] = {}
    cap = prefix.max_context_tokens
    system = prefix.shared_system_tokens

    # per slot: [session id, turns left, context tokens, full-block ids, last row, last turn]
    slots: list[list | None] = [None] * prefix.sessions
    next_sid = 0
    next_hid = 0
    prompts = np.empty(n, dtype=np.int64)
    sessions = np.empty(n, dtype=np.int64)
    turn_of = np.zeros(n, dtype=np.int64)
    parent_of = np.full(n, -1, dtype=np.int64)
    hashes: list[tuple[int, ...]] = [()] * n

    for i in range(n):
        slot = slots[slot_of[i]]
        new = new_list[i]
        if slot is not None and slot[1] > 0 and slot[2] + new <= cap:
            prompt = slot[2] + new
        else:
            p = sys_of[next_sid]
            base = sys_ids.get(p)
            if base is None:
                base = list(range(next_hid, next_hid + sys_blocks))
                next_hid += sys_blocks
                sys_ids[p] = base
            slot = [next_sid, turns[next_sid], system, list(base), -1, -1]
            slots[slot_of[i]] = slot
            next_sid += 1
            prompt = min(system + new, cap)
        full = slot[3]
        n_full = prompt // BLOCK_TOKENS
        if len(full) < n_full:
            full.extend(range(next_hid, next_hid + n_full - len(full)))
            next_hid = full[-1] + 1
        if prompt % BLOCK_TOKENS:
            hashes[i] = (*full, next_hid) if len(full) == n_full else (*full[:n_full], next_hid)
            next_hid += 1
        else:
            hashes[i] = tuple(full) if len(full) == n_full else tuple(full[:n_full])
        prompts[i] = prompt
        sessions[i] = slot[0]
        turn_of[i] = slot[5] = slot[5] + 1
        parent_of[i] = slot[4]
        slot[4] = i
        slot[1] -= 1
        slot[2] = prompt + out_list[i]
    return SessionRequests(prompts, hashes, sessions, turn_of, parent_of)


def draw_think_times(spec: Fields, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` think times (seconds) from ``prefix.think_time_s`` (default: the Mooncake fit)."""
    sub = spec.sub("think_time_s") if spec.has("think_time_s") else Fields(
        DEFAULT_THINK_TIME, f"{spec.where}.think_time_s", spec.source)
    return draw_seconds(sub, rng, n)


def closed_loop_arrivals(arrival_s: np.ndarray, parent: np.ndarray, think_s: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """(arrival, think) columns of closed-loop sessions: follow-ups get ``nan`` arrival times
    (the simulator times them) and keep their think time; first turns keep their arrival."""
    follow = parent >= 0
    return np.where(follow, np.nan, arrival_s), np.where(follow, think_s, np.nan)


def infer_parents(hash_ids: Sequence[tuple[int, ...] | None], input_tokens: Sequence[int]) -> np.ndarray:
    """The previous turn of each request of a trace that has hash ids but no session ids.

    A follow-up turn's prompt holds its parent's prompt, so (Mooncake's hash-id convention: an
    id names a block together with everything before it) the parent's full blocks are a prefix
    of the follow-up's ids. The parent of request ``i`` is the latest earlier request whose last
    full block is the deepest full block of ``i`` seen before, provided that block lies on one
    conversation's chain: a block followed by two different full blocks somewhere in the trace
    is a shared prefix (a system prompt), and a match there says nothing about sessions.

    Returns:
        int64 array, ``-1`` where a request has no parent.
    """
    n = len(hash_ids)
    full = [min(int(t) // BLOCK_TOKENS, len(h or ())) for h, t in zip(hash_ids, input_tokens)]
    successor: dict[int, int] = {}
    branching: set[int] = set()
    for h, f in zip(hash_ids, full):
        for a, b in zip(h[:f - 1] if h else (), h[1:f] if h else ()):
            if successor.setdefault(a, b) != b:
                branching.add(a)
    parent = np.full(n, -1, dtype=np.int64)
    owner: dict[int, int] = {}  # block id -> latest request whose last full block it is
    for i, (h, f) in enumerate(zip(hash_ids, full)):
        if not f:
            continue
        for k in range(f - 1, -1, -1):
            b = h[k]
            if b in branching:
                break
            j = owner.get(b)
            if j is not None:
                parent[i] = j
                break
        owner[h[f - 1]] = i
    return parent


def turns_of(parent: np.ndarray) -> np.ndarray:
    """Turn index of each row given its parent row (parents come before their children)."""
    turn = np.zeros(parent.size, dtype=np.int64)
    t = turn.tolist()
    for i, p in enumerate(parent.tolist()):
        if p >= 0:
            t[i] = t[p] + 1
    turn[:] = t
    return turn
