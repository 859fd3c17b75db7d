"""Error table of the vLLM engine profile against AIConfigurator's vLLM 0.24 database sums.

Usage: python benchmarks/perf_engine_table.py [--data-dir ../shared/data] [--engine vllm] [--hardware h100-sxm h200-sxm]

For every model x TP x GPU in the grid, prefill steps (1 prompt of 128..16384 tokens, and batches
of equal prompts) and decode steps (batch 1..256, context 512..32768 per sequence) are predicted by
the roofline with the packaged engine terms and compared with the database's step sum
(``prfaas_gym.perf.aic_tables.database_step``): per operator class (the summed class time) and per
full step. Prints the markdown tables of docs/step_time_model.md ("Error against the database").
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

import numpy as np

from prfaas_gym.perf.aic_tables import CLASSES, AicTables, database_step, has_moe_rows
from prfaas_gym.perf.roofline import RooflineModel
from prfaas_gym.profiles import get_hardware, get_model

GRID: tuple[tuple[str, int], ...] = (
    ("llama3-3b", 1), ("llama3-3b", 2), ("llama3-3b", 4), ("llama3-3b", 8),
    ("llama3-8b", 1), ("llama3-8b", 2), ("llama3-8b", 4), ("llama3-8b", 8),
    ("qwen2.5-14b", 1), ("qwen2.5-14b", 2), ("qwen2.5-14b", 4), ("qwen2.5-14b", 8),
    ("llama3-70b", 1), ("llama3-70b", 2), ("llama3-70b", 4), ("llama3-70b", 8),
    ("deepseek-v3", 8), ("kimi-linear-48b", 1), ("kimi-linear-48b", 2),
)
PREFILL_SEQS: tuple[list[tuple[int, int]], ...] = tuple(
    [[(n, 0)] for n in (128, 512, 2048, 8192, 16384)] + [[(1024, 0)] * 4, [(2048, 0)] * 8])
DECODE: tuple[tuple[int, int], ...] = tuple((b, c) for b in (1, 8, 32, 128, 256) for c in (512, 4096, 32768)
                                            if b * c <= 256 * 8192)


def ours_by_class(rm: RooflineModel, seqs: list[tuple[int, int]] | None, batch: int = 0,
                  ctx: int = 0) -> dict[str, float]:
    """Our step (ms) split into the database's operator classes."""
    out = dict.fromkeys(CLASSES, 0.0)
    m, g, e = rm.model, rm.gpus, rm.eff
    decode = seqs is None
    if decode:
        bp = float(rm.engine.padded_batch(batch))
        per, rem = divmod(ctx * batch, batch)
        aseqs = [(1, per + 1)] * rem + [(1, per)] * (batch - rem)
        tokens, rows_cached, lm_rows = bp, 0.0, bp
    else:
        aseqs = seqs
        tokens = float(sum(n for n, _ in seqs))
        rows_cached, lm_rows = 0.0, float(len(seqs))
    out["elementwise"] = (rm._small_ops_time(tokens) + e.step_overhead_s) * 1e3
    out["moe"] = rm._moe_time(float(batch) if decode else tokens) * 1e3
    out["allreduce"] = rm._comm_time(tokens) * 1e3
    lm = rm._lm_head
    out["gemm"] = rm._gemm_s(lm_rows, lm.k, lm.n, lm.weight_bytes) * 1e3
    # attention-block GEMMs of MLA layers belong to the "mla" class (the database measures the module)
    for grp in m.layers:
        a, c = grp.attention, grp.count
        core = c * rm._attention_time(grp, aseqs, decode)[0] * 1e3
        attn_gemms = c * sum(rm._gemm_s(tokens + rows_cached if gm.rows == "tokens+cached" else tokens,
                                        gm.k, gm.n, gm.weight_bytes)
                             for gm in rm._attn_gemms(a, m.hidden_size, 1, m.weight_bytes_per_param, g)) * 1e3
        if a.kind == "mla":
            out["mla"] += core + attn_gemms * e.mla_gemm_factor
        elif a.kind == "linear":
            out["kda"] += core
            out["gemm"] += attn_gemms
        else:
            out["attention"] += core
            out["gemm"] += attn_gemms
        f = grp.ffn
        h, wb = m.hidden_size, m.weight_bytes_per_param
        if f.kind == "dense":
            fi = f.intermediate_size / g
            out["gemm"] += c * (rm._gemm_s(tokens, h, (f.matrices - 1) * fi, wb) + rm._gemm_s(tokens, fi, h, wb)) * 1e3
        else:
            out["gemm"] += c * rm._gemm_s(tokens, h, f.num_experts, wb) * 1e3
            if f.shared_experts:
                fs = f.shared_experts * f.expert_intermediate_size / g
                out["gemm"] += c * (rm._gemm_s(tokens, h, (f.matrices - 1) * fs, wb) + rm._gemm_s(tokens, fs, h, wb)) * 1e3
    return out


def _step(ms: float, ours: dict[str, float], skip_moe: bool) -> float:
    if skip_moe:
        ms -= ours["moe"]
        ours["moe"] = 0.0
    return ms


def collect(tables: dict[str, AicTables], engine: str) -> list[dict]:
    """One row per (gpu, model, tp, phase, case): ours and the database's per-class and total ms."""
    rows = []
    for hw_name, tab in tables.items():
        hw = get_hardware(hw_name)
        for name, g in GRID:
            model = get_model(name)
            # the database's fused-MoE rows were measured with its collector's routing (perf/moe_routing.py)
            rm = RooflineModel(model, hw, g, engine=engine, moe_routing="collector")
            # a MoE shape the database has no fused-MoE rows for (Kimi-Linear) is left out of both sides
            skip = not has_moe_rows(tab, model, g)
            for seqs in PREFILL_SEQS:
                db = database_step(tab, model, g, list(seqs), skip_missing_moe=skip)
                ours = ours_by_class(rm, list(seqs))
                rows.append(dict(gpu=hw_name, model=name + (" (excl. MoE)" if skip else ""), tp=g, phase="prefill",
                                 case=seqs, db=db, ours=ours, step=_step(rm.prefill_s(seqs) * 1e3, ours, skip)))
            for b, c in DECODE:
                db = database_step(tab, model, g, batch=b, context_tokens=b * c, skip_missing_moe=skip)
                ours = ours_by_class(rm, None, b, c)
                rows.append(dict(gpu=hw_name, model=name + (" (excl. MoE)" if skip else ""), tp=g, phase="decode",
                                 case=(b, c), db=db, ours=ours, step=_step(rm.decode_s(b, b * c) * 1e3, ours, skip)))
    return rows


def _err(rows: list[dict], key) -> tuple[int, float, float, float]:
    e = np.array([key(r) for r in rows if key(r) is not None])
    if not len(e):
        return 0, float("nan"), float("nan"), float("nan")
    return len(e), float(np.mean(np.abs(e))), float(np.max(np.abs(e))), float(np.mean(e))


def step_table(rows: list[dict]) -> list[str]:
    out = ["| GPU | model | TP | phase | n | MAPE | max APE | mean signed |", "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["gpu"], r["model"], r["tp"], r["phase"])].append(r)
    for (gpu, model, tp, phase), rs in groups.items():
        n, mape, mx, sg = _err(rs, lambda r: (r["step"] / sum(r["db"].values()) - 1) * 100)
        out.append(f"| {gpu} | {model} | {tp} | {phase} | {n} | {mape:.1f}% | {mx:.1f}% | {sg:+.1f}% |")
    return out


def class_table(rows: list[dict]) -> list[str]:
    out = ["| GPU | phase | class | n | MAPE | max APE | mean signed | share of DB step |",
           "|---|---|---|---|---|---|---|---|"]
    for gpu in sorted({r["gpu"] for r in rows}):
        for phase in ("prefill", "decode"):
            rs = [r for r in rows if r["gpu"] == gpu and r["phase"] == phase]
            for cls in CLASSES:
                sel = [r for r in rs if r["db"][cls] > 0]
                if not sel:
                    continue
                n, mape, mx, sg = _err(sel, lambda r: (r["ours"][cls] / r["db"][cls] - 1) * 100)
                share = np.mean([r["db"][cls] / sum(r["db"].values()) for r in sel]) * 100
                out.append(f"| {gpu} | {phase} | {cls} | {n} | {mape:.1f}% | {mx:.1f}% | {sg:+.1f}% | {share:.0f}% |")
    return out


def summary(rows: list[dict]) -> list[str]:
    out = ["| GPU | phase | n steps | MAPE | max APE |", "|---|---|---|---|---|"]
    for gpu in sorted({r["gpu"] for r in rows}):
        for phase in ("prefill", "decode"):
            rs = [r for r in rows if r["gpu"] == gpu and r["phase"] == phase]
            n, mape, mx, _ = _err(rs, lambda r: (r["step"] / sum(r["db"].values()) - 1) * 100)
            out.append(f"| {gpu} | {phase} | {n} | {mape:.1f}% | {mx:.1f}% |")
    return out


def batched_prefill(tables: dict[str, AicTables], engine: str) -> list[str]:
    """Several prompts in one step vs one prompt of the same tokens (database and ours)."""
    out = ["| GPU | model | TP | step | DB ms | ours ms | DB batched / one long | ours batched / one long |",
           "|---|---|---|---|---|---|---|---|"]
    for hw_name, tab in tables.items():
        hw = get_hardware(hw_name)
        for name, g in (("llama3-8b", 1), ("llama3-70b", 4)):
            model = get_model(name)
            rm = RooflineModel(model, hw, g, engine=engine)
            for k, n in ((4, 2048), (8, 1024), (16, 512)):
                one_db = sum(database_step(tab, model, g, [(k * n, 0)]).values())
                b_db = sum(database_step(tab, model, g, [(n, 0)] * k).values())
                one = rm.prefill_s([(k * n, 0)]) * 1e3
                b = rm.prefill_s([(n, 0)] * k) * 1e3
                out.append(f"| {hw_name} | {name} | {g} | {k} x {n} | {b_db:.1f} | {b:.1f} | "
                           f"{b_db / one_db:.3f} | {b / one:.3f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR", "../shared/data"))
    ap.add_argument("--engine", default="vllm")
    ap.add_argument("--hardware", nargs="+", default=["h100-sxm", "h200-sxm"])
    args = ap.parse_args()
    tables = {h: AicTables.for_hardware(args.data_dir, h) for h in args.hardware}
    rows = collect(tables, args.engine)
    print(f"Engine {args.engine}: whole steps vs the database's sums\n")
    print("\n".join(summary(rows)))
    print("\nPer model and TP:\n")
    print("\n".join(step_table(rows)))
    print("\nPer operator class (class time summed over the step):\n")
    print("\n".join(class_table(rows)))
    print("\nBatched prefill (k prompts of n tokens in one step vs one prompt of k*n tokens):\n")
    print("\n".join(batched_prefill(tables, args.engine)))


if __name__ == "__main__":
    main()
