"""Before/after figures for the prefix-reuse and prefill-batching semantics (docs/simulation.md).

Runs each policy on each scenario and seed and prints one markdown row per (scenario, policy):
computed prefill tokens (prompt tokens prefill actually computed, summed over requests that
started prefill), goodput, SLO attainment, TTFT p50/p90, TPOT p90 and rejections (means over
the seeds).

    python benchmarks/cache_semantics.py --seeds 0 1 2 [--set "clusters[0].prefill.max_batch=1" ...]

``--set`` applies scenario overrides to every scenario (the loader's dotted syntax), so one
checkout measures a mechanism switched on and off.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's package and scenarios, wherever run from

POLICIES = ("prfaas-threshold", "least-loaded", "prfaas-adaptive", "mooncake-conductor")
SCENARIOS = ("envs/bursty_fluctuating.yaml", "envs/mooncake_conversation.yaml")


def _parse_set(items: list[str]) -> dict:
    import yaml

    return {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in items)}


def run(scenario: str, policy: str, seed: int, overrides: dict, data_dir: str | None) -> dict:
    """One run's figures."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.scenario import load_scenario

    sc = load_scenario(ROOT / scenario, overrides or None)
    sim = build_simulator(sc, policy, seed=seed, data_dir=data_dir)
    s = sim.run()
    started = [r for r in sim.requests if not math.isnan(r.prefill_start_s)]
    s["computed_prefill_tokens"] = float(sum(r.input_tokens - r.cached_tokens for r in started))
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--policies", nargs="+", default=list(POLICIES))
    ap.add_argument("--scenarios", nargs="+", default=list(SCENARIOS))
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR", "/work/shared/data"))
    args = ap.parse_args()
    overrides = _parse_set(args.set)
    print("| scenario | policy | computed prefill Mtok | goodput rps | attainment | TTFT p50 s | TTFT p90 s "
          "| TPOT p90 ms | rejected |")
    print("|---|---|---|---|---|---|---|---|---|")
    for scenario in args.scenarios:
        if "mooncake" in scenario and not (Path(args.data_dir) / "mooncake").is_dir():
            continue
        for policy in args.policies:
            rows = [run(scenario, policy, s, overrides, args.data_dir) for s in args.seeds]

            def m(key: str) -> float:
                return float(np.mean([r[key] for r in rows]))

            print(f"| {os.path.basename(scenario)} | {policy} | {m('computed_prefill_tokens') / 1e6:.1f} | "
                  f"{m('goodput_rps'):.3f} | {m('slo_attainment'):.3f} | {m('ttft_p50_s'):.1f} | "
                  f"{m('ttft_p90_s'):.1f} | {1e3 * m('tpot_p90_s'):.1f} | {m('rejected'):.0f} |", flush=True)


if __name__ == "__main__":
    main()
