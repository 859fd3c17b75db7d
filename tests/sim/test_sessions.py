"""Causal multi-turn sessions, worked out by hand: a follow-up turn arrives its think time after
its parent ended, hits the parent's prefix, and a rejected turn is retried or abandons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_gym.api import build_simulator
from prfaas_gym.sim import RouteDecision, Simulator
from prfaas_gym.workload import Request

PREFILL_C0, PREFILL_C1, STEP_S = 0.01, 1e-4, 0.02


def _turns() -> list[Request]:
    # turn 0: 1024 tokens (2 full blocks); turn 1 = 1024 + 10 answer + 990 new = 2024 tokens
    first = Request(0, 1.0, 1024, 10, (0, 1), session_id=0)
    second = Request(1, math.nan, 2024, 5, (0, 1, 2, 3), session_id=0, turn=1, parent_rid=0, think_s=5.0)
    return [first, second]


class RejectFirst:
    """Rejects the first ``n`` requests it sees, then routes locally."""

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def route(self, req, view):
        self.n -= 1
        return RouteDecision(prefill_cluster=0, reject=self.n >= 0)


def test_follow_up_arrives_after_parent_and_hits_its_prefix(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=1)])
    first, second = reqs = _turns()
    sim = Simulator(sc, requests=reqs)
    sim.run()
    # turn 0 on an idle cluster; its prompt enters the cache when its prefill ends
    assert first.prefill_end_s == pytest.approx(1.0 + PREFILL_C0 + PREFILL_C1 * 1024)
    assert first.finish_s > first.prefill_end_s
    # turn 1 is sent 5 s after turn 0's last token, and reuses turn 0's two full blocks
    assert second.arrival_s == first.finish_s + 5.0
    assert second.cached_tokens == 1024
    assert second.ttft_s == pytest.approx(PREFILL_C0 + PREFILL_C1 * (2024 - 1024))
    assert second.parent_rid == 0 and sim.arrived == [first, second]


def test_rejected_turn_abandons_the_conversation(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster()])
    first, second = reqs = _turns()
    ended: list[int] = []
    sim = Simulator(sc, router=RejectFirst(1), requests=reqs)
    sim.on_request_end.append(lambda r: ended.append(r.rid))
    summary = sim.run()
    assert first.rejected and first.reject_reason == "policy"
    assert second.rejected and second.reject_reason == "abandoned" and math.isnan(second.arrival_s)
    assert summary["requests"] == 2 and summary["rejected"] == 2 and ended == [0, 1]
    assert sim.arrived == [first] and sim.done


def test_rejected_turn_is_retried_with_backoff(make_scenario, tiny):
    workload = {"kind": "synthetic", "requests": 2, "arrival": {"process": "poisson", "rate_rps": 1},
                "input_tokens": {"dist": "constant", "value": 1000}, "output_tokens": {"dist": "constant", "value": 10},
                "prefix": {"on_reject": {"action": "retry", "max_retries": 3, "backoff_s": 2.0, "backoff_factor": 3.0}}}
    sc = make_scenario([tiny.pd_cluster()], workload=workload)
    first, second = reqs = _turns()
    sim = Simulator(sc, router=RejectFirst(2), requests=reqs)
    summary = sim.run()
    # attempt 0 rejected at t=1, attempt 1 sent 2 s later and rejected, attempt 2 sent 6 s later
    retries = sim.requests[2:]
    assert [r.attempt for r in retries] == [1, 2]
    assert [r.arrival_s for r in retries] == [3.0, 9.0]
    assert retries[0].rejected and not retries[1].rejected
    assert all((r.session_id, r.turn, r.input_tokens) == (0, 0, 1024) for r in retries)
    # the follow-up waits on the attempt that completed
    assert second.parent_rid == retries[1].rid
    assert second.arrival_s == retries[1].finish_s + 5.0
    assert summary["requests"] == 4 and summary["rejected"] == 2 and summary["completed"] == 2


def test_closed_loop_is_the_default_and_paired_across_policies():
    runs = [build_simulator("bursty_fluctuating", policy=p, seed=3, n_requests=150)
            for p in ("prfaas-threshold", "mooncake-conductor")]
    for sim in runs:
        sim.run()
    a, b = (sim.requests[:150] for sim in runs)
    # same content and think times under one seed; follow-up arrival times depend on service
    assert [(r.input_tokens, r.hash_ids, r.session_id, r.turn, repr(r.think_s)) for r in a] == \
        [(r.input_tokens, r.hash_ids, r.session_id, r.turn, repr(r.think_s)) for r in b]
    follow = [r for r in a if r.parent_rid >= 0]
    assert follow and all(math.isfinite(r.think_s) for r in follow)
    assert any(x.arrival_s != y.arrival_s for x, y in zip(a, b))
    # no turn arrives before its parent ended
    for sim in runs:
        for r in sim.requests:
            if r.parent_rid >= 0 and r.reject_reason != "abandoned":
                assert r.arrival_s >= sim.requests[r.parent_rid].finish_s


def test_open_loop_turns_can_overtake_and_warn():
    sc_sim = build_simulator("bursty_fluctuating", policy="prfaas-threshold", seed=0, n_requests=200)
    assert sc_sim.sessions is not None
    from prfaas_gym.scenario import load_scenario

    sc = load_scenario("bursty_fluctuating", {"workload.prefix.loop": "open"})
    sim = build_simulator(sc, policy="prfaas-threshold", seed=0, n_requests=200)
    assert sim.sessions is None and all(np.isfinite([r.arrival_s for r in sim.requests]))
    with pytest.warns(UserWarning, match="follow-up turns arrived before"):
        sim.run()
