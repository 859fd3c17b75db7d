"""A tiny scenario whose optimum is worked out by hand (see conftest.two_length_inputs).

Candidates t in {500, 1000, 5000, 20000}:
  t=500   p=1:   Lambda = min(2, -, 2 N_d)              -> 2
  t=1000  p=1/2: Lambda = min(2/0.5, N_p/0.5, 2 N_d)    -> N_p=2: min(4, 4, 4) = 4
  t=5000  same as t=1000 (no length between); the tie goes to the smaller threshold
  t=20000 p=0:   Lambda = min(-, N_p, 2 N_d)            -> 2
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from prfaas_gym.planner import (
    CONVENTIONS,
    JSON_KEYS,
    plan_homogeneous,
    plan_naive_heterogeneous,
    plan_prfaas_pd,
)

THR = np.array([500.0, 1000.0, 5000.0, 20000.0])


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_oracle_optimum(oracle, convention):
    plan = plan_prfaas_pd(oracle, thresholds=THR, convention=convention)
    assert plan.deployment == "prfaas_pd"
    assert plan.threshold_tokens == 1000
    assert (plan.n_prfaas, plan.n_p, plan.n_d) == (1, 2, 2)
    assert plan.throughput_rps == pytest.approx(4.0, rel=1e-12)
    assert plan.stage_throughput_rps == pytest.approx(
        {"prfaas": 2.0, "pd_prefill": 2.0, "pd_decode": 4.0}, rel=1e-12
    )
    assert plan.offload_fraction == pytest.approx(0.5)
    # 0.5 * 4 req/s offloaded x 1e10 bytes = 2e10 B/s = 160 Gbps
    assert plan.egress_gbps == pytest.approx(160.0, rel=1e-12)
    # short requests: 1.0 s on PD; long: 0.5 s on PrfaaS
    assert plan.ttft_mean_s == pytest.approx(0.75)
    assert plan.ttft_p90_s == pytest.approx(1.0)
    assert plan.l_long_tokens == pytest.approx(10000)
    assert plan.l_short_tokens == pytest.approx(1000)


def test_oracle_bandwidth_bound(make_two_length):
    """B_out = 120 Gbps caps PrfaaS at 1.5 req/s of 10 GB requests: Lambda = 3, egress = B_out."""
    inputs = make_two_length(b_out_bytes_s=1.5e10)
    plan = plan_prfaas_pd(inputs, thresholds=THR)
    assert plan.throughput_rps == pytest.approx(3.0, rel=1e-12)
    assert (plan.threshold_tokens, plan.n_p, plan.n_d) == (1000, 2, 2)
    assert plan.stage_throughput_rps["prfaas"] == pytest.approx(1.5)
    assert plan.egress_gbps == pytest.approx(120.0, rel=1e-12)
    assert plan.bottleneck == "prfaas"


def test_oracle_homogeneous(make_two_length):
    """5 PD instances at 1 req/s prefill, 2 req/s decode: N_p=3 gives min(3, 4) = 3."""
    plan = plan_homogeneous(make_two_length(n_pd_total=5))
    assert (plan.threshold_tokens, plan.n_prfaas, plan.n_p, plan.n_d) == (None, 0, 3, 2)
    assert plan.throughput_rps == pytest.approx(3.0)
    assert plan.offload_fraction == 0.0 and plan.egress_gbps == 0.0
    assert plan.ttft_mean_s == pytest.approx(1.0) and plan.ttft_p90_s == pytest.approx(1.0)
    assert plan.stage_throughput_rps["prfaas"] == 0.0


def test_oracle_naive_heterogeneous(oracle, make_two_length):
    """All prefill on 1 PrfaaS instance (2 req/s), 4 decode instances (8 req/s)."""
    plan = plan_naive_heterogeneous(oracle)
    assert (plan.threshold_tokens, plan.n_prfaas, plan.n_p, plan.n_d) == (None, 1, 0, 4)
    assert plan.throughput_rps == pytest.approx(2.0)
    assert plan.offload_fraction == 1.0
    # 2 req/s x E[S_kv] = 5.5e9 B -> 1.1e10 B/s = 88 Gbps
    assert plan.egress_gbps == pytest.approx(88.0)
    assert plan.ttft_mean_s == pytest.approx(0.5)
    assert plan.stage_throughput_rps == pytest.approx(
        {"prfaas": 2.0, "pd_prefill": 0.0, "pd_decode": 8.0}
    )
    # bandwidth-bound: 5.5e9 B/s carries one mean-size request per second
    assert plan_naive_heterogeneous(make_two_length(b_out_bytes_s=5.5e9)).throughput_rps == (
        pytest.approx(1.0)
    )


def test_plan_json_has_exactly_the_keys(oracle):
    for plan in (
        plan_prfaas_pd(oracle, thresholds=THR),
        plan_homogeneous(oracle),
        plan_naive_heterogeneous(oracle),
    ):
        obj = json.loads(plan.to_json())
        assert tuple(obj) == JSON_KEYS
        assert set(obj["stage_throughput_rps"]) == {"prfaas", "pd_prefill", "pd_decode"}
        assert obj == plan.to_dict()
    assert json.loads(plan_homogeneous(oracle).to_json())["threshold_tokens"] is None
    assert isinstance(json.loads(plan_prfaas_pd(oracle, thresholds=THR).to_json())["threshold_tokens"], int)
