"""Engine profiles of the roofline step-time model: ``eager`` (PyTorch), ``vllm``, ``sglang``.

An engine profile says *how* a serving engine runs the same operators (docs/step_time_model.md,
"Engine profiles", has the code paths each choice follows):

* **element-wise work** — eager PyTorch runs every norm, residual add, rotary and activation as
  separate kernels on fp32 intermediates; vLLM and SGLang fuse residual-add + RMSNorm
  (``fused_add_rms_norm``), SiLU-and-mul (``silu_and_mul``) and in-place rotary (``rotary_embedding``)
  into one kernel each (4 kernels per layer);
* **host overheads** — eager prefill is bounded by the CPU launching ~40 kernels per layer; vLLM
  captures CUDA graphs (piecewise, torch.compile) so no per-layer host floor remains; SGLang
  graphs decode only and launches prefill kernels from the host (fewer, fused ones);
* **CUDA-graph decode** — a decode batch is padded up to the next captured batch size
  (``cudagraph_capture_sizes`` in vLLM, ``cuda_graph_bs`` in SGLang); GEMMs, element-wise and
  all-reduce run at the padded size;
* **all-reduce** — NCCL tree (eager) vs a one-shot custom all-reduce (vLLM, SGLang) with a flat
  ~4.5 us latency up to 8 GPUs;
* **attention kernel family** — PyTorch SDPA (eager) vs FlashAttention-3 (vLLM) / FlashInfer
  (SGLang) whose prefill efficiency ramps with prompt length.

The numeric terms of an engine on a GPU are a :class:`~prfaas_gym.profiles.StepEfficiency` in
``perf/data/engines/<engine>.yaml`` (fitted by ``perf calibrate --engine vllm --aiconfigurator``);
``eager`` uses the hardware profile's own terms (calibrated on ../shared/calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from prfaas_gym.profiles import HardwareProfile, StepEfficiency
from prfaas_gym.profiles.loader import efficiency_from_dict
from prfaas_gym.safe_yaml import load_yaml

from .base import PerfInputError


def _vllm_capture_sizes(max_size: int = 512) -> tuple[int, ...]:
    # vllm/config/compilation.py (VllmConfig._set_cudagraph_sizes): [1, 2, 4] + range(8, 256, 8)
    # + range(256, max_cudagraph_capture_size + 1, 16), max_cudagraph_capture_size default 512
    return tuple([1, 2, 4] + list(range(8, 256, 8)) + list(range(256, max_size + 1, 16)))


def _sglang_capture_sizes(max_bs: int = 256) -> tuple[int, ...]:
    # python/sglang/srt/server_args.py (_generate_cuda_graph_batch_sizes, no speculative decoding):
    # [1, 2, 4, 8, 12] + range(16, 257, 8) + range(272, 512, 16) + range(512, max_bs + 1, 32),
    # capped at cuda_graph_max_bs (256 on an 80 GB Hopper), max_bs itself always included
    sizes = [1, 2, 4, 8, 12] + list(range(16, 257, 8)) + list(range(272, 512, 16)) + list(range(512, max_bs + 1, 32))
    out = sorted({s for s in sizes if s <= max_bs} | {max_bs})
    return tuple(out)


@dataclass(frozen=True, slots=True)
class EngineProfile:
    """How one serving engine executes a model step (structure; terms live in the YAML).

    Attributes:
        name: ``eager``, ``vllm`` or ``sglang``.
        fused_elementwise: fused add+RMSNorm, SiLU-and-mul and in-place rotary kernels
            (element-wise time = kernel floor + fused traffic) instead of eager PyTorch ops
            (max of the floor and the eager fp32 traffic).
        host_launch_floor: prefill is bounded by the host launching every layer's kernels.
        decode_graph_sizes: CUDA-graph batch sizes a decode batch is padded to (empty = none).
        custom_allreduce: one-shot custom all-reduce (flat latency) instead of NCCL.
        attention_kernel: attention kernel family (documentation; its terms carry the numbers).
        fused_moe: routed experts run as one fused grouped-GEMM kernel pair per layer
            (vLLM ``fused_experts``, SGLang ``fused_moe``) instead of one GEMM per expert.
        description: one line.
    """

    name: str
    fused_elementwise: bool
    host_launch_floor: bool
    decode_graph_sizes: tuple[int, ...]
    custom_allreduce: bool
    attention_kernel: str
    fused_moe: bool = False
    description: str = ""

    def padded_batch(self, batch: int) -> int:
        """Batch a decode step of ``batch`` sequences runs at (next captured size, else itself)."""
        for s in self.decode_graph_sizes:
            if s >= batch:
                return s
        return batch


ENGINES: dict[str, EngineProfile] = {
    "eager": EngineProfile("eager", False, True, (), False, "sdpa", False,
                           "PyTorch eager prefill, CUDA-graph decode, NCCL (../shared/calibration)"),
    "vllm": EngineProfile("vllm", True, False, _vllm_capture_sizes(), True, "fa3", True,
                          "vLLM V1: torch.compile + piecewise CUDA graphs, fused kernels, custom all-reduce, FA3"),
    "sglang": EngineProfile("sglang", True, True, _sglang_capture_sizes(), True, "flashinfer", True,
                            "SGLang: CUDA-graph decode, eager prefill with fused kernels, custom all-reduce"),
}
"""Known engine profiles."""

FALLBACK_GPU = "h100-sxm"
"""GPU whose fitted engine terms a GPU without its own entry reuses (like the eager profiles)."""

DEFAULT_ENGINE = "vllm"
"""Engine of a roofline step-time model when the scenario names none (a production engine)."""


def get_engine(name: str) -> EngineProfile:
    """The engine profile ``name``; :class:`PerfInputError` naming ``step_time.engine`` if unknown."""
    try:
        return ENGINES[name]
    except (KeyError, TypeError):
        raise PerfInputError(f"step_time.engine: unknown engine {name!r} (known: {', '.join(ENGINES)})") from None


@lru_cache(maxsize=None)
def _engine_terms(name: str) -> dict[str, Any]:
    path = resources.files("prfaas_gym.perf") / "data" / "engines" / f"{name}.yaml"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return load_yaml(text, f"perf/data/engines/{name}.yaml") or {}


def engine_efficiency(engine: str | EngineProfile, hardware: HardwareProfile) -> StepEfficiency:
    """The step-time terms of ``engine`` on ``hardware``.

    ``eager``: the hardware profile's own terms. Other engines: the packaged fitted terms for that
    GPU (``perf/data/engines/<engine>.yaml``, key = hardware name); a GPU without its own entry
    uses the ``h100-sxm`` entry (its own peaks and bandwidth still apply), and a
    profile may ``inherit`` another engine's terms and override some.
    """
    prof = engine if isinstance(engine, EngineProfile) else get_engine(engine)
    if prof.name == "eager":
        return hardware.efficiency
    return _terms_of(prof.name, hardware)


def _terms_of(name: str, hardware: HardwareProfile) -> StepEfficiency:
    doc = _engine_terms(name)
    source = f"perf/data/engines/{name}.yaml"
    base = _terms_of(doc["inherit"], hardware) if doc.get("inherit") else hardware.efficiency
    per_hw = doc.get("hardware") or {}
    own = per_hw.get(hardware.name) or per_hw.get(FALLBACK_GPU) or {}
    terms = {**own, **(doc.get("override") or {})}
    if not terms:
        return base
    merged = {**base.as_dict(), **terms}
    return efficiency_from_dict(merged, source)

