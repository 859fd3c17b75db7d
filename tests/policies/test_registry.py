"""Registry, spec parsing, determinism and validity of every policy."""

from __future__ import annotations

import pytest

from prfaas_gym.api import build_simulator
from prfaas_gym.policies import PROVISIONERS, ROUTERS, make_provisioner, make_router
from prfaas_gym.policies.threshold import PrfaasThresholdRouter
from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim.router import Router, ThresholdRouter

ROUTER_NAMES = ["local-only", "naive-heterogeneous", "prfaas-threshold", "prfaas-adaptive",
                "mooncake-conductor", "least-loaded", "round-robin", "random"]


@pytest.fixture(scope="module")
def bursty():
    return load_scenario("bursty_fluctuating")


def test_names_are_stable():
    assert list(ROUTERS) == ROUTER_NAMES
    assert list(PROVISIONERS) == ["static", "paper-imbalance", "queue-autoscaler"]


@pytest.mark.parametrize("name", ROUTER_NAMES)
def test_every_router_builds_and_has_predict(name, bursty):
    r = make_router(name, bursty)
    assert isinstance(r, Router)
    assert callable(r.predict)


def test_spec_forms(bursty):
    assert make_router(None, bursty).threshold_tokens == 19298  # scenario's router block
    assert isinstance(make_router(None, bursty), ThresholdRouter)
    assert make_router({"name": "prfaas-threshold", "threshold_tokens": 5000}, bursty).threshold_tokens == 5000
    obj = PrfaasThresholdRouter(1.0)
    assert make_router(obj, bursty) is obj
    assert make_router("prfaas-adaptive", bursty).threshold_tokens == 19298
    homog = load_scenario("paper/homogeneous")
    assert type(make_router(None, homog)).__name__ == "LocalOnlyRouter"


def test_threshold_from_planner(bursty):
    paper = load_scenario("paper/prfaas_pd")
    t = make_router({"name": "prfaas-threshold", "threshold_tokens": "plan"}, paper).threshold_tokens
    assert t == pytest.approx(19298, rel=0.05)


def test_unknown_names_list_known_ones(bursty):
    with pytest.raises(ValueError, match="known: local-only"):
        make_router("nope", bursty)
    with pytest.raises(ValueError, match="known: static"):
        make_provisioner("nope", bursty)
    with pytest.raises(ValueError, match="bad parameters"):
        make_router({"name": "local-only", "x": 1}, bursty)
    with pytest.raises(ValueError, match="trained policy|learned policies"):
        make_router("trained:ppo-routing", bursty)


def test_provisioners(bursty):
    assert make_provisioner(None, bursty) is None
    assert make_provisioner("static", bursty) is None
    p = make_provisioner("paper-imbalance", bursty)
    assert p.interval_s == 120  # scenario env.provision_interval_s
    assert make_provisioner({"name": "queue-autoscaler", "interval_s": 30}, bursty).interval_s == 30


@pytest.mark.parametrize("name", ROUTER_NAMES)
def test_deterministic_and_complete(name, bursty):
    def run():
        sim = build_simulator(bursty, name, seed=5, n_requests=150)
        s = sim.run()
        return s, [(r.prefill_cluster, r.pulled_tokens, r.rejected) for r in sim.requests]

    (s1, r1), (s2, r2) = run(), run()
    assert r1 == r2
    assert s1["completed"] + s1["rejected"] == 150
    assert {k: v for k, v in s1.items()} == s2


@pytest.mark.parametrize("prov", ["paper-imbalance", "queue-autoscaler"])
def test_provisioners_move_instances_deterministically(prov, bursty):
    logs = []
    for _ in range(2):
        sim = build_simulator(bursty, "prfaas-threshold", prov, seed=0, n_requests=600)
        sim.run()
        logs.append(list(sim.prefill_counts_log))
    assert logs[0] == logs[1]
    counts = {n for _, _, n in logs[0]}
    assert counts <= set(range(1, 8))


def test_local_only_and_naive_routes(bursty):
    sim = build_simulator(bursty, "local-only", seed=0, n_requests=100)
    sim.run()
    assert {r.prefill_cluster for r in sim.requests} == {"pd"}
    sim = build_simulator(bursty, "naive-heterogeneous", seed=0, n_requests=100)
    sim.run()
    assert {r.prefill_cluster for r in sim.requests} == {"prfaas"}


def test_adaptive_pulls_prefixes_when_bandwidth_abundant(bursty):
    sim = build_simulator(bursty, "prfaas-adaptive", seed=0, n_requests=600)
    sim.run()
    assert sum(r.pulled_tokens > 0 for r in sim.requests) > 0


def test_conductor_rejects_when_overloaded():
    sc = load_scenario("paper/prfaas_pd")
    sim = build_simulator(sc, "mooncake-conductor", seed=0, n_requests=400, rate_rps=8.0)
    s = sim.run()
    assert s["rejected"] > 0
    assert {r.reject_reason for r in sim.requests if r.rejected} == {"policy"}
