"""``prfaas-gym perf predict|calibrate`` subcommands (wired by the top-level CLI).

Bad input prints one line ``file:line: message`` to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from typing import Any

import yaml

from prfaas_gym.profiles import ModelProfile, ProfileError, UnknownProfileError, get_hardware, get_model
from prfaas_gym.profiles.loader import hardware_to_dict

from .base import PerfInputError
from .calibrate import calibrate, phase_errors, predict_ms
from .cases import StepCase, read_cases
from .engines import DEFAULT_ENGINE, ENGINES


def add_perf_parser(subparsers: Any) -> None:
    """Register ``perf predict`` and ``perf calibrate`` on an argparse subparsers object."""
    perf = subparsers.add_parser("perf", help="step-time model: predict and calibrate")
    sub = perf.add_subparsers(dest="perf_command", required=True)

    p = sub.add_parser("predict", help="predict step times for cases in a CSV (adds an `ms` column)")
    p.add_argument("--hardware", required=True, help="hardware profile name or YAML path")
    p.add_argument("--cases", required=True, help="CSV with model,phase,batch,tokens,context[,gpus]")
    p.add_argument("--model", default=None, help="model profile for every row (overrides the model column)")
    p.add_argument("--gpus", type=int, default=None, help="GPUs per instance when the CSV has no gpus column")
    p.add_argument("--engine", choices=list(ENGINES), default=DEFAULT_ENGINE,
                   help=f"engine profile (default {DEFAULT_ENGINE}; eager = the ../shared/calibration procedure)")
    p.set_defaults(func=run_predict)

    c = sub.add_parser("calibrate", help="fit the GPU's efficiency terms to measured step times or kernel tables")
    c.add_argument("--hardware", required=True, help="hardware profile name or YAML path (starting point)")
    c.add_argument("--measurements", default=None, help="CSV with model,phase,batch,tokens,context,ms_median")
    c.add_argument("--aiconfigurator", default=None, metavar="DIR",
                   help="fit the engine's terms to AIConfigurator's per-operator tables in DIR (needs --engine vllm)")
    c.add_argument("--engine", choices=list(ENGINES), default=None,
                   help="engine profile (default: eager with --measurements, vllm with --aiconfigurator)")
    c.add_argument("--model", default=None, help="model profile for every row")
    c.add_argument("--out", default=None, help="write the calibrated hardware profile (eager) or engine terms YAML")
    c.set_defaults(func=run_calibrate)


def _model_lookup(source: str, cases: list[StepCase]) -> Callable[[str], ModelProfile]:
    cache: dict[str, ModelProfile] = {}
    for case in cases:
        if case.model not in cache:
            try:
                cache[case.model] = get_model(case.model)
            except (UnknownProfileError, ProfileError) as exc:
                raise PerfInputError(f"{source}:{case.line}: {exc}") from None
    return cache.__getitem__


def _hardware(name: str) -> Any:
    try:
        return get_hardware(name)
    except (UnknownProfileError, ProfileError) as exc:
        raise PerfInputError(f"--hardware:0: {exc}") from None


def _with_gpus(cases: list[StepCase], gpus: int | None) -> list[StepCase]:
    if gpus is None:
        return cases
    if gpus < 1:
        raise PerfInputError(f"--gpus:0: must be >= 1, got {gpus}")
    import dataclasses
    return [dataclasses.replace(c, gpus=gpus) if "gpus" not in c.row else c for c in cases]


def run_predict(args: argparse.Namespace) -> int:
    """``perf predict``: write the input rows with an ``ms`` column to stdout."""
    try:
        hw = _hardware(args.hardware)
        cases = _with_gpus(read_cases(args.cases, model=args.model), getattr(args, "gpus", None))
        pred = predict_ms(cases, _model_lookup(args.cases, cases), hw, engine=getattr(args, "engine", DEFAULT_ENGINE))
    except PerfInputError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    fields = list(cases[0].row.keys()) + ["ms"]
    w = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for case, ms in zip(cases, pred):
        w.writerow({**case.row, "ms": f"{ms:.4f}"})
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    """``perf calibrate``: fit, print per-phase MAPE and max error, optionally write the profile."""
    engine = args.engine or ("vllm" if args.aiconfigurator else "eager")
    try:
        if args.aiconfigurator:
            if engine == "eager" or args.measurements:
                raise PerfInputError("--aiconfigurator:0: fits a production engine's terms from kernel tables: "
                                     "use it with --engine vllm and without --measurements")
            return _calibrate_aic(args, engine)
        if not args.measurements:
            raise PerfInputError("--measurements:0: required (or --aiconfigurator DIR)")
        if engine != "eager":
            raise PerfInputError(f"--engine:0: step measurements calibrate the eager profile; fit {engine!r} "
                                 "with --aiconfigurator DIR")
        hw = _hardware(args.hardware)
        cases = read_cases(args.measurements, model=args.model, need_measured=True)
        model_of = _model_lookup(args.measurements, cases)
        before = phase_errors(cases, predict_ms(cases, model_of, hw))
        result = calibrate(cases, model_of, hw)
    except PerfInputError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"calibrated {hw.name} on {len(cases)} measurements from {args.measurements}")
    print(f"{'phase':<8} {'n':>3} {'MAPE before':>12} {'MAPE after':>11} {'max after':>10}")
    for b, a in zip(before, result.errors):
        print(f"{a.phase:<8} {a.n:>3} {b.mape_pct:>11.2f}% {a.mape_pct:>10.2f}% {a.max_abs_pct:>9.2f}%")
    print("efficiency:")
    for k, v in result.efficiency.as_dict().items():
        print(f"  {k}: {v:.6g}")
    if args.out:
        import dataclasses
        d = hardware_to_dict(dataclasses.replace(hw, efficiency=result.efficiency))
        d["efficiency"] = {k: float(f"{v:.6g}") for k, v in d["efficiency"].items()}
        with open(args.out, "w") as fh:
            fh.write(f"# Calibrated by `prfaas-gym perf calibrate` on {args.measurements}\n")
            yaml.safe_dump(d, fh, sort_keys=False)
        print(f"wrote {args.out}")
    return 0


def _calibrate_aic(args: argparse.Namespace, engine: str) -> int:
    """Fit ``engine``'s terms on one GPU to AIConfigurator's tables; print per-table fit, write YAML."""
    from .aic_fit import fit_engine_terms
    from .aic_tables import AicTables, aic_estimate_source

    hw = _hardware(args.hardware)
    tables = AicTables.for_hardware(args.aiconfigurator, hw.name)
    try:
        eff, report = fit_engine_terms(tables, hw, engine)
    except (KeyError, ValueError, OSError) as exc:
        raise PerfInputError(f"{args.aiconfigurator}:0: unusable tables: {exc}") from None
    print(f"fitted engine {engine!r} on {hw.name} to {tables.root / tables.gpu} "
          f"(element-wise: {aic_estimate_source(tables.gpu)})")
    print(f"{'table':<12} {'n':>5} {'MAPE':>7} {'max':>8}")
    for r in report:
        print(f"{r.group:<12} {r.n:>5} {r.mape_pct:>6.2f}% {r.max_abs_pct:>7.2f}%")
    terms = {k: float(f"{v:.6g}") for k, v in eff.as_dict().items()}
    print("terms:")
    for k, v in terms.items():
        print(f"  {k}: {v}")
    if args.out:
        from pathlib import Path

        from prfaas_gym.safe_yaml import YamlInputError, read_yaml_file

        doc: Any = {}
        if Path(args.out).exists():
            try:  # the same limits as every data file (docs/security.md)
                doc = read_yaml_file(args.out) or {}
            except YamlInputError as exc:
                raise PerfInputError(f"cannot update {exc}") from None
        if not isinstance(doc, dict):
            raise PerfInputError(f"{args.out}:0: not an engine terms mapping")
        doc.setdefault("engine", engine)
        doc.setdefault("hardware", {})[hw.name] = terms
        body = yaml.safe_dump(doc, sort_keys=False)
        with open(args.out, "w") as fh:
            fh.write(f"# Fitted by `prfaas-gym perf calibrate --engine {engine} --aiconfigurator DIR --hardware "
                     "<gpu> --out <this file>`\n# on AIConfigurator's vLLM 0.24.0 tables (docs/step_time_model.md).\n")
            fh.write(body)
        print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m prfaas_gym.perf.cli perf predict ...``."""
    parser = argparse.ArgumentParser(prog="prfaas-gym")
    add_perf_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
