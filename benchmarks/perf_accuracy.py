"""Accuracy of the roofline step-time model against every real measurement set available.

Usage: python benchmarks/perf_accuracy.py [--data-dir ../shared/data] [--calibration FILE.csv]
(``--data-dir`` defaults to $PRFAAS_DATA_DIR). Prints one Markdown table; sections whose files are
missing are skipped. See docs/step_time_model.md for what each set measures and the mapping.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from prfaas_gym.perf.calibrate import phase_errors, predict_ms
from prfaas_gym.perf.cases import read_cases
from prfaas_gym.perf.roofline import RooflineModel
from prfaas_gym.profiles import get_hardware, get_model, model_from_dict


def dense_model(name: str, layers: int, h: int, heads: int, kv: int, ffn: int, vocab: int,
                gated: bool = True, kind: str = "gqa") -> object:
    """A dense transformer profile built on the fly (for shapes not packaged)."""
    return model_from_dict({"name": name, "hidden_size": h, "vocab_size": vocab, "layers": [
        {"count": layers, "attention": {"kind": kind, "num_heads": heads, "num_kv_heads": kv, "head_dim": h // heads},
         "ffn": {"kind": "dense", "intermediate_size": ffn, "gated": gated}}]}, name)


def summary(name: str, what: str, pred: list[float], meas: list[float]) -> str:
    e = np.abs(np.asarray(pred) / np.asarray(meas) - 1.0) * 100
    bias = (np.exp(np.mean(np.log(np.asarray(pred) / np.asarray(meas)))) - 1) * 100
    return f"| {name} | {what} | {len(e)} | {e.mean():.1f}% | {np.median(e):.1f}% | {e.max():.1f}% | {bias:+.1f}% |"


def shared_h100(cal: Path) -> list[str]:
    cases = read_cases(cal, need_measured=True)
    pred = predict_ms(cases, get_model, get_hardware("h100-sxm"))
    out = []
    for ph in ("prefill", "decode"):
        idx = [i for i, c in enumerate(cases) if c.phase == ph]
        out.append(summary(f"shared H100 llama3-8b ({ph})", "whole step", [pred[i] for i in idx],
                           [cases[i].measured_ms for i in idx]))
    return out


def llmservingsim(d: Path) -> list[str]:
    out = []
    shapes = {"Llama-3.1-8B": (4096, 32, 8, 14336), "Llama-3.1-70B": (8192, 64, 8, 28672)}
    hw = get_hardware("h100-sxm")
    for f in sorted(d.glob("llmservingsim/perf_models/H100/meta-llama/*/tp*/layers.csv")):
        name, tp = f.parts[-3], int(f.parts[-2][2:])
        h, nh, kv, ffn = shapes[name]
        lat: dict[int, float] = defaultdict(float)
        for r in csv.DictReader(open(f)):
            if r["layer_name"] in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
                lat[int(r["input"])] += float(r["latency(ns)"]) * 1e-6
        m = dense_model(name, 1, h, nh, kv, ffn, 128256)
        rm = RooflineModel(m, hw, tp, engine="eager")
        pred, meas = [], []
        for n in sorted(lat):
            if n in (1, 16, 64, 128, 256, 512, 1024, 1536, 2048):
                hd = h // nh
                t = (rm.gemm_s(n, h, (nh + 2 * kv) * hd / tp) + rm.gemm_s(n, nh * hd / tp, h)
                     + rm.gemm_s(n, h, 2 * ffn / tp) + rm.gemm_s(n, ffn / tp, h))
                pred.append(t * 1e3)
                meas.append(lat[n])
        out.append(summary(f"LLMServingSim {name} TP{tp}", "layer GEMMs, 1-2048 tok", pred, meas))
    return out


def vidur(d: Path) -> list[str]:
    out = []
    hw = get_hardware("h100-sxm")
    for f in sorted(d.glob("vidur/profiling/compute/h100/*/*/mlp.csv")):
        pred, meas = [], []
        for r in csv.DictReader(open(f)):
            n = int(r["num_tokens"])
            if n not in (1, 16, 64, 128, 256, 512, 1024, 2048, 4096):
                continue
            h, nh, kv, ffn, tp = (int(r["n_embd"]), int(r["n_head"]), int(r["n_kv_head"]),
                                  int(r["n_expanded_embd"]), int(r["num_tensor_parallel_workers"]))
            gated = r["use_gated_mlp"] == "True"
            m = dense_model("v", 1, h, nh, kv, ffn, 32000, gated)
            rm = RooflineModel(m, hw, tp, engine="eager")
            hd = h // nh
            t = (rm.gemm_s(n, h, (nh + 2 * kv) * hd / tp) + rm.gemm_s(n, nh * hd / tp, h)
                 + rm.gemm_s(n, h, (2 if gated else 1) * ffn / tp) + rm.gemm_s(n, ffn / tp, h))
            pred.append(t * 1e3)
            meas.append(sum(float(r[f"time_stats.{op}.median"]) for op in
                            ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")))
        out.append(summary(f"Vidur H100 {f.parts[-2]} (TP1-8)", "layer GEMMs, 1-4096 tok", pred, meas))
    return out


def aiconfigurator_gemm(d: Path) -> list[str]:
    out = []
    for gpu, prof in (("h100_sxm", "h100-sxm"), ("h200_sxm", "h200-sxm")):
        f = d / f"aiconfigurator/{gpu}/gemm/vllm/0.24.0/gemm_perf.csv"
        if not f.exists():
            continue
        rm = RooflineModel(get_model("llama3-8b"), get_hardware(prof), 1, engine="eager")
        pred, meas = [], []
        for r in csv.DictReader(open(f)):
            m_, n_, k_ = int(r["m"]), int(r["n"]), int(r["k"])
            if r["gemm_dtype"] != "bfloat16" or n_ < 1024 or k_ < 1024 or n_ > 32768 or k_ > 32768 or m_ > 16384:
                continue
            pred.append(rm.gemm_s(m_, k_, n_, 2.0) * 1e3)
            meas.append(float(r["latency"]))
        out.append(summary(f"aiconfigurator {gpu} bf16 GEMM", "one GEMM, n,k in [1K,32K], m<=16K", pred, meas))
    return out


def aiconfigurator_attention(d: Path) -> list[str]:
    out = []
    for gpu, prof in (("h100_sxm", "h100-sxm"), ("h200_sxm", "h200-sxm")):
        f = d / f"aiconfigurator/{gpu}/attention/vllm/0.24.0/context_attention_perf.csv"
        if not f.exists():
            continue
        pred, meas = [], []
        cache: dict[tuple[int, int], RooflineModel] = {}
        for r in csv.DictReader(open(f)):
            if r["kv_cache_dtype"] != "bfloat16" or r["window_size"] != "0" or int(r["head_dim"]) != 128:
                continue
            b, isl, nh, kv = int(r["batch_size"]), int(r["isl"]), int(r["num_heads"]), int(r["num_key_value_heads"])
            if isl < 1024:
                continue
            key = (nh, kv)
            if key not in cache:
                cache[key] = RooflineModel(dense_model("a", 1, nh * 128, nh, kv, 1024, 1000), get_hardware(prof), 1, engine="eager")
            pred.append(cache[key].attention_s([(isl, 0)] * b) * 1e3)
            meas.append(float(r["latency"]))
        out.append(summary(f"aiconfigurator {gpu} context attention", "flash-attn prefill, isl>=1K", pred, meas))
    return out


def splitwise(d: Path) -> list[str]:
    f = d / "splitwise_sim/perf_model.csv"
    if not f.exists():
        return []
    m = dense_model("llama2-70b", 80, 8192, 64, 8, 28672, 32000)
    hw = get_hardware("h100-sxm")
    pp, pm, dp, dm = [], [], [], []
    for r in csv.DictReader(open(f)):
        if r["model"] != "llama2-70b" or r["hardware"] != "h100-80gb":
            continue
        rm = RooflineModel(m, hw, int(r["tensor_parallel"]), engine="eager")
        b, p, t = int(r["batch_size"]), int(r["prompt_size"]), int(r["token_size"])
        pp.append(rm.prefill_s([(p, 0)] * b) * 1e3)
        pm.append(float(r["prompt_time"]))
        dp.append(rm.decode_s(b, b * (p + t // 2)) * 1e3)
        dm.append(float(r["token_time"]))
    return [summary("Splitwise llama2-70b H100 TP2-8 (prefill)", "whole step (vLLM-era engine)", pp, pm),
            summary("Splitwise llama2-70b H100 TP2-8 (decode)", "mean step, context=prompt+out/2", dp, dm)]


def distserve(d: Path) -> list[str]:
    f = d / "distserve/profiler-a100-80g.vllm.json"
    if not f.exists():
        return []
    coef = json.load(open(f))["facebook/opt-13b"]
    m = dense_model("opt-13b", 40, 5120, 40, 40, 20480, 50272, gated=False, kind="mha")
    hw = get_hardware("a100-80g")
    pp, pm = [], []
    for tp, c in coef.items():
        rm = RooflineModel(m, hw, int(tp), engine="eager")
        a, b_, c2 = c["prefill"]
        for n in (256, 512, 1024, 2048):
            pp.append(rm.prefill_s([(n, 0)]) * 1e3)
            pm.append(a + b_ * n + c2 * n * n)
    return [summary("DistServe OPT-13B A100 (vLLM fit, prefill)", "fitted formula at 256-2048 tok", pp, pm)]


def heldout_transfer(d: Path) -> list[str]:
    """Unseen shapes: roofline vs pseudo-measurements (8B step x kernel-table shape ratio)."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from perf_heldout import load_tables, transfer_pairs

    cal = d.parent / "calibration/h100-sxm_llama3-8b_steps.csv"
    if not (d / "aiconfigurator/h100_sxm/gemm").exists() or not cal.exists():
        return []
    rows = transfer_pairs(load_tables(d), read_cases(cal, need_measured=True))
    return [summary(f"held-out {name} ({phase})", "whole step vs 8B step x kernel-table ratio", pred, pseudo)
            for name, phase, pred, pseudo in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR", "../shared/data"))
    ap.add_argument("--calibration", default=None)
    args = ap.parse_args()
    d = Path(args.data_dir)
    cal = Path(args.calibration) if args.calibration else d.parent / "calibration/h100-sxm_llama3-8b_steps.csv"
    print("| data set | what is compared | n | MAPE | median APE | max APE | geo-mean bias |")
    print("|---|---|---|---|---|---|---|")
    rows: list[str] = []
    if cal.exists():
        rows += shared_h100(cal)
    for fn in (heldout_transfer, llmservingsim, vidur, aiconfigurator_gemm, aiconfigurator_attention, splitwise, distserve):
        rows += fn(d)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
