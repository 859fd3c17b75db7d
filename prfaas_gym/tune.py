"""Hyper-parameter sweeps of the training pipeline with Ray Tune and ASHA (``prfaas-gym tune``).

A sweep file (YAML, data only) names the base settings, the search space and the budget::

    base:                       # TrainSettings fields (as in agents/configs/*.yaml)
      env_id: prfaas/Routing-v1
      scenario: paper/prfaas_pd
      n_requests: 200
      total_timesteps: 20000
      eval_freq: 2000           # one ASHA rung per evaluation on the validation seeds
      vec_env: dummy
    search:                     # field: {choice: [...]} | {uniform|loguniform|randint: [lo, hi]}
      learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
      ent_coef: {choice: [0.0, 0.01]}
    num_samples: 8              # trials
    metric: goodput_vs_best_heuristic   # any mean validation metric of an evaluation row
    mode: max
    asha: {grace_period: 2, reduction_factor: 2}    # in evaluations
    max_concurrent_trials: 2
    cpus_per_trial: 1
    seed: 0                     # of the random search (the same trials on a re-run)

Each trial runs :func:`prfaas_gym.training.pipeline.train` with the sampled settings and
reports every validation evaluation to Tune through the ``on_eval`` callback, so ASHA stops
weak trials at its rungs (``training_iteration`` = evaluations so far). Trials never see the
test seeds. Everything is written under one absolute directory: Tune's experiment (one
folder per trial), each trial's training run (``runs/<trial id>/``, TensorBoard, best and
final model) and ``best.json`` / ``best.yaml`` (the best trial's settings, usable as
``--config`` of the ``agents/`` scripts). Workers get the package and the data directory
through ``runtime_env`` (``prfaas_gym.ray_backend``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from prfaas_gym.training.config import TrainSettings, apply_overrides

SAMPLERS = ("choice", "uniform", "loguniform", "randint")
SWEEP_KEYS = ("base", "search", "num_samples", "metric", "mode", "asha", "max_concurrent_trials",
              "cpus_per_trial", "seed", "name")


@dataclasses.dataclass
class SweepSpec:
    """A validated sweep file (module docstring)."""

    base: dict[str, Any]
    search: dict[str, dict[str, list]]
    num_samples: int = 8
    metric: str = "goodput_vs_best_heuristic"
    mode: str = "max"
    asha: dict[str, int] = dataclasses.field(default_factory=lambda: {"grace_period": 1, "reduction_factor": 2})
    max_concurrent_trials: int = 2
    cpus_per_trial: int = 1
    seed: int = 0
    name: str = "tune"


def load_sweep_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; errors name the file and the key (``ValueError``)."""
    from prfaas_gym.safe_yaml import read_yaml_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such sweep file")
    data = read_yaml_file(path)  # data only, size/depth-limited (docs/security.md)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with base and search")
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(SWEEP_KEYS)})")
    spec = SweepSpec(base=dict(data.get("base") or {}), search=dict(data.get("search") or {}),
                     **{k: data[k] for k in SWEEP_KEYS[2:] if k in data})
    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    for section in ("base", "search"):
        for key in getattr(spec, section):
            if key not in fields:
                raise ValueError(f"{path}: {section}.{key}: unknown setting (known: {', '.join(sorted(fields))})")
    if not spec.search:
        raise ValueError(f"{path}: search: give at least one setting to sweep")
    for key, dist in spec.search.items():
        if not (isinstance(dist, dict) and len(dist) == 1 and next(iter(dist)) in SAMPLERS):
            raise ValueError(f"{path}: search.{key}: expected one of {{{', '.join(SAMPLERS)}: [...]}}")
        kind, args = next(iter(dist.items()))
        if not isinstance(args, list) or not args or (kind != "choice" and len(args) != 2):
            raise ValueError(f"{path}: search.{key}.{kind}: expected a list"
                             + ("" if kind == "choice" else " [low, high]"))
    if spec.mode not in ("max", "min"):
        raise ValueError(f"{path}: mode: expected max or min, got {spec.mode!r}")
    for key in ("num_samples", "max_concurrent_trials", "cpus_per_trial"):
        if not isinstance(getattr(spec, key), int) or getattr(spec, key) < 1:
            raise ValueError(f"{path}: {key}: expected an integer >= 1")
    unknown_asha = sorted(set(spec.asha) - {"grace_period", "reduction_factor", "max_t"})
    if unknown_asha:
        raise ValueError(f"{path}: asha.{unknown_asha[0]}: unknown (known: grace_period, reduction_factor, max_t)")
    settings = trial_settings(spec.base, {}, Path("/"), "check")
    if settings.eval_freq <= 0:
        raise ValueError(f"{path}: base.eval_freq: must be > 0 (ASHA needs the validation evaluations)")
    return spec


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """The Tune search space of ``spec.search``."""
    from ray import tune

    out = {}
    for key, dist in spec.search.items():
        kind, args = next(iter(dist.items()))
        out[key] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
    return out


def trial_settings(base: dict[str, Any], sampled: dict[str, Any], out_dir: Path, trial: str) -> TrainSettings:
    """The settings of one trial: defaults, ``base``, then the sampled values; its training run
    goes to ``out_dir/runs/<trial>`` (absolute: never inside Ray's session folders)."""
    settings = TrainSettings()
    apply_overrides(settings, base, "base")
    if settings.smoke:  # the smoke budget first, so sampled values (e.g. n_steps) still apply
        settings.apply_smoke()
    apply_overrides(settings, sampled, "search")
    settings.run_dir = str(Path(out_dir).resolve() / "runs")
    settings.run_name = trial
    settings.export_dir = None
    settings.check_seeds()
    return settings


def _trainable(config: dict[str, Any], base: dict[str, Any], out_dir: str) -> None:
    """One Tune trial: train with the sampled settings, report every evaluation."""
    from ray import tune

    from prfaas_gym.training.pipeline import train

    trial = tune.get_context().get_trial_id()
    settings = trial_settings(base, config, Path(out_dir), trial)

    def report(row: dict) -> None:
        tune.report({k: float(v) for k, v in row.items() if isinstance(v, (int, float))})

    train(settings, on_eval=report)


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, address: str | None = None,
              cpus: int | None = None, data_dir: Path | None = None) -> dict[str, Any]:
    """Run the sweep; returns (and writes to ``out_dir``) the best trial's settings and metric.

    Args:
        out_dir: where everything goes (made absolute here).
        address: Ray cluster (``None``: a local Ray with ``cpus`` CPUs).
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from prfaas_gym.parallel import Backend
    from prfaas_gym.ray_backend import init_ray

    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    init_ray(Backend("ray", workers=cpus, address=address, data_dir=data_dir))
    max_t = spec.asha.get("max_t") or max_evaluations(spec)
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                              grace_period=spec.asha.get("grace_period", 1),
                              reduction_factor=spec.asha.get("reduction_factor", 2))
    trainable = tune.with_resources(tune.with_parameters(_trainable, base=spec.base, out_dir=str(out)),
                                    {"cpu": spec.cpus_per_trial})
    started = time.time()
    tuner = tune.Tuner(
        trainable,
        param_space=param_space(spec),
        tune_config=tune.TuneConfig(metric=spec.metric, mode=spec.mode, scheduler=scheduler,
                                    search_alg=BasicVariantGenerator(random_state=spec.seed),
                                    num_samples=spec.num_samples,
                                    max_concurrent_trials=spec.max_concurrent_trials),
        run_config=tune.RunConfig(name=spec.name, storage_path=str(out), verbose=0),
    )
    results = tuner.fit()
    wall = time.time() - started
    best = results.get_best_result(metric=spec.metric, mode=spec.mode, scope="all")
    trials = [{"trial_id": r.metrics.get("trial_id"), "config": r.config,
               "evaluations": r.metrics.get("training_iteration"),
               spec.metric: _best_value(r, spec), "error": str(r.error) if r.error else None}
              for r in results]
    settings = trial_settings(spec.base, best.config, out, best.metrics.get("trial_id", "best"))
    doc = {
        "metric": spec.metric, "mode": spec.mode,
        "best": {"trial_id": best.metrics.get("trial_id"), "config": best.config,
                 spec.metric: _best_value(best, spec), "run_dir": str(Path(settings.run_dir) / settings.run_name)},
        "best_settings": settings.to_dict(),
        "trials": trials, "wall_time_s": wall,
        "trials_per_hour": len(trials) / wall * 3600 if wall > 0 else None,
        "experiment_dir": str(out / spec.name),
    }
    (out / "best.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    best_cfg = {**spec.base, **best.config}
    (out / "best.yaml").write_text(yaml.safe_dump(best_cfg, sort_keys=True))
    return doc


def _best_value(result: Any, spec: SweepSpec) -> float | None:
    """The best value of the metric over the trial's evaluations (ASHA's ``scope="all"``)."""
    df = result.metrics_dataframe
    if df is None or spec.metric not in df:
        return result.metrics.get(spec.metric)
    col = df[spec.metric].dropna()
    if col.empty:
        return None
    return float(col.max() if spec.mode == "max" else col.min())


def max_evaluations(spec: SweepSpec) -> int:
    """Evaluations a full-length trial makes (start, every ``eval_freq``, end)."""
    s = trial_settings(spec.base, {}, Path("/"), "count")
    return int(math.ceil(s.total_timesteps / s.eval_freq)) + 2


def add_tune_parser(sub: Any) -> Any:
    """Register ``prfaas-gym tune``."""
    from prfaas_gym.commands.common import add_data_dir_argument

    p = sub.add_parser("tune", help="sweep training settings with Ray Tune + ASHA (needs the ray extra)",
                       description="Sweep the training pipeline's settings (a sweep YAML: base, search, "
                                   "budget) with Ray Tune and the ASHA early-stopping scheduler on the "
                                   "validation-seed metric; writes every trial and best.json/best.yaml "
                                   "under --out (see docs/scale_out.md).")
    p.add_argument("sweep", help="sweep YAML file")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory (made absolute)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: a local Ray)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--json", action="store_true", help="print best.json")
    add_data_dir_argument(p)
    p.set_defaults(func=run_tune_cli)
    return p


def run_tune_cli(args: Any) -> int:
    """Handler of ``tune``."""
    from prfaas_gym.commands.common import resolve_data_dir
    from prfaas_gym.ray_backend import import_ray

    spec = load_sweep_spec(args.sweep)
    if args.cpus is not None and args.cpus < 1:
        raise ValueError("--cpus: must be >= 1")
    import_ray()
    with contextlib.redirect_stdout(sys.stderr):  # Tune's tables: stdout stays for the answer
        doc = run_sweep(spec, args.out, address=args.address, cpus=args.cpus,
                        data_dir=resolve_data_dir(args.data_dir))
    if args.json:
        print(json.dumps(doc, default=str))
    else:
        b = doc["best"]
        stopped = sum(1 for t in doc["trials"] if (t["evaluations"] or 0) < max_evaluations(spec))
        print(f"{len(doc['trials'])} trials in {doc['wall_time_s']:.0f} s "
              f"({doc['trials_per_hour']:.0f}/h); ASHA stopped {stopped} early")
        print(f"best {doc['metric']} = {b[doc['metric']]} (trial {b['trial_id']}): {b['config']}")
        print(f"results: {doc['experiment_dir']}; best settings: {Path(args.out).resolve() / 'best.yaml'}")
    return 0
