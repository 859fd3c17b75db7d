"""Shared-prefix sessions: hash ids chain like Mooncake's, prompts grow within a conversation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from prfaas_gym.workload import BLOCK_TOKENS, Request, build_workload, workload_stats


def _build(prefix: dict, n: int = 300, seed: int = 0, inp: dict | None = None, out: int = 64) -> list[Request]:
    spec = {"kind": "synthetic", "requests": n, "arrival": {"process": "poisson", "rate_rps": 2.0},
            "input_tokens": inp or {"dist": "lognormal", "mu": 6.5, "sigma": 1.0, "max": 4096},
            "output_tokens": {"dist": "constant", "value": out}, "prefix": prefix}
    return build_workload(spec, rng=np.random.default_rng(seed), data_dir=None)


def _check_chained(reqs: list[Request]) -> None:
    """Mooncake's invariants: one id per block, seen ids form a prefix, equal ids => equal prefix."""
    seen: set[int] = set()
    prefix_of: dict[int, tuple[int, ...]] = {}
    for r in reqs:
        ids = r.hash_ids
        assert ids is not None and len(ids) == math.ceil(r.input_tokens / BLOCK_TOKENS)
        assert len(set(ids)) == len(ids)
        hits = [h in seen for h in ids]
        k = hits.index(False) if False in hits else len(hits)
        assert not any(hits[k:]), f"request {r.rid}: a seen block follows an unseen one: {ids}"
        for j, h in enumerate(ids):
            assert prefix_of.setdefault(h, ids[:j]) == ids[:j]  # an id always has the same prefix
        seen.update(ids)


@settings(max_examples=40, deadline=None)
@given(
    sessions=st.integers(1, 20),
    turns=st.floats(1.0, 8.0),
    system=st.integers(0, 3000),
    prompts=st.integers(1, 3),
    out=st.integers(1, 700),
    seed=st.integers(0, 2**32 - 1),
)
def test_hash_ids_prefix_chained(sessions: int, turns: float, system: int, prompts: int, out: int, seed: int) -> None:
    reqs = _build({"sessions": sessions, "turns_mean": turns, "shared_system_tokens": system,
                   "system_prompts": prompts, "max_context_tokens": 20000}, n=200, seed=seed, out=out)
    _check_chained(reqs)
    assert all(r.input_tokens <= 20000 for r in reqs)


def test_turns_extend_previous_prompt() -> None:
    reqs = _build({"sessions": 4, "turns_mean": 5, "shared_system_tokens": 1024}, n=400)
    by_session: dict[int, list[Request]] = {}
    for r in reqs:
        by_session.setdefault(r.session_id, []).append(r)
    multi = [v for v in by_session.values() if len(v) > 1]
    assert multi and np.mean([len(v) for v in by_session.values()]) > 2
    for turns in multi:
        for a, b in zip(turns, turns[1:]):
            assert b.input_tokens > a.input_tokens + a.output_tokens  # history + reply + new message
            full = a.input_tokens // BLOCK_TOKENS
            assert b.hash_ids[:full] == a.hash_ids[:full]
    # everyone shares the two system-prompt blocks
    assert all(r.hash_ids[:2] == (0, 1) for r in reqs)
    assert workload_stats(reqs)["block_reuse"] > 0.3


def test_session_ids_dense_in_order_of_first_arrival() -> None:
    reqs = _build({"sessions": 8, "turns_mean": 3}, n=300)
    first: list[int] = []
    for r in reqs:
        if r.session_id not in first:
            first.append(r.session_id)
    assert first == list(range(len(first)))


def test_single_turn_no_system_prompt_shares_nothing() -> None:
    reqs = _build({}, n=200)
    assert workload_stats(reqs)["block_reuse"] == 0.0
    assert len({r.session_id for r in reqs}) == 200


def test_context_cap_starts_new_conversation() -> None:
    reqs = _build({"sessions": 1, "turns_mean": 1000, "max_context_tokens": 5000}, n=200,
                  inp={"dist": "constant", "value": 1000}, out=10)
    assert max(r.input_tokens for r in reqs) <= 5000
    assert len({r.session_id for r in reqs}) > 10
    _check_chained(reqs)


def test_real_mooncake_conversation_is_chained(shared_data) -> None:
    reqs = build_workload({"kind": "mooncake", "path": "mooncake/conversation_trace.jsonl", "jitter_s": 0},
                          rng=np.random.default_rng(0), data_dir=shared_data)
    seen: set[int] = set()
    for r in reqs:
        hits = [h in seen for h in r.hash_ids]
        k = hits.index(False) if False in hits else len(hits)
        assert not any(hits[k:])
        seen.update(r.hash_ids)


def test_closed_loop_default_times_follow_ups_by_the_simulator() -> None:
    reqs = _build({"sessions": 4, "turns_mean": 4, "shared_system_tokens": 1024}, n=200)
    follow = [r for r in reqs if r.parent_rid >= 0]
    first = [r for r in reqs if r.parent_rid < 0]
    assert follow and first
    assert all(math.isnan(r.arrival_s) and r.think_s >= 0 for r in follow)
    assert all(math.isfinite(r.arrival_s) and math.isnan(r.think_s) for r in first)
    by_rid = {r.rid: r for r in reqs}
    for r in follow:  # the parent is the previous turn of the same conversation, earlier in rid
        p = by_rid[r.parent_rid]
        assert p.rid < r.rid and p.session_id == r.session_id and p.turn == r.turn - 1
    # the Mooncake-fitted default: median think time ~117 s
    assert 60 < float(np.median([r.think_s for r in follow])) < 220
    # open loop: the same content, every arrival drawn up front
    opened = _build({"sessions": 4, "turns_mean": 4, "shared_system_tokens": 1024, "loop": "open"}, n=200)
    assert all(math.isfinite(r.arrival_s) for r in opened)
    assert sorted((r.session_id, r.turn, r.input_tokens) for r in opened) == \
        sorted((r.session_id, r.turn, r.input_tokens) for r in reqs)


def test_infer_parents_by_hand() -> None:
    from prfaas_gym.workload.sessions import infer_parents

    ids = [(0, 1, 2),        # 1100 tokens: blocks 0, 1 full
           (0, 7, 8),        # another conversation on the shared block 0
           (0, 1, 3, 4),     # 1600 tokens: continues request 0 (its full blocks 0, 1)
           (0, 1, 3, 5, 6),  # continues request 2 (full blocks 0, 1, 3)
           (0, 9)]           # shares only block 0, which branches: no parent
    tokens = [1100, 1100, 1600, 2100, 700]
    assert infer_parents(ids, tokens).tolist() == [-1, -1, 0, 2, -1]
