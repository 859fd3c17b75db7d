"""Small statistics for comparisons over seeds: means with Student-t intervals."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the Student-t confidence interval of the mean over ``values``.

    NaNs are dropped. One value gives a zero-width interval; none gives NaNs.
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    sem = float(x.std(ddof=1)) / math.sqrt(x.size)
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sem
    return mean, mean - half, mean + half


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> dict:
    """``{"mean", "ci95": [lo, hi]}`` for JSON output."""
    mean, lo, hi = t_interval(values, confidence)
    return {"mean": mean, "ci95": [lo, hi]}
