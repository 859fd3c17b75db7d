"""Capacity bisection: the criterion on hand-made runs, and a scenario whose capacity is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prfaas_gym.cli import main
from prfaas_gym.planner.capacity import Criterion, find_capacity, judge
from prfaas_gym.scenario import parse_scenario

PREFILL_S = 0.5  # constant prefill time of the single prefill instance -> capacity 2 req/s


def one_server_scenario():
    """One PD cluster: 1 prefill instance taking exactly 0.5 s per request, 3 ample decoders."""
    raw = {
        "name": "one-server", "model": "llama3-8b", "seed": 0,
        "slo": {"ttft_s": 1000.0, "tpot_s": 0.05},
        "clusters": [{
            "name": "pd", "datacenter": "dc-local", "kind": "pd", "hardware": "h100-sxm",
            "gpus_per_instance": 1, "instances": 4, "prefill_instances": 1,
            "step_time": {"backend": "polynomial", "prefill_s": [PREFILL_S, 0.0, 0.0],
                          "decode_step_s": 0.001},
            "prefill": {"max_batch": 1}, "decode": {"max_batch": 64},
        }],
        "router": {"name": "local-only"},
        "workload": {"kind": "synthetic", "requests": 100,
                     "arrival": {"process": "uniform", "rate_rps": 1.0},
                     "input_tokens": {"dist": "constant", "value": 100},
                     "output_tokens": {"dist": "constant", "value": 4}},
    }
    return parse_scenario(raw, "one-server.yaml")


def fake_run(n: int, rate: float, service_s: float, tpot_s: float = 0.01, out: int = 11):
    """A single FIFO server with constant service time fed at ``rate`` (uniform arrivals)."""
    arrival = np.arange(n) / rate
    pend = np.empty(n)
    free = 0.0
    for i, a in enumerate(arrival):
        free = max(free, a) + service_s
        pend[i] = free
    finish = pend + tpot_s * (out - 1)
    return arrival, finish, pend, np.full(n, float(out))


def test_criterion_accepts_underloaded_run():
    v = judge(*fake_run(1000, rate=1.0, service_s=0.8), tpot_slo_s=0.05)
    assert v.sustained, v.reasons
    assert v.completion_ratio == pytest.approx(1.0, abs=0.01)
    assert v.ttft_growth == pytest.approx(1.0)


def test_criterion_rejects_overloaded_run():
    v = judge(*fake_run(1000, rate=1.0, service_s=1.25), tpot_slo_s=0.05)
    assert not v.sustained
    assert v.completion_ratio == pytest.approx(0.8, abs=0.02)
    assert any("completions" in r for r in v.reasons) and any("TTFT" in r for r in v.reasons)


def test_criterion_rejects_slight_overload_by_ttft_growth():
    # 1 % overload: completions pass a 3 % tolerance, the growing queue does not
    v = judge(*fake_run(2000, rate=1.0, service_s=1.01), tpot_slo_s=0.05,
              criterion=Criterion(completion_tolerance=0.03))
    assert v.completion_ratio >= 0.97
    assert not v.sustained and v.ttft_growth > 2


def test_criterion_rejects_tpot_violation():
    v = judge(*fake_run(1000, rate=1.0, service_s=0.5, tpot_s=0.06), tpot_slo_s=0.05)
    assert not v.sustained and v.tpot_ok_fraction == 0.0


def test_criterion_counts_unfinished_requests_against_completion():
    arrival, finish, pend, out = fake_run(1000, rate=1.0, service_s=0.5)
    finish[::5] = np.nan  # a fifth rejected
    pend[::5] = np.nan
    v = judge(arrival, finish, pend, out, tpot_slo_s=0.05)
    assert not v.sustained and v.completion_ratio == pytest.approx(0.8, abs=0.01)


def test_criterion_validates():
    with pytest.raises(ValueError, match="warmup_fraction"):
        Criterion(warmup_fraction=0.9)
    with pytest.raises(ValueError, match="requests per run"):
        judge(*fake_run(10, 1.0, 0.5), tpot_slo_s=0.05)


def test_capacity_of_one_server_is_one_over_service_time():
    res = find_capacity(one_server_scenario(), n_requests=2000, start_rps=1.0, rel_tol=0.005)
    assert res.capacity_rps == pytest.approx(1 / PREFILL_S, rel=0.015)
    rates = [r.rate_rps for r in res.trace]
    assert all(r.sustained for r in res.trace if r.rate_rps <= res.capacity_rps)
    assert not any(r.sustained for r in res.trace if r.rate_rps > res.capacity_rps)
    assert len(set(rates)) == len(rates)
    assert res.summary["completed"] == 2000


def test_capacity_runs_are_paired_and_deterministic():
    a = find_capacity(one_server_scenario(), n_requests=400, start_rps=1.5)
    b = find_capacity(one_server_scenario(), n_requests=400, start_rps=1.5)
    assert a.capacity_rps == b.capacity_rps
    assert [r.rate_rps for r in a.trace] == [r.rate_rps for r in b.trace]


def test_capacity_cli_json(capsys):
    assert main(["capacity", "paper/homogeneous", "--requests", "400", "--rel-tol", "0.05", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["capacity_rps"] > 0 and out["planner_rps"] == pytest.approx(2.11, rel=0.01)
    assert set(out["criterion"]) >= {"text", "warmup_fraction", "completion_tolerance",
                                     "tpot_quantile", "ttft_growth_max"}
    assert out["summary"]["requests"] == 400
    trace = out["bisection"]["trace"]
    assert trace[0]["rate_rps"] == pytest.approx(out["planner_rps"])
    assert out["capacity_rps"] == max(r["rate_rps"] for r in trace if r["sustained"])


def test_capacity_cli_error_is_one_line(capsys):
    assert main(["capacity", "paper/homogeneous", "--requests", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prfaas-gym: error:") and "\n" not in err
