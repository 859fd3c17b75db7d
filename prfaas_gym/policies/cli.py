"""``prfaas-gym compare`` and ``prfaas-gym sweep``: paired-seed policy comparison and load sweeps."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from prfaas_gym.commands.common import (
    add_data_dir_argument, add_seeded_runs_arguments, add_trust_pickle_argument, check_run_args, dump_json, fmt, progress_bar,
    resolve_data_dir,
)
from prfaas_gym.parallel import add_backend_arguments, backend_from_args

TABLE_METRICS = ("completed", "rejected", "goodput_rps", "slo_attainment", "ttft_p90_s",
                 "tpot_p90_s", "egress_gbps_mean", "offload_fraction")


def _common(p: argparse.ArgumentParser) -> None:
    add_seeded_runs_arguments(p)
    p.add_argument("--policies", required=True,
                   help="comma-separated policy specs: router names, trained:NAME, model paths; "
                        "ROUTER+PROVISIONER adds a provisioner (e.g. prfaas-threshold+paper-imbalance)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", default=None, metavar="FILE", help="write per-run rows to a CSV file")
    add_data_dir_argument(p)
    add_backend_arguments(p)
    add_trust_pickle_argument(p)


def add_compare_parser(sub) -> argparse.ArgumentParser:
    """Register ``compare``."""
    p = sub.add_parser("compare", help="compare policies over paired seeds",
                       description="Run several policies on the same workloads (paired seeds) and "
                                   "report means with 95%% t-intervals; with --rates, a load sweep.")
    _common(p)
    p.add_argument("--rate", type=float, default=None, help="arrival rate, requests/s")
    p.add_argument("--rates", default=None, help="comma-separated rates: run a load sweep instead")
    p.set_defaults(func=run_compare)
    return p


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    """Register ``sweep``."""
    p = sub.add_parser("sweep", help="throughput-latency curves over arrival rates",
                       description="For each arrival rate, compare policies over paired seeds; "
                                   "prints curves (mean and 95%% CI per rate).")
    _common(p)
    p.add_argument("--rates", required=True, help="comma-separated arrival rates, requests/s")
    p.set_defaults(func=run_sweep)
    return p


def _policies(arg: str) -> list[str]:
    out = [s.strip() for s in arg.split(",") if s.strip()]
    if not out:
        raise ValueError("--policies: give at least one policy")
    return out


def _rates(arg: str) -> list[float]:
    try:
        rates = [float(s) for s in arg.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--rates {arg!r}: expected comma-separated numbers") from None
    if not rates or any(not r > 0 for r in rates):
        raise ValueError(f"--rates {arg!r}: rates must be > 0")
    return rates


def _write_csv(rows: list[dict], path: str) -> None:
    if not rows:
        return
    from prfaas_gym.atomic import write_file_atomic

    names = list(rows[0])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=names)
            w.writeheader()
            w.writerows(rows)

    write_file_atomic(Path(path), write, ".csv")


def _ci(d: dict) -> str:
    lo, hi = d["ci95"]
    return f"{fmt(d['mean'])} [{fmt(lo)}, {fmt(hi)}]"


def format_comparison(doc: dict) -> str:
    """A human table: one column per policy, mean [95% CI] per metric."""
    pols = list(doc["results"])
    metrics = [m for m in TABLE_METRICS if m in doc["results"][pols[0]]]
    cells = [["metric", *pols]] + [[m, *(_ci(doc["results"][p][m]) for p in pols)] for m in metrics]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    title = f"{doc['scenario']}  (seeds {doc['seeds']}, mean [95% CI])"
    lines = [title, "-" * len(title)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    """Handler of ``compare``."""
    if args.rates:
        if args.rate is not None:
            raise ValueError("--rate and --rates: give one of them")
        return run_sweep(args)
    from prfaas_gym.evaluation import compare_policies
    from prfaas_gym.scenario import load_scenario

    check_run_args(args)
    policies = _policies(args.policies)
    scenario = load_scenario(args.scenario)
    backend = backend_from_args(args, resolve_data_dir(args.data_dir))
    update, close = progress_bar(len(policies) * args.seeds, f"compare {scenario.name}", unit="run")
    try:
        comp = compare_policies(scenario, policies, seeds=args.seeds, seed_offset=args.seed_offset,
                                n_requests=args.requests, rate_rps=args.rate, duration_s=args.duration_s,
                                progress=update, backend=backend, trust_pickle=args.trust_pickle)
    finally:
        close()
    if args.out:
        _write_csv(comp.rows(), args.out)
    doc = comp.to_json()
    print(dump_json(doc) if args.json else format_comparison(doc))
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """Handler of ``sweep`` (and ``compare --rates``)."""
    from prfaas_gym.evaluation import load_sweep
    from prfaas_gym.scenario import load_scenario

    check_run_args(args)
    policies = _policies(args.policies)
    rates = _rates(args.rates)
    scenario = load_scenario(args.scenario)
    backend = backend_from_args(args, resolve_data_dir(args.data_dir))
    update, close = progress_bar(len(policies) * args.seeds * len(rates), f"sweep {scenario.name}",
                                 unit="run")
    try:
        res = load_sweep(scenario, policies, rates, seeds=args.seeds, seed_offset=args.seed_offset,
                         n_requests=args.requests, duration_s=args.duration_s,
                         progress=update, backend=backend, trust_pickle=args.trust_pickle)
    finally:
        close()
    if args.out:
        _write_csv(res["rows"], args.out)
    if args.json:
        print(dump_json({k: v for k, v in res.items() if k != "rows"}))
    else:
        print(format_sweep(res))
    return 0


def format_sweep(res: dict) -> str:
    """A human table: per policy and rate, goodput, SLO attainment and TTFT p90 (means)."""
    lines = [f"{res['scenario']}  (seeds {res['seeds']}, means)",
             f"{'policy':<28} {'rate':>8} {'thru':>8} {'goodput':>8} {'slo':>6} {'ttft_p90':>9}"]
    for p, curves in res["curves"].items():
        for k, rate in enumerate(res["rates"]):
            g = lambda m: curves[m][k]["mean"] if k < len(curves[m]) else None  # noqa: E731
            lines.append(f"{p:<28} {fmt(rate):>8} {fmt(g('throughput_rps')):>8} "
                         f"{fmt(g('goodput_rps')):>8} {fmt(g('slo_attainment')):>6} {fmt(g('ttft_p90_s')):>9}")
    return "\n".join(lines)




def add_policy_parser(sub) -> argparse.ArgumentParser:
    """Register ``policy convert``: a pickle-based SB3 policy directory to the safe format."""
    p = sub.add_parser("policy", help="trained-policy files (convert to the safe format)",
                       description="Trained-policy file tools (docs/security.md).")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION")
    psub.required = True
    c = psub.add_parser("convert", help="write policy.safetensors + policy.json beside a model.zip",
                        description="Load SB3's pickle-based model.zip of a policy directory you trust and "
                                    "write the safe format (policy.safetensors + policy.json) beside it; "
                                    "the rebuilt policy is checked to give the same outputs.")
    c.add_argument("directory", help="trained-policy directory (holding metadata.json and model.zip)")
    add_trust_pickle_argument(c)
    c.set_defaults(func=run_policy_convert)
    return p


def run_policy_convert(args: argparse.Namespace) -> int:
    """Handler of ``policy convert``."""
    from prfaas_gym.policies.trained import convert_policy_dir

    out = convert_policy_dir(args.directory, trust_pickle=args.trust_pickle)
    print(f"{out}: policy.safetensors + policy.json written and verified")
    return 0
