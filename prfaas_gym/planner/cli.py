"""``prfaas-gym plan SCENARIO [--json] [--simulate]``: wire with ``add_plan_parser(subparsers)`` in cli.py."""

from __future__ import annotations

import argparse
import sys

from .model import CONVENTIONS
from .plan import DEPLOYMENTS


def add_plan_parser(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Register the ``plan`` subcommand; its handler is ``args.func(args) -> int``."""
    p = subparsers.add_parser(
        "plan",
        help="the paper's analytical plan (Eqs. 1-8) for a scenario",
        description="Optimal routing threshold and P/D split by grid search over the paper's "
        "steady-state model, or the scenario's baseline deployment.",
    )
    p.add_argument("scenario", help="scenario name (e.g. paper/prfaas_pd) or YAML path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--deployment", choices=DEPLOYMENTS, default=None,
                   help="deployment to plan (default: inferred from the scenario)")
    p.add_argument("--convention", choices=CONVENTIONS, default="representative",
                   help="prefill cost at the conditional mean length (paper) or its exact expectation")
    p.add_argument("--decode", choices=("step_time", "slo"), default="step_time",
                   help="T_decode from the PD step-time model at BS_max (default) or the TPOT SLO")
    p.add_argument("--data-dir", default=None, help="base directory of trace files")
    p.add_argument("--simulate", action="store_true",
                   help="also simulate at the plan (split and threshold) and bisect its capacity; "
                   "print both side by side")
    p.add_argument("--requests", type=int, default=None,
                   help="with --simulate: requests per simulated run (default 10000)")
    p.add_argument("--seed", type=int, default=None, help="with --simulate: seed (default: the scenario's)")
    p.set_defaults(func=run_plan)
    return p


def run_plan(args: argparse.Namespace) -> int:
    """Load the scenario, plan it, print the plan. Returns the exit status."""
    from prfaas_gym.scenario import ScenarioError, load_scenario

    from .adapter import plan_scenario

    try:
        scenario = load_scenario(args.scenario)
        plan = plan_scenario(scenario, deployment=args.deployment, convention=args.convention,
                             data_dir=args.data_dir, decode=args.decode)
    except (ScenarioError, ValueError) as exc:
        print(f"prfaas-gym plan: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "simulate", False):
        from .capacity_cli import plan_vs_simulation

        try:
            obj, text = plan_vs_simulation(scenario, plan, requests=args.requests, seed=args.seed,
                                           data_dir=args.data_dir)
        except ValueError as exc:
            print(f"prfaas-gym plan: {exc}", file=sys.stderr)
            return 2
        from prfaas_gym.commands.common import dump_json

        print(dump_json(obj) if args.json else text)
        return 0
    print(plan.to_json(indent=None) if args.json else plan.summary())
    return 0
