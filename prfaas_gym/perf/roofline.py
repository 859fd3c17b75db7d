"""Roofline step-time model: FLOPs and bytes per layer kind, plus calibrated GPU efficiency terms.

The equations are in docs/step_time_model.md. In short, one step is the sum over operators of a
soft roofline ``((F / (P*eta_c*s(M)))**p + (B / (W*eta_m))**p)**(1/p)`` for GEMMs,
``max(F / (P*eta_a), B / (W*eta_m))`` for attention kernels, activation traffic of the
element-wise operators, tensor/expert-parallel collectives over NVLink, and fixed per-step and
per-layer overheads. Every term is per GPU; an instance of ``g`` GPUs shards weights, heads,
FFN width and experts ``g`` ways.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from prfaas_gym.profiles import HardwareProfile, ModelProfile, StepEfficiency
from prfaas_gym.profiles.model import AttentionSpec, LayerGroup

from .engines import DEFAULT_ENGINE, EngineProfile, engine_efficiency, get_engine
from .moe_routing import MOE_ROUTINGS, rank_load

ACT_BYTES = 2.0
"""Activation precision (bf16) for activation traffic."""

LINEAR_CHUNK = 64
"""Chunk length of chunked linear-attention (KDA/GDN) prefill kernels."""

EW_BYTES_HIDDEN = 84.0
"""Element-wise HBM bytes per token per layer per hidden element: two eager RMSNorms computed in
fp32 (cast, square, mean, scale, cast back, weight: 36 bytes each) and two residual adds (6 each)."""

EW_BYTES_ROTARY = 20.0
"""Bytes per token per rotated query/key element (rotate-half rotary: cos/sin products, negated
half, concatenation, sum), applied to q and k (not v)."""

EW_BYTES_FFN = 10.0
"""Bytes per token per (sharded) FFN element of the gated activation: SiLU (read+write) and the
product with the up projection (two reads, one write)."""

CUSTOM_AR_MAX_BYTES = 8 * 1024 * 1024
"""vLLM's custom all-reduce buffer (``CustomAllreduce(max_size=8192 * 1024)``); larger -> NCCL."""

FUSED_BYTES_HIDDEN = 16.0
"""Fused engines (vLLM/SGLang ``fused_add_rms_norm``): two kernels per layer, each reading the
hidden state and the residual and writing both back in bf16 (8 bytes per hidden element)."""

FUSED_BYTES_ROTARY = 4.0
"""In-place rotary kernel (``rotary_embedding``): read + write of each q/k element in bf16."""

FUSED_BYTES_FFN = 6.0
"""``silu_and_mul``: reads gate and up (4 bytes), writes the product (2) per FFN element."""


@dataclass(frozen=True, slots=True)
class Work:
    """Total FLOPs and HBM bytes of one step, per GPU (for ceilings and reports)."""

    flops: float
    bytes: float


@dataclass(frozen=True, slots=True)
class _Gemm:
    """A weight GEMM ``[M, k] x [k, n]`` repeated ``count`` times per step (per GPU shard)."""

    k: float
    n: float
    count: float
    weight_bytes: float  # bytes per weight element
    rows: str = "tokens"  # "tokens" | "tokens+cached" (MLA up-projection in prefill)
    mla: bool = False  # a projection inside an MLA attention block


def _window_pairs(n: int, c: int, w: int) -> float:
    """Sum over the ``n`` new query positions of the attended keys, with window ``w``."""
    # position i (1..n) attends min(w, c + i) keys
    full_until = max(0, min(n, w - c))  # positions where c + i <= w
    pairs = full_until * c + full_until * (full_until + 1) / 2.0
    return pairs + (n - full_until) * w


class RooflineModel:
    """Roofline step-time model of one instance (``gpus`` GPUs, TP for attention/dense, EP for experts).

    Args:
        model: architecture.
        hardware: GPU profile (its ``efficiency`` terms are used unless ``efficiency`` is given).
        gpus: GPUs per instance.
        efficiency: override of the efficiency terms (calibration uses this).
        engine: engine profile name or object (:mod:`prfaas_gym.perf.engines`); its terms are
            used unless ``efficiency`` is given.
        moe_routing: how tokens spread over routed experts (:data:`MOE_ROUTINGS`).
    """

    def __init__(self, model: ModelProfile, hardware: HardwareProfile, gpus: int = 1,
                 efficiency: StepEfficiency | None = None, engine: str | EngineProfile = DEFAULT_ENGINE,
                 moe_routing: str = "uniform") -> None:
        if gpus < 1:
            raise ValueError(f"gpus_per_instance: must be >= 1, got {gpus}")
        if moe_routing not in MOE_ROUTINGS:
            raise ValueError(f"moe_routing: expected one of {', '.join(MOE_ROUTINGS)}, got {moe_routing!r}")
        self.moe_routing = moe_routing
        self.model = model
        self.hardware = hardware
        self.gpus = gpus
        self.engine = engine if isinstance(engine, EngineProfile) else get_engine(engine)
        self.eff = efficiency or engine_efficiency(self.engine, hardware)
        e = self.eff
        self._p_peak = hardware.peak_flops_for(model.weight_bytes_per_param)
        self._p_gemm = self._p_peak * e.compute_efficiency
        self._p_attn_peak = hardware.peak_bf16_flops_s
        self._p_attn = hardware.peak_bf16_flops_s * e.attention_efficiency
        self._bw = hardware.hbm_bandwidth_bytes_s * e.memory_efficiency
        self._link_peak = hardware.nvlink_bandwidth_bytes_s
        self._link = hardware.nvlink_bandwidth_bytes_s * e.comm_efficiency
        self._build()
        self._install_caches()

    _CACHES = ("_prefill_cached", "_gemm_s", "_decode_cached")

    def _install_caches(self) -> None:
        self._prefill_cached = functools.lru_cache(maxsize=1 << 16)(self._prefill)
        self._gemm_s = functools.lru_cache(maxsize=1 << 14)(self._gemm_time)
        self._decode_cached = functools.lru_cache(maxsize=1 << 16)(self._decode)

    def __getstate__(self) -> dict:
        # memo tables are per-object closures: drop them (a simulator pickles mid-run)
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHES}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._install_caches()

    def prefill_s(self, seqs: Sequence[tuple[int, int]]) -> float:
        """Seconds for one batched prefill step over ``(new_tokens, cached_tokens)`` pairs (memoised)."""
        key = seqs if type(seqs) is tuple else tuple(map(tuple, seqs))
        try:
            return self._prefill_cached(key)
        except TypeError:  # inner lists
            return self._prefill_cached(tuple(map(tuple, seqs)))

    def decode_s(self, batch: int, context_tokens: int) -> float:
        """Seconds for one decode step of ``batch`` sequences with ``context_tokens`` KV in total (memoised)."""
        return self._decode_cached(batch, context_tokens)

    # ------------------------------------------------------------------ structure
    def _build(self) -> None:
        m, g = self.model, self.gpus
        h = m.hidden_size
        wb = m.weight_bytes_per_param
        dense: list[_Gemm] = []
        self._moe: list[tuple[int, int, int, float, int, int]] = []  # count, E, k, fe, groups, topk groups
        self._elementwise_per_token = 0.0
        ew_groups: list[tuple[int, float]] = []  # (layers, element-wise bytes per token per layer)
        for grp in m.layers:
            a, f, c = grp.attention, grp.ffn, grp.count
            dense.extend(self._attn_gemms(a, h, c, wb, g))
            if f.kind == "dense":
                dense.append(_Gemm(h, (f.matrices - 1) * f.intermediate_size / g, c, wb))
                dense.append(_Gemm(f.intermediate_size / g, h, c, wb))
                f_act = f.intermediate_size / g
            else:
                dense.append(_Gemm(h, f.num_experts, c, wb))  # router (replicated)
                if f.shared_experts:
                    fs = f.shared_experts * f.expert_intermediate_size / g
                    dense.append(_Gemm(h, (f.matrices - 1) * fs, c, wb))
                    dense.append(_Gemm(fs, h, c, wb))
                self._moe.append((c, f.num_experts, f.active_experts, f.expert_intermediate_size * f.matrices,
                                  f.expert_groups, f.topk_groups))
                # a fused-MoE engine applies the routed experts' activation inside its MoE kernels
                # (fitted with them); only the shared experts' runs as an element-wise kernel
                routed = 0 if self.engine.fused_moe else f.active_experts
                f_act = (routed + f.shared_experts) * f.expert_intermediate_size / g
            rq, rk = a.rotary_dims
            # MLA's single rope key is replicated on every GPU; GQA keys are split with their heads
            rotary = rq / g + (rk if a.kind == "mla" else rk / g)
            if self.engine.fused_elementwise:
                per_layer = FUSED_BYTES_HIDDEN * h + FUSED_BYTES_ROTARY * rotary + FUSED_BYTES_FFN * f_act
            else:
                per_layer = EW_BYTES_HIDDEN * h + EW_BYTES_ROTARY * rotary + EW_BYTES_FFN * f_act
            ew_groups.append((c, per_layer))
            self._elementwise_per_token += c * per_layer
        self._ew_groups = tuple(ew_groups)
        self._dense = tuple(dense)
        self._lm_head = _Gemm(h, m.vocab_size / g, 1, wb)
        self._layers = m.num_layers

    @staticmethod
    def _attn_gemms(a: AttentionSpec, h: int, c: int, wb: float, g: int) -> list[_Gemm]:
        if a.kind in ("mha", "gqa", "swa"):
            qkv = (a.num_heads + 2 * a.num_kv_heads) * a.head_dim
            return [_Gemm(h, qkv / g, c, wb), _Gemm(a.num_heads * a.head_dim / g, h, c, wb)]
        if a.kind == "mla":
            out = []
            if a.q_lora_rank:
                out += [_Gemm(h, a.q_lora_rank, c, wb), _Gemm(a.q_lora_rank, a.num_heads * a.qk_head_dim / g, c, wb)]
            else:
                out.append(_Gemm(h, a.num_heads * a.qk_head_dim / g, c, wb))
            out.append(_Gemm(h, a.kv_lora_rank + a.qk_rope_head_dim, c, wb))
            out.append(_Gemm(a.kv_lora_rank, a.num_heads * (a.qk_nope_head_dim + a.v_head_dim) / g, c, wb,
                             rows="tokens+cached"))
            out.append(_Gemm(a.num_heads * a.v_head_dim / g, h, c, wb))
            return [dataclasses.replace(gm, mla=True) for gm in out]
        # linear attention: q, k, v, output gate, low-rank decay gate, output projection
        n, hd, vd = a.num_heads, a.head_dim, a.v_head_dim
        return [_Gemm(h, n * (2 * hd + 2 * vd) / g, c, wb), _Gemm(h, hd + n, c, wb),
                _Gemm(hd, n * hd / g, c, wb), _Gemm(n * vd / g, h, c, wb)]

    # ------------------------------------------------------------------ primitives
    def _gemm_time(self, m_rows: float, k: float, n: float, wb: float) -> float:
        """Seconds for one ``[m_rows, k] x [k, n]`` GEMM on one GPU."""
        if m_rows <= 0:
            return 0.0
        e = self.eff
        flops = 2.0 * m_rows * k * n
        small_m = m_rows / (m_rows + e.gemm_m_half)
        tc = flops / (self._p_gemm * small_m)
        tm = (m_rows * (k + n) * ACT_BYTES + k * n * wb) / self._bw
        p = e.gemm_softmax_p
        return (tc**p + tm**p) ** (1.0 / p) + e.gemm_latency_s

    def gemm_s(self, m_rows: float, k: float, n: float, weight_bytes: float | None = None) -> float:
        """Seconds for one ``[m_rows, k] x [k, n]`` GEMM on one GPU of this instance (memoised)."""
        wb = self.model.weight_bytes_per_param if weight_bytes is None else weight_bytes
        return self._gemm_s(float(m_rows), float(k), float(n), float(wb))

    def attention_s(self, seqs: Sequence[tuple[int, int]], *, decode: bool = False) -> float:
        """Seconds of the attention cores alone (all layers) for ``(new, cached)`` sequences."""
        seqs = [(int(n), int(c)) for n, c in seqs]
        return sum(g.count * self._attention_time(g, seqs, decode)[0] for g in self.model.layers)

    def _dense_time(self, tokens: float, rows_cached: float) -> float:
        t = 0.0
        mla_scale = self.eff.mla_gemm_factor
        for gm in self._dense:
            rows = tokens + rows_cached if gm.rows == "tokens+cached" else tokens
            t += gm.count * self._gemm_s(rows, gm.k, gm.n, gm.weight_bytes) * (mla_scale if gm.mla else 1.0)
        return t

    def _moe_time(self, tokens: float) -> float:
        t = 0.0
        wb = self.model.weight_bytes_per_param
        h = self.model.hidden_size
        for count, e_all, k, fe_total, groups, tgroups in self._moe:
            # (token, expert) pairs this GPU computes, and distinct experts whose weights it reads
            assignments, touched = rank_load(self.moe_routing, tokens, e_all, k, self.gpus, groups, tgroups)
            if touched <= 0:
                continue
            if self.engine.fused_moe:
                t += count * (self._fused_moe_s(assignments, touched, h * fe_total, wb)
                              + self.eff.moe_token_s * tokens)
                continue
            rows = assignments / touched
            # fe_total = matrices * width; gate/up as one [h, (m-1)*w] GEMM and down [w, h]
            width = fe_total / 3.0
            per = self._gemm_s(rows, h, fe_total - width, wb) + self._gemm_s(rows, width, h, wb)
            t += count * touched * per * self.eff.moe_factor
        return t

    def _fused_moe_s(self, assignments: float, touched: float, params_per_expert: float, wb: float) -> float:
        """One fused-MoE kernel pair (vLLM ``fused_experts``: grouped GEMMs over all local experts):
        the expert FLOPs at ``moe_compute_efficiency`` of peak *plus* the touched experts' weight
        bytes (x ``moe_factor``), plus ``moe_latency_s``. The two add rather than overlap: in
        AIConfigurator's fused-MoE rows the time per (token, expert) pair is the same (163-172 ns,
        DeepSeek-V3 shape, H100) from EP 8 to EP 256 while the weights read vary 32-fold, and the
        excess of EP 2 / EP 4 is their extra experts' weight-read time. (The caller adds
        ``moe_token_s`` per token of the step.)"""
        e = self.eff
        tc = 2.0 * assignments * params_per_expert / (self._p_peak * e.moe_compute_efficiency)
        tm = (touched * params_per_expert * wb * e.moe_factor + assignments * 4.0 * self.model.hidden_size) / self._bw
        return tc + tm + e.moe_latency_s

    def _comm_time(self, tokens: float) -> float:
        g = self.gpus
        if g <= 1 or tokens <= 0:
            return 0.0
        return 2.0 * self._layers * self.allreduce_s(tokens * self.model.hidden_size * ACT_BYTES)

    def allreduce_s(self, nbytes: float) -> float:
        """Seconds of one all-reduce of ``nbytes`` over this instance's GPUs."""
        g = self.gpus
        if g <= 1 or nbytes <= 0:
            return 0.0
        e = self.eff
        if self.engine.custom_allreduce:
            # vLLM csrc/custom_all_reduce.cuh (CustomAllreduce::allreduce): one-shot (every rank reads
            # all g-1 peers' buffers) at 2 GPUs or below 512 KB (<= 4 GPUs) / 256 KB (8 GPUs), else
            # two-shot (reduce-scatter + all-gather: 2(g-1)/g of the buffer); above its 8 MiB buffer
            # (custom_all_reduce.py max_size) vLLM hands the all-reduce to NCCL
            if nbytes > CUSTOM_AR_MAX_BYTES:  # NCCL: flat algorithm bandwidth (NVLS/ring on NVSwitch)
                eff = e.comm_large_efficiency or e.comm_efficiency
                return e.comm_base_s + e.comm_latency_s * math.log2(g) + nbytes / (self._link_peak * eff)
            one_shot = g == 2 or (g <= 4 and nbytes < 512 * 1024) or nbytes < 256 * 1024
            traffic = (g - 1) * nbytes if one_shot else 2.0 * (g - 1) / g * nbytes
            return e.comm_base_s + e.comm_latency_s * math.log2(g) + traffic / self._link
        # NCCL tree: latency grows with the log2(g) steps; the measured NCCL algorithm bandwidth
        # (aiconfigurator H100 table, 2-8 GPUs) is flat in g, so no 2(g-1)/g factor
        return e.comm_base_s + e.comm_latency_s * math.log2(g) + nbytes / self._link

    def _small_ops_time(self, tokens: float) -> float:
        """Element-wise kernels of all layers. Eager: per layer, the larger of their fixed kernel
        time (``decode_layer_overhead_s``, ~40 small kernels) and their activation traffic. Fused
        engines: the fixed time of their 4 kernels plus the fused traffic."""
        e = self.eff
        floor = e.decode_layer_overhead_s
        scale = e.elementwise_factor * tokens / self._bw
        if self.engine.fused_elementwise:
            return sum(c * (floor + scale * per_layer) for c, per_layer in self._ew_groups)
        return sum(c * max(floor, scale * per_layer) for c, per_layer in self._ew_groups)

    def _attention_time(self, grp: LayerGroup, seqs: Sequence[tuple[int, int]], decode: bool) -> tuple[float, float, float]:
        """(seconds, flops, bytes) of the attention core of one layer of ``grp`` over ``seqs``."""
        a = grp.attention
        g = self.gpus
        kvb = self.model.kv_elem_bytes
        heads = a.num_heads / g
        e = self.eff
        if a.kind == "linear":
            return self._linear_attention_time(a, seqs, decode)
        ramp = 0.0  # extra compute time of short prompts: FA-class kernels ramp with length
        pairs = 0.0
        kv_read = 0.0
        new = 0.0
        for n, c in seqs:
            if a.kind == "swa":
                p_i = _window_pairs(n, c, a.window_tokens)
                kv_read += min(c, a.window_tokens)
            else:
                p_i = n * c + n * (n + 1) / 2.0
                kv_read += c
            pairs += p_i
            new += n
            if e.attention_s_half and not decode:
                ramp += p_i * e.attention_s_half / max(n + c, 1)
        if a.kind == "mla":
            if decode:  # weight-absorbed: scores and values in the latent space
                flops = pairs * heads * 2.0 * (2 * a.kv_lora_rank + a.qk_rope_head_dim)
            else:
                flops = pairs * heads * 2.0 * (a.qk_head_dim + a.v_head_dim)
            kv_tok = (a.kv_lora_rank + a.qk_rope_head_dim) * kvb
        else:
            flops = pairs * heads * 2.0 * (a.head_dim + a.v_head_dim)
            kv_tok = 2.0 * a.num_kv_heads / g * a.head_dim * kvb
        byt = (kv_read + new) * kv_tok + new * 2.0 * heads * a.qk_head_dim * ACT_BYTES
        flop_per_pair = flops / pairs if pairs else 0.0
        tc = (flops + ramp * flop_per_pair) / self._p_attn
        lat = e.attention_latency_s + (e.mla_latency_s if a.kind == "mla" else 0.0)
        return max(tc, byt / self._bw) + lat, flops, byt

    def _linear_attention_time(self, a: AttentionSpec, seqs: Sequence[tuple[int, int]],
                               decode: bool) -> tuple[float, float, float]:
        """(seconds, flops, bytes) of one linear-attention (KDA/GDN) layer's kernels.

        Decode: the recurrent update reads and writes every sequence's state (roofline + latency).
        Prefill follows the chunked kernels (vLLM's FlashKDA / chunk_kda): one program per
        (sequence, head) walks its sequence's 64-token chunks in order, carrying the state. A
        chunk step costs the larger of the serial per-chunk time (``linear_attention_chunk_s``)
        and the GPU's share of all running programs' chunk FLOPs, plus their HBM traffic; the
        step count is the longest sequence's chunks. The short convolutions (q, k and v) add
        their activation traffic, and ``linear_attention_latency_s`` the per-layer fixed time
        (vLLM's prefill ``causal_conv1d_fn`` does a host-side metadata transfer per call).
        """
        e = self.eff
        heads = a.num_heads / self.gpus
        kvb, sb = self.model.kv_elem_bytes, self.model.state_elem_bytes
        state = a.state_bytes(kvb, sb) / self.gpus
        p_lin = self._p_attn_peak * (e.linear_attention_efficiency or e.attention_efficiency)
        io_per_tok = heads * (2 * a.head_dim + 2 * a.v_head_dim) * ACT_BYTES  # q, k, gate in; o out
        n_tok = sum(n for n, _ in seqs)
        if decode:
            flops = n_tok * heads * 4.0 * a.head_dim * a.v_head_dim
            byt = len(seqs) * 2.0 * state + n_tok * io_per_tok
            return max(flops / p_lin, byt / self._bw) + e.linear_attention_decode_latency_s, flops, byt
        per_tok = heads * (4.0 * a.head_dim * a.v_head_dim + 2.0 * LINEAR_CHUNK * (a.head_dim + a.v_head_dim))
        chunks = [math.ceil(n / LINEAR_CHUNK) for n, _ in seqs]
        steps = max(chunks)
        programs = heads * sum(chunks) / steps  # (sequence, head) programs running per chunk step
        chunk_flops = per_tok / heads * LINEAR_CHUNK
        chunk_bytes = (io_per_tok / heads + 2.0 * a.v_head_dim * ACT_BYTES) * LINEAR_CHUNK
        step = max(e.linear_attention_chunk_s, programs * chunk_flops / p_lin) + programs * chunk_bytes / self._bw
        conv = n_tok * heads * (2 * a.head_dim + a.v_head_dim) * 2.0 * ACT_BYTES  # read + write q, k, v
        flops = n_tok * per_tok
        byt = len(seqs) * 2.0 * state + n_tok * io_per_tok + conv
        return steps * step + conv / self._bw + e.linear_attention_latency_s, flops, byt

    # ------------------------------------------------------------------ steps
    def _prefill(self, seqs: tuple[tuple[int, int], ...]) -> float:
        seqs = tuple((int(n), int(c)) for n, c in seqs if n > 0)
        if not seqs:
            return 0.0
        e = self.eff
        tokens = float(sum(n for n, _ in seqs))
        cached = float(sum(c for _, c in seqs))
        t = e.step_overhead_s + self._small_ops_time(tokens)
        t += self._dense_time(tokens, cached) + self._moe_time(tokens)
        t += self._gemm_s(float(len(seqs)), self._lm_head.k, self._lm_head.n, self._lm_head.weight_bytes)
        for grp in self.model.layers:
            t += grp.count * self._attention_time(grp, seqs, decode=False)[0]
        t += self._comm_time(tokens)
        # eager prefill: the host issues every kernel (layer_overhead_s per layer); when that is
        # slower than the GPU, the step is the launch time plus the GPU time of the last layer
        if not self.engine.host_launch_floor:
            return t
        host = e.step_overhead_s + self._layers * e.layer_overhead_s
        return max(t, host + t / self._layers)

    def _decode(self, batch: int, context_tokens: int) -> float:
        if batch <= 0:
            return 0.0
        e = self.eff
        b = int(batch)
        per_seq, rem = divmod(int(context_tokens), b)
        seqs = [(1, per_seq + 1)] * rem + [(1, per_seq)] * (b - rem)
        # a CUDA-graph engine replays the graph of the next captured batch size: every operator but
        # attention (which reads only the real sequences' KV) runs on the padded rows
        bp = float(self.engine.padded_batch(b))
        t = e.step_overhead_s + self._small_ops_time(bp)
        t += self._dense_time(bp, 0.0) + self._moe_time(float(b))
        t += self._gemm_s(bp, self._lm_head.k, self._lm_head.n, self._lm_head.weight_bytes)
        for grp in self.model.layers:
            t += grp.count * self._attention_time(grp, seqs, decode=True)[0]
        t += self._comm_time(bp)
        return t

    # ------------------------------------------------------------------ reporting
    def work(self, seqs: Sequence[tuple[int, int]] | None = None, *, batch: int = 0,
             context_tokens: int = 0) -> Work:
        """Ideal FLOPs and HBM bytes per GPU of a prefill (``seqs``) or decode step (no efficiencies)."""
        m = self.model
        if seqs is not None:
            seqs = [(int(n), int(c)) for n, c in seqs if n > 0]
            tokens, cached, lm_rows, decode = float(sum(n for n, _ in seqs)), float(sum(c for _, c in seqs)), float(len(seqs)), False
        else:
            b = int(batch)
            per, rem = divmod(int(context_tokens), max(b, 1))
            seqs = [(1, per + 1)] * rem + [(1, per)] * (b - rem)
            tokens, cached, lm_rows, decode = float(b), 0.0, float(b), True
        flops = byt = 0.0
        for gm in self._dense:
            rows = tokens + cached if gm.rows == "tokens+cached" else tokens
            flops += gm.count * 2 * rows * gm.k * gm.n
            byt += gm.count * (gm.k * gm.n * gm.weight_bytes + rows * (gm.k + gm.n) * ACT_BYTES)
        for count, e_all, k, fe_total, groups, tgroups in self._moe:
            assignments, touched = rank_load(self.moe_routing, tokens, e_all, k, self.gpus, groups, tgroups)
            flops += count * 2 * assignments * m.hidden_size * fe_total
            byt += count * touched * m.hidden_size * fe_total * m.weight_bytes_per_param
        lm = self._lm_head
        flops += 2 * lm_rows * lm.k * lm.n
        byt += lm.k * lm.n * lm.weight_bytes
        for grp in m.layers:
            _, f, b_ = self._attention_time(grp, seqs, decode)
            flops += grp.count * f
            byt += grp.count * b_
        return Work(flops=flops, bytes=byt)
