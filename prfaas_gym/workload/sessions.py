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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prfaas_gym.workload.request import BLOCK_TOKENS
from prfaas_gym.workload.spec import Fields


@dataclass(frozen=True, slots=True)
class PrefixSpec:
    """Validated ``workload.prefix`` settings (see the module docstring)."""

    sessions: int = 64
    turns_mean: float = 1.0
    shared_system_tokens: int = 0
    system_prompts: int = 1
    max_context_tokens: int = 131072

    @classmethod
    def parse(cls, spec: Fields, default_max_context: int) -> "PrefixSpec":
        """Read and check a ``prefix`` mapping."""
        out = cls(
            sessions=spec.integer("sessions", 64, min=1),
            turns_mean=spec.number("turns_mean", 1.0, min=1.0),
            shared_system_tokens=spec.integer("shared_system_tokens", 0, min=0),
            system_prompts=spec.integer("system_prompts", 1, min=1),
            max_context_tokens=spec.integer("max_context_tokens", default_max_context, min=1),
        )
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

    # per slot: [session id, turns left, context tokens, full-block ids]
    slots: list[list | None] = [None] * prefix.sessions
    next_sid = 0
    next_hid = 0
    prompts = np.empty(n, dtype=np.int64)
    sessions = np.empty(n, dtype=np.int64)
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
            slot = [next_sid, turns[next_sid], system, list(base)]
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
        slot[1] -= 1
        slot[2] = prompt + out_list[i]
    return SessionRequests(prompts, hashes, sessions)
