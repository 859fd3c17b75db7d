"""YAML loading of hardware and model profiles (packaged or user files).

YAML uses unit-suffixed names (``bf16_tflops``, ``hbm_bandwidth_tbs``, ``hbm_capacity_gb``,
``nvlink_gbs``, ``rdma_gbps_per_node``), converted to SI at this boundary. Every error names
the file and the dotted field.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any


from .errors import ProfileError, UnknownProfileError
from .hardware import HardwareProfile, StepEfficiency
from .model import AttentionSpec, FFNSpec, LayerGroup, ModelProfile

_HW_KEYS = {
    "name", "description", "bf16_tflops", "fp8_tflops", "hbm_bandwidth_tbs", "hbm_capacity_gb",
    "nvlink_gbs", "gpus_per_node", "rdma_gbps_per_node", "price_per_gpu_hour_usd", "efficiency",
}
_MODEL_KEYS = {
    "name", "description", "hidden_size", "vocab_size", "tie_word_embeddings", "weight_dtype",
    "kv_dtype", "state_dtype", "total_params", "active_params", "layers",
}


def _data_dir(kind: str) -> Any:
    return importlib.resources.files("prfaas_gym.profiles") / "data" / kind


def _packaged(kind: str) -> dict[str, Any]:
    out = {}
    for entry in _data_dir(kind).iterdir():
        if entry.name.endswith(".yaml"):
            out[entry.name[: -len(".yaml")]] = entry
    return out


def list_hardware() -> list[str]:
    """Names of the packaged hardware profiles, sorted."""
    return sorted(_packaged("hardware"))


def list_models() -> list[str]:
    """Names of the packaged model profiles, sorted."""
    return sorted(_packaged("models"))


def _is_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) or "/" in name or "\\" in name


def _read_yaml(text: str | bytes, source: str) -> dict[str, Any]:
    from prfaas_gym.safe_yaml import YamlInputError, load_yaml

    try:
        data = load_yaml(text, source)  # size, depth, alias and duplicate-key limits
    except YamlInputError as exc:
        raise ProfileError(str(exc)) from None
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a mapping at the top level")
    return data


def _num(d: Mapping[str, Any], key: str, source: str, where: str = "", *, required: bool = True,
         default: float | None = None, positive: bool = True) -> float:
    field = f"{where}{key}"
    if key not in d or d[key] is None:
        if required:
            raise ProfileError(f"{source}: {field}: missing")
        return float(default if default is not None else 0.0)
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ProfileError(f"{source}: {field}: expected a number, got {v!r}")
    if positive and not v > 0:
        raise ProfileError(f"{source}: {field}: must be positive, got {v!r}")
    return float(v)


def _int(d: Mapping[str, Any], key: str, source: str, where: str = "", *, required: bool = False) -> int:
    field = f"{where}{key}"
    if key not in d or d[key] is None:
        if required:
            raise ProfileError(f"{source}: {field}: missing")
        return 0
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ProfileError(f"{source}: {field}: expected a non-negative integer, got {v!r}")
    return v


def _check_keys(d: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    for k in d:
        if k not in allowed:
            raise ProfileError(f"{source}: {where}{k}: unknown field (allowed: {', '.join(sorted(allowed))})")


def efficiency_from_dict(d: Any, source: str) -> StepEfficiency:
    """Build :class:`StepEfficiency` from a YAML mapping (missing terms keep their defaults)."""
    if d is None:
        return StepEfficiency()
    if not isinstance(d, dict):
        raise ProfileError(f"{source}: efficiency: expected a mapping")
    allowed = set(StepEfficiency().as_dict())
    _check_keys(d, allowed, source, "efficiency.")
    kwargs = {k: _num(d, k, source, "efficiency.", positive=False) for k in d}
    try:
        return StepEfficiency(**kwargs)
    except ValueError as exc:
        raise ProfileError(f"{source}: {exc}") from None


def hardware_from_dict(d: Mapping[str, Any], source: str = "<hardware>") -> HardwareProfile:
    """Build a :class:`HardwareProfile` from a YAML-shaped mapping (unit-suffixed keys)."""
    _check_keys(d, _HW_KEYS, source, "")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{source}: name: missing or not a string")
    bf16 = _num(d, "bf16_tflops", source) * 1e12
    fp8 = _num(d, "fp8_tflops", source, required=False, default=bf16 / 1e12) * 1e12
    gpn = d.get("gpus_per_node", 8)
    if isinstance(gpn, bool) or not isinstance(gpn, int) or gpn < 1:
        raise ProfileError(f"{source}: gpus_per_node: expected an integer >= 1, got {gpn!r}")
    return HardwareProfile(
        name=name,
        peak_bf16_flops_s=bf16,
        peak_fp8_flops_s=fp8,
        hbm_bandwidth_bytes_s=_num(d, "hbm_bandwidth_tbs", source) * 1e12,
        hbm_capacity_bytes=_num(d, "hbm_capacity_gb", source) * 1e9,
        nvlink_bandwidth_bytes_s=_num(d, "nvlink_gbs", source) * 1e9 / 2.0,
        gpus_per_node=gpn,
        rdma_bandwidth_bytes_s=_num(d, "rdma_gbps_per_node", source) * 1e9 / 8.0,
        price_per_gpu_hour_usd=_num(d, "price_per_gpu_hour_usd", source, positive=False),
        efficiency=efficiency_from_dict(d.get("efficiency"), source),
        description=str(d.get("description", "")),
    )


def hardware_to_dict(hw: HardwareProfile) -> dict[str, Any]:
    """Inverse of :func:`hardware_from_dict` (YAML units)."""
    return {
        "name": hw.name,
        "description": hw.description,
        "bf16_tflops": hw.peak_bf16_flops_s / 1e12,
        "fp8_tflops": hw.peak_fp8_flops_s / 1e12,
        "hbm_bandwidth_tbs": hw.hbm_bandwidth_bytes_s / 1e12,
        "hbm_capacity_gb": hw.hbm_capacity_bytes / 1e9,
        "nvlink_gbs": hw.nvlink_bandwidth_bytes_s * 2.0 / 1e9,
        "gpus_per_node": hw.gpus_per_node,
        "rdma_gbps_per_node": hw.rdma_bandwidth_bytes_s * 8.0 / 1e9,
        "price_per_gpu_hour_usd": hw.price_per_gpu_hour_usd,
        "efficiency": hw.efficiency.as_dict(),
    }


_ATTN_KEYS = {"kind", "num_heads", "num_kv_heads", "head_dim", "v_head_dim", "window_tokens", "q_lora_rank",
              "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "variant", "conv_kernel"}
_FFN_KEYS = {"kind", "intermediate_size", "num_experts", "active_experts", "shared_experts",
             "expert_intermediate_size", "gated", "expert_groups", "topk_groups"}


def _attention(d: Any, source: str, where: str) -> AttentionSpec:
    if not isinstance(d, dict):
        raise ProfileError(f"{source}: {where}: expected a mapping")
    _check_keys(d, _ATTN_KEYS, source, where + ".")
    kwargs: dict[str, Any] = {k: _int(d, k, source, where + ".") for k in _ATTN_KEYS - {"kind", "variant"} if k in d}
    try:
        return AttentionSpec(kind=str(d.get("kind", "")), variant=str(d.get("variant", "")), **kwargs)
    except ValueError as exc:
        raise ProfileError(f"{source}: {where}.{exc}") from None


def _ffn(d: Any, source: str, where: str) -> FFNSpec:
    if not isinstance(d, dict):
        raise ProfileError(f"{source}: {where}: expected a mapping")
    _check_keys(d, _FFN_KEYS, source, where + ".")
    kwargs: dict[str, Any] = {k: _int(d, k, source, where + ".") for k in _FFN_KEYS - {"kind", "gated"} if k in d}
    try:
        return FFNSpec(kind=str(d.get("kind", "")), gated=bool(d.get("gated", True)), **kwargs)
    except ValueError as exc:
        raise ProfileError(f"{source}: {where}.{exc}") from None


def model_from_dict(d: Mapping[str, Any], source: str = "<model>") -> ModelProfile:
    """Build a :class:`ModelProfile` from a YAML-shaped mapping."""
    _check_keys(d, _MODEL_KEYS, source, "")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{source}: name: missing or not a string")
    layers_raw = d.get("layers")
    if not isinstance(layers_raw, list) or not layers_raw:
        raise ProfileError(f"{source}: layers: expected a non-empty list of layer groups")
    groups = []
    for i, g in enumerate(layers_raw):
        where = f"layers[{i}]"
        if not isinstance(g, dict):
            raise ProfileError(f"{source}: {where}: expected a mapping")
        _check_keys(g, {"count", "attention", "ffn"}, source, where + ".")
        count = _int(g, "count", source, where + ".", required=True)
        if count < 1:
            raise ProfileError(f"{source}: {where}.count: must be >= 1")
        groups.append(LayerGroup(count, _attention(g.get("attention"), source, where + ".attention"),
                                 _ffn(g.get("ffn"), source, where + ".ffn")))
    try:
        return ModelProfile(
            name=name,
            hidden_size=_int(d, "hidden_size", source, required=True),
            vocab_size=_int(d, "vocab_size", source, required=True),
            layers=tuple(groups),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            weight_dtype=str(d.get("weight_dtype", "bf16")),
            kv_dtype=str(d.get("kv_dtype", "bf16")),
            state_dtype=str(d.get("state_dtype", "fp32")),
            total_params=_num(d, "total_params", source, required=False, positive=False),
            active_params=_num(d, "active_params", source, required=False, positive=False),
            description=str(d.get("description", "")),
        )
    except ValueError as exc:
        raise ProfileError(f"{source}: {exc}") from None


def load_hardware_file(path: str | Path) -> HardwareProfile:
    """Load a hardware profile from a YAML file."""
    p = Path(path)
    try:
        text = p.read_bytes()  # decoded (UTF-8, size-checked) by _read_yaml
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read: {exc.strerror}") from None
    return hardware_from_dict(_read_yaml(text, str(p)), str(p))


def load_model_file(path: str | Path) -> ModelProfile:
    """Load a model profile from a YAML file."""
    p = Path(path)
    try:
        text = p.read_bytes()  # decoded (UTF-8, size-checked) by _read_yaml
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read: {exc.strerror}") from None
    return model_from_dict(_read_yaml(text, str(p)), str(p))


@functools.lru_cache(maxsize=None)
def _packaged_hardware(name: str) -> HardwareProfile:
    entry = _packaged("hardware")[name]
    src = f"profiles/data/hardware/{name}.yaml"
    return hardware_from_dict(_read_yaml(entry.read_text(), src), src)


@functools.lru_cache(maxsize=None)
def _packaged_model(name: str) -> ModelProfile:
    entry = _packaged("models")[name]
    src = f"profiles/data/models/{name}.yaml"
    return model_from_dict(_read_yaml(entry.read_text(), src), src)


def get_hardware(name: str | Path | HardwareProfile) -> HardwareProfile:
    """A packaged hardware profile by name, or a user YAML file by path.

    Raises:
        UnknownProfileError: no packaged profile of that name (message lists the known ones).
        ProfileError: the file is invalid (message names file and field).
    """
    if isinstance(name, HardwareProfile):
        return name
    if isinstance(name, Path) or _is_path(str(name)):
        return load_hardware_file(name)
    if name not in _packaged("hardware"):
        raise UnknownProfileError("hardware", name, list_hardware())
    return _packaged_hardware(name)


def get_model(name: str | Path | ModelProfile) -> ModelProfile:
    """A packaged model profile by name, or a user YAML file by path.

    Raises:
        UnknownProfileError: no packaged profile of that name (message lists the known ones).
        ProfileError: the file is invalid (message names file and field).
    """
    if isinstance(name, ModelProfile):
        return name
    if isinstance(name, Path) or _is_path(str(name)):
        return load_model_file(name)
    if name not in _packaged("models"):
        raise UnknownProfileError("model", name, list_models())
    return _packaged_model(name)
