"""Properties of the grid optimum on the paper's case study (PAPER.md, "Case study")."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from prfaas_gym.planner import (
    CONVENTIONS,
    compare_deployments,
    default_thresholds,
    equal_gpu_instances,
    evaluate_grid,
    plan_prfaas_pd,
    sweep_split,
    sweep_threshold,
)


def test_case_study_inputs(case_study):
    # log-normal(9.90, 1.00) truncated to [128, 131072] has mean about 27K (PAPER.md)
    assert 26_000 < case_study.mean_length_tokens < 29_000
    assert equal_gpu_instances(case_study) == 12


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_case_study_ratios(case_study, convention):
    """PrfaaS-PD beats homogeneous by about 1.5x and beats naive heterogeneous."""
    plans = compare_deployments(case_study, convention=convention)
    prfaas, homo, naive = plans["prfaas_pd"], plans["homogeneous"], plans["naive_heterogeneous"]
    assert (homo.n_p + homo.n_d) == 12
    assert 1.4 < prfaas.throughput_rps / homo.throughput_rps < 1.65
    assert prfaas.throughput_rps / naive.throughput_rps > 1.15
    assert 0 < prfaas.offload_fraction < 1
    assert prfaas.egress_gbps < 100.0  # far below the 100 Gbps link
    assert prfaas.ttft_mean_s < homo.ttft_mean_s


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_optimum_satisfies_eq7_within_grid_step(case_study, convention):
    """At the optimal split, Th_prfaas/p - Th_pdp/(1-p) changes sign within one grid step of t*."""
    thr = default_thresholds()
    plan = plan_prfaas_pd(case_study, thr, convention=convention)
    i = int(np.flatnonzero(thr == plan.threshold_tokens)[0])
    sw = sweep_threshold(case_study, plan.n_p, thr, convention)
    gap = sw.prfaas_bound_rps - sw.pd_prefill_bound_rps
    assert 0 < i < thr.size - 1
    assert gap[i - 1] <= 0 <= gap[i + 1]


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_optimum_satisfies_eq8_within_grid_step(case_study, convention):
    """Prefill capacity P(N_p) (best t) crosses decode capacity D(N_p) within one step of N_p*."""
    thr = default_thresholds()
    plan = plan_prfaas_pd(case_study, thr, convention=convention)
    g = evaluate_grid(case_study, thr, np.arange(1, case_study.n_pd_total), convention)
    prefill = g.prefill_bound_rps.max(axis=0)  # P(N_p), increasing in N_p
    decode = g.pd_decode_rps  # D(N_p), decreasing
    j = plan.n_p - 1
    if j > 0:
        assert prefill[j - 1] <= decode[j - 1]
    if j < prefill.size - 1:
        assert prefill[j + 1] >= decode[j + 1]
    # and the optimum's Lambda is the better of the two sides of the crossing
    assert plan.throughput_rps == pytest.approx(np.minimum(prefill, decode).max())


def test_egress_is_offloaded_rate_times_kv(case_study):
    plan = plan_prfaas_pd(case_study)
    x, w = case_study.lengths_tokens, case_study.weights
    long = x > plan.threshold_tokens
    p = w[long].sum()
    mean_kv = np.dot(w[long], case_study.kv_bytes(x[long])) / p
    assert plan.offload_fraction == pytest.approx(p)
    assert plan.egress_gbps == pytest.approx(p * plan.throughput_rps * mean_kv * 8 / 1e9, rel=1e-9)


def test_bounds_move_the_right_way_with_t(case_study):
    """Th_prfaas/p rises with t and Th_pdp/(1-p) falls (PAPER.md's argument for Eq. 7)."""
    for convention in CONVENTIONS:
        sw = sweep_threshold(case_study, 3, convention=convention)
        up = sw.prfaas_bound_rps
        down = sw.pd_prefill_bound_rps
        fin_up = np.isfinite(up)
        fin_down = np.isfinite(down)
        assert np.all(np.diff(up[fin_up]) >= -1e-12)
        assert np.all(np.diff(down[fin_down]) <= 1e-12)
        assert np.all(np.diff(sw.offload_fraction) <= 0)


def test_sweeps_contain_the_optimum(case_study):
    plan = plan_prfaas_pd(case_study)
    st = sweep_threshold(case_study)
    ss = sweep_split(case_study)
    assert st.n_p == plan.n_p
    assert st.throughput_rps.max() == pytest.approx(plan.throughput_rps)
    assert ss.threshold_tokens == plan.threshold_tokens
    assert ss.throughput_rps.max() == pytest.approx(plan.throughput_rps)
    assert list(ss.n_p + ss.n_d) == [case_study.n_pd_total] * ss.n_p.size


def test_grid_search_is_fast(case_study):
    thr = default_thresholds(n=200)
    big = dataclasses.replace(case_study, n_pd_total=13)
    plan_prfaas_pd(big, thr)  # warm-up
    t0 = time.process_time()  # CPU time: wall time on a shared machine is noise
    plan_prfaas_pd(big, thr, np.arange(1, 13))
    assert time.process_time() - t0 < 0.5
