"""Fit an engine profile's terms to AIConfigurator's per-operator tables (``perf calibrate --aiconfigurator``).

Each group of terms is fitted on the table that measures it (least squares on log(pred/table)):

==============================  =========================================================  ============
terms                           data                                                       source
==============================  =========================================================  ============
GEMM: compute/memory eff.,      ``gemm_perf.csv`` at the (n, k) of every layer GEMM and    table
m_half, GEMM latency            LM head of the fit models, TP 1/2/4/8, m = 1..16384
attention eff., s_half,         ``context_attention_perf.csv`` (FA3, bf16 KV) and          table
attention latency               ``generation_attention_perf.csv`` at the models' heads
comm base/latency/efficiency    ``custom_allreduce_perf.csv`` (vLLM custom, graph), 2-8    table
fused-MoE terms                 ``moe_perf.csv`` (fp8, EP 2-8, DeepSeek-V3) under the      table
                                collector's routing (``perf/moe_routing.py``)
MLA latency and GEMM factor     ``mla_*_module_perf.csv`` (whole DeepSeek-V3 MLA blocks)    table
KDA latency/efficiency/chunk    ``kda_perf.csv`` (conv1d x 3 + FlashKDA; fused decode)      table
element-wise factor and floor   AIConfigurator's ``ElementWise``/``Embedding`` estimate    AIC estimate
==============================  =========================================================  ============
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from prfaas_gym.profiles import HardwareProfile, StepEfficiency, get_model

from .aic_tables import AicTables, aic_mem_op_ms
from .engines import engine_efficiency
from .roofline import RooflineModel

FIT_MODELS: tuple[str, ...] = ("llama3-3b", "llama3-8b", "qwen2.5-14b", "llama3-70b")
FIT_TP: tuple[int, ...] = (1, 2, 4, 8)
MOE_EP: tuple[int, ...] = (2, 4, 8)
GEMM_M: tuple[int, ...] = (1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)

GROUPS: dict[str, dict[str, tuple[float, float]]] = {
    "gemm": {"compute_efficiency": (0.3, 1.0), "memory_efficiency": (0.4, 1.0), "gemm_m_half": (0.0, 512.0),
             "gemm_latency_s": (0.0, 1e-4), "gemm_softmax_p": (1.5, 8.0)},
    "attention": {"attention_efficiency": (0.2, 1.0), "attention_s_half": (0.0, 16384.0),
                  "attention_latency_s": (0.0, 1e-4)},
    "comm": {"comm_base_s": (0.0, 1e-4), "comm_latency_s": (0.0, 1e-4), "comm_efficiency": (0.1, 1.0),
             "comm_large_efficiency": (0.1, 1.0)},
    "elementwise": {"elementwise_factor": (0.1, 5.0), "decode_layer_overhead_s": (0.0, 1e-4)},
    "moe": {"moe_compute_efficiency": (0.05, 1.0), "moe_factor": (0.1, 5.0), "moe_latency_s": (0.0, 1e-3),
            "moe_token_s": (0.0, 5e-6)},
    "mla": {"mla_latency_s": (0.0, 5e-4), "mla_gemm_factor": (0.3, 5.0)},
    "kda": {"linear_attention_latency_s": (0.0, 2e-3), "linear_attention_decode_latency_s": (0.0, 1e-3),
            "linear_attention_efficiency": (0.01, 1.0), "linear_attention_chunk_s": (0.0, 5e-5)},
}
"""Term groups fitted in order (later groups see the earlier groups' fitted values)."""


@dataclass(frozen=True, slots=True)
class GroupFit:
    """Fit quality of one term group on its table."""

    group: str
    n: int
    mape_pct: float
    max_abs_pct: float


def _fit(names: dict[str, tuple[float, float]], base: StepEfficiency,
         pred: Callable[[StepEfficiency], np.ndarray], target: np.ndarray,
         weights: np.ndarray | None = None) -> tuple[StepEfficiency, np.ndarray]:
    from scipy.optimize import least_squares  # heavy import kept local

    keys = list(names)
    lo = np.array([names[k][0] for k in keys])
    hi = np.array([names[k][1] for k in keys])
    scale = hi - lo
    w = np.ones_like(target) if weights is None else weights

    def eff_of(z: np.ndarray) -> StepEfficiency:
        x = lo + np.clip(z, 0.0, 1.0) * scale
        return dataclasses.replace(base, **{k: float(v) for k, v in zip(keys, x)})

    def resid(z: np.ndarray) -> np.ndarray:
        return w * np.log(np.maximum(pred(eff_of(z)), 1e-12) / target)

    z0 = np.clip((np.array([getattr(base, k) for k in keys], dtype=float) - lo) / scale, 0.02, 0.98)
    sol = least_squares(resid, z0, bounds=(0.0, 1.0), diff_step=1e-4, xtol=1e-10, ftol=1e-10, max_nfev=300)
    eff = eff_of(sol.x)
    return eff, pred(eff)


def _quality(group: str, pred: np.ndarray, target: np.ndarray) -> GroupFit:
    e = np.abs(pred / target - 1.0) * 100
    return GroupFit(group, len(e), float(e.mean()), float(e.max()))


def _gemm_shapes(models: Sequence[str]) -> list[tuple[float, float]]:
    """(n, k) of every weight GEMM (and LM head) of ``models`` at the fit TP degrees."""
    shapes = set()
    for name in models:
        m = get_model(name)
        for g in FIT_TP:
            (grp,) = m.layers
            a, f = grp.attention, grp.ffn
            h, hd = m.hidden_size, a.head_dim
            shapes |= {((a.num_heads + 2 * a.num_kv_heads) * hd / g, h), (h, a.num_heads * hd / g),
                       (2 * f.intermediate_size / g, h), (h, f.intermediate_size / g),
                       (min(m.vocab_size / g, 65536), h)}
    return sorted(shapes)


def fit_engine_terms(tables: AicTables, hardware: HardwareProfile, engine: str = "vllm",
                     models: Sequence[str] = FIT_MODELS) -> tuple[StepEfficiency, list[GroupFit]]:
    """Fit ``engine``'s terms on ``hardware`` to the tables; returns the terms and per-group fit quality."""
    eff = engine_efficiency(engine, hardware)
    report: list[GroupFit] = []
    dense = [get_model(n) for n in models]

    def rm_of(e: StepEfficiency, model=dense[0], g: int = 1) -> RooflineModel:
        return RooflineModel(model, hardware, g, e, engine=engine)

    # --- GEMM
    rows = [(m, k, n) for n, k in _gemm_shapes(models) for m in GEMM_M]
    target = np.array([tables.gemm(m, n, k) for m, k, n in rows])
    eff, pred = _fit(GROUPS["gemm"], eff, lambda e: np.array(
        [rm_of(e)._gemm_time(float(m), float(k), float(n), 2.0) * 1e3 for m, k, n in rows]), target)
    report.append(_quality("gemm", pred, target))

    # --- attention (context and generation at the fit models' per-GPU heads)
    att_cases = []
    for model in dense:
        a = model.layers[0].attention
        for g in FIT_TP:
            heads, kv = a.num_heads // g, max(a.num_kv_heads // g, 1)
            for b in (1, 4, 16):
                for isl in (128, 512, 1024, 2048, 4096, 8192, 16384):
                    if b * isl <= 32768:
                        att_cases.append((model, g, [(isl, 0)] * b, False, tables.attn.context(b, isl, heads, kv)))
            for b in (1, 8, 32, 128):
                for ctx in (512, 2048, 8192, 32768):
                    att_cases.append((model, g, [(1, ctx)] * b, True, tables.attn.generation(b, ctx, heads, kv)))
    target = np.array([c[4] for c in att_cases])

    def att_pred(e: StepEfficiency) -> np.ndarray:
        out = []
        for model, g, seqs, dec, _ in att_cases:
            rm = rm_of(e, model, g)
            out.append(rm._attention_time(model.layers[0], seqs, dec)[0] * 1e3)
        return np.array(out)
    eff, pred = _fit(GROUPS["attention"], eff, att_pred, target)
    report.append(_quality("attention", pred, target))

    # --- all-reduce (vLLM custom, CUDA-graph rows): the fit models' messages (1..16K tokens x hidden)
    hiddens = sorted({m.hidden_size for m in dense})
    comm_cases = [(g, float(tok * h)) for g in (2, 4, 8) for h in hiddens
                  for tok in (1, 8, 32, 128, 256, 512, 2048, 8192, 16384)]
    target = np.array([tables.comm(g, el, custom=True) for g, el in comm_cases])

    def comm_pred(e: StepEfficiency) -> np.ndarray:
        rms = {g: rm_of(e, dense[0], g) for g in (2, 4, 8)}
        return np.array([rms[g].allreduce_s(el * 2.0) * 1e3 for g, el in comm_cases])
    eff, pred = _fit(GROUPS["comm"], eff, comm_pred, target)
    report.append(_quality("allreduce", pred, target))

    # --- element-wise: AIConfigurator's estimate of one layer's add+norm x2 and activation
    ew_cases = []
    for model in dense:
        h, f = model.hidden_size, model.layers[0].ffn.intermediate_size
        for g in FIT_TP:
            for tok in (1, 16, 64, 256, 1024, 4096, 16384):
                ew_cases.append((model, g, tok, 2 * aic_mem_op_ms(tables.gpu, tok * 8 * h)
                                 + aic_mem_op_ms(tables.gpu, tok * 6 * f / g)))
    target = np.array([c[3] for c in ew_cases])

    def ew_pred(e: StepEfficiency) -> np.ndarray:
        out = []
        for model, g, tok, _ in ew_cases:
            rm = rm_of(e, model, g)
            out.append(rm._small_ops_time(float(tok)) / model.num_layers * 1e3)
        return np.array(out)
    eff, pred = _fit(GROUPS["elementwise"], eff, ew_pred, target)
    report.append(_quality("elementwise", pred, target))

    # --- fused MoE (DeepSeek-V3 shape, fp8, EP = GPUs)
    ds = get_model("deepseek-v3")
    f = ds.layers[-1].ffn
    moe_cases = []
    # expert parallel (EP 2-8: vLLM's FlashInfer CUTLASS fused MoE, the kernel of a DeepSeek-V3
    # deployment); the single-GPU Triton rows are another kernel and are not fitted
    for g in MOE_EP:
        key = (ds.hidden_size, f.expert_intermediate_size, f.active_experts, f.num_experts, g, "fp8_block")
        if tables.moe.has(key):
            for tok in (1, 4, 16, 64, 256, 1024, 2048, 4096, 8192, 16384):
                moe_cases.append((g, tok, tables.moe(key, tok)))
    if moe_cases:
        target = np.array([c[2] for c in moe_cases])
        moe_layers = sum(grp.count for grp in ds.layers if grp.ffn.kind == "moe")

        def moe_pred(e: StepEfficiency) -> np.ndarray:
            # the rows were measured with the collector's routing (perf/moe_routing.py)
            rms = {g: RooflineModel(ds, hardware, g, e, engine=engine, moe_routing="collector") for g in MOE_EP}
            return np.array([rms[g]._moe_time(float(tok)) / moe_layers * 1e3 for g, tok, _ in moe_cases])
        eff, pred = _fit(GROUPS["moe"], eff, moe_pred, target)
        report.append(_quality("moe", pred, target))

    # --- whole MLA attention blocks (DeepSeek-V3 dims, fp8 block GEMMs, heads per GPU = 128 / g)
    mla_grp = ds.layers[-1]
    mla_cases = []
    for g in (1, 2, 4, 8):
        heads = mla_grp.attention.num_heads // g
        for b, n in ((1, 1), (1, 128), (1, 512), (1, 2048), (1, 8192), (4, 2048)):
            mla_cases.append((g, [(n, 0)] * b, False, tables.mla.context("fp8_block", heads, b, n)))
        for b, c in ((1, 512), (8, 4096), (64, 4096), (256, 512), (32, 32768)):
            mla_cases.append((g, [(1, c)] * b, True, tables.mla.generation("fp8_block", heads, b, c)))
    target = np.array([c[3] for c in mla_cases])

    def mla_pred(e: StepEfficiency) -> np.ndarray:
        out = []
        for g, seqs, dec, _ in mla_cases:
            rm = rm_of(e, ds, g)
            tok = float(sum(n for n, _ in seqs))
            cached = float(sum(c for _, c in seqs)) if not dec else 0.0
            gem = sum(rm._gemm_s(tok + cached if gm.rows == "tokens+cached" else tok, gm.k, gm.n, gm.weight_bytes)
                      for gm in rm._attn_gemms(mla_grp.attention, ds.hidden_size, 1, ds.weight_bytes_per_param, g))
            out.append((gem * e.mla_gemm_factor + rm._attention_time(mla_grp, seqs, dec)[0]) * 1e3)
        return np.array(out)
    eff, pred = _fit(GROUPS["mla"], eff, mla_pred, target)
    report.append(_quality("mla", pred, target))

    # --- KDA kernels (Kimi-Linear heads per GPU; the table interpolates in heads)
    kl = get_model("kimi-linear-48b")
    kgrp = kl.layers[0]
    kda_cases = []
    # the table's own head counts (12-96 heads of 128) at one GPU, no interpolation
    for heads in tables.kda.heads:
        grp = dataclasses.replace(kgrp, attention=dataclasses.replace(kgrp.attention, num_heads=heads))
        for b in (1, 4, 16):
            for n in (128, 512, 1024, 2048, 4096, 8192, 16384):
                if b * n <= 65536:
                    kda_cases.append((grp, [(n, 0)] * b, False, tables.kda.context(heads, b, n)))
        for b in (1, 16, 64, 256):
            kda_cases.append((grp, [(1, 4096)] * b, True, tables.kda.generation(heads, b)))
    target = np.array([c[3] for c in kda_cases])

    def kda_pred(e: StepEfficiency) -> np.ndarray:
        rm = rm_of(e, kl, 1)
        return np.array([rm._attention_time(grp, seqs, dec)[0] * 1e3 for grp, seqs, dec, _ in kda_cases])
    eff, pred = _fit(GROUPS["kda"], eff, kda_pred, target)
    report.append(_quality("kda", pred, target))
    return eff, report
