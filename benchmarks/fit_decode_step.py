"""Fit batch- and context-dependent decode coefficients of the 1T hybrid model on 8xH20.

The polynomial step-time back-end models one decode step as
``decode_step_s + decode_s_per_seq * batch + decode_s_per_context_token * context`` (context =
tokens summed over the batch). This script fits the three coefficients by least squares to the
project's roofline (`prfaas_gym.perf.roofline.RooflineModel`, the same model, int4 weights, one
8xH20 instance) over batches 1..20 and per-sequence contexts 1K..64K, then scales them by one
factor so that a full batch at the paper's workload gives the paper's step: 25 ms at
BS_max = 20 with ~27.5K tokens of context per sequence (mean input ~27K of the truncated
log-normal, plus half of the 1,024 output tokens). The roofline sets the shape, the paper
the level. It prints the coefficients that the non-paper scenarios of the 1T hybrid use
(docs/step_time_model.md, "Decode of the 1T hybrid").

    python benchmarks/fit_decode_step.py
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from prfaas_gym.perf.roofline import RooflineModel
from prfaas_gym.profiles import get_hardware, get_model

ANCHOR_BATCH = 20
ANCHOR_CONTEXT_PER_SEQ = 27_500
ANCHOR_STEP_S = 0.025
BATCHES = range(1, 21)
CONTEXTS = (1024, 2048, 4096, 8192, 16384, 32768, 65536)


def fit() -> dict:
    """Least-squares fit to the roofline, anchored at the paper's full-batch step."""
    model = replace(get_model("prfaas-1t-hybrid"), weight_dtype="int4")  # as the scenarios load it
    roof = RooflineModel(model, get_hardware("h20"), 8)
    rows, y = [], []
    for b in BATCHES:
        for c in CONTEXTS:
            rows.append((1.0, b, b * c))
            y.append(roof.decode_s(b, b * c))
    a = np.array(rows, dtype=float)
    t = np.array(y)
    coef, *_ = np.linalg.lstsq(a, t, rcond=None)
    fitted = a @ coef
    rel = np.abs(fitted - t) / t
    anchor_ctx = ANCHOR_BATCH * ANCHOR_CONTEXT_PER_SEQ
    at_anchor = float(coef @ (1.0, ANCHOR_BATCH, anchor_ctx))
    scale = ANCHOR_STEP_S / at_anchor
    c = coef * scale
    return {
        "roofline_at_anchor_s": roof.decode_s(ANCHOR_BATCH, anchor_ctx),
        "fit_at_anchor_s": at_anchor,
        "scale": scale,
        "fit_max_rel_err": float(rel.max()),
        "decode_step_s": float(c[0]),
        "decode_s_per_seq": float(c[1]),
        "decode_s_per_context_token": float(c[2]),
        "table": [(b, ctx, roof.decode_s(b, b * ctx), float(c @ (1.0, b, b * ctx)))
                  for b in (1, 5, 10, 20) for ctx in (2048, 32768)],
    }


def main() -> None:
    res = fit()
    print(f"roofline at batch {ANCHOR_BATCH} x {ANCHOR_CONTEXT_PER_SEQ} tokens: "
          f"{res['roofline_at_anchor_s'] * 1e3:.2f} ms; least-squares fit there {res['fit_at_anchor_s'] * 1e3:.2f} ms "
          f"(max relative error of the fit {res['fit_max_rel_err']:.1%}); scaled by {res['scale']:.4f}")
    print(f"decode_step_s: {res['decode_step_s']:.3e}, decode_s_per_seq: {res['decode_s_per_seq']:.3e}, "
          f"decode_s_per_context_token: {res['decode_s_per_context_token']:.3e}")
    print("batch  ctx/seq  roofline_ms  shipped_ms")
    for b, ctx, roof, ours in res["table"]:
        print(f"{b:5d}  {ctx:7d}  {roof * 1e3:11.2f}  {ours * 1e3:10.2f}")


if __name__ == "__main__":
    main()
