"""Held-out checks of the H100 roofline on model shapes it was not calibrated on.

Usage: python benchmarks/perf_heldout.py [--data-dir ../shared/data] [--calibration FILE.csv]

Two checks (docs/step_time_model.md, "Held-out validation"):

1. **Kernel-table transfer.** The only same-procedure step measurements are Llama-3-8B. For an
   unseen shape S (llama3-3b, qwen2.5-14b, llama3-70b TP2/4/8) and every case c of the 8B file
   (same batch, tokens, context) a pseudo-measurement is built from the real 8B time and measured
   H100 kernels:

       pseudo_S(c) = measured_8B(c) * K_S(c) / K_8B(c)

   where ``K`` is a synthetic whole step: the per-layer GEMMs of that shape at their exact
   (m, n, k) read from the aiconfigurator H100 GEMM table (interpolated in n, k), the attention
   core from the aiconfigurator H100 context (prefill) / generation (decode) attention tables at
   that head count, the LM head GEMM, NCCL all-reduces (TP) from the aiconfigurator NCCL table,
   plus the model's own non-kernel terms (element-wise traffic, fixed overheads) for S. The
   roofline is then scored against ``pseudo_S``. This tests the shape scaling of the model
   (GEMM shape efficiency, attention head counts, layer counts), anchored on real step times.
   A sensitivity row re-scales the non-kernel part in ways the 8B file cannot tell apart.
2. **Leave-out on the 8B file.** Re-fit the step terms (``perf calibrate``) on a subset and score
   the rest: prefill batch-1 -> batched rows; short prompts/contexts -> long ones; small decode
   batches -> large ones.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
from pathlib import Path

import numpy as np

from prfaas_gym.perf.aic_tables import AttnTable, CommTable, GemmTable
from prfaas_gym.perf.calibrate import calibrate, phase_errors, predict_ms
from prfaas_gym.perf.cases import StepCase, case_seconds, read_cases
from prfaas_gym.perf.roofline import RooflineModel
from prfaas_gym.profiles import get_hardware, get_model

SHAPES = (("llama3-3b", 1), ("qwen2.5-14b", 1), ("llama3-70b", 2), ("llama3-70b", 4), ("llama3-70b", 8))


@dataclasses.dataclass
class Tables:
    gemm: GemmTable
    attn: AttnTable
    nccl: CommTable


def kernel_step_ms(tab: Tables, rm: RooflineModel, case: StepCase, ew_scale: float = 1.0,
                   host_per_layer: bool = True) -> float:
    """Synthetic whole step (ms): measured kernels of the shape + the model's non-kernel terms
    (element-wise kernels, fixed overheads, host-launch floor of eager prefill)."""
    m = rm.model
    g = rm.gpus
    (grp,) = m.layers
    a, f = grp.attention, grp.ffn
    h, L, hd = m.hidden_size, grp.count, a.head_dim
    heads, kvh = a.num_heads // g, max(a.num_kv_heads // g, 1)
    rows = case.batch * (case.tokens if case.phase == "prefill" else 1)
    gem = (tab.gemm(rows, (a.num_heads + 2 * a.num_kv_heads) * hd / g, h) + tab.gemm(rows, h, a.num_heads * hd / g)
           + tab.gemm(rows, 2 * f.intermediate_size / g, h) + tab.gemm(rows, h, f.intermediate_size / g))
    if case.phase == "prefill":
        att = tab.attn.context(case.batch, case.tokens, heads, kvh)
    else:
        att = tab.attn.generation(case.batch, case.context, heads, kvh)
    comm = 2 * tab.nccl(g, rows * h) if g > 1 else 0.0
    lm = tab.gemm(case.batch, m.vocab_size / g, h)
    e = rm.eff
    small = sum(c * max(e.decode_layer_overhead_s, ew_scale * e.elementwise_factor * rows * b / rm._bw)
                for c, b in rm._ew_groups)
    gpu = L * (gem + att + comm) + lm + (e.step_overhead_s + small) * 1e3
    if case.phase == "decode":
        return gpu
    host = e.step_overhead_s + (L if host_per_layer else 32) * e.layer_overhead_s
    return max(gpu, host * 1e3 + gpu / L)


def transfer_pairs(tab: Tables, cal: list[StepCase],
                   hw_name: str = "h100-sxm") -> list[tuple[str, str, list[float], list[float]]]:
    """(shape, phase, predicted ms, pseudo-measured ms) for every unseen shape and phase."""
    hw = get_hardware(hw_name)
    base = RooflineModel(get_model("llama3-8b"), hw, 1, engine="eager")
    k8 = [kernel_step_ms(tab, base, c) for c in cal]
    out = []
    for name, g in SHAPES:
        rm = RooflineModel(get_model(name), hw, g, engine="eager")
        for phase in ("prefill", "decode"):
            pred, pseudo = [], []
            for c, kb in zip(cal, k8):
                if c.phase != phase:
                    continue
                cs = dataclasses.replace(c, model=name, gpus=g)
                pseudo.append(c.measured_ms * kernel_step_ms(tab, rm, cs) / kb)
                pred.append(case_seconds(rm, cs) * 1e3)
            out.append((f"{name} TP{g}", phase, pred, pseudo))
    return out


def load_tables(d: Path) -> Tables:
    aic = d / "aiconfigurator/h100_sxm"
    return Tables(GemmTable(aic / "gemm/vllm/0.24.0/gemm_perf.csv"),
                  AttnTable(aic / "attention/vllm/0.24.0/context_attention_perf.csv",
                            aic / "attention/vllm/0.24.0/generation_attention_perf.csv"),
                  CommTable(aic / "comm/nccl/2.29.2/nccl_perf.csv"))


def transfer_check(tab: Tables, cal: list[StepCase]) -> list[str]:
    out = []
    for name, phase, pred, pseudo in transfer_pairs(tab, cal):
        errs = np.asarray(pred) / np.asarray(pseudo) - 1.0
        e = np.abs(errs) * 100
        out.append(f"| {name} | {phase} | {len(e)} | {e.mean():.1f}% | {e.max():.1f}% | {errs.mean() * 100:+.1f}% |")
    return out


def sensitivity(tab: Tables, cal: list[StepCase]) -> list[str]:
    """How much the pseudo-measurements move under non-kernel scalings the 8B file cannot tell apart."""
    hw = get_hardware("h100-sxm")
    base = RooflineModel(get_model("llama3-8b"), hw, 1, engine="eager")
    out = []
    for name, g in SHAPES[:2]:
        rm = RooflineModel(get_model(name), hw, g, engine="eager")
        h_ratio = rm.model.hidden_size / base.model.hidden_size
        ew_ratio = rm._elementwise_per_token / rm.model.num_layers / (base._elementwise_per_token / 32)
        alts = (("element-wise bytes ~ h only (not 84h+20(q+k)+10f)", dict(ew_scale=h_ratio / ew_ratio)),
                ("host launch floor per step (not per layer)", dict(host_per_layer=False)))
        for label, kw in alts:
            for phase in ("prefill", "decode"):
                d = []
                for c in cal:
                    if c.phase != phase:
                        continue
                    cs = dataclasses.replace(c, model=name, gpus=g)
                    a = kernel_step_ms(tab, rm, cs)
                    b = kernel_step_ms(tab, rm, cs, **kw)
                    d.append(abs(b / a - 1) * 100)
                out.append(f"| {name} | {phase} | {label} | {np.mean(d):.1f}% | {np.max(d):.1f}% |")
    return out


LOO_SPLITS = {
    "prefill batch-1 -> batched; decode ctx<=2048 -> ctx>=8192": (
        lambda c: (c.phase == "prefill" and c.batch == 1) or (c.phase == "decode" and c.context <= 2048)),
    "prefill <=4K tok/step -> >4K; decode batch<=32 -> batch>=64": (
        lambda c: (c.phase == "prefill" and c.batch * c.tokens <= 4096) or (c.phase == "decode" and c.batch <= 32)),
    "prefill >=1K tok -> <1K; decode ctx>=2048 -> 512": (
        lambda c: (c.phase == "prefill" and c.batch * c.tokens >= 1024) or (c.phase == "decode" and c.context >= 2048)),
}


def leave_out(cal: list[StepCase]) -> list[str]:
    hw = get_hardware("h100-sxm")
    out = []
    for name, train_of in LOO_SPLITS.items():
        train = [c for c in cal if train_of(c)]
        test = [c for c in cal if not train_of(c)]
        res = calibrate(train, get_model, hw)
        pred = predict_ms(test, get_model, dataclasses.replace(hw, efficiency=res.efficiency))
        for e in phase_errors(test, pred):
            out.append(f"| {name} | {e.phase} | {e.n} | {e.mape_pct:.1f}% | {e.max_abs_pct:.1f}% |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR", "../shared/data"))
    ap.add_argument("--calibration", default=None)
    ap.add_argument("--skip-loo", action="store_true")
    args = ap.parse_args()
    d = Path(args.data_dir)
    cal_path = Path(args.calibration) if args.calibration else d.parent / "calibration/h100-sxm_llama3-8b_steps.csv"
    cal = read_cases(cal_path, need_measured=True)
    tab = load_tables(d)
    print("Kernel-table transfer (pseudo_S = measured_8B x K_S / K_8B; 8B file's batch/tokens/context):\n")
    print("| shape | phase | n | MAPE | max APE | mean signed |")
    print("|---|---|---|---|---|---|")
    print("\n".join(transfer_check(tab, cal)))
    print("\nSensitivity of the pseudo-measurements to the non-kernel scaling:\n")
    print("| shape | phase | alternative | mean shift | max shift |")
    print("|---|---|---|---|---|")
    print("\n".join(sensitivity(tab, cal)))
    if not args.skip_loo:
        print("\nLeave-out re-calibration on the 8B file (fit on the first set, score the rest):\n")
        print("| split | phase | n test | MAPE | max APE |")
        print("|---|---|---|---|---|")
        print("\n".join(leave_out(cal)))


if __name__ == "__main__":
    main()
