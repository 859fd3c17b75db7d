"""Arrival processes for synthetic workloads.

Every process is parameterised by its long-run mean rate ``rate_rps`` (so a target-rate override
simply replaces it) and produces sorted arrival times starting after ``t = 0``:

* ``poisson``: exponential inter-arrival times (IATs).
* ``gamma``: Gamma IATs with coefficient of variation ``cv`` (``cv = 1`` is Poisson, ``> 1`` bursty).
* ``bursty``: a two-state Markov-modulated Poisson process (MMPP-2). The process spends a share
  ``burst_fraction`` of time in bursts of mean length ``mean_burst_s`` (exponential), arriving at
  ``burst_multiplier x rate_rps`` during a burst and at whatever lower rate keeps the mean at
  ``rate_rps`` between bursts. ``burst_fraction * burst_multiplier == 1`` is an on/off process.
* ``diurnal``: a Poisson process whose rate follows
  ``rate_rps * (1 + amplitude * sin(2*pi*(t + phase_s) / period_s))``, drawn by thinning.
* ``uniform``: deterministic spacing ``1 / rate_rps`` (the paper's "uniform arrivals").

Generation is vectorised in chunks and stops once ``n`` arrivals exist or the clock passes
``duration_s``; only the passed ``numpy.random.Generator`` is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np

from prfaas_gym.workload.errors import MAX_REQUESTS, WorkloadError
from prfaas_gym.workload.spec import Fields

PROCESSES = ("poisson", "gamma", "bursty", "diurnal", "uniform")
"""Known values of ``workload.arrival.process``."""


class _Chunker(Protocol):
    t: float

    def __call__(self, size: int) -> np.ndarray: ...


def draw_arrivals(
    spec: Fields,
    rng: np.random.Generator,
    *,
    n: int | None,
    duration_s: float | None,
    rate_rps: float | None = None,
) -> np.ndarray:
    """Draw arrival times (seconds, sorted) for the ``workload.arrival`` mapping.

    Args:
        spec: the checked ``arrival`` mapping.
        rng: the only source of randomness.
        n: exactly this many arrivals (unless ``duration_s`` cuts earlier).
        duration_s: keep only arrivals ``< duration_s``.
        rate_rps: overrides ``arrival.rate_rps`` (the mean rate of every process).
    """
    if n is None and duration_s is None:
        raise spec.error(None, "need a request count or a duration to know when to stop")
    process = spec.choice("process", PROCESSES, default="poisson")
    spec_rate = spec.number("rate_rps", min=0.0, strict_min=True)
    rate = rate_rps if rate_rps is not None else spec_rate
    if rate is None:
        raise spec.error("rate_rps", "required (or pass rate_rps)")
    chunker = _BUILDERS[process](spec, rng, rate)
    spec.done()
    return _run(chunker, rate, n, duration_s)


def _run(chunker: _Chunker, rate: float, n: int | None, duration_s: float | None) -> np.ndarray:
    parts: list[np.ndarray] = []
    total = 0
    while True:
        if n is not None:
            size = max(n - total, 16)
        else:
            assert duration_s is not None
            expected = rate * max(duration_s - chunker.t, 0.0)
            size = int(expected + 4.0 * math.sqrt(expected) + 64)
        if total + size > 2 * MAX_REQUESTS:  # checked before allocating the chunk
            raise WorkloadError(f"workload.duration_s: {duration_s} s gives more than {MAX_REQUESTS:,} "
                                "arrivals (the limit); shorten it or set a request count")
        times = chunker(size)
        parts.append(times)
        total += times.size
        if n is not None and total >= n:
            break
        if duration_s is not None and chunker.t >= duration_s:
            break
    out = np.concatenate(parts) if parts else np.empty(0)
    if n is not None:
        out = out[:n]
    if duration_s is not None:
        out = out[out < duration_s]
    if out.size > MAX_REQUESTS:
        raise WorkloadError(f"workload.duration_s: {duration_s} s gives {out.size:,} arrivals, over the limit "
                            f"{MAX_REQUESTS:,}; shorten it or set a request count")
    return out


class _Renewal:
    """IATs from ``draw(size)``; keeps the clock between chunks."""

    def __init__(self, draw: Callable[[int], np.ndarray]) -> None:
        self.draw = draw
        self.t = 0.0

    def __call__(self, size: int) -> np.ndarray:
        times = self.t + np.cumsum(self.draw(size))
        self.t = float(times[-1])
        return times


def _poisson(spec: Fields, rng: np.random.Generator, rate: float) -> _Chunker:
    return _Renewal(lambda size: rng.exponential(1.0 / rate, size))


def _gamma(spec: Fields, rng: np.random.Generator, rate: float) -> _Chunker:
    cv = spec.number("cv", required=True, min=0.0, strict_min=True)
    assert cv is not None
    shape = 1.0 / (cv * cv)
    return _Renewal(lambda size: rng.gamma(shape, 1.0 / (rate * shape), size))


def _uniform(spec: Fields, rng: np.random.Generator, rate: float) -> _Chunker:
    return _Renewal(lambda size: np.full(size, 1.0 / rate))


class _Mmpp2:
    """Two-state MMPP drawn period by period (counts ~ Poisson, positions uniform)."""

    def __init__(self, rng: np.random.Generator, rates: tuple[float, float], means: tuple[float, float],
                 p_burst: float) -> None:
        self.rng = rng
        self.rates = np.array(rates)  # (calm, burst)
        self.means = np.array(means)
        self.state = int(rng.random() < p_burst)
        self.t = 0.0
        per_cycle = float(self.rates @ self.means)
        self.per_cycle = max(per_cycle, 1e-12)

    def __call__(self, size: int) -> np.ndarray:
        cycles = int(math.ceil(size / self.per_cycle)) + 1
        states = (self.state + np.arange(2 * cycles)) % 2
        lengths = self.rng.exponential(self.means[states])
        starts = self.t + np.concatenate(([0.0], np.cumsum(lengths)[:-1]))
        counts = self.rng.poisson(self.rates[states] * lengths)
        owner = np.repeat(np.arange(states.size), counts)
        times = starts[owner] + lengths[owner] * self.rng.random(owner.size)
        times.sort()
        self.t = float(starts[-1] + lengths[-1])
        return times


def _bursty(spec: Fields, rng: np.random.Generator, rate: float) -> _Chunker:
    frac = spec.number("burst_fraction", 0.2, min=0.0, max=1.0, strict_min=True)
    mult = spec.number("burst_multiplier", 4.0, min=1.0)
    mean_burst = spec.number("mean_burst_s", 30.0, min=0.0, strict_min=True)
    assert frac is not None and mult is not None and mean_burst is not None
    if frac * mult > 1.0 + 1e-9:
        raise spec.error(
            "burst_multiplier",
            f"burst_fraction * burst_multiplier must be <= 1 (the mean rate would be exceeded), "
            f"got {frac:g} * {mult:g}",
        )
    if frac >= 1.0:
        return _poisson(spec, rng, rate)
    burst_rate = mult * rate
    calm_rate = max(rate * (1.0 - frac * mult) / (1.0 - frac), 0.0)
    mean_calm = mean_burst * (1.0 - frac) / frac
    return _Mmpp2(rng, (calm_rate, burst_rate), (mean_calm, mean_burst), frac)


class _Thinned:
    """Poisson at peak rate, each candidate kept with probability rate(t) / peak."""

    def __init__(self, rng: np.random.Generator, rate: float, amplitude: float, period: float,
                 phase: float) -> None:
        self.rng, self.rate, self.amp, self.period, self.phase = rng, rate, amplitude, period, phase
        self.peak = rate * (1.0 + amplitude)
        self.t = 0.0

    def __call__(self, size: int) -> np.ndarray:
        m = int(size * (1.0 + self.amp) * 1.05) + 16
        cand = self.t + np.cumsum(self.rng.exponential(1.0 / self.peak, m))
        self.t = float(cand[-1])
        lam = 1.0 + self.amp * np.sin(2.0 * np.pi * (cand + self.phase) / self.period)
        keep = self.rng.random(m) * (1.0 + self.amp) < lam
        return cand[keep]


def _diurnal(spec: Fields, rng: np.random.Generator, rate: float) -> _Chunker:
    period = spec.number("period_s", 86400.0, min=0.0, strict_min=True)
    amp = spec.number("amplitude", 0.5, min=0.0, max=1.0)
    phase = spec.number("phase_s", 0.0)
    assert period is not None and amp is not None and phase is not None
    return _Thinned(rng, rate, amp, period, phase)


_BUILDERS: dict[str, Callable[[Fields, np.random.Generator, float], _Chunker]] = {
    "poisson": _poisson,
    "gamma": _gamma,
    "bursty": _bursty,
    "diurnal": _diurnal,
    "uniform": _uniform,
}
