"""Grid search for the optimal threshold and P/D split (Eqs. 7-8), baselines and sweeps."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .inputs import PlannerInputs
from .model import Convention, GridResult, SampleCosts, evaluate_grid
from .plan import Plan

TIE_RTOL = 1e-9
"""Grid points within this relative distance of the best Lambda_max count as tied."""


def default_thresholds(
    min_tokens: float = 128, max_tokens: float = 131072, n: int = 200
) -> np.ndarray:
    """Candidate thresholds: ``n`` log-spaced integers from ``min_tokens`` to ``max_tokens``."""
    return np.unique(np.round(np.geomspace(min_tokens, max_tokens, n)))


def _default_splits(n_pd_total: int) -> np.ndarray:
    if n_pd_total < 2:
        raise ValueError(f"n_pd_total: need >= 2 PD instances to split into P and D, got {n_pd_total}")
    return np.arange(1, n_pd_total)


def _imbalance(grid: GridResult) -> np.ndarray:
    """|log| distance from Eq. 7 plus that from Eq. 8, per grid point (inf when undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        eq7 = np.abs(np.log(grid.prfaas_bound_rps[:, None] / grid.pd_prefill_bound_rps))
        eq8 = np.abs(np.log(grid.prefill_bound_rps / grid.pd_decode_rps[None, :]))
    out = eq7 + eq8
    return np.where(np.isnan(out), np.inf, out)


def best_index(grid: GridResult) -> tuple[int, int]:
    """Index (threshold, split) maximising Lambda_max.

    Ties (within ``TIE_RTOL``, e.g. a decode-bound plateau over many thresholds) go to the
    point closest to the balance conditions, Eq. 7 (Th_prfaas/p = Th_pdp/(1-p)) and Eq. 8
    (prefill capacity = Th_pdd), then to the smaller threshold and smaller N_p.
    """
    lam = grid.lambda_rps
    best = np.nanmax(lam)
    tied = lam >= best * (1 - TIE_RTOL)
    score = np.where(tied, _imbalance(grid), np.nan)
    if np.all(np.isinf(score[tied])):
        i, j = np.argwhere(tied)[0]
        return int(i), int(j)
    i, j = np.unravel_index(np.nanargmin(score), lam.shape)
    return int(i), int(j)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Inverted-CDF weighted quantile: smallest v with P(V <= v) >= q."""
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(weights[order])
    idx = int(np.searchsorted(cw, q * cw[-1] * (1 - 1e-12), side="left"))
    return float(values[order][min(idx, values.size - 1)])


def _make_plan(
    inputs: PlannerInputs,
    deployment: str,
    grid: GridResult,
    i: int,
    j: int,
    costs: SampleCosts,
    threshold: float | None,
    n_prfaas: int,
    convention: Convention,
) -> Plan:
    st = grid.stats
    lam = float(grid.lambda_rps[i, j])
    p = float(st.p[i])
    t = float(st.thresholds[i])
    offload = inputs.lengths_tokens > t
    ttft = np.where(offload, costs.prfaas_s, costs.pd_s)
    w = inputs.weights
    kv_long = float(st.kv_long_mean_bytes[i]) if p > 0 else 0.0
    terms = {
        "prfaas": float(grid.prfaas_bound_rps[i]),
        "pd_prefill": float(grid.pd_prefill_bound_rps[i, j]),
        "pd_decode": float(grid.pd_decode_rps[j]),
    }
    bottleneck = min(terms, key=lambda k: terms[k])
    prfaas_rps = float(grid.prfaas_rps[i]) if n_prfaas > 0 else 0.0
    return Plan(
        deployment=deployment,
        threshold_tokens=threshold,
        n_prfaas=n_prfaas,
        n_p=int(grid.n_p[j]),
        n_d=int(grid.n_d[j]),
        throughput_rps=lam,
        stage_throughput_rps={
            "prfaas": prfaas_rps,
            "pd_prefill": float(grid.pd_prefill_rps[i, j]),
            "pd_decode": float(grid.pd_decode_rps[j]),
        },
        offload_fraction=p,
        egress_gbps=p * lam * kv_long * 8e-9,
        ttft_mean_s=float(np.dot(w, ttft)),
        ttft_p90_s=_weighted_quantile(ttft, w, 0.9),
        convention=convention,
        l_long_tokens=float(st.l_long[i]),
        l_short_tokens=float(st.l_short[i]),
        bottleneck=bottleneck,
    )


def plan_prfaas_pd(
    inputs: PlannerInputs,
    thresholds: np.ndarray | None = None,
    n_p: np.ndarray | None = None,
    convention: Convention = "representative",
) -> Plan:
    """Optimal PrfaaS-PD plan: exhaustive search over threshold x N_p maximising Eq. 6.

    Args:
        inputs: the deployment (``n_prfaas`` PrfaaS instances, ``n_pd_total`` PD instances).
        thresholds: candidate thresholds (default ``default_thresholds()``, 200 log-spaced
            values from 128 to 131072 tokens).
        n_p: candidate PD prefill counts (default 1..n_pd_total-1).
        convention: ``representative`` (paper) or ``expectation`` (see ``planner.model``).
    """
    thr = default_thresholds() if thresholds is None else np.asarray(thresholds, dtype=float)
    splits = _default_splits(inputs.n_pd_total) if n_p is None else np.asarray(n_p, dtype=int)
    costs = SampleCosts.of(inputs)
    grid = evaluate_grid(inputs, thr, splits, convention, costs=costs)
    i, j = best_index(grid)
    t = float(thr[i])
    return _make_plan(inputs, "prfaas_pd", grid, i, j, costs, t, inputs.n_prfaas, convention)


def plan_homogeneous(
    inputs: PlannerInputs,
    n_instances: int | None = None,
    convention: Convention = "representative",
) -> Plan:
    """Homogeneous PD baseline: one cluster of PD-hardware instances, no PrfaaS.

    Lambda = max over N_p of min(N_p / T_pd(E[L]), Th_pdd(N_d)) (``expectation``:
    N_p / E[T_pd(L)]). ``n_instances`` defaults to ``inputs.n_pd_total``; the PrfaaS
    fields of ``inputs`` are ignored.
    """
    n = inputs.n_pd_total if n_instances is None else int(n_instances)
    base = dataclasses.replace(inputs, n_prfaas=0, n_pd_total=n)
    costs = SampleCosts.of(base)
    grid = evaluate_grid(base, np.array([np.inf]), _default_splits(n), convention, costs=costs)
    i, j = best_index(grid)
    return _make_plan(base, "homogeneous", grid, i, j, costs, None, 0, convention)


def plan_naive_heterogeneous(
    inputs: PlannerInputs, convention: Convention = "representative"
) -> Plan:
    """Naive heterogeneous baseline: every prefill on PrfaaS, every PD instance decodes (p = 1).

    Lambda = min(Th_prfaas at l_long = E[L], n_pd_total * BS_max / (T_decode * L_out)).
    """
    if inputs.n_prfaas < 1:
        raise ValueError("n_prfaas: the naive heterogeneous deployment needs PrfaaS instances")
    costs = SampleCosts.of(inputs)
    grid = evaluate_grid(
        inputs, np.array([-np.inf]), np.array([0]), convention, costs=costs
    )
    return _make_plan(
        inputs, "naive_heterogeneous", grid, 0, 0, costs, None, inputs.n_prfaas, convention
    )


def equal_gpu_instances(inputs: PlannerInputs) -> int:
    """PD-hardware instances with the same GPU count as the PrfaaS-PD deployment."""
    gpus = inputs.n_prfaas * inputs.prfaas_gpus_per_instance + inputs.n_pd_total * inputs.pd_gpus_per_instance
    return gpus // inputs.pd_gpus_per_instance


def compare_deployments(
    inputs: PlannerInputs,
    homogeneous_instances: int | None = None,
    thresholds: np.ndarray | None = None,
    convention: Convention = "representative",
) -> dict[str, Plan]:
    """Plans for the three deployments of the paper's case study.

    The homogeneous baseline gets ``homogeneous_instances`` PD-hardware instances (default:
    the same GPU count as the PrfaaS-PD deployment, ``equal_gpu_instances``).
    """
    n_h = equal_gpu_instances(inputs) if homogeneous_instances is None else homogeneous_instances
    return {
        "prfaas_pd": plan_prfaas_pd(inputs, thresholds, convention=convention),
        "homogeneous": plan_homogeneous(inputs, n_h, convention),
        "naive_heterogeneous": plan_naive_heterogeneous(inputs, convention),
    }


@dataclass(frozen=True, eq=False)
class ThresholdSweep:
    """Eq. 6 and its terms versus the threshold at a fixed split (arrays of shape ``(T,)``)."""

    n_p: int
    n_d: int
    thresholds: np.ndarray
    offload_fraction: np.ndarray
    prfaas_bound_rps: np.ndarray
    pd_prefill_bound_rps: np.ndarray
    pd_decode_rps: float
    throughput_rps: np.ndarray


@dataclass(frozen=True, eq=False)
class SplitSweep:
    """Eq. 6 and its terms versus N_p at a fixed threshold (arrays of shape ``(S,)``)."""

    threshold_tokens: float
    n_p: np.ndarray
    n_d: np.ndarray
    prefill_bound_rps: np.ndarray
    pd_decode_rps: np.ndarray
    throughput_rps: np.ndarray


def sweep_threshold(
    inputs: PlannerInputs,
    n_p: int | None = None,
    thresholds: np.ndarray | None = None,
    convention: Convention = "representative",
) -> ThresholdSweep:
    """Throughput vs threshold at split ``n_p`` (default: the optimal plan's split)."""
    thr = default_thresholds() if thresholds is None else np.asarray(thresholds, dtype=float)
    if n_p is None:
        n_p = plan_prfaas_pd(inputs, thr, convention=convention).n_p
    g = evaluate_grid(inputs, thr, np.array([n_p]), convention)
    return ThresholdSweep(
        n_p=int(n_p),
        n_d=int(g.n_d[0]),
        thresholds=thr,
        offload_fraction=g.stats.p,
        prfaas_bound_rps=g.prfaas_bound_rps,
        pd_prefill_bound_rps=g.pd_prefill_bound_rps[:, 0],
        pd_decode_rps=float(g.pd_decode_rps[0]),
        throughput_rps=g.lambda_rps[:, 0],
    )


def sweep_split(
    inputs: PlannerInputs,
    threshold: float | None = None,
    convention: Convention = "representative",
) -> SplitSweep:
    """Throughput vs N_p (1..n_pd_total-1) at ``threshold`` (default: the optimal plan's)."""
    if threshold is None:
        t = plan_prfaas_pd(inputs, convention=convention).threshold_tokens
        threshold = math.inf if t is None else t
    splits = _default_splits(inputs.n_pd_total)
    g = evaluate_grid(inputs, np.array([threshold]), splits, convention)
    return SplitSweep(
        threshold_tokens=float(threshold),
        n_p=splits,
        n_d=g.n_d,
        prefill_bound_rps=g.prefill_bound_rps[0],
        pd_decode_rps=g.pd_decode_rps,
        throughput_rps=g.lambda_rps[0],
    )
