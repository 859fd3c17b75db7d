"""Scale-out speed: a fixed ``compare`` serial vs ``--workers 2`` vs Ray (local, 2 CPUs), the
Ray per-task overhead, and Tune trials per hour.

The fixed comparison is every heuristic router (8) x 10 paired seeds on ``paper/prfaas_pd``
(``--requests`` per run). Each round runs the three backends back to back and the speed-ups
are ratios *within* a round (the machine is shared: absolute times drift, ratios less so);
the report gives every round and the best one. Every backend's result must equal the serial
one (checked). Ray figures exclude ``ray.init`` (reported separately: a one-off per session);
the local pool's start-up is included (the CLI pays it on every call).

Per-task overhead: ``--overhead-tasks`` empty tasks on each parallel backend; the cost of
one task is ``wall x CPUs / tasks``. A task shorter than a few times that is not worth
sending (docs/scale_out.md).

    python benchmarks/scale_out.py [--requests 1500] [--rounds 2] [--tune]

Needs the ``ray`` extra for the Ray rows (skipped without it).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from prfaas_gym.evaluation import compare_policies
from prfaas_gym.parallel import Backend, map_tasks, shutdown_pools
from prfaas_gym.policies.registry import ROUTERS

SCENARIO = "paper/prfaas_pd"


def _noop(task: Any, data_dir: Any = None) -> Any:
    return task


def timed_compare(backend: Backend, n_requests: int, seeds: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    comp = compare_policies(SCENARIO, sorted(ROUTERS), seeds=seeds, n_requests=n_requests, backend=backend)
    return time.perf_counter() - t0, comp.to_json()


def overhead(backend: Backend, n: int, cpus: int) -> float:
    """Seconds of wall x CPUs per empty task (warm workers)."""
    map_tasks(_noop, list(range(4 * cpus)), backend)  # warm up
    t0 = time.perf_counter()
    map_tasks(_noop, list(range(n)), backend)
    return (time.perf_counter() - t0) * cpus / n


def tune_trials_per_hour(cpus: int) -> dict:
    """A 4-trial ASHA sweep of the routing pipeline on a smoke budget, 2 trials at a time."""
    import tempfile

    from prfaas_gym.tune import SweepSpec, run_sweep

    spec = SweepSpec(
        base={"smoke": True, "vec_env": "dummy", "n_envs": 1, "total_timesteps": 1024, "eval_freq": 256,
              "checkpoint_freq": 0},
        search={"learning_rate": {"loguniform": [1e-4, 1e-3]}, "ent_coef": {"choice": [0.0, 0.01]}},
        num_samples=4, asha={"grace_period": 2, "reduction_factor": 2}, max_concurrent_trials=cpus,
    )
    with tempfile.TemporaryDirectory() as out:
        doc = run_sweep(spec, out, cpus=cpus)
    return {"trials": len(doc["trials"]), "wall_s": doc["wall_time_s"], "trials_per_hour": doc["trials_per_hour"],
            "evaluations": [t["evaluations"] for t in doc["trials"]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1500, help="requests per run")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--overhead-tasks", type=int, default=400)
    ap.add_argument("--tune", action="store_true", help="also measure Tune trials per hour")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        import ray  # noqa: F401

        has_ray = True
    except ImportError:
        has_ray = False
    w = args.workers
    out: dict[str, Any] = {"scenario": SCENARIO, "policies": len(ROUTERS), "seeds": args.seeds,
                           "requests": args.requests, "workers": w, "cpus": os.cpu_count(),
                           "load_avg_start": os.getloadavg()[0], "rounds": []}
    if has_ray:
        from prfaas_gym.ray_backend import init_ray

        t0 = time.perf_counter()
        init_ray(Backend("ray", workers=w))
        out["ray_init_s"] = time.perf_counter() - t0
    for _ in range(args.rounds):
        shutdown_pools()  # the local pool's start-up counts, as in one CLI call
        serial_s, ref = timed_compare(Backend(), args.requests, args.seeds)
        local_s, doc = timed_compare(Backend(workers=w), args.requests, args.seeds)
        assert doc == ref, "local workers changed the result"
        row = {"serial_s": serial_s, "local_s": local_s, "local_speedup": serial_s / local_s}
        if has_ray:
            ray_s, doc = timed_compare(Backend("ray", workers=w), args.requests, args.seeds)
            assert doc == ref, "Ray changed the result"
            row.update(ray_s=ray_s, ray_speedup=serial_s / ray_s)
        row["load_avg"] = os.getloadavg()[0]
        out["rounds"].append(row)
        print(json.dumps(row), flush=True)
    runs = len(ROUTERS) * args.seeds
    out["task_s_serial"] = min(r["serial_s"] for r in out["rounds"]) / runs
    out["overhead_local_s"] = overhead(Backend(workers=w), args.overhead_tasks, w)
    if has_ray:
        out["overhead_ray_s"] = overhead(Backend("ray", workers=w), args.overhead_tasks, w)
        if args.tune:
            out["tune"] = tune_trials_per_hour(w)
    best = max(out["rounds"], key=lambda r: r["local_speedup"])
    out["best_local_speedup"] = best["local_speedup"]
    if has_ray:
        out["best_ray_speedup"] = max(r["ray_speedup"] for r in out["rounds"])
    if args.json:
        print(json.dumps(out))
        return
    print(f"{len(ROUTERS)} policies x {args.seeds} seeds x {args.requests} requests on {SCENARIO} "
          f"({runs} runs, {out['task_s_serial']:.2f} s each serial); {os.cpu_count()} CPUs")
    for i, r in enumerate(out["rounds"]):
        line = (f"round {i + 1}: serial {r['serial_s']:.1f} s | --workers {w} {r['local_s']:.1f} s "
                f"(x{r['local_speedup']:.2f})")
        if has_ray:
            line += f" | ray {r['ray_s']:.1f} s (x{r['ray_speedup']:.2f})"
        print(line + f"  load {r['load_avg']:.1f}")
    print(f"per-task overhead: local pool {out['overhead_local_s'] * 1e3:.2f} ms"
          + (f", Ray {out['overhead_ray_s'] * 1e3:.2f} ms; ray.init {out['ray_init_s']:.1f} s" if has_ray else ""))
    if "tune" in out:
        t = out["tune"]
        print(f"Tune: {t['trials']} trials in {t['wall_s']:.0f} s = {t['trials_per_hour']:.0f} trials/h "
              f"(evaluations per trial {t['evaluations']})")


if __name__ == "__main__":
    main()
