"""``prfaas-gym bound``: per-seed goodput upper bounds (fluid LP), optionally against policies."""

from __future__ import annotations

import argparse
from typing import Any

from prfaas_gym.commands.common import (
    add_data_dir_argument, add_seeded_runs_arguments, check_run_args, dump_json, fmt, progress_bar,
    resolve_data_dir,
)
from prfaas_gym.evaluation.bound import ROLE_MODES
from prfaas_gym.parallel import add_backend_arguments, backend_from_args, map_tasks


def add_bound_parser(sub) -> argparse.ArgumentParser:
    """Register ``bound``."""
    p = sub.add_parser(
        "bound", help="upper bound on any policy's goodput, per seed (fluid LP)",
        description="Solve a fluid LP relaxation of each seed's workload: no policy can make more "
                    "requests meet both SLOs than its optimum (see docs/policies.md, 'How far can a "
                    "policy go'). With --policies, also run those policies on the same seeds and "
                    "report bound / policy goodput (the headroom left).")
    add_seeded_runs_arguments(p)
    p.add_argument("--rate", type=float, default=None, help="arrival rate, requests/s")
    p.add_argument("--slot-s", type=float, default=1.0, help="LP time slot in seconds (default 1)")
    p.add_argument("--roles", choices=ROLE_MODES, default="initial",
                   help="initial: PD clusters keep their starting prefill/decode split (routers with "
                        "the static provisioner); any: every PD instance may serve either role")
    p.add_argument("--policies", default=None, help="comma-separated policy specs to measure against the bound")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="also draw bound and policy goodput per seed to this image (needs matplotlib)")
    add_data_dir_argument(p)
    add_backend_arguments(p)
    p.set_defaults(func=run_bound)
    return p


def bound_task(task: tuple, data_dir: Any = None) -> dict:
    """One unit of ``bound``: ``("lp", scenario, seed, workload, slot_s, roles)`` -> the seed's
    bound (``GoodputBound.as_dict``), ``("run", scenario, seed, workload, policy)`` -> the
    policy's summary."""
    from prfaas_gym.evaluation.bound import goodput_upper_bound
    from prfaas_gym.evaluation.compare import run_policy

    kind, scenario, seed, workload = task[:4]
    if kind == "lp":
        return goodput_upper_bound(scenario, seed, slot_s=task[4], roles=task[5], data_dir=data_dir,
                                   **workload).as_dict()
    return run_policy(scenario, task[4], seed, data_dir=data_dir, **workload)[0]


def run_bound(args: argparse.Namespace) -> int:
    """Handler of ``bound``."""
    from prfaas_gym.evaluation.stats import mean_ci
    from prfaas_gym.scenario import load_scenario

    check_run_args(args)
    if not args.slot_s > 0:
        raise ValueError("--slot-s: must be > 0")
    policies = [s.strip() for s in (args.policies or "").split(",") if s.strip()]
    scenario = load_scenario(args.scenario)  # closed-loop sessions as they are (bound.arrival_windows)
    backend = backend_from_args(args, resolve_data_dir(args.data_dir))
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    workload = dict(n_requests=args.requests, rate_rps=args.rate, duration_s=args.duration_s)
    tasks: list[tuple] = []
    for seed in seeds:  # the serial order: each seed's LP, then its policy runs
        tasks.append(("lp", scenario, seed, workload, args.slot_s, args.roles))
        tasks += [("run", scenario, seed, workload, pol) for pol in policies]
    update, close = progress_bar(len(tasks), f"bound {scenario.name}", unit="run")
    try:
        results = iter(map_tasks(bound_task, tasks, backend, progress=update))
    finally:
        close()
    rows = []
    for _seed in seeds:
        row = next(results)
        for pol in policies:
            summary = next(results)
            goodput = summary["goodput_rps"]
            row[f"{pol}:slo_attainment"] = summary["slo_attainment"]
            row[f"{pol}:goodput_rps"] = goodput
            row[f"{pol}:headroom"] = row["goodput_rps_max"] / goodput if goodput > 0 else None
        rows.append(row)
    doc = {
        "scenario": scenario.name, "seeds": seeds, "slot_s": args.slot_s, "roles": args.roles,
        "rows": rows,
        "attainment_max": mean_ci([r["attainment_max"] for r in rows]),
        "goodput_rps_max": mean_ci([r["goodput_rps_max"] for r in rows]),
        "headroom": {p: mean_ci([r[f"{p}:headroom"] for r in rows]) for p in policies},
    }
    if args.plot:
        _plot(doc, args.plot)
    print(dump_json(doc) if args.json else format_bound(doc, policies))
    return 0


def _plot(doc: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("--plot: needs matplotlib (pip install 'prfaas-gym[notebooks]')") from None
    from pathlib import Path

    from prfaas_gym.evaluation.plots import bound_bars

    fig, ax = plt.subplots(figsize=(7, 3.5))
    bound_bars(doc, ax)
    ax.set_title(f"{doc['scenario']}: goodput vs the fluid upper bound", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_bound(doc: dict, policies: list[str]) -> str:
    """One line per seed, then the mean headroom per policy."""
    title = f"{doc['scenario']}  goodput upper bound (fluid LP, {doc['slot_s']:g} s slots, roles={doc['roles']})"
    head = f"{'seed':>6} {'requests':>8} {'good<=':>8} {'hopeless':>8} {'attain<=':>9} {'goodput<=':>10}"
    head += "".join(f" {p[:24]:>24}" for p in policies)
    lines = [title, "-" * len(title), head]
    for r in doc["rows"]:
        line = (f"{r['seed']:>6} {r['requests']:>8} {r['good_max']:>8.1f} {r['hopeless']:>8} "
                f"{fmt(r['attainment_max']):>9} {fmt(r['goodput_rps_max']):>10}")
        line += "".join(f" {fmt(r[f'{p}:goodput_rps']) + ' (x' + fmt(r[f'{p}:headroom']) + ')':>24}"
                        for p in policies)
        lines.append(line)
    for p in policies:
        h = doc["headroom"][p]
        lines.append(f"bound / {p}: {fmt(h['mean'])} [{fmt(h['ci95'][0])}, {fmt(h['ci95'][1])}] (mean over seeds, 95% CI)")
    return "\n".join(lines)
