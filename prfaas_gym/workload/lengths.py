"""Token-length distributions for synthetic workloads (``input_tokens`` / ``output_tokens``).

Distributions (``dist``):

* ``constant``: ``value``.
* ``uniform``: integers uniform on ``[low, high]`` (inclusive).
* ``lognormal``: ``exp(N(mu, sigma))`` (``mu``/``sigma`` of the underlying normal).
* ``pareto``: Pareto type I with tail index ``alpha`` and minimum ``scale`` (heavy-tailed skew).
* ``empirical``: draws from ``values`` (optionally with ``weights``), or resamples a column of a
  trace file (``path`` relative to the data directory, ``column``: a CSV column name or a JSONL
  field, e.g. ``{path: azure_llm_2023/AzureLLMInferenceTrace_conv.csv, column: ContextTokens}``).

Every distribution accepts ``min`` (default 1) and ``max`` (default none) and rounds to integers.
Out-of-range draws are handled by ``truncate``: ``resample`` (default; a truly truncated
distribution, as the paper's log-normal on [128, 131072]) or ``clip`` (puts the excess mass on
the bounds).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from prfaas_gym.workload.spec import Fields

DISTS = ("constant", "uniform", "lognormal", "pareto", "empirical")
"""Known values of ``dist``."""

TRUNCATE = ("resample", "clip")

_MAX_RESAMPLE_ROUNDS = 200

Sampler = Callable[[int], np.ndarray]


def draw_lengths(spec: Fields, rng: np.random.Generator, n: int, *, data_dir: Path | None) -> np.ndarray:
    """Draw ``n`` integer lengths (int64, each within ``[min, max]``) for one length mapping."""
    return _draw(spec, rng, n, data_dir, integer=True).astype(np.int64)


def draw_seconds(spec: Fields, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` durations in seconds (float64, not rounded; ``min`` defaults to 0).

    Same distributions and keys as `draw_lengths` (``empirical`` takes ``values`` only).
    """
    return _draw(spec, rng, n, None, integer=False)


def _draw(spec: Fields, rng: np.random.Generator, n: int, data_dir: Path | None, integer: bool) -> np.ndarray:
    dist = spec.choice("dist", DISTS)
    read, floor = (spec.integer, 1) if integer else (spec.number, 0.0)
    lo = read("min", floor, min=floor)
    hi = read("max", None, min=floor)
    assert lo is not None
    if hi is not None and hi < lo:
        raise spec.error("max", f"must be >= min ({lo}), got {hi}")
    mode = spec.choice("truncate", TRUNCATE, default="resample")
    sampler = _BUILDERS[dist](spec, rng, data_dir)
    spec.done()
    return _bounded(sampler, n, lo, hi, mode, spec, rounding=integer)


def _bounded(sampler: Sampler, n: int, lo: float, hi: float | None, mode: str, spec: Fields,
             rounding: bool = True) -> np.ndarray:
    upper = np.inf if hi is None else hi
    rnd = np.rint if rounding else np.asarray
    out = rnd(sampler(n)).astype(np.float64)
    if mode == "clip":
        return np.clip(out, lo, upper)
    bad = np.flatnonzero((out < lo) | (out > upper))
    rounds = 0
    while bad.size:
        rounds += 1
        if rounds > _MAX_RESAMPLE_ROUNDS:
            raise spec.error(
                None, f"[min, max] = [{lo}, {hi}] excludes almost all of the distribution; "
                "widen the bounds or use truncate: clip")
        redraw = rnd(sampler(bad.size))
        out[bad] = redraw
        bad = bad[(redraw < lo) | (redraw > upper)]
    return out


def _constant(spec: Fields, rng: np.random.Generator, data_dir: Path | None) -> Sampler:
    value = spec.number("value", required=True, min=0.0)
    return lambda size: np.full(size, value)


def _uniform(spec: Fields, rng: np.random.Generator, data_dir: Path | None) -> Sampler:
    low = spec.integer("low", required=True, min=1)
    high = spec.integer("high", required=True, min=1)
    assert low is not None and high is not None
    if high < low:
        raise spec.error("high", f"must be >= low ({low}), got {high}")
    return lambda size: rng.integers(low, high + 1, size).astype(np.float64)


def _lognormal(spec: Fields, rng: np.random.Generator, data_dir: Path | None) -> Sampler:
    mu = spec.number("mu", required=True)
    sigma = spec.number("sigma", required=True, min=0.0)
    return lambda size: rng.lognormal(mu, sigma, size)


def _pareto(spec: Fields, rng: np.random.Generator, data_dir: Path | None) -> Sampler:
    alpha = spec.number("alpha", required=True, min=0.0, strict_min=True)
    scale = spec.number("scale", required=True, min=0.0, strict_min=True)
    assert alpha is not None and scale is not None
    return lambda size: scale * (1.0 + rng.pareto(alpha, size))


def _empirical(spec: Fields, rng: np.random.Generator, data_dir: Path | None) -> Sampler:
    values_raw = spec.raw("values")
    weights_raw = spec.raw("weights")
    path = spec.string("path")
    column = spec.string("column")
    if (values_raw is None) == (path is None):
        raise spec.error(None, "give either 'values' (with optional 'weights') or 'path' and 'column'")
    if path is not None:
        if column is None:
            raise spec.error("column", "required with 'path' (a CSV column or JSONL field name)")
        if weights_raw is not None:
            raise spec.error("weights", "only allowed with 'values'")
        from prfaas_gym.workload.traces import read_column, resolve_data_path

        file = resolve_data_path(path, data_dir, f"{spec.where}.path", spec.source)
        values = read_column(file, column).astype(np.float64)
        probs = None
    else:
        values = _vector(spec, "values", values_raw)
        if np.any(values < 0):
            raise spec.error("values", "lengths must be >= 0")
        probs = None
        if weights_raw is not None:
            weights = _vector(spec, "weights", weights_raw)
            if weights.size != values.size:
                raise spec.error("weights", f"need {values.size} weights (one per value), got {weights.size}")
            if np.any(weights < 0) or weights.sum() <= 0:
                raise spec.error("weights", "must be >= 0 with a positive sum")
            probs = weights / weights.sum()
    if values.size == 0:
        raise spec.error(None, "no values to draw from")
    return lambda size: rng.choice(values, size=size, p=probs)


def _vector(spec: Fields, key: str, raw: object) -> np.ndarray:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise spec.error(key, "expected a non-empty list of numbers")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise spec.error(key, "expected a non-empty list of numbers") from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise spec.error(key, "expected a non-empty list of finite numbers")
    return arr


_BUILDERS: dict[str, Callable[[Fields, np.random.Generator, Path | None], Sampler]] = {
    "constant": _constant,
    "uniform": _uniform,
    "lognormal": _lognormal,
    "pareto": _pareto,
    "empirical": _empirical,
}
