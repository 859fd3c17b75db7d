"""How a shipped policy's result moves when its metrics are fresher or staler than in training.

Runs a benchmark task's test seeds (or its validation seeds with ``--split validation``) with
the policy evaluated at several snapshot staleness values (``SnapshotView``: sample and hold,
plus ``--noise`` multiplicative noise) and a baseline heuristic that reads the simulator's
fresh state, and prints one Markdown row per staleness: the task metric and the paired
ratio to the baseline with its Student-t 95% interval.

    python agents/staleness.py --task prfaas/bursty-v1 --policy trained:routing-bursty \
        --baseline prfaas-adaptive --staleness 0,0.05,0.2,0.5,2
    python agents/staleness.py --task prfaas/diurnal-v1 --policy prfaas-threshold+trained:diurnal-provisioning \
        --baseline prfaas-threshold --staleness 0,0.5,5,30
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any


def _policy_specs(policy: str, scenario: Any, staleness: float, noise: float, seed: int) -> tuple[Any, Any]:
    """(router, provisioner) for ``policy`` with the trained part's metrics view overridden."""
    from prfaas_gym.evaluation.compare import split_policy
    from prfaas_gym.policies import make_provisioner, make_router
    from prfaas_gym.policies.trained import load_provisioner, load_router

    router, prov = split_policy(policy)
    view = {"snapshot_staleness_s": staleness, "snapshot_noise": noise}
    if prov is not None and prov.startswith("trained:"):
        return make_router(router, scenario), load_provisioner(prov, scenario, seed=seed, **view)
    if router.startswith("trained:"):
        return load_router(router, scenario, seed=seed, **view), make_provisioner(prov, scenario)
    raise SystemExit(f"--policy {policy}: no trained:NAME part to evaluate")


def run(task_id: str, policy: str, baseline: str, staleness: list[float], noise: float,
        split: str = "test", seeds: int | None = None, data_dir: str | None = None) -> dict:
    """``{"rows": [{staleness_s, mean, ratio: {mean, ci95}}], "baseline": {...}}``."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.benchmark.tasks import get_task
    from prfaas_gym.evaluation.compare import run_policy
    from prfaas_gym.evaluation.stats import mean_ci
    from prfaas_gym.scenario import load_scenario

    task = get_task(task_id)
    seed_list = list(getattr(task.seeds, split))[:seeds]
    sc = load_scenario(task.scenario)
    metric = task.metric
    if baseline.lstrip().startswith("{"):  # a router mapping with knobs, e.g. a tuned heuristic
        spec = json.loads(baseline)
        spec = {k: (math.inf if v == "inf" else v) for k, v in spec.items()}
        base = [build_simulator(sc, spec, None, seed=s, data_dir=data_dir, **task.load).run()[metric]
                for s in seed_list]
    else:
        base = [run_policy(task.scenario, baseline, s, data_dir=data_dir, **task.load)[0][metric] for s in seed_list]
    rows = []
    for st in staleness:
        vals = []
        for s in seed_list:
            router, prov = _policy_specs(policy, sc, st, noise, s)
            sim = build_simulator(sc, router, prov, seed=s, data_dir=data_dir, **task.load)
            vals.append(sim.run()[metric])
        ratio = mean_ci([v / b if b > 0 else math.nan for v, b in zip(vals, base)])
        rows.append({"staleness_s": st, "noise": noise, "mean": mean_ci(vals)["mean"], "ratio": ratio})
        print(f"| {st:g} | {noise:g} | {rows[-1]['mean']:.4f} | {ratio['mean']:.4f} "
              f"[{ratio['ci95'][0]:.4f}, {ratio['ci95'][1]:.4f}] |", flush=True)
    return {"task": task_id, "policy": policy, "metric": metric, "split": split, "seeds": seed_list,
            "baseline": {"policy": baseline, "mean": mean_ci(base)["mean"]}, "rows": rows}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True)
    p.add_argument("--policy", required=True, help="trained:NAME, or ROUTER+trained:NAME for a provisioner")
    p.add_argument("--baseline", required=True,
                   help='heuristic the ratio is paired against: a spec, or a JSON router mapping with knobs '
                        '(\'{"name": "prfaas-adaptive", "threshold_tokens": 38596}\')')
    p.add_argument("--staleness", default="0,0.05,0.2,0.5,2", help="comma-separated seconds")
    p.add_argument("--noise", type=float, default=0.05, help="multiplicative metric noise (default 0.05)")
    p.add_argument("--split", choices=("test", "validation"), default="test")
    p.add_argument("--seeds", type=int, default=None, help="first N seeds of the split (default: all)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", default=None, help="write the result here")
    a = p.parse_args(argv)
    print(f"{a.task}, {a.split} seeds, baseline {a.baseline}\n\n| staleness (s) | noise | metric | ratio to baseline [95% CI, paired] |\n|---|---|---|---|", flush=True)
    out = run(a.task, a.policy, a.baseline, [float(x) for x in a.staleness.split(",") if x],
              a.noise, a.split, a.seeds, a.data_dir)
    print(f"baseline {a.baseline}: {out['baseline']['mean']:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
    return out


if __name__ == "__main__":
    main()
