"""Before/after of causal sessions and of the fitted decode step, each alone, on bursty_fluctuating.

Four variants of the scenario, paired by seed (same conversations under every policy):

* ``before``: open-loop turns and a constant 25 ms decode step (the scenario until #11);
* ``sessions``: causal (closed-loop) turns alone, decode still constant;
* ``decode``: the fitted batch- and context-dependent decode step alone, turns still open-loop;
* ``both``: the scenario as shipped.

    python benchmarks/sessions_decode_effect.py [--seeds 0 1 2] [--requests 2000]

Prints a Markdown table per metric (mean over seeds) for docs/simulation.md.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from prfaas_gym.api import build_simulator
from prfaas_gym.scenario import load_scenario

SCENARIO = "bursty_fluctuating"
POLICIES = ("prfaas-threshold", "mooncake-conductor", "least-loaded", "prfaas-adaptive")
CONSTANT_DECODE = {"clusters[1].step_time": {"backend": "polynomial", "prefill_s": [0.4691, 1.3004e-4, 2.940e-10],
                                             "decode_step_s": 0.025}}
OPEN_LOOP = {"workload.prefix.loop": "open"}
VARIANTS = {
    "before": {**OPEN_LOOP, **CONSTANT_DECODE},
    "sessions": CONSTANT_DECODE,
    "decode": OPEN_LOOP,
    "both": {},
}
METRICS = ("slo_attainment", "goodput_rps", "rejected", "ttft_p90_s", "tpot_p50_s", "sim_time_s")


def measure(seeds: list[int], n: int) -> dict:
    """``{(variant, policy): {metric: mean over seeds}}`` plus the share of open-loop follow-ups
    that arrived before their parent ended."""
    out = {}
    for variant, ov in VARIANTS.items():
        sc = load_scenario(SCENARIO, ov)
        for pol in POLICIES:
            rows = []
            for seed in seeds:
                sim = build_simulator(sc, policy=pol, seed=seed, n_requests=n)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = sim.run()
                reqs = sim.requests
                follow = [r for r in reqs if r.parent_rid >= 0 and r.reject_reason != "abandoned"]
                early = sum(1 for r in follow if not r.arrival_s >= reqs[r.parent_rid].finish_s)
                rows.append([s[m] for m in METRICS] + [early / max(len(follow), 1)])
            out[(variant, pol)] = dict(zip(METRICS + ("early_turns",), np.mean(rows, axis=0).tolist()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args()
    res = measure(args.seeds, args.requests)
    fmt = {"slo_attainment": "{:.3f}", "goodput_rps": "{:.3f}", "rejected": "{:.0f}", "ttft_p90_s": "{:.1f}",
           "tpot_p50_s": "{:.4f}", "sim_time_s": "{:.0f}", "early_turns": "{:.0%}"}
    print(f"seeds {args.seeds}, {args.requests} requests, mean over seeds\n")
    print("| policy | metric | " + " | ".join(VARIANTS) + " |")
    print("|---|---|" + "---|" * len(VARIANTS))
    for pol in POLICIES:
        for m in fmt:
            cells = [fmt[m].format(res[(v, pol)][m]) for v in VARIANTS]
            print(f"| {pol} | {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
