"""Readers of AIConfigurator's per-operator database (vLLM 0.24 tables) and the database's step sums.

The tables are those of NVIDIA AIConfigurator (``aic-core/src/aiconfigurator_core/systems/data/
<gpu>/...``), converted to CSV under ``../shared/data/aiconfigurator/<gpu>/`` (latencies in ms per
call on one GPU). :func:`database_step` sums them the way AIConfigurator's vLLM model does
(``sdk/models/llama.py`` / ``deepseek.py`` op lists): per-layer GEMMs, attention kernels, the vLLM
custom all-reduce (CUDA-graph rows, 2 per layer), fused MoE, whole MLA modules, KDA kernels, and
for what the tables have no entry for (element-wise kernels, the embedding gather) AIConfigurator's
own analytic estimate, :func:`aic_mem_op_ms`.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from prfaas_gym.profiles import ModelProfile
from prfaas_gym.profiles.model import AttentionSpec

from .base import PerfInputError

AIC_GPU = {"h100-sxm": "h100_sxm", "h200-sxm": "h200_sxm"}
"""Our hardware profile name -> AIConfigurator system name."""

AIC_MEM = {"h100_sxm": 3.35e12, "h200_sxm": 4.8e12}
"""``gpu.mem_bw`` of AIConfigurator's system files (``systems/<gpu>.yaml``)."""
AIC_MEM_SCALE = 0.8
"""``mem_bw_empirical_scaling_factor`` (same file)."""
AIC_MEM_LATENCY_S = 3e-6
"""``mem_empirical_constant_latency`` (same file)."""

CLASSES = ("gemm", "attention", "elementwise", "allreduce", "moe", "mla", "kda")
"""Operator classes of a step, in report order."""


def aic_mem_op_ms(gpu: str, nbytes: float) -> float:
    """AIConfigurator's analytic memory-op time (ms): ``bytes / (0.8 mem_bw) + 3 us``.

    This is what its ``ElementWise`` and ``Embedding`` ops return (``query_mem_op``); checked
    against the package in tests/perf/test_engines.py when ``aiconfigurator`` is installed.
    """
    return (nbytes / (AIC_MEM[gpu] * AIC_MEM_SCALE) + AIC_MEM_LATENCY_S) * 1e3


def aic_estimate_source(gpu: str = "h100_sxm") -> str:
    """Which implementation gives the element-wise/embedding estimates (for reports).

    With the ``aiconfigurator`` package installed, its own ``ElementWise`` op is evaluated at a
    few sizes and must agree with :func:`aic_mem_op_ms` (else :class:`PerfInputError`).
    """
    try:
        import aiconfigurator_core.sdk.operations as ops
        from aiconfigurator_core.sdk import perf_database as pdb
    except ImportError:
        return "AIConfigurator's mem-op formula (aiconfigurator package not installed)"
    db = pdb.get_database(gpu, "vllm", "0.24.0", database_mode="EMPIRICAL", allow_missing_data=True)
    h = 4096
    op = ops.ElementWise("add_norm", 1, 2 * h, 2 * h, 0.8)
    for x in (1, 2048, 8192):
        theirs = float(op._engine_query(db, x=x))  # the op's single-query path (private API, 0.12.0)
        ours = aic_mem_op_ms(gpu, x * 4 * h * 2)
        if abs(ours / theirs - 1.0) > 1e-3:
            raise PerfInputError(f"aiconfigurator:0: ElementWise at {x} tokens gives {theirs:.5f} ms, "
                                 f"the replica {ours:.5f} ms")
    return f"AIConfigurator's mem-op formula, equal to the installed aiconfigurator package's ElementWise on {gpu}"


def _interp_log(xs: list[float], ys: list[float], x: float) -> float:
    """Piecewise log-log interpolation (linear-in-log extrapolation at the ends)."""
    if len(xs) == 1:
        return ys[0] * x / xs[0]
    x = max(x, 1e-9)
    i = min(max(bisect.bisect_left(xs, x), 1), len(xs) - 1)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    f = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return math.exp(math.log(y0) + f * (math.log(y1) - math.log(y0)))


def _bracket(grid: list[float], x: float) -> tuple[float, float, float]:
    """Neighbours of ``x`` in ``grid`` and the linear weight of the upper one (clamped)."""
    if x >= grid[-1]:
        return grid[-1], grid[-1], 0.0
    if x <= grid[0]:
        return grid[0], grid[0], 0.0
    i = bisect.bisect_left(grid, x)
    if grid[i] == x:
        return grid[i], grid[i], 0.0
    return grid[i - 1], grid[i], (x - grid[i - 1]) / (grid[i] - grid[i - 1])


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except OSError as exc:
        raise PerfInputError(f"{path}:0: cannot read: {exc.strerror}") from None


class GemmTable:
    """bf16 GEMM latencies (ms) for (m, n, k); bilinear in n, k, log-log in m."""

    def __init__(self, path: Path) -> None:
        self.t: dict[tuple[int, int, int], float] = {}
        for r in _rows(path):
            if r["gemm_dtype"] == "bfloat16":
                self.t[(int(r["m"]), int(r["n"]), int(r["k"]))] = float(r["latency"])
        self.ms = sorted({m for m, _, _ in self.t})
        self.ns = sorted({n for _, n, _ in self.t})
        self.ks = sorted({k for _, _, k in self.t})

    def _at_m(self, m: int, n: float, k: float) -> float:
        scale = 1.0
        if n > self.ns[-1]:  # split a wider-than-table GEMM (LM head) into table-width pieces
            scale, n = n / self.ns[-1], self.ns[-1]
        if n < self.ns[0]:
            scale, n = n / self.ns[0], self.ns[0]
        n0, n1, fn = _bracket(self.ns, n)
        k0, k1, fk = _bracket(self.ks, k)
        v = 0.0
        for nn, wn in ((n0, 1 - fn), (n1, fn)):
            for kk, wk in ((k0, 1 - fk), (k1, fk)):
                if wn * wk:
                    v += wn * wk * self.t[(m, int(nn), int(kk))]
        return v * scale

    def __call__(self, m: float, n: float, k: float) -> float:
        if m <= 0:
            return 0.0
        ms = self.ms
        if int(m) == m and int(m) in ms:
            return self._at_m(int(m), n, k)
        i = min(max(bisect.bisect_left(ms, m), 1), len(ms) - 1)
        return _interp_log([ms[i - 1], ms[i]], [self._at_m(ms[i - 1], n, k), self._at_m(ms[i], n, k)], m)


class _Curves:
    """``key -> (xs, ys)`` curves read from a table, interpolated log-log in x."""

    def __init__(self) -> None:
        self.c: dict[tuple, tuple[list[float], list[float]]] = {}

    def add(self, pts: dict[tuple, list[tuple[float, float]]]) -> None:
        for key, v in pts.items():
            v.sort()
            self.c[key] = ([x for x, _ in v], [y for _, y in v])

    def at(self, key: tuple, x: float) -> float:
        xs, ys = self.c[key]
        return _interp_log(xs, ys, x)


class AttnTable:
    """FA3 attention latencies (ms): context ``(heads, kv, batch) -> isl`` and generation ``-> kv cached``."""

    def __init__(self, ctx_path: Path, gen_path: Path) -> None:
        self.ctx, self.gen = _Curves(), _Curves()
        for path, store, col, off in ((ctx_path, self.ctx, "isl", 0), (gen_path, self.gen, "step", 1)):
            pts: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
            for r in _rows(path):
                if r["kv_cache_dtype"] != "bfloat16" or r["window_size"] != "0" or r["head_dim"] != "128":
                    continue
                key = (int(r["num_heads"]), int(r["num_key_value_heads"]), int(r["batch_size"]))
                pts[key].append((int(r[col]) + off, float(r["latency"])))
            store.add(pts)

    @staticmethod
    def _batch(store: _Curves, heads: int, kv: int, b: int, x: float, quad: bool) -> float:
        bs = sorted(k[2] for k in store.c if k[0] == heads and k[1] == kv)
        if not bs:  # head count not measured with this KV-head count: linear in heads between neighbours
            hs = sorted({k[0] for k in store.c if k[1] == kv})
            if not hs:
                raise PerfInputError(f"attention table: no rows with {kv} KV heads")
            h0, h1, f = _bracket(hs, heads)
            y0 = AttnTable._batch(store, int(h0), kv, b, x, quad)
            if not f:
                return y0 * heads / h0
            return (1 - f) * y0 + f * AttnTable._batch(store, int(h1), kv, b, x, quad)
        if b in bs:
            xs, ys = store.c[(heads, kv, b)]
            if x > xs[-1]:  # beyond the table: the work grows quadratically (prefill) or linearly (KV read)
                return ys[-1] * (x / xs[-1]) ** (2 if quad else 1)
            return store.at((heads, kv, b), x)
        lo = max([v for v in bs if v < b], default=bs[0])
        hi = min([v for v in bs if v > b], default=bs[-1])
        ylo = AttnTable._batch(store, heads, kv, lo, x, quad)
        if hi == lo:  # more sequences than measured: linear in the batch
            return ylo * b / lo
        yhi = AttnTable._batch(store, heads, kv, hi, x, quad)
        return _interp_log([lo, hi], [ylo, yhi], b)

    def context(self, b: int, isl: int, heads: int, kv: int) -> float:
        return self._batch(self.ctx, heads, kv, b, isl, True)

    def generation(self, b: int, ctx: float, heads: int, kv: int) -> float:
        return self._batch(self.gen, heads, kv, b, max(ctx, 1.0), False)


class CommTable:
    """All-reduce latency (ms) by GPUs and message size (elements): NCCL (half) or vLLM custom (graph)."""

    def __init__(self, nccl_path: Path, custom_path: Path | None = None) -> None:
        self.nccl, self.custom = _Curves(), _Curves()
        pts: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
        for r in _rows(nccl_path):
            if r["op_name"] == "all_reduce" and r["nccl_dtype"] == "half":
                pts[(int(r["num_gpus"]),)].append((int(r["message_size"]), float(r["latency"])))
        self.nccl.add(pts)
        if custom_path is not None:
            pts = defaultdict(list)
            for r in _rows(custom_path):
                if r["backend"] == "vllm_graph":
                    pts[(int(r["num_gpus"]),)].append((int(r["message_size"]), float(r["latency"])))
            self.custom.add(pts)

    def __call__(self, g: int, elems: float, custom: bool = False) -> float:
        return (self.custom if custom else self.nccl).at((g,), elems)


class MoeTable:
    """Fused-MoE latency (ms) by tokens, for (hidden, inter, topk, experts, ep, dtype), balanced routing."""

    def __init__(self, path: Path) -> None:
        self.curves = _Curves()
        pts: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
        for r in _rows(path):
            if r["distribution"] != "balanced" or r["moe_tp_size"] != "1":
                continue
            # expert parallel as the roofline models it: vLLM's FlashInfer CUTLASS fused MoE at EP > 1
            # (the table's EP rows), its Triton fused MoE on one GPU
            ep = int(r["moe_ep_size"])
            if r["kernel_source"] != ("vllm_fp8moe_flashinfer_cutlass_flashinferexperts" if ep > 1
                                      else "vllm_fp8moe_triton_tritonexperts"):
                continue
            key = (int(r["hidden_size"]), int(r["inter_size"]), int(r["topk"]), int(r["num_experts"]),
                   int(r["moe_ep_size"]), r["moe_dtype"])
            pts[key].append((int(r["num_tokens"]), float(r["latency"])))
        self.curves.add(pts)

    def has(self, key: tuple) -> bool:
        return key in self.curves.c

    def __call__(self, key: tuple, tokens: float) -> float:
        return self.curves.at(key, tokens)


class MlaTable:
    """Whole MLA attention module (ms; DeepSeek-V3 dims: q_lora 1536, kv_lora 512, rope 64, nope/v 128)."""

    def __init__(self, ctx_path: Path, gen_path: Path) -> None:
        self.ctx, self.gen = _Curves(), _Curves()
        for path, store, col in ((ctx_path, self.ctx, "isl"), (gen_path, self.gen, "step")):
            pts: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
            for r in _rows(path):
                if r["kv_cache_dtype"] != "bfloat16":
                    continue
                key = (r["gemm_type"], int(r["num_heads"]), int(r["batch_size"]))
                pts[key].append((int(r[col]), float(r["latency"])))
            # several kernel sources per point: the table's fastest (what vLLM's backend selection picks)
            for key, v in pts.items():
                best: dict[float, float] = {}
                for x, y in v:
                    best[x] = min(y, best.get(x, y))
                pts[key] = sorted(best.items())
            store.add(pts)

    def _at(self, store: _Curves, gemm: str, heads: int, b: int, x: float) -> float:
        bs = sorted(k[2] for k in store.c if k[0] == gemm and k[1] == heads)
        lo = max([v for v in bs if v <= b], default=bs[0])
        hi = min([v for v in bs if v >= b], default=bs[-1])
        ylo = store.at((gemm, heads, lo), x)
        if hi == lo:
            return ylo * (b / lo if b > lo else 1.0)
        return _interp_log([lo, hi], [ylo, store.at((gemm, heads, hi), x)], b)

    def context(self, gemm: str, heads: int, b: int, isl: int) -> float:
        return self._at(self.ctx, gemm, heads, b, isl)

    def generation(self, gemm: str, heads: int, b: int, ctx: float) -> float:
        return self._at(self.gen, gemm, heads, b, max(ctx, 2.0))


class KdaTable:
    """Kimi Delta Attention kernels (ms): context conv1d + chunked KDA; generation fused decode."""

    CONTEXT = ("causal_conv1d_fn_qkv3", "flashkda_fwd")
    # vLLM's decode fast path (no speculative decoding) is the one fused kernel: convolution update,
    # recurrence and gated norm (collector/vllm/collect_kda.py); the conv-update + packed-decode pair
    # is its fallback, so the two are not summed
    GENERATION = ("fused_kda_decode",)

    def __init__(self, path: Path) -> None:
        self.curves = _Curves()
        pts: dict[tuple, list[tuple[float, float]]] = defaultdict(list)
        for r in _rows(path):
            if r["phase"] == "context" and r["kernel_source"] in self.CONTEXT:
                pts[("context", r["kernel_source"], int(r["num_k_heads"]), int(r["batch_size"]))].append(
                    (int(r["seq_len"]), float(r["latency"])))
            elif r["phase"] == "generation" and r["kernel_source"] in self.GENERATION:
                pts[("generation", r["kernel_source"], int(r["num_k_heads"]), 0)].append(
                    (int(r["batch_size"]), float(r["latency"])))
        self.curves.add(pts)
        self.heads = sorted({k[2] for k in self.curves.c})

    def _heads(self, fn, heads: float) -> float:
        h0, h1, f = _bracket(self.heads, heads)
        return (1 - f) * fn(int(h0)) + f * fn(int(h1)) if f else fn(int(h0))

    def context(self, heads: float, b: int, seq: int) -> float:
        def one(h: int) -> float:
            t = 0.0
            for k in self.CONTEXT:
                bs = sorted(key[3] for key in self.curves.c if key[:3] == ("context", k, h))
                bb = max([v for v in bs if v <= b], default=bs[0])  # largest measured batch <= b
                t += self.curves.at(("context", k, h, bb), seq) * max(1.0, b / bb)  # linear beyond it
            return t
        return self._heads(one, heads)

    def generation(self, heads: float, b: int) -> float:
        return self._heads(lambda h: sum(self.curves.at(("generation", k, h, 0), b) for k in self.GENERATION), heads)


@dataclass
class AicTables:
    """All tables of one GPU under ``root`` (``<root>/<aic gpu>/...``), loaded on first use."""

    root: Path
    gpu: str  # AIConfigurator system name, e.g. "h100_sxm"
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    @classmethod
    def for_hardware(cls, root: str | Path, hardware: str) -> AicTables:
        if hardware not in AIC_GPU:
            raise PerfInputError(f"--hardware:0: no AIConfigurator tables for {hardware!r} "
                                 f"(have: {', '.join(AIC_GPU)})")
        root = Path(root)
        if (root / "aiconfigurator").is_dir() and not (root / AIC_GPU[hardware]).is_dir():
            root = root / "aiconfigurator"
        if not (root / AIC_GPU[hardware]).is_dir():
            raise PerfInputError(f"{root}:0: no {AIC_GPU[hardware]}/ directory of AIConfigurator tables")
        return cls(root, AIC_GPU[hardware])

    def _p(self, rel: str) -> Path:
        return self.root / self.gpu / rel

    @cached_property
    def gemm(self) -> GemmTable:
        return GemmTable(self._p("gemm/vllm/0.24.0/gemm_perf.csv"))

    @cached_property
    def attn(self) -> AttnTable:
        return AttnTable(self._p("attention/vllm/0.24.0/context_attention_perf.csv"),
                         self._p("attention/vllm/0.24.0/generation_attention_perf.csv"))

    @cached_property
    def comm(self) -> CommTable:
        return CommTable(self._p("comm/nccl/2.29.2/nccl_perf.csv"),
                         self._p("comm/vllm/0.24.0/custom_allreduce_perf.csv"))

    @cached_property
    def moe(self) -> MoeTable:
        return MoeTable(self._p("moe/vllm/0.24.0/moe_perf.csv"))

    @cached_property
    def mla(self) -> MlaTable:
        return MlaTable(self._p("mla/vllm/0.24.0/mla_context_module_perf.csv"),
                        self._p("mla/vllm/0.24.0/mla_generation_module_perf.csv"))

    @cached_property
    def kda(self) -> KdaTable:
        return KdaTable(self._p("kda/vllm/0.1.dev19262/kda_perf.csv"))


# ---------------------------------------------------------------------------------------- step sums
DSV3_MLA = AttentionSpec(kind="mla", num_heads=128, q_lora_rank=1536, kv_lora_rank=512, qk_nope_head_dim=128,
                         qk_rope_head_dim=64, v_head_dim=128)
DSV3_HIDDEN = 7168


def _mla_gemms(a: AttentionSpec, h: int, g: int) -> list[tuple[float, float, str]]:
    """(n, k, rows) of the GEMMs inside an MLA module (rows: "tok" or "tok+cached")."""
    heads = a.num_heads / g
    out = []
    if a.q_lora_rank:
        out += [(a.q_lora_rank + a.kv_lora_rank + a.qk_rope_head_dim, h, "tok"),
                (heads * a.qk_head_dim, a.q_lora_rank, "tok")]
    else:
        out += [(heads * a.qk_head_dim + a.kv_lora_rank + a.qk_rope_head_dim, h, "tok")]
    out += [(heads * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank, "tok+cached"),
            (h, heads * a.v_head_dim, "tok")]
    return out


def database_step(tab: AicTables, model: ModelProfile, g: int, seqs: list[tuple[int, int]] | None = None, *,
                  batch: int = 0, context_tokens: int = 0, skip_missing_moe: bool = False) -> dict[str, float]:
    """The database's time (ms) of one vLLM step, per operator class (:data:`CLASSES`).

    Prefill: ``seqs`` = ``[(new, 0), ...]`` (no cached prefix; the tables are prefill-from-zero).
    A batch of equal prompts is looked up as the tables' ``batch_size``; unequal prompts as a sum
    of single-prompt attention calls. Decode: ``batch`` sequences holding ``context_tokens``.
    Dense TP over ``g`` GPUs; routed experts EP over ``g`` (``moe_ep_size = g``, ``moe_tp_size = 1``).
    A MoE shape without fused-MoE rows is summed from the GEMM table one expert at a time, or
    left out (0) with ``skip_missing_moe`` (see :func:`has_moe_rows`).
    """
    decode = seqs is None
    if decode:
        b = int(batch)
        tokens = float(b)
        ctx = context_tokens / max(b, 1)
        lm_rows = b
    else:
        tokens = float(sum(n for n, _ in seqs))
        lm_rows = len(seqs)
    h = model.hidden_size
    out = dict.fromkeys(CLASSES, 0.0)
    gemm = tab.gemm
    fp8 = model.weight_bytes_per_param <= 1.0
    for grp in model.layers:
        a, f, c = grp.attention, grp.ffn, grp.count
        # --- attention block
        if a.kind in ("mha", "gqa"):
            heads, kv = a.num_heads // g, max(a.num_kv_heads // g, 1)
            out["gemm"] += c * (gemm(tokens, (heads + 2 * kv) * a.head_dim, h) + gemm(tokens, h, heads * a.head_dim))
            if decode:
                out["attention"] += c * tab.attn.generation(b, ctx, heads, kv)
            else:
                out["attention"] += c * _context_attention(tab, seqs, heads, kv)
        elif a.kind == "mla":
            heads = a.num_heads // g
            gtype = "fp8_block" if fp8 else "bfloat16"
            if decode:
                mod = tab.mla.generation(gtype, heads, b, ctx)
            else:
                mod = sum(tab.mla.context(gtype, heads, k, n) for n, k in _groups(seqs))
            if (a.q_lora_rank, a.kv_lora_rank, h) != (DSV3_MLA.q_lora_rank, DSV3_MLA.kv_lora_rank, DSV3_HIDDEN):
                # module rows have DeepSeek-V3's projections: swap them for this model's (GEMM table)
                mod += sum(gemm(tokens, n, k) for n, k, _ in _mla_gemms(a, h, g))
                mod -= sum(gemm(tokens, n, k) for n, k, _ in _mla_gemms(_dsv3_like(a), DSV3_HIDDEN, g))
            out["mla"] += c * mod
        elif a.kind == "linear":
            n, hd, vd = a.num_heads, a.head_dim, a.v_head_dim
            out["gemm"] += c * (gemm(tokens, n * (2 * hd + 2 * vd) / g, h) + gemm(tokens, hd + n, h)
                                + gemm(tokens, n * hd / g, hd) + gemm(tokens, h, n * vd / g))
            if decode:
                out["kda"] += c * tab.kda.generation(n / g, b)
            else:
                out["kda"] += c * sum(tab.kda.context(n / g, k, ln) for ln, k in _groups(seqs))
        else:
            raise PerfInputError(f"model {model.name}: no database entry for attention kind {a.kind!r}")
        # --- FFN
        if f.kind == "dense":
            fi = f.intermediate_size / g
            out["gemm"] += c * (gemm(tokens, (f.matrices - 1) * fi, h) + gemm(tokens, h, fi))
            act = aic_mem_op_ms(tab.gpu, tokens * 3 * fi * 2)
        else:
            key = (h, f.expert_intermediate_size, f.active_experts, f.num_experts, g, "fp8_block" if fp8 else "bf16")
            if tab.moe.has(key):
                out["moe"] += c * tab.moe(key, tokens)
            elif not skip_missing_moe:  # no fused-MoE rows for this shape: one GEMM per expert
                out["moe"] += c * _moe_from_gemms(gemm, h, f, g, tokens)
            out["gemm"] += c * gemm(tokens, f.num_experts, h)  # router
            if f.shared_experts:
                fs = f.shared_experts * f.expert_intermediate_size / g
                out["gemm"] += c * (gemm(tokens, (f.matrices - 1) * fs, h) + gemm(tokens, h, fs))
            act = aic_mem_op_ms(tab.gpu, tokens * 3 * f.shared_experts * f.expert_intermediate_size / g * 2) \
                if f.shared_experts else 0.0
        # --- element-wise: two fused add+RMSNorm (2h in, 2h out) and the gated activation (2f in, f out)
        out["elementwise"] += c * (2 * aic_mem_op_ms(tab.gpu, tokens * 4 * h * 2) + act)
        if g > 1:
            out["allreduce"] += c * 2 * tab.comm(g, tokens * h, custom=True)
    out["gemm"] += gemm(lm_rows, model.vocab_size / g, h)
    out["elementwise"] += aic_mem_op_ms(tab.gpu, tokens * h * 2)  # embedding gather
    return out


def has_moe_rows(tab: AicTables, model: ModelProfile, g: int) -> bool:
    """Whether every MoE layer of ``model`` on ``g`` GPUs has fused-MoE rows in the database."""
    fp8 = model.weight_bytes_per_param <= 1.0
    for grp in model.layers:
        f = grp.ffn
        if f.kind != "dense" and not tab.moe.has((model.hidden_size, f.expert_intermediate_size, f.active_experts,
                                                   f.num_experts, g, "fp8_block" if fp8 else "bf16")):
            return False
    return True


def _dsv3_like(a: AttentionSpec) -> AttentionSpec:
    """DeepSeek-V3's MLA dims with ``a``'s head count (what the module rows measured)."""
    return AttentionSpec(kind="mla", num_heads=a.num_heads, q_lora_rank=DSV3_MLA.q_lora_rank,
                         kv_lora_rank=DSV3_MLA.kv_lora_rank, qk_nope_head_dim=DSV3_MLA.qk_nope_head_dim,
                         qk_rope_head_dim=DSV3_MLA.qk_rope_head_dim, v_head_dim=DSV3_MLA.v_head_dim)


def _groups(seqs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(length, count)`` of equal prompts (the tables' batch_size)."""
    cnt: dict[int, int] = defaultdict(int)
    for n, _ in seqs:
        cnt[int(n)] += 1
    return sorted(cnt.items())


def _context_attention(tab: AicTables, seqs: list[tuple[int, int]], heads: int, kv: int) -> float:
    return sum(tab.attn.context(k, n, heads, kv) for n, k in _groups(seqs))


def _moe_from_gemms(gemm: GemmTable, h: int, f, g: int, tokens: float) -> float:
    e_local = f.num_experts / g
    k, e_all = f.active_experts, float(f.num_experts)
    touched = e_local * (1.0 - (1.0 - k / e_all) ** tokens)
    if touched <= 0:
        return 0.0
    rows = tokens * k / g / touched
    w = f.expert_intermediate_size
    return touched * (gemm(rows, (f.matrices - 1) * w, h) + gemm(rows, h, w))
