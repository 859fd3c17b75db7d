"""Hardware (GPU) profile and the step-time efficiency terms that belong to a GPU."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True)
class StepEfficiency:
    """Calibrated efficiency terms of the roofline step-time model (see docs/step_time_model.md).

    They describe the GPU and its software stack, not a model: one calibration carries to
    every model shape on the same GPU.

    Attributes:
        compute_efficiency: fraction of peak dense FLOP/s reached by large GEMMs.
        attention_efficiency: fraction of peak FLOP/s reached by flash-attention kernels.
        memory_efficiency: fraction of HBM bandwidth reached by streaming reads/writes.
        gemm_m_half: GEMM rows at which the small-M utilisation factor M/(M+m_half) is 1/2.
        gemm_latency_s: fixed time of one GEMM kernel (launch + tail), added to its roofline.
        elementwise_factor: multiplier on the counted activation traffic of norms, rotary,
            activation functions and residual adds (1.0 = one unfused read+write each).
        step_overhead_s: fixed cost of one forward pass (launch, sampling, sync).
        layer_overhead_s: host (CPU) time to launch one layer's kernels in an eager prefill
            pass; a prefill step is never faster than the host can issue it.
        decode_layer_overhead_s: GPU time floor of one layer's small kernels (norms, rotary,
            activations) per step, in decode (graph-replayed) and prefill alike.
        comm_latency_s: latency of one all-reduce step (per log2 of the GPU count).
        comm_efficiency: fraction of the per-direction NVLink bandwidth collectives reach.
        comm_base_s: fixed time of one all-reduce kernel regardless of GPU count (vLLM's
            one-shot custom all-reduce; 0 for the NCCL tree of the eager profile).
        attention_s_half: prompt length at which a flash-attention prefill kernel reaches half
            of ``attention_efficiency`` (FA3 ramps with length; 0 = no ramp).
        attention_latency_s: fixed time of one attention kernel call (per layer and step).
        moe_factor: multiplier on the routed-expert time (eager: per-expert GEMMs; fused-MoE
            engines: on the expert weight bytes read).
        moe_compute_efficiency: fraction of peak FLOP/s of a fused-MoE kernel (fused engines).
        moe_latency_s: fixed time of one layer's fused-MoE kernels (fused engines).
        moe_token_s: time per token of the step and MoE layer, independent of the GPU count
            (routing/permutation of all tokens on every expert-parallel rank; fused engines).
        linear_attention_latency_s: fixed time of one layer's linear-attention prefill kernels
            (short convolution + chunked KDA/GDN kernel) per step.
        linear_attention_decode_latency_s: the same for a decode step (convolution update +
            recurrent state update).
        linear_attention_efficiency: fraction of bf16 peak reached by the chunked kernel
            (0 = ``attention_efficiency``).
        linear_attention_chunk_s: time of one step of the chunked scan (the serial walk over
            64-token chunks of one sequence and head) when few programs share the GPU.
        comm_large_efficiency: NVLink efficiency of the NCCL all-reduce a custom-all-reduce engine
            falls back to above its buffer (0 = ``comm_efficiency``).
        mla_latency_s: fixed time of one MLA attention block's small kernels (latent norms,
            rotary, cache write, activation quantisation) per layer and step.
        mla_gemm_factor: multiplier on the projections inside an MLA block (block-scaled fp8
            GEMMs on thin latent shapes run below the dense GEMM roofline).
        gemm_softmax_p: exponent of the soft maximum of a GEMM's compute and memory time
            (2 = the eager calibration; larger = sharper ridge, as cuBLAS/CUTLASS tiles overlap).
    """

    compute_efficiency: float = 0.75
    attention_efficiency: float = 0.55
    memory_efficiency: float = 0.85
    gemm_m_half: float = 16.0
    gemm_latency_s: float = 0.0
    elementwise_factor: float = 1.0
    step_overhead_s: float = 1.0e-3
    layer_overhead_s: float = 5.0e-5
    decode_layer_overhead_s: float = 1.0e-5
    comm_latency_s: float = 1.0e-5
    comm_efficiency: float = 0.7
    comm_base_s: float = 0.0
    attention_s_half: float = 0.0
    attention_latency_s: float = 0.0
    moe_factor: float = 1.0
    linear_attention_latency_s: float = 0.0
    linear_attention_decode_latency_s: float = 0.0
    linear_attention_efficiency: float = 0.0
    gemm_softmax_p: float = 2.0
    comm_large_efficiency: float = 0.0
    mla_latency_s: float = 0.0
    mla_gemm_factor: float = 1.0
    moe_compute_efficiency: float = 0.5
    moe_latency_s: float = 0.0
    moe_token_s: float = 0.0
    linear_attention_chunk_s: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"efficiency.{f.name}: must be a finite number >= 0, got {v!r}")
        for name in ("compute_efficiency", "attention_efficiency", "memory_efficiency", "comm_efficiency"):
            v = getattr(self, name)
            if not 0 < v <= 1.0:
                raise ValueError(f"efficiency.{name}: must be in (0, 1], got {v!r}")

    def as_dict(self) -> dict[str, float]:
        """The terms as a plain mapping (YAML order)."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """One GPU model, with node-level interconnect figures. SI units throughout.

    Attributes:
        name: profile id, e.g. ``"h100-sxm"``.
        peak_bf16_flops_s: dense (non-sparse) bf16 tensor-core FLOP/s per GPU.
        peak_fp8_flops_s: dense fp8 FLOP/s per GPU (equal to bf16 when fp8 is unsupported).
        hbm_bandwidth_bytes_s: HBM bandwidth per GPU, bytes/s.
        hbm_capacity_bytes: HBM capacity per GPU, bytes.
        nvlink_bandwidth_bytes_s: NVLink bandwidth per GPU, per direction, bytes/s.
        gpus_per_node: GPUs in one node (NVLink domain).
        rdma_bandwidth_bytes_s: scale-out RDMA bandwidth per node, bytes/s.
        price_per_gpu_hour_usd: rental price per GPU-hour.
        efficiency: calibrated step-time terms.
        description: free text.
    """

    name: str
    peak_bf16_flops_s: float
    peak_fp8_flops_s: float
    hbm_bandwidth_bytes_s: float
    hbm_capacity_bytes: float
    nvlink_bandwidth_bytes_s: float
    gpus_per_node: int
    rdma_bandwidth_bytes_s: float
    price_per_gpu_hour_usd: float
    efficiency: StepEfficiency = field(default_factory=StepEfficiency)
    description: str = ""

    def __post_init__(self) -> None:
        for name in ("peak_bf16_flops_s", "peak_fp8_flops_s", "hbm_bandwidth_bytes_s",
                     "hbm_capacity_bytes", "nvlink_bandwidth_bytes_s", "rdma_bandwidth_bytes_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ValueError(f"hardware {self.name!r}: {name} must be positive, got {v!r}")
        if not (isinstance(self.gpus_per_node, int) and self.gpus_per_node >= 1):
            raise ValueError(f"hardware {self.name!r}: gpus_per_node must be an integer >= 1")
        if not (math.isfinite(self.price_per_gpu_hour_usd) and self.price_per_gpu_hour_usd >= 0):
            raise ValueError(f"hardware {self.name!r}: price_per_gpu_hour_usd must be >= 0")

    @property
    def peak_flops_s(self) -> float:
        """Dense bf16 peak, the default compute ceiling."""
        return self.peak_bf16_flops_s

    def peak_flops_for(self, bytes_per_param: float) -> float:
        """Peak FLOP/s for GEMMs whose weights have ``bytes_per_param`` (fp8 path when <= 1)."""
        return self.peak_fp8_flops_s if bytes_per_param <= 1.0 else self.peak_bf16_flops_s
