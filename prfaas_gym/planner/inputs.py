"""Planner inputs: the steady-state description of one deployment (PAPER.md, Eqs. 1-8).

Everything here is pure data plus helpers that build length samples. Units are SI:
seconds, bytes, bytes/s; lengths in tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Sequence

import numpy as np

TimeFn = Callable[[float], float]
"""Seconds for one instance to prefill ``l`` uncached tokens (or bytes of KV for ``l`` tokens)."""


def evaluate(fn: Callable[[float], float], lengths: np.ndarray) -> np.ndarray:
    """Evaluate a scalar callable over an array of lengths, vectorised when the callable allows.

    A callable that accepts a numpy array and returns an array of the same shape is called
    once; anything else is called element by element. Results are float64.
    """
    x = np.asarray(lengths, dtype=float)
    try:
        out = np.asarray(fn(x), dtype=float)
        if out.shape == x.shape:
            return out
    except Exception:  # noqa: BLE001 - scalar-only callables raise all kinds of errors on arrays
        pass
    flat = np.fromiter((float(fn(float(v))) for v in x.ravel()), dtype=float, count=x.size)
    return flat.reshape(x.shape)


@dataclass(frozen=True, eq=False)
class PlannerInputs:
    """Steady-state inputs of the analytical model (PAPER.md, "The analytical model").

    Attributes:
        prfaas_prefill_s: T_prefill_PrfaaS(l), seconds for one PrfaaS instance to prefill
            ``l`` uncached tokens.
        pd_prefill_s: T_prefill_PD(l), the same on one local PD instance.
        kv_bytes: S_kv(l), bytes of KV (block KV + fixed linear state) shipped for ``l`` tokens.
        n_prfaas: PrfaaS prefill instances (N_prfaas); 0 for a deployment without PrfaaS.
        n_pd_total: local PD instances to split into N_p prefill + N_d decode.
        prfaas_gpus_per_instance: GPUs per PrfaaS instance (P in Eq. 2).
        pd_gpus_per_instance: GPUs per PD instance.
        b_out_bytes_s: PrfaaS egress bandwidth B_out, bytes/s (100 Gbps = 12.5e9).
        bs_max: maximum decode batch per decode instance at the TPOT SLO.
        t_decode_s: decode step time at ``bs_max`` (the TPOT SLO), seconds.
        l_out_tokens: mean output length L_out.
        lengths_tokens: samples of the uncached (post-prefix-match) input length.
        length_weights: optional non-negative weights of the samples (None: equal weights).

    On construction the samples are sorted by length and the weights normalised to sum 1.
    """

    prfaas_prefill_s: TimeFn
    pd_prefill_s: TimeFn
    kv_bytes: TimeFn
    n_prfaas: int
    n_pd_total: int
    b_out_bytes_s: float
    bs_max: int
    t_decode_s: float
    l_out_tokens: float
    lengths_tokens: np.ndarray
    length_weights: np.ndarray | None = None
    prfaas_gpus_per_instance: int = 8
    pd_gpus_per_instance: int = 8

    def __post_init__(self) -> None:
        lengths = np.asarray(self.lengths_tokens, dtype=float).ravel()
        if lengths.size == 0:
            raise ValueError("lengths_tokens: need at least one length sample")
        if not np.all(np.isfinite(lengths)) or np.any(lengths < 0):
            raise ValueError("lengths_tokens: lengths must be finite and >= 0")
        if self.length_weights is None:
            w = np.full(lengths.size, 1.0 / lengths.size)
        else:
            w = np.asarray(self.length_weights, dtype=float).ravel()
            if w.shape != lengths.shape:
                raise ValueError(
                    f"length_weights: shape {w.shape} does not match lengths_tokens {lengths.shape}"
                )
            if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError("length_weights: weights must be finite, >= 0, with a positive sum")
            w = w / w.sum()
        for name in ("n_prfaas", "n_pd_total", "bs_max"):
            v = getattr(self, name)
            if int(v) != v or v < 0:
                raise ValueError(f"{name}: must be a non-negative integer, got {v!r}")
        for name in ("prfaas_gpus_per_instance", "pd_gpus_per_instance"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name}: must be a positive integer, got {v!r}")
        for name in ("b_out_bytes_s", "t_decode_s", "l_out_tokens"):
            v = float(getattr(self, name))
            if not math.isfinite(v) and name != "b_out_bytes_s":
                raise ValueError(f"{name}: must be finite, got {v!r}")
            if not v > 0:
                raise ValueError(f"{name}: must be > 0, got {v!r}")
        order = np.argsort(lengths, kind="stable")
        object.__setattr__(self, "lengths_tokens", lengths[order])
        object.__setattr__(self, "length_weights", w[order])

    @property
    def weights(self) -> np.ndarray:
        """Normalised sample weights (sum 1), aligned with the sorted ``lengths_tokens``."""
        return self.length_weights

    @property
    def mean_length_tokens(self) -> float:
        """E[L] over the length samples."""
        return float(np.dot(self.length_weights, self.lengths_tokens))

    @property
    def decode_rps_per_instance(self) -> float:
        """Requests/s one decode instance completes: BS_max / (T_decode * L_out) (Eq. 5)."""
        return self.bs_max / (self.t_decode_s * self.l_out_tokens)


def lognormal_lengths(
    mu: float,
    sigma: float,
    min_tokens: float = 128,
    max_tokens: float = 131072,
    n_samples: int = 4096,
    mode: str = "truncate",
) -> np.ndarray:
    """Deterministic equal-weight samples of a log-normal length distribution.

    The samples are the quantiles at the midpoints of ``n_samples`` equal-probability strata,
    so the result is reproducible and smooth in the threshold without any RNG.

    Args:
        mu, sigma: parameters of ln(L) ~ Normal(mu, sigma).
        min_tokens, max_tokens: support bounds.
        n_samples: number of samples.
        mode: ``"truncate"`` conditions the distribution on [min, max] (renormalised, the
            paper's reading: mean about 27K for (9.90, 1.00)); ``"clip"`` clamps samples to
            the bounds, putting point masses at them.
    """
    if sigma <= 0 or n_samples < 1 or not 0 <= min_tokens < max_tokens:
        raise ValueError("lognormal_lengths: need sigma > 0, n_samples >= 1, 0 <= min < max")
    nd = NormalDist(mu, sigma)
    u = (np.arange(n_samples) + 0.5) / n_samples
    if mode == "truncate":
        lo = nd.cdf(math.log(min_tokens)) if min_tokens > 0 else 0.0
        hi = nd.cdf(math.log(max_tokens))
        u = lo + u * (hi - lo)
        z = np.array([nd.inv_cdf(float(x)) for x in u])
        return np.clip(np.exp(z), min_tokens, max_tokens)
    if mode == "clip":
        z = np.array([nd.inv_cdf(float(x)) for x in u])
        return np.clip(np.exp(z), min_tokens, max_tokens)
    raise ValueError(f"lognormal_lengths: mode must be 'truncate' or 'clip', got {mode!r}")


def empirical_lengths(
    lengths: Sequence[float] | np.ndarray, bins: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Samples and weights from observed uncached lengths (e.g. a trace after prefix matching).

    With ``bins`` the lengths are compressed into at most that many distinct values (weighted
    by count, each bin represented by its mean), which keeps large traces cheap to plan.
    Returns ``(lengths_tokens, length_weights)``.
    """
    x = np.asarray(lengths, dtype=float).ravel()
    if x.size == 0:
        raise ValueError("empirical_lengths: no lengths")
    values, counts = np.unique(x, return_counts=True)
    if bins is None or values.size <= bins:
        return values, counts.astype(float)
    idx = np.minimum((np.cumsum(counts) - 0.5) / counts.sum() * bins, bins - 1).astype(int)
    sums = np.bincount(idx, weights=values * counts, minlength=bins)
    cnt = np.bincount(idx, weights=counts, minlength=bins)
    keep = cnt > 0
    return sums[keep] / cnt[keep], cnt[keep]
