"""Fit the default think-time distribution of causal multi-turn sessions to the Mooncake trace.

The Mooncake conversation trace (Kimi, FAST'25) has no session ids, but its hash ids chain: a
follow-up turn's prompt holds the previous turn's prompt, so the previous turn's full blocks
are a prefix of the follow-up's hash ids (`prfaas_gym.workload.sessions.infer_parents`). For
every follow-up this script takes the gap from its parent's arrival to its own arrival, and
subtracts the parent's service time as the paper's serving of the 1T model would have it
(output tokens x 25 ms TPOT; the trace has no timings): what remains is the user's think time,
from reading the reply to sending the next turn. It fits a log-normal to those think times by
maximum likelihood on the logs and prints the figures cited in
``prfaas_gym/workload/sessions.py`` (``THINK_TIME_MU``/``THINK_TIME_SIGMA``).

    python benchmarks/fit_think_time.py [--data-dir ../shared/data]

Caveats: the trace covers one hour, so gaps longer than the remaining time are censored (the
fitted tail is a lower bound); timestamps are quantised to ~3 s slots.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from prfaas_gym.workload.sessions import infer_parents
from prfaas_gym.workload.traces import read_mooncake

TPOT_S = 0.025  # the paper's decode step at BS_max = 20; the trace records no service times
MIN_THINK_S = 1.0  # quantisation (3 s slots) makes a few gaps shorter than the service estimate


def fit(path: Path) -> dict:
    """Think-time statistics and the log-normal MLE for the trace at ``path``."""
    cols = read_mooncake(path)
    parent = infer_parents(cols.hash_ids or [], cols.input_tokens.tolist())
    child = np.flatnonzero(parent >= 0)
    par = parent[child]
    gap = cols.arrival_s[child] - cols.arrival_s[par]
    service = cols.output_tokens[par] * TPOT_S
    think = np.maximum(gap - service, MIN_THINK_S)
    logs = np.log(think)
    q = lambda x: [round(float(v), 1) for v in np.percentile(x, [10, 50, 90])]  # noqa: E731
    return {
        "requests": len(cols),
        "follow_ups": int(child.size),
        "gap_p10_p50_p90_s": q(gap),
        "think_p10_p50_p90_s": q(think),
        "mu": round(float(logs.mean()), 4),
        "sigma": round(float(logs.std(ddof=1)), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PRFAAS_DATA_DIR", "../shared/data")))
    args = ap.parse_args()
    res = fit(args.data_dir / "mooncake" / "conversation_trace.jsonl")
    for k, v in res.items():
        print(f"{k}: {v}")
    mu, sigma = res["mu"], res["sigma"]
    fitted = np.exp(mu + sigma * np.array([-1.2816, 0.0, 1.2816]))
    print(f"log-normal p10/p50/p90: {np.round(fitted, 1).tolist()} s, mean {np.exp(mu + sigma**2 / 2):.1f} s")


if __name__ == "__main__":
    main()
