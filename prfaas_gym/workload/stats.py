"""Summary statistics of a built workload (for the CLI and notebooks)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from prfaas_gym.workload.request import Request


def workload_stats(reqs: Sequence[Request]) -> dict[str, Any]:
    """Count, span, mean rate and length percentiles of ``reqs`` (plain floats and ints).

    Keys: ``count``, ``duration_s`` (first to last arrival known up front: closed-loop
    follow-up turns, timed by the simulator, are left out), ``rate_rps`` (``(N-1)/duration``),
    ``input_mean``, ``input_p50``, ``input_p90``, ``input_p99``, ``output_mean``, ``output_p50``,
    ``output_p90``, ``output_p99``, ``sessions`` (distinct session ids, 0 if none), and
    ``block_reuse`` (share of hash-id blocks seen in an earlier request; ``nan`` without hash ids).
    """
    n = len(reqs)
    out: dict[str, Any] = {"count": n}
    if n == 0:
        out |= {"duration_s": 0.0, "rate_rps": math.nan}
        out |= {f"{k}_{s}": math.nan for k in ("input", "output") for s in ("mean", "p50", "p90", "p99")}
        return out | {"sessions": 0, "block_reuse": math.nan}
    t = np.fromiter((r.arrival_s for r in reqs), dtype=np.float64, count=n)
    t = t[np.isfinite(t)]  # closed-loop follow-up turns are timed by the simulator
    span = float(t.max() - t.min()) if t.size else 0.0
    out["duration_s"] = span
    out["rate_rps"] = (n - 1) / span if span > 0 else math.nan
    for name, attr in (("input", "input_tokens"), ("output", "output_tokens")):
        v = np.fromiter((getattr(r, attr) for r in reqs), dtype=np.float64, count=n)
        out[f"{name}_mean"] = float(v.mean())
        for q in (50, 90, 99):
            out[f"{name}_p{q}"] = float(np.percentile(v, q))
    out["sessions"] = len({r.session_id for r in reqs if r.session_id >= 0})
    if any(r.hash_ids is None for r in reqs):
        out["block_reuse"] = math.nan
    else:
        seen: set[int] = set()
        total = hits = 0
        for r in reqs:
            ids = r.hash_ids or ()
            total += len(ids)
            hits += sum(1 for h in ids if h in seen)
            seen.update(ids)
        out["block_reuse"] = hits / total if total else math.nan
    return out
