"""Table back-end: piecewise-linear interpolation of a measured per-instance prefill curve.

Rules (docs/step_time_model.md):
- one sequence of ``n`` uncached tokens: ``T(n)`` interpolated linearly between points and
  extrapolated with the end segments (clamped to be positive);
- cached prefix ``c``: ``T0 + T(n + c) - T(c)`` (the marginal cost of extending the prompt,
  which includes attention over the prefix, plus the fixed overhead ``T0``);
- batch: ``sum_i T_i - (k - 1) * T0`` where ``T0`` is the fixed overhead (the zero-token
  intercept of the first segment, clipped to ``[0, T(first)]``), i.e. one step pays it once.
- decode: a fixed ``decode_step_s`` (optionally ``+ decode_s_per_context_token * context``).
"""

from __future__ import annotations

import functools
import importlib.resources
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import PerfInputError


def list_tables() -> list[str]:
    """Names of the packaged step-time tables."""
    d = importlib.resources.files("prfaas_gym.perf") / "data"
    return sorted(e.name[:-5] for e in d.iterdir() if e.name.endswith(".yaml"))


def load_table(name: str) -> dict[str, Any]:
    """A packaged table by name (or a YAML path) as a mapping."""
    from prfaas_gym.safe_yaml import YamlInputError, load_yaml, read_yaml_file

    if name.endswith((".yaml", ".yml")) or "/" in name:
        try:
            return read_yaml_file(name)
        except YamlInputError as exc:
            raise PerfInputError(str(exc)) from None
    if name not in list_tables():
        raise PerfInputError(f"step_time.table: unknown table {name!r} (known: {', '.join(list_tables())})")
    text = (importlib.resources.files("prfaas_gym.perf") / "data" / f"{name}.yaml").read_text()
    return load_yaml(text, f"step_time.table {name}")


class TableModel:
    """Interpolated prefill curve ``T(tokens)`` plus a fixed/linear decode step.

    Args:
        tokens: increasing prompt lengths (>= 2 points).
        seconds: prefill seconds at those lengths (batch 1, uncached).
        decode_step_s: decode step seconds.
        decode_s_per_context_token: optional slope of the decode step in total context tokens.
        decode_s_per_seq: optional slope in batch size.
    """

    def __init__(self, tokens: Sequence[float], seconds: Sequence[float], decode_step_s: float,
                 decode_s_per_context_token: float = 0.0, decode_s_per_seq: float = 0.0,
                 source: str = "step_time") -> None:
        x = np.asarray(tokens, dtype=float)
        y = np.asarray(seconds, dtype=float)
        if x.ndim != 1 or x.size < 2 or x.size != y.size:
            raise PerfInputError(f"{source}.prefill: need >= 2 (tokens, seconds) points of equal length")
        if np.any(np.diff(x) <= 0) or np.any(y <= 0) or np.any(np.diff(y) < 0):
            raise PerfInputError(f"{source}.prefill: tokens must increase and seconds be positive and non-decreasing")
        if not decode_step_s > 0:
            raise PerfInputError(f"{source}.decode_step_s: must be positive, got {decode_step_s!r}")
        self._x, self._y = x, y
        self._slope_lo = (y[1] - y[0]) / (x[1] - x[0])
        self._slope_hi = (y[-1] - y[-2]) / (x[-1] - x[-2])
        self.fixed_s = float(min(max(y[0] - self._slope_lo * x[0], 0.0), y[0]))
        self.decode_step_s = float(decode_step_s)
        self.decode_s_per_context_token = float(decode_s_per_context_token)
        self.decode_s_per_seq = float(decode_s_per_seq)
        self._plain_points()
        self._seq = functools.lru_cache(maxsize=1 << 16)(self._seq_time)

    def _plain_points(self) -> None:
        # Python-float copies for curve_s: a scalar np.interp call costs ~1 us of NumPy overhead
        # and most prompt lengths are new to the memo table (about one miss per request)
        self._xs = [float(v) for v in self._x]
        self._ys = [float(v) for v in self._y]
        self._lo = float(self._slope_lo)
        self._hi = float(self._slope_hi)

    def __getstate__(self) -> dict:
        # the memo table is a per-object closure: drop it (a simulator pickles mid-run)
        return {k: v for k, v in self.__dict__.items() if k != "_seq"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._plain_points()
        self._seq = functools.lru_cache(maxsize=1 << 16)(self._seq_time)

    def curve_s(self, tokens: float) -> float:
        """``T(tokens)``: interpolation inside the table, end-segment extrapolation outside."""
        xs, ys = self._xs, self._ys
        if tokens <= xs[0]:
            return max(ys[0] + self._lo * (tokens - xs[0]), self.fixed_s, 0.0)
        if tokens >= xs[-1]:
            return ys[-1] + self._hi * (tokens - xs[-1])
        # np.interp's arithmetic, in plain floats (bit-identical): the point at or left of
        # ``tokens``, its exact value on a hit, else slope * offset + left value
        j = bisect_right(xs, tokens) - 1
        x0 = xs[j]
        if x0 == tokens:
            return ys[j]
        y0 = ys[j]
        return (ys[j + 1] - y0) / (xs[j + 1] - x0) * (tokens - x0) + y0

    def _seq_time(self, new: int, cached: int) -> float:
        if cached <= 0:
            return self.curve_s(new)
        # pay the marginal cost of extending a prompt from `cached` to `cached + new`,
        # plus the fixed overhead (the step still runs)
        return self.fixed_s + max(self.curve_s(new + cached) - self.curve_s(cached), 0.0)

    def prefill_s(self, seqs: Sequence[tuple[int, int]]) -> float:
        """Sum of per-sequence times, with the fixed overhead paid once per step."""
        total = 0.0
        k = 0
        for n, c in seqs:
            if n > 0:
                total += self._seq(int(n), int(c))
                k += 1
        if k == 0:
            return 0.0
        return total - (k - 1) * self.fixed_s

    def decode_s(self, batch: int, context_tokens: int) -> float:
        """Fixed step plus optional linear terms in batch and context."""
        if batch <= 0:
            return 0.0
        return (self.decode_step_s + self.decode_s_per_seq * batch
                + self.decode_s_per_context_token * context_tokens)
