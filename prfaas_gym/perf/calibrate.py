"""Fit a GPU's roofline efficiency terms to measured step times (least squares on log error)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from prfaas_gym.profiles import HardwareProfile, ModelProfile, StepEfficiency

from .cases import StepCase, case_seconds
from .roofline import RooflineModel

FIT_TERMS: dict[str, tuple[float, float]] = {
    "attention_efficiency": (0.2, 1.0),
    "memory_efficiency": (0.4, 1.0),
    "elementwise_factor": (0.0, 20.0),
    "step_overhead_s": (0.0, 0.05),
    "layer_overhead_s": (0.0, 1e-3),
    "decode_layer_overhead_s": (0.0, 1e-3),
}
"""Terms fitted by default on step measurements, with their bounds. The GEMM terms
(``compute_efficiency``, ``gemm_m_half``, ``gemm_latency_s``) and the communication terms keep
their profile values unless named: they are set from kernel tables and measured ceilings
(aiconfigurator GEMM and NCCL tables, the card's 8192^3 GEMM rate), which pin them far better than
whole-step times of one model shape can (see docs/step_time_model.md)."""


@dataclass(frozen=True, slots=True)
class PhaseError:
    """Error summary of one phase."""

    phase: str
    n: int
    mape_pct: float
    max_abs_pct: float


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Fitted efficiency terms and the per-phase errors after fitting."""

    efficiency: StepEfficiency
    errors: tuple[PhaseError, ...]
    predicted_ms: tuple[float, ...]


def predict_ms(cases: Sequence[StepCase], model_of: Callable[[str], ModelProfile], hardware: HardwareProfile,
               efficiency: StepEfficiency | None = None, engine: str = "eager") -> list[float]:
    """Roofline prediction (ms) of every case with ``engine``'s profile (``eager``: the
    hardware profile's terms, what ../shared/calibration measured)."""
    models: dict[tuple[str, int], RooflineModel] = {}
    out = []
    for c in cases:
        key = (c.model, c.gpus)
        if key not in models:
            models[key] = RooflineModel(model_of(c.model), hardware, c.gpus, efficiency, engine=engine)
        out.append(case_seconds(models[key], c) * 1e3)
    return out


def phase_errors(cases: Sequence[StepCase], predicted_ms: Sequence[float]) -> tuple[PhaseError, ...]:
    """Mean and max absolute percentage error per phase (cases need ``measured_ms``)."""
    out = []
    for phase in ("prefill", "decode"):
        errs = [abs(p / c.measured_ms - 1.0) * 100 for c, p in zip(cases, predicted_ms)
                if c.phase == phase and c.measured_ms]
        if errs:
            out.append(PhaseError(phase, len(errs), float(np.mean(errs)), float(np.max(errs))))
    return tuple(out)


def calibrate(cases: Sequence[StepCase], model_of: Callable[[str], ModelProfile], hardware: HardwareProfile,
              terms: Sequence[str] | None = None) -> CalibrationResult:
    """Fit ``terms`` (default :data:`FIT_TERMS`) by ``scipy.optimize.least_squares`` on log(pred/measured).

    Each phase is weighted equally (residuals scaled by 1/sqrt(rows in phase)).
    """
    from scipy.optimize import least_squares  # heavy import kept local

    names = list(terms or FIT_TERMS)
    bounds_all = {**FIT_TERMS, "compute_efficiency": (0.3, 1.0), "gemm_m_half": (0.0, 512.0), "gemm_latency_s": (0.0, 1e-4), "comm_latency_s": (0.0, 1e-3), "comm_efficiency": (0.1, 1.0)}
    for n in names:
        if n not in bounds_all:
            raise ValueError(f"unknown efficiency term {n!r} (known: {', '.join(bounds_all)})")
    lo = np.array([bounds_all[n][0] for n in names])
    hi = np.array([bounds_all[n][1] for n in names])
    scale = np.maximum(hi - lo, 1e-12)
    base = hardware.efficiency
    x0 = np.clip(np.array([getattr(base, n) for n in names], dtype=float), lo, hi)
    measured = np.array([c.measured_ms for c in cases], dtype=float)
    counts = {p: sum(1 for c in cases if c.phase == p) for p in ("prefill", "decode")}
    w = np.array([1.0 / math.sqrt(counts[c.phase]) for c in cases])

    def eff_of(z: np.ndarray) -> StepEfficiency:
        x = lo + np.clip(z, 0.0, 1.0) * scale
        return dataclasses.replace(base, **{n: float(v) for n, v in zip(names, x)})

    def resid(z: np.ndarray) -> np.ndarray:
        pred = np.array(predict_ms(cases, model_of, hardware, eff_of(z)))
        return w * np.log(pred / measured)

    starts = [(x0 - lo) / scale]
    if "layer_overhead_s" in names:
        # the host-launch floor of eager prefill is a max(): from a start where it is inactive its
        # gradient is zero, so also start with it binding on the shortest measured prefill
        pre = [c for c in cases if c.phase == "prefill"]
        if pre:
            c0 = min(pre, key=lambda c: c.measured_ms)
            layers = model_of(c0.model).num_layers
            z = starts[0].copy()
            i = names.index("layer_overhead_s")
            z[i] = np.clip((0.97 * c0.measured_ms * 1e-3 / layers - lo[i]) / scale[i], 0.0, 1.0)
            starts.append(z)
    best = None
    for z0 in starts:
        sol = least_squares(resid, z0, bounds=(0.0, 1.0), x_scale=1.0, diff_step=1e-4,
                            xtol=1e-10, ftol=1e-10, max_nfev=400)
        if best is None or sol.cost < best.cost - 1e-12:
            best = sol
    eff = eff_of(best.x)
    pred = predict_ms(cases, model_of, hardware, eff)
    return CalibrationResult(eff, phase_errors(cases, pred), tuple(pred))
