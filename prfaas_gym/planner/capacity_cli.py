"""``prfaas-gym capacity SCENARIO``: the highest arrival rate the simulated cluster sustains.

Wired by ``prfaas_gym.cli`` through ``add_capacity_parser(subparsers)``. ``--plan`` first
applies the analytical plan (P/D split and threshold, ``planner.apply.apply_plan``).
``plan_vs_simulation`` is also what ``prfaas-gym plan SCENARIO --simulate`` prints.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from prfaas_gym.commands.common import add_data_dir_argument, dump_json, fmt, format_table, resolve_data_dir

from prfaas_gym.parallel import add_backend_arguments, backend_from_args

from .capacity import DEFAULT_REQUESTS, CapacityResult, Criterion, RunRecord, find_capacity


def add_capacity_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Register ``capacity``; its handler is ``args.func(args) -> int``."""
    p = sub.add_parser(
        "capacity", help="highest arrival rate the simulated cluster sustains (bisection)",
        description="Bisect the arrival rate over paired simulated runs (same seed) for the "
        "highest rate the scenario sustains; see docs/planner_vs_simulation.md for the criterion.",
    )
    p.add_argument("scenario", help="scenario name (e.g. paper/prfaas_pd) or YAML path")
    p.add_argument("--policy", default=None, help="router name (default: the scenario's router)")
    p.add_argument("--plan", action="store_true",
                   help="run at the planner's P/D split and threshold (apply_plan) first")
    p.add_argument("--requests", type=int, default=None,
                   help=f"requests per run (default {DEFAULT_REQUESTS})")
    p.add_argument("--seed", type=int, default=None, help="seed of every run (default: the scenario's)")
    p.add_argument("--start-rps", type=float, default=None,
                   help="first rate tried (default: the planner's estimate, else the workload rate)")
    p.add_argument("--rel-tol", type=float, default=0.01, help="relative width of the final bracket")
    p.add_argument("--completion-tolerance", type=float, default=Criterion.completion_tolerance,
                   help="completions may fall this fraction short of arrivals (default %(default)s)")
    p.add_argument("--slo-attainment", type=float, default=None, metavar="FRACTION",
                   help="DistServe capacity goodput: the highest rate whose SLO attainment over all "
                        "arrivals is >= FRACTION (e.g. 0.9), instead of the sustain criterion")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario field, e.g. --set router.threshold_tokens=8000")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_dir_argument(p)
    add_backend_arguments(p)
    p.set_defaults(func=run_capacity)
    return p


def progress_printer() -> Callable[[RunRecord], None] | None:
    """One stderr line per run on an interactive terminal, else ``None``."""
    if not sys.stderr.isatty():
        return None
    count = [0]

    def show(rec: RunRecord) -> None:
        count[0] += 1
        verdict = "sustained" if rec.sustained else "NOT sustained: " + "; ".join(rec.reasons)
        print(f"  run {count[0]:2d}  {rec.rate_rps:9.4f} req/s  {verdict}  ({rec.wall_s:.2f} s)",
              file=sys.stderr, flush=True)

    return show


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    """The scenario (with ``--set`` overrides and, with ``--plan``, the plan applied) and the plan."""
    from prfaas_gym.commands.simulate import parse_overrides
    from prfaas_gym.scenario import load_scenario

    scenario = load_scenario(args.scenario, parse_overrides(args.set))
    plan = None
    if getattr(args, "plan", False):
        from .apply import planned_scenario

        scenario, plan = planned_scenario(scenario, data_dir=args.data_dir)
    return scenario, plan


def run_capacity(args: argparse.Namespace) -> int:
    """Handler of ``capacity``."""
    if args.requests is not None and args.requests < 1:
        raise ValueError("--requests: must be >= 1")
    data_dir = resolve_data_dir(args.data_dir)
    scenario, plan = _load(args)
    if sys.stderr.isatty():
        print(f"capacity of {scenario.name}: bisection over simulated runs", file=sys.stderr)
    result = find_capacity(
        scenario, args.policy,
        criterion=Criterion(completion_tolerance=args.completion_tolerance, slo_attainment=args.slo_attainment),
        seed=args.seed, n_requests=args.requests, start_rps=args.start_rps,
        rel_tol=args.rel_tol, data_dir=data_dir, on_run=progress_printer(),
        backend=backend_from_args(args, data_dir),
    )
    if plan is not None:
        result.extra["plan"] = plan.to_dict()
    if args.json:
        print(dump_json(result.to_dict()))
    else:
        print(format_capacity(result))
    return 0


def format_capacity(result: CapacityResult) -> str:
    """The plain-text report: capacity, criterion, trace and key metrics at capacity."""
    s = result.summary
    rows = [
        ("capacity", f"{result.capacity_rps:.4g} req/s"),
        ("planner estimate", "-" if result.planner_rps is None else f"{result.planner_rps:.4g} req/s"),
        ("runs", f"{len(result.trace)} x {result.n_requests} requests, seed {result.seed}, "
                 f"{result.wall_time_s:.1f} s"),
    ]
    for key in ("throughput_rps", "ttft_mean_s", "ttft_p99_s", "tpot_p99_s", "slo_attainment",
                "offload_fraction", "egress_gbps_mean", "completion_ratio", "ttft_growth"):
        rows.append((f"  {key}", fmt(s.get(key))))
    lines = [format_table(rows, title=f"{result.scenario}  (policy: {result.policy or 'scenario'})"),
             "", "sustains: " + result.criterion.describe() + ".", "", "bisection:"]
    for r in result.trace:
        lines.append(f"  {r.rate_rps:9.4f} req/s  {'yes' if r.sustained else 'no '}  "
                     f"completions {r.completion_ratio:.3f}  TPOT ok {r.tpot_ok_fraction:.3f}  "
                     f"TTFT growth {r.ttft_growth:.2f}  SLO attainment {r.slo_attainment:.3f}")
    return "\n".join(lines)


def plan_vs_simulation(scenario: Any, plan: Any, *, requests: int | None = None,
                       seed: int | None = None, data_dir: Any = None) -> tuple[dict[str, Any], str]:
    """Simulate ``scenario`` at ``plan`` (apply_plan) and bisect its capacity.

    Returns ``(json object, side-by-side text)``.
    """
    from .apply import apply_plan

    applied = apply_plan(scenario, plan)
    result = find_capacity(applied, None, seed=seed, n_requests=requests,
                           start_rps=plan.throughput_rps if plan.throughput_rps > 0 else None,
                           data_dir=resolve_data_dir(data_dir), on_run=progress_printer())
    s = result.summary
    pj = plan.to_dict()
    rows = [
        ("", "planner", "simulation"),
        ("throughput (req/s)", f"{plan.throughput_rps:.4g}", f"{result.capacity_rps:.4g} (capacity)"),
        ("offload fraction", f"{plan.offload_fraction:.3f}", f"{s['offload_fraction']:.3f}"),
        ("egress (Gbps)", f"{plan.egress_gbps:.4g}", f"{s['egress_gbps_mean']:.4g}"),
        ("TTFT mean (s)", f"{plan.ttft_mean_s:.4g} (service)", f"{s['ttft_mean_s']:.4g}"),
        ("TTFT p90 (s)", f"{plan.ttft_p90_s:.4g} (service)", f"{s['ttft_p90_s']:.4g}"),
        ("TPOT p99 (s)", "-", f"{s['tpot_p99_s']:.4g}"),
    ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    text = "\n".join([plan.summary(), ""] + [f"{a.ljust(w0)}  {b.ljust(w1)}  {c}" for a, b, c in rows]
                     + ["", f"simulation: {len(result.trace)} runs x {result.n_requests} requests, "
                            f"{result.wall_time_s:.1f} s; sustains: {result.criterion.describe()}."])
    return {"plan": pj, "simulation": result.to_dict()}, text


__all__ = ["Criterion", "add_capacity_parser", "format_capacity", "plan_vs_simulation", "run_capacity"]
