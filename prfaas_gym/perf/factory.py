"""``build_step_time_model``: the scenario's ``step_time:`` mapping -> a :class:`StepTimeModel`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prfaas_gym.profiles import HardwareProfile, ModelProfile

from .base import PerfInputError, StepTimeModel
from .engines import DEFAULT_ENGINE, get_engine
from .polynomial import PolynomialModel
from .roofline import MOE_ROUTINGS, RooflineModel
from .table import TableModel, load_table


def _num(spec: Mapping[str, Any], key: str, default: float | None = None) -> float:
    v = spec.get(key, default)
    if v is None:
        raise PerfInputError(f"step_time.{key}: missing")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PerfInputError(f"step_time.{key}: expected a number, got {v!r}")
    return float(v)


def _roofline(spec: Mapping[str, Any], model: ModelProfile, hw: HardwareProfile, gpus: int) -> StepTimeModel:
    _only(spec, {"backend", "engine", "moe_routing"})
    routing = spec.get("moe_routing", "uniform")
    if routing not in MOE_ROUTINGS:
        raise PerfInputError(f"step_time.moe_routing: expected one of {', '.join(MOE_ROUTINGS)}, got {routing!r}")
    return RooflineModel(model, hw, gpus, engine=get_engine(spec.get("engine", DEFAULT_ENGINE)), moe_routing=routing)


def _table(spec: Mapping[str, Any], model: ModelProfile, hw: HardwareProfile, gpus: int) -> StepTimeModel:
    _only(spec, {"backend", "engine", "table", "decode_step_s", "decode_s_per_context_token", "decode_s_per_seq"})
    name = spec.get("table")
    if not isinstance(name, str):
        raise PerfInputError("step_time.table: expected a table name or YAML path")
    data = load_table(name)
    pre = data.get("prefill") or {}
    return TableModel(pre.get("tokens", []), pre.get("seconds", []),
                      _num(spec, "decode_step_s", data.get("decode_step_s")),
                      _num(spec, "decode_s_per_context_token", data.get("decode_s_per_context_token", 0.0)),
                      _num(spec, "decode_s_per_seq", data.get("decode_s_per_seq", 0.0)),
                      source=f"step_time.table[{name}]")


def _polynomial(spec: Mapping[str, Any], model: ModelProfile, hw: HardwareProfile, gpus: int) -> StepTimeModel:
    _only(spec, {"backend", "engine", "prefill_s", "decode_step_s", "decode_s_per_context_token", "decode_s_per_seq"})
    coeffs = spec.get("prefill_s")
    if not isinstance(coeffs, (list, tuple)) or not all(isinstance(v, (int, float)) for v in coeffs):
        raise PerfInputError("step_time.prefill_s: expected [c0, c1, c2] (seconds, s/token, s/token^2)")
    return PolynomialModel(coeffs, _num(spec, "decode_step_s"), _num(spec, "decode_s_per_context_token", 0.0),
                           _num(spec, "decode_s_per_seq", 0.0))


BACKENDS: dict[str, Callable[[Mapping[str, Any], ModelProfile, HardwareProfile, int], StepTimeModel]] = {
    "roofline": _roofline,
    "table": _table,
    "polynomial": _polynomial,
}
"""Registered step-time back-ends (one line per back-end)."""


def _only(spec: Mapping[str, Any], allowed: set[str]) -> None:
    for k in spec:
        if k not in allowed:
            raise PerfInputError(f"step_time.{k}: unknown key for backend {spec.get('backend', 'roofline')!r} "
                                 f"(allowed: {', '.join(sorted(allowed))})")


def build_step_time_model(spec: Mapping[str, Any] | None, model: ModelProfile, hardware: HardwareProfile,
                          gpus_per_instance: int) -> StepTimeModel:
    """Build the step-time model of one instance.

    Args:
        spec: the scenario's ``step_time:`` mapping; ``None`` means ``{backend: roofline}``.
            ``engine`` (``vllm`` default, ``sglang``, ``eager``) selects the roofline's engine
            profile; on ``table``/``polynomial`` it records which engine the curve describes.
        model: model profile.
        hardware: GPU profile.
        gpus_per_instance: GPUs of one instance (tensor/expert parallel).

    Raises:
        PerfInputError: unknown back-end or key, bad values (message names ``step_time.<field>``).
    """
    spec = dict(spec or {})
    backend = spec.get("backend", "roofline")
    if "engine" in spec:
        get_engine(spec["engine"])  # validated for every back-end; measured curves record it
    if backend not in BACKENDS:
        raise PerfInputError(f"step_time.backend: unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    if not isinstance(gpus_per_instance, int) or gpus_per_instance < 1:
        raise PerfInputError(f"gpus_per_instance: must be an integer >= 1, got {gpus_per_instance!r}")
    return BACKENDS[backend](spec, model, hardware, gpus_per_instance)
