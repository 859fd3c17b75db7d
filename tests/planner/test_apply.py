"""apply_plan: the simulator runs at the planner's split and threshold."""

from __future__ import annotations

import json

import pytest

from prfaas_gym.api import simulate_scenario
from prfaas_gym.cli import main
from prfaas_gym.planner import Plan
from prfaas_gym.planner.adapter import plan_scenario
from prfaas_gym.planner.apply import apply_plan, planned_scenario
from prfaas_gym.scenario import load_scenario


def make_plan(**kw) -> Plan:
    base = dict(deployment="prfaas_pd", threshold_tokens=8000.0, n_prfaas=4, n_p=4, n_d=4,
                throughput_rps=3.0, stage_throughput_rps={"prfaas": 1, "pd_prefill": 1, "pd_decode": 1},
                offload_fraction=0.5, egress_gbps=10.0, ttft_mean_s=2.0, ttft_p90_s=3.0)
    base.update(kw)
    return Plan(**base)


def test_apply_plan_sets_split_and_threshold():
    sc = load_scenario("paper/prfaas_pd")
    out = apply_plan(sc, make_plan())
    assert out.cluster("pd").prefill_instances == 4
    assert out.router == {"name": "prfaas-threshold", "threshold_tokens": 8000}
    assert sc.cluster("pd").prefill_instances == 3  # the input is untouched
    assert out.cluster("prfaas") == sc.cluster("prfaas")


def test_applied_plan_drives_the_simulator():
    sc = load_scenario("paper/prfaas_pd")
    sim = simulate_scenario(apply_plan(sc, make_plan(threshold_tokens=1e9)), n_requests=60)
    assert sum(1 for i in sim.clusters[1].instances if i.role == "prefill") == 4
    assert sim.summary()["offload_fraction"] == 0.0  # nothing exceeds the threshold


def test_planned_scenario_round_trips_the_shipped_plan():
    sc = load_scenario("paper/prfaas_pd")
    applied, plan = planned_scenario(sc)
    assert applied.cluster("pd").prefill_instances == plan.n_p == 3
    assert applied.router["threshold_tokens"] == plan.threshold_tokens == 19298


def test_baseline_plans_pick_their_routers():
    sc = load_scenario("paper/prfaas_pd")
    homo = plan_scenario(sc, deployment="homogeneous")
    assert apply_plan(sc, homo).router == {"name": "local-only"}
    naive = plan_scenario(sc, deployment="naive_heterogeneous")
    out = apply_plan(sc, naive)
    assert out.router == {"name": "naive-heterogeneous"} and out.cluster("pd").prefill_instances == 0


def test_apply_plan_rejects_a_plan_that_does_not_fit():
    sc = load_scenario("paper/prfaas_pd")
    with pytest.raises(ValueError, match="instances"):
        apply_plan(sc, make_plan(n_p=5, n_d=5))
    with pytest.raises(ValueError, match="no decode"):
        apply_plan(sc, make_plan(n_p=8, n_d=0))
    with pytest.raises(ValueError, match="PrfaaS"):
        apply_plan(sc, make_plan(n_prfaas=2))


def test_capacity_plan_flag_and_plan_simulate(capsys):
    assert main(["capacity", "paper/prfaas_pd", "--plan", "--requests", "300", "--rel-tol", "0.1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["plan"]["n_p"] == 3 and out["capacity_rps"] > 0
    assert main(["plan", "paper/homogeneous", "--simulate", "--requests", "300", "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["plan"]["deployment"] == "homogeneous"
    assert both["simulation"]["capacity_rps"] > 0
    assert main(["plan", "paper/homogeneous", "--simulate", "--requests", "300"]) == 0
    text = capsys.readouterr().out
    assert "planner" in text and "simulation" in text and "(capacity)" in text
