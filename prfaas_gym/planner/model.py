"""The paper's steady-state throughput model (PAPER.md Eqs. 1-6), vectorised over a grid.

Routing: a request whose uncached length ``l`` exceeds the threshold ``t`` is prefilled on
PrfaaS (its KV crosses the inter-DC link), otherwise on a local PD prefill instance.

Two conventions for the per-stage prefill cost (``convention=``):

* ``"representative"`` (the paper's): Eqs. 3-4 evaluate ``T_prefill`` and ``S_kv`` at the
  conditional mean length, ``l_long = E[L | L > t]`` and ``l_short = E[L | L <= t]``.
* ``"expectation"``: the exact steady-state cost per request, ``E[T_prefill(L) | L > t]`` and
  ``E[S_kv(L) | L > t]`` (same for the short side). Prefill time is convex in ``l``
  (attention is quadratic), so by Jensen ``E[T(L)] >= T(E[L])`` and the representative
  convention overstates prefill throughput; the gap grows with the spread of lengths on
  each side of ``t``. For affine ``T`` and ``S_kv`` the two conventions agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .inputs import PlannerInputs, evaluate

Convention = Literal["representative", "expectation"]
CONVENTIONS: tuple[str, ...] = ("representative", "expectation")


def kv_throughput_bytes_s(kv_bytes: float, prefill_s: float) -> float:
    """Eq. 1: Phi_kv(l) = S_kv(l) / T_prefill(l), bytes/s of KV one instance produces."""
    return kv_bytes / prefill_s


def cluster_egress_bytes_s(
    n_gpus: int, gpus_per_instance: int, kv_bytes: float, prefill_s: float
) -> float:
    """Eq. 2: B_needed = (N / P) * Phi_kv(L_avg), egress of a prefill-only cluster, bytes/s."""
    return n_gpus / gpus_per_instance * kv_throughput_bytes_s(kv_bytes, prefill_s)


@dataclass(frozen=True, eq=False)
class ThresholdStats:
    """Length statistics per candidate threshold (arrays of shape ``(T,)``).

    ``nan`` marks an empty side: ``l_long`` etc. when ``p == 0``, ``l_short`` etc. when
    ``p == 1``.

    Attributes:
        thresholds: the thresholds t, tokens.
        p: offload fraction P(L > t).
        l_long, l_short: conditional mean lengths E[L | L > t], E[L | L <= t].
        prfaas_s: per-request PrfaaS prefill cost of a long request under the convention.
        pd_short_s: per-request PD prefill cost of a short request under the convention.
        kv_long_bytes: KV size of a long request under the convention (bandwidth bound).
        kv_long_mean_bytes: E[S_kv(L) | L > t] (the physical mean, used for egress).
    """

    thresholds: np.ndarray
    p: np.ndarray
    l_long: np.ndarray
    l_short: np.ndarray
    prfaas_s: np.ndarray
    pd_short_s: np.ndarray
    kv_long_bytes: np.ndarray
    kv_long_mean_bytes: np.ndarray


@dataclass(frozen=True, eq=False)
class SampleCosts:
    """Per-sample costs, evaluated once per plan: T_PrfaaS(l), T_PD(l), S_kv(l)."""

    prfaas_s: np.ndarray
    pd_s: np.ndarray
    kv_bytes: np.ndarray

    @classmethod
    def of(cls, inputs: PlannerInputs) -> "SampleCosts":
        """Evaluate the input callables at every length sample."""
        x = inputs.lengths_tokens
        return cls(
            evaluate(inputs.prfaas_prefill_s, x),
            evaluate(inputs.pd_prefill_s, x),
            evaluate(inputs.kv_bytes, x),
        )


def _cond_means(w: np.ndarray, v: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means of ``v`` over samples ``[k:]`` (tail) and ``[:k]`` (head), nan if empty."""
    head = np.concatenate([[0.0], np.cumsum(w * v)])
    tail = np.concatenate([np.cumsum((w * v)[::-1])[::-1], [0.0]])
    wh = np.concatenate([[0.0], np.cumsum(w)])
    wt = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        long_mean = np.where(wt[k] > 0, tail[k] / np.where(wt[k] > 0, wt[k], 1.0), np.nan)
        short_mean = np.where(wh[k] > 0, head[k] / np.where(wh[k] > 0, wh[k], 1.0), np.nan)
    return long_mean, short_mean


def threshold_stats(
    inputs: PlannerInputs,
    thresholds: np.ndarray,
    convention: Convention = "representative",
    costs: SampleCosts | None = None,
) -> ThresholdStats:
    """Compute p, l_long, l_short and the per-stage costs for each threshold.

    Thresholds may be ``-inf`` (everything offloaded) or ``+inf`` (nothing offloaded).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: must be one of {CONVENTIONS}, got {convention!r}")
    t = np.atleast_1d(np.asarray(thresholds, dtype=float))
    x, w = inputs.lengths_tokens, inputs.weights
    costs = costs if costs is not None else SampleCosts.of(inputs)
    k = np.searchsorted(x, t, side="right")  # samples [k:] have L > t
    wt = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    wh = np.concatenate([[0.0], np.cumsum(w)])
    p = np.where(k == x.size, 0.0, np.where(k == 0, 1.0, wt[k] / (wt[k] + wh[k])))
    l_long, l_short = _cond_means(w, x, k)
    kv_mean_long, _ = _cond_means(w, costs.kv_bytes, k)
    if convention == "representative":
        ok_l, ok_s = np.isfinite(l_long), np.isfinite(l_short)
        prfaas_s = np.full(t.shape, np.nan)
        kv_long = np.full(t.shape, np.nan)
        pd_short_s = np.full(t.shape, np.nan)
        prfaas_s[ok_l] = evaluate(inputs.prfaas_prefill_s, l_long[ok_l])
        kv_long[ok_l] = evaluate(inputs.kv_bytes, l_long[ok_l])
        pd_short_s[ok_s] = evaluate(inputs.pd_prefill_s, l_short[ok_s])
    else:
        prfaas_s, _ = _cond_means(w, costs.prfaas_s, k)
        _, pd_short_s = _cond_means(w, costs.pd_s, k)
        kv_long = kv_mean_long
    return ThresholdStats(t, p, l_long, l_short, prfaas_s, pd_short_s, kv_long, kv_mean_long)


@dataclass(frozen=True, eq=False)
class GridResult:
    """Eqs. 3-6 over a (threshold x N_p) grid.

    Shapes: ``T = len(thresholds)``, ``S = len(n_p)``.

    Attributes:
        stats: the per-threshold length statistics.
        n_p, n_d: PD prefill / decode instance counts per split, shape ``(S,)``.
        prfaas_rps: Th_prfaas (Eq. 3), shape ``(T,)``; nan when nothing is offloaded.
        pd_prefill_rps: Th_pdp (Eq. 4), shape ``(T, S)``; nan when nothing stays local.
        pd_decode_rps: Th_pdd (Eq. 5), shape ``(S,)``.
        prfaas_bound_rps: Th_prfaas / p, ``(T,)``; inf when p == 0.
        pd_prefill_bound_rps: Th_pdp / (1 - p), ``(T, S)``; inf when p == 1.
        lambda_rps: Lambda_max (Eq. 6), ``(T, S)``.
    """

    stats: ThresholdStats
    n_p: np.ndarray
    n_d: np.ndarray
    prfaas_rps: np.ndarray
    pd_prefill_rps: np.ndarray
    pd_decode_rps: np.ndarray
    prfaas_bound_rps: np.ndarray
    pd_prefill_bound_rps: np.ndarray
    lambda_rps: np.ndarray

    @property
    def prefill_bound_rps(self) -> np.ndarray:
        """min(Th_prfaas / p, Th_pdp / (1 - p)): the prefill side's capacity, ``(T, S)``."""
        return np.minimum(self.prfaas_bound_rps[:, None], self.pd_prefill_bound_rps)


def evaluate_grid(
    inputs: PlannerInputs,
    thresholds: np.ndarray,
    n_p: np.ndarray,
    convention: Convention = "representative",
    n_pd_total: int | None = None,
    costs: SampleCosts | None = None,
) -> GridResult:
    """Evaluate Eqs. 3-6 for every threshold and every N_p (N_d = n_pd_total - N_p)."""
    stats = threshold_stats(inputs, thresholds, convention, costs)
    total = inputs.n_pd_total if n_pd_total is None else n_pd_total
    n_p = np.atleast_1d(np.asarray(n_p, dtype=int))
    n_d = total - n_p
    if np.any(n_p < 0) or np.any(n_d < 0):
        raise ValueError(f"n_p: every split must lie in 0..{total}")
    with np.errstate(invalid="ignore", divide="ignore"):
        # Eq. 3: compute-bound or egress-bound, whichever is lower.
        compute = inputs.n_prfaas / stats.prfaas_s
        egress = inputs.b_out_bytes_s / stats.kv_long_bytes
        prfaas = np.fmin(compute, egress) if inputs.n_prfaas > 0 else np.zeros_like(compute)
        prfaas = np.where(stats.p > 0, prfaas, np.nan)
        # Eq. 4
        pdp = np.where(n_p[None, :] == 0, 0.0, n_p[None, :] / stats.pd_short_s[:, None])
        # Eq. 5
        pdd = n_d * inputs.decode_rps_per_instance
        # Eq. 6
        prfaas_bound = np.where(stats.p > 0, prfaas / np.where(stats.p > 0, stats.p, 1.0), np.inf)
        one_minus_p = (1.0 - stats.p)[:, None]
        pdp_bound = np.where(
            one_minus_p > 0, pdp / np.where(one_minus_p > 0, one_minus_p, 1.0), np.inf
        )
    lam = np.minimum(np.minimum(prfaas_bound[:, None], pdp_bound), pdd[None, :])
    return GridResult(stats, n_p, n_d, prfaas, pdp, pdd, prfaas_bound, pdp_bound, lam)
