"""Simulator speed: simulated requests per wall-second (one process, one core).

Runs the 10,000-GPU scenario with 100- and 4,000-token outputs (cost per request must not
grow with output length), the 12-instance paper scenario (nor with the number of
instances), and the Mooncake replay when the data directory is available.

    python benchmarks/sim_speed.py [--requests 100000] [--data-dir ../shared/data]

Figures count ``Simulator.run()`` only (its summary included); building the workload is not
timed. ``req/s`` is wall-clock, ``req/s cpu`` process CPU time (less sensitive to other load on
a shared machine; quote the load average with either).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim import Simulator


def measure(name: str, n: int, data_dir: Path | None = None, overrides: dict | None = None,
            repeats: int = 3) -> dict:
    """Best of ``repeats`` runs (the machine is shared; the best run is the least disturbed)."""
    sc = load_scenario(name, overrides)
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        sim = Simulator(sc, n_requests=n, data_dir=data_dir)
        t1, c1 = time.perf_counter(), time.process_time()
        sim.run()
        t2, c2 = time.perf_counter(), time.process_time()
        row = {"build_s": t1 - t0, "run_s": t2 - t1, "cpu_s": c2 - c1, "requests": len(sim.requests),
               "events": sim.events_processed, "gpus": sc.total_gpus,
               "instances": sum(c.instances for c in sc.clusters)}
        if best is None or row["run_s"] < best["run_s"]:
            best = row
    best["req_per_s"] = best["requests"] / best["run_s"]
    best["req_per_cpu_s"] = best["requests"] / best["cpu_s"]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR"))
    args = ap.parse_args()
    data_dir = Path(args.data_dir) if args.data_dir else None
    cases = [
        ("scale_10k_gpu", "100-token outputs", {"workload.output_tokens.value": 100}),
        ("scale_10k_gpu", "1,024-token outputs", None),
        ("scale_10k_gpu", "4,000-token outputs", {"workload.output_tokens.value": 4000}),
        ("paper/prfaas_pd", "12 instances", None),
    ]
    if data_dir is not None:
        cases.append(("mooncake_conversation", "trace replay, prefix caches", None))
    print(f"{'scenario':<24} {'case':<30} {'GPUs':>6} {'inst':>5} {'requests':>9} {'events/req':>10} {'req/s':>9} {'req/s cpu':>9}")
    for name, label, overrides in cases:
        n = args.requests if name != "mooncake_conversation" else min(args.requests, 12031)
        r = measure(name, n, data_dir, overrides, args.repeats)
        print(f"{name:<24} {label:<30} {r['gpus']:>6} {r['instances']:>5} {r['requests']:>9} "
              f"{r['events'] / r['requests']:>10.1f} {r['req_per_s']:>9,.0f} {r['req_per_cpu_s']:>9,.0f}")


if __name__ == "__main__":
    main()
