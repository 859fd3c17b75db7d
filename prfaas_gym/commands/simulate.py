"""``prfaas-gym simulate SCENARIO``: run one scenario under one policy and summarise it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prfaas_gym.commands.common import (
    add_data_dir_argument, add_trust_pickle_argument, dump_json, fmt, format_table, progress_bar, resolve_data_dir,
)
from prfaas_gym.scenario import DEFAULT_SCENARIO


def add_simulate_parser(sub) -> argparse.ArgumentParser:
    """Register ``simulate``."""
    p = sub.add_parser("simulate", help="simulate a scenario and print its summary",
                       description="Run a scenario under a routing policy and print summary metrics.")
    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help=f"scenario name or YAML path (default: {DEFAULT_SCENARIO})")
    p.add_argument("--policy", default=None, help="router name (default: the scenario's router)")
    p.add_argument("--provisioner", default=None, help="provisioner name (default: the scenario's, else static)")
    p.add_argument("--rate", type=float, default=None, help="target arrival rate, requests/s")
    p.add_argument("--requests", type=int, default=None, help="exactly this many requests enter")
    p.add_argument("--duration-s", type=float, default=None, help="arrivals stop after this simulated time")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario field, e.g. --set router.threshold_tokens=8000")
    p.add_argument("--plan", action="store_true",
                   help="run at the analytical planner's optimum (threshold and P/D split)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--records", default=None, metavar="FILE",
                   help="write per-request records (.csv or .parquet)")
    add_data_dir_argument(p)
    add_trust_pickle_argument(p)
    p.set_defaults(func=run_simulate)
    return p


def parse_overrides(items: list[str]) -> dict:
    """``KEY=VALUE`` strings to a dict, values parsed as YAML scalars."""
    from prfaas_gym.safe_yaml import load_yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = load_yaml(value, f"--set {key.strip()}")
    return out


def run_simulate(args: argparse.Namespace) -> int:
    """Handler of ``simulate``."""
    from prfaas_gym.api import simulate_scenario
    from prfaas_gym.scenario import load_scenario

    if args.requests is not None and args.requests < 1:
        raise ValueError("--requests: must be >= 1")
    if args.rate is not None and not args.rate > 0:
        raise ValueError("--rate: must be > 0")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed: must be >= 0, got {args.seed}")
    if args.records:
        from prfaas_gym.atomic import check_destination

        check_destination(Path(args.records), (".csv", ".parquet"), "--records")
    scenario = load_scenario(args.scenario, parse_overrides(args.set))
    data_dir = resolve_data_dir(args.data_dir)
    if args.plan:
        from prfaas_gym.planner.apply import planned_scenario

        scenario, _ = planned_scenario(scenario)
    started = time.perf_counter()
    sim = simulate_scenario(
        scenario, policy=args.policy, provisioner=args.provisioner, seed=args.seed,
        data_dir=data_dir, n_requests=args.requests, rate_rps=args.rate,
        duration_s=args.duration_s, build_only=True, trust_pickle=args.trust_pickle,
    )
    update, close = progress_bar(len(sim.requests), f"simulate {scenario.name}")
    try:
        summary = sim.run(progress=update)
    finally:
        close()
    summary["wall_time_s"] = time.perf_counter() - started  # the one non-deterministic field
    if args.records:
        from prfaas_gym.api import write_records

        write_records(sim.requests, Path(args.records))
    if args.json:
        print(dump_json({"scenario": scenario.name, **summary}))
    else:
        print(format_table([(k, fmt(v)) for k, v in summary.items()],
                           title=f"{scenario.name}  ({len(sim.requests)} requests, seed {sim.seed})"))
    return 0
