"""Eqs. 1-6 against a plain scalar reference, the two conventions, and input handling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prfaas_gym.planner import (
    PlannerInputs,
    cluster_egress_bytes_s,
    empirical_lengths,
    evaluate_grid,
    kv_throughput_bytes_s,
    lognormal_lengths,
    plan_homogeneous,
    plan_prfaas_pd,
    sweep_threshold,
)
from prfaas_gym.planner.casestudy import h20_prefill_s


def reference_lambda(inp: PlannerInputs, t: float, n_p: int, convention: str) -> float:
    """Eq. 6 written out with scalar Python for one (t, N_p)."""
    x, w = list(inp.lengths_tokens), list(inp.weights)
    long = [(l, wi) for l, wi in zip(x, w) if l > t]
    short = [(l, wi) for l, wi in zip(x, w) if l <= t]
    p = sum(wi for _, wi in long)
    terms = [(inp.n_pd_total - n_p) * inp.bs_max / (inp.t_decode_s * inp.l_out_tokens)]
    if long:
        if convention == "representative":
            l_long = sum(l * wi for l, wi in long) / p
            tp, kv = float(inp.prfaas_prefill_s(l_long)), float(inp.kv_bytes(l_long))
        else:
            tp = sum(float(inp.prfaas_prefill_s(l)) * wi for l, wi in long) / p
            kv = sum(float(inp.kv_bytes(l)) * wi for l, wi in long) / p
        terms.append(min(inp.n_prfaas / tp, inp.b_out_bytes_s / kv) / p)
    if short:
        q = 1 - p
        if convention == "representative":
            ts = float(inp.pd_prefill_s(sum(l * wi for l, wi in short) / q))
        else:
            ts = sum(float(inp.pd_prefill_s(l)) * wi for l, wi in short) / q
        terms.append(n_p / ts / q)
    return min(terms)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(128, 131072), min_size=1, max_size=12),
    c=st.tuples(st.floats(0.05, 1.0), st.floats(0, 1e-4), st.floats(0, 1e-9)),
    n_prfaas=st.integers(1, 6),
    n_pd=st.integers(2, 10),
    b_out_gbps=st.floats(1, 400),
    convention=st.sampled_from(["representative", "expectation"]),
)
def test_grid_matches_scalar_reference(lengths, c, n_prfaas, n_pd, b_out_gbps, convention):
    a, b, q = c
    inp = PlannerInputs(
        prfaas_prefill_s=lambda l: 0.5 * (a + b * l + q * l * l),
        pd_prefill_s=lambda l: a + b * l + q * l * l,
        kv_bytes=lambda l: 1.8e8 + 1.7e4 * l,
        n_prfaas=n_prfaas,
        n_pd_total=n_pd,
        b_out_bytes_s=b_out_gbps * 1e9 / 8,
        bs_max=20,
        t_decode_s=0.025,
        l_out_tokens=1024,
        lengths_tokens=np.array(lengths, dtype=float),
    )
    thr = np.array([100.0, 1000.0, 8000.0, 30000.0, 200000.0])
    g = evaluate_grid(inp, thr, np.arange(1, n_pd), convention)
    for i, t in enumerate(thr):
        for j, n_p in enumerate(range(1, n_pd)):
            assert g.lambda_rps[i, j] == pytest.approx(reference_lambda(inp, t, n_p, convention))
    plan = plan_prfaas_pd(inp, thr, convention=convention)
    assert plan.throughput_rps == pytest.approx(g.lambda_rps.max())


def _quadratic_inputs(**kw) -> PlannerInputs:
    base = dict(
        prfaas_prefill_s=lambda l: 0.5 * h20_prefill_s(l),
        pd_prefill_s=h20_prefill_s,
        kv_bytes=lambda l: 1.8e8 + 1.7e4 * np.asarray(l, dtype=float),
        n_prfaas=4,
        n_pd_total=8,
        b_out_bytes_s=12.5e9,
        bs_max=20,
        t_decode_s=0.025,
        l_out_tokens=1024,
        lengths_tokens=lognormal_lengths(9.9, 1.0, n_samples=2048),
    )
    base.update(kw)
    return PlannerInputs(**base)


def test_conventions_agree_for_affine_costs():
    inp = _quadratic_inputs(
        prfaas_prefill_s=lambda l: 0.3 + 5e-5 * np.asarray(l, dtype=float),
        pd_prefill_s=lambda l: 0.5 + 1.3e-4 * np.asarray(l, dtype=float),
    )
    a = plan_prfaas_pd(inp, convention="representative")
    b = plan_prfaas_pd(inp, convention="expectation")
    assert a.throughput_rps == pytest.approx(b.throughput_rps, rel=1e-9)
    assert (a.threshold_tokens, a.n_p) == (b.threshold_tokens, b.n_p)


def test_expectation_is_lower_for_convex_costs():
    """Jensen: E[T(L)] >= T(E[L]) for convex T, so the paper's convention is optimistic."""
    inp = _quadratic_inputs()
    for plan in (plan_prfaas_pd, plan_homogeneous):
        rep = plan(inp, convention="representative").throughput_rps
        exp = plan(inp, convention="expectation").throughput_rps
        assert exp < rep


def test_representative_prfaas_bound_rises_where_it_should():
    """With quadratic T, p * T(l_long) falls with t only once l_long <= 2t (the c*p*l_long^2
    term grows while l_long > 2t); the exact expectation rises everywhere."""
    inp = _quadratic_inputs(b_out_bytes_s=1e15)
    thr = np.geomspace(128, 131072, 200)
    rep = sweep_threshold(inp, 3, thr, "representative")
    exp = sweep_threshold(inp, 3, thr, "expectation")
    from prfaas_gym.planner import threshold_stats

    stats = threshold_stats(inp, thr)
    region = np.isfinite(rep.prfaas_bound_rps) & (stats.l_long <= 2 * thr)
    assert region.sum() > 10
    assert np.all(np.diff(rep.prfaas_bound_rps[region]) >= -1e-12)
    fin = np.isfinite(exp.prfaas_bound_rps)
    assert np.all(np.diff(exp.prfaas_bound_rps[fin]) >= -1e-12)
    for sw in (rep, exp):
        fin = np.isfinite(sw.pd_prefill_bound_rps)
        assert np.all(np.diff(sw.pd_prefill_bound_rps[fin]) <= 1e-12)


def test_homogeneous_closed_form():
    inp = _quadratic_inputs(n_pd_total=12)
    t_mean = float(h20_prefill_s(inp.mean_length_tokens))
    decode = 20 / (0.025 * 1024)
    expected = max(min(n / t_mean, (12 - n) * decode) for n in range(1, 12))
    plan = plan_homogeneous(inp)
    assert plan.throughput_rps == pytest.approx(expected)
    assert plan.n_p + plan.n_d == 12
    assert plan_homogeneous(inp, n_instances=6).n_p + plan_homogeneous(inp, n_instances=6).n_d == 6


def test_eq1_eq2():
    # Table 5, 32K: 701.3 MiB in 1.84 s is 3.19 Gbps
    phi = kv_throughput_bytes_s(701.3 * 2**20, 1.84)
    assert phi * 8 / 1e9 == pytest.approx(3.19, abs=0.01)
    assert cluster_egress_bytes_s(512, 8, 701.3 * 2**20, 1.84) == pytest.approx(64 * phi)


def test_lognormal_lengths():
    x = lognormal_lengths(9.9, 1.0)
    assert x.min() >= 128 and x.max() <= 131072
    assert np.all(np.diff(x) >= 0)
    assert 26_000 < x.mean() < 29_000
    assert lognormal_lengths(9.9, 1.0, mode="clip").mean() > x.mean()
    with pytest.raises(ValueError, match="mode"):
        lognormal_lengths(9.9, 1.0, mode="other")


def test_empirical_lengths():
    vals, w = empirical_lengths([5, 1, 5, 3])
    assert list(vals) == [1, 3, 5] and list(w) == [1, 1, 2]
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 100_000, 10_000)
    vals, w = empirical_lengths(raw, bins=64)
    assert vals.size <= 64 and w.sum() == raw.size
    assert np.dot(vals, w) / w.sum() == pytest.approx(raw.mean())


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("n_prfaas", -1, "n_prfaas"),
        ("bs_max", 2.5, "bs_max"),
        ("t_decode_s", 0.0, "t_decode_s"),
        ("b_out_bytes_s", -1.0, "b_out_bytes_s"),
        ("lengths_tokens", np.array([]), "lengths_tokens"),
        ("lengths_tokens", np.array([1.0, math.nan]), "lengths_tokens"),
        ("length_weights", np.array([1.0]), "length_weights"),
    ],
)
def test_inputs_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        _quadratic_inputs(**{field: value})


def test_scalar_only_callables_work(make_two_length):
    def scalar_only(l: float) -> float:
        if isinstance(l, np.ndarray):
            raise TypeError("scalar only")
        return 0.5

    inp = make_two_length(prfaas_prefill_s=scalar_only)
    assert plan_prfaas_pd(inp, np.array([1000.0])).throughput_rps == pytest.approx(4.0)
