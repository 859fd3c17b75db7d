"""``prfaas-gym benchmark list|run``: the task registry and the leaderboard."""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from prfaas_gym.commands.common import add_data_dir_argument, dump_json, progress_bar, resolve_data_dir
from prfaas_gym.parallel import BACKENDS

DOC_COMMAND = "prfaas-gym benchmark run --data-dir $PRFAAS_DATA_DIR --doc docs/benchmark.md"


def add_benchmark_parser(sub) -> argparse.ArgumentParser:
    """Register ``benchmark`` with its ``list``, ``run`` and ``tune`` subcommands."""
    p = sub.add_parser("benchmark", help="benchmark tasks and the leaderboard",
                       description="Versioned benchmark tasks (scenario + load + decision interface + "
                                   "metric + seed splits + bound) and their leaderboard; docs/benchmark.md.")
    bsub = p.add_subparsers(dest="benchmark_command", metavar="{list,run,tune}")
    bsub.required = True

    lp = bsub.add_parser("list", help="the registered tasks")
    lp.add_argument("--json", action="store_true", help="print one JSON object")
    lp.set_defaults(func=run_list)

    rp = bsub.add_parser("run", help="run the leaderboard on the tasks' test seeds",
                         description="Run every applicable heuristic and shipped trained policy (or "
                                     "--policies) on each task's test seeds, with the task's bound; "
                                     "write leaderboard.md / leaderboard.json / runs.csv per task "
                                     "under --out. Finished runs are cached there: an interrupted "
                                     "run resumes.")
    rp.add_argument("--tasks", default=None, help="comma-separated task ids (default: every task; "
                                                  "trace-replay tasks need --data-dir)")
    rp.add_argument("--policies", default=None, help="comma-separated policy specs (default: every "
                                                     "heuristic and shipped trained policy applicable)")
    rp.add_argument("--out", default="benchmark_results", help="output and cache directory (default %(default)s)")
    rp.add_argument("--test-seeds", type=int, default=None, metavar="N",
                    help="only the first N test seeds (smoke runs; not the task's protocol)")
    rp.add_argument("--requests", type=int, default=None,
                    help="requests per run instead of the task's (smoke runs; not the task's protocol)")
    rp.add_argument("--doc", default=None, metavar="MD",
                    help="also write the full leaderboard page (docs/benchmark.md) to this file")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    rp.add_argument("--untuned", action="store_true",
                    help="run heuristics with their default knobs, not the ones tuned per task")
    _add_backend_arguments(rp)
    rp.set_defaults(func=run_run)

    tp = bsub.add_parser("tune", help="tune every heuristic's knobs per task on its validation seeds",
                         description="Search each heuristic's knobs per task on the task's validation "
                                     "seeds (random draws from a grid, screened on a few seeds, the best "
                                     "confirmed on all; docs/benchmark.md) and write them to the file "
                                     "the leaderboard reads (default: the package's tuned_knobs.json). "
                                     "Test seeds are never used.")
    tp.add_argument("--tasks", default=None, help="comma-separated task ids (default: every task; "
                                                  "trace-replay tasks need --data-dir)")
    tp.add_argument("--policies", default=None, help="comma-separated heuristics (default: every one "
                                                     "acting on the task's knobs)")
    tp.add_argument("--budget", type=int, default=24, help="configurations per heuristic, the default "
                                                           "included (default %(default)s)")
    tp.add_argument("--screen-seeds", type=int, default=3, help="validation seeds of the screening "
                                                                "(default %(default)s)")
    tp.add_argument("--finalists", type=int, default=4, help="screened configurations confirmed on all "
                                                             "validation seeds (default %(default)s)")
    tp.add_argument("--out", default=None, metavar="JSON",
                    help="tuned-knobs file to update (default: prfaas_gym/benchmark/tuned_knobs.json)")
    tp.add_argument("--json", action="store_true", help="print the tuned entries as one JSON object")
    _add_backend_arguments(tp)
    tp.set_defaults(func=run_tune)
    return p


def _add_backend_arguments(p: argparse.ArgumentParser) -> None:
    """``--workers``, ``--backend``, ``--address`` and ``--data-dir`` of ``run`` and ``tune``."""
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parallel worker processes (default 1: serial); with --backend ray, its CPUs")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="local (default) or ray")
    p.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster to join (--backend ray)")
    add_data_dir_argument(p)


def _task_ids(arg: str | None, data_dir) -> list[str]:
    from prfaas_gym.benchmark.tasks import TASKS

    if arg:
        return [s.strip() for s in arg.split(",") if s.strip()]
    return [t for t in TASKS if data_dir is not None or not TASKS[t].needs_data]


def run_tune(args: argparse.Namespace) -> int:
    """Handler of ``benchmark tune``."""
    from prfaas_gym.benchmark.leaderboard import code_commit, is_heuristic
    from prfaas_gym.benchmark.tasks import get_task
    from prfaas_gym.benchmark.tuning import search_settings, tune_task, write_tuned
    from prfaas_gym.parallel import backend_from_args

    data_dir = resolve_data_dir(args.data_dir)
    task_ids = _task_ids(args.tasks, data_dir)
    for tid in task_ids:
        t = get_task(tid)
        if t.needs_data and data_dir is None:
            raise ValueError(f"task {tid}: needs the data directory (--data-dir or PRFAAS_DATA_DIR)")
    policies = [s.strip() for s in (args.policies or "").split(",") if s.strip()] or None
    for p in policies or []:
        if not is_heuristic(p):
            raise ValueError(f"--policies: {p!r} is not a registered heuristic (only heuristics are tuned)")
    args.resume = None
    backend = backend_from_args(args, data_dir)
    commit = code_commit()
    entries = {}
    for tid in task_ids:
        update, close = progress_bar(1, f"tune {tid}", unit="run")
        try:
            entries[tid] = tune_task(tid, policies, budget=args.budget, screen_seeds=args.screen_seeds,
                                     finalists=args.finalists, data_dir=data_dir, backend=backend,
                                     progress=update)
        finally:
            close()
        if not args.json:
            print(format_tuned(tid, entries[tid]), flush=True)
    path = write_tuned(entries, search_settings(args.budget, args.screen_seeds, args.finalists, 0), commit,
                       args.out)
    if args.json:
        print(dump_json({"tasks": entries}))
    else:
        print(f"wrote {path}")
    return 0


def format_tuned(task_id: str, entry: dict) -> str:
    """One task's tuning result as text lines."""
    lines = [f"{task_id} ({entry['metric']} on validation seeds {entry['validation_seeds'][0]}-"
             f"{entry['validation_seeds'][-1]}): best heuristic {entry['best_heuristic']}"]
    for p, e in entry["policies"].items():
        knobs = ", ".join(f"{k}={v}" for k, v in e["knobs"].items()) or "defaults"
        lines.append(f"  {p:40} {e['validation']['mean']:.4f} (default {e['default_validation']['mean']:.4f}; "
                     f"{e['searched']} searched) {knobs}")
    return "\n".join(lines)


def run_list(args: argparse.Namespace) -> int:
    """Handler of ``benchmark list``."""
    from prfaas_gym.benchmark.tasks import list_tasks

    tasks = list_tasks()
    if args.json:
        keys = ("id", "scenario", "env_id", "metric", "seeds")
        print(dump_json({"tasks": [{k: t.as_dict()[k] for k in keys} for t in tasks]}))
        return 0
    for t in tasks:
        s = t.seeds
        print(f"{t.id:26} {t.scenario:22} {t.env_id:23} {'+'.join(t.knobs):9} {t.metric:14} test seeds "
              f"{s.test[0]}-{s.test[-1]}{'  (needs data)' if t.needs_data else ''}")
        print(f"{'':26} {t.description}")
    return 0


def run_run(args: argparse.Namespace) -> int:
    """Handler of ``benchmark run``."""
    from prfaas_gym.benchmark.leaderboard import leaderboard_json, policies_for, run_benchmark, write_outputs
    from prfaas_gym.benchmark.tasks import get_task
    from prfaas_gym.parallel import backend_from_args

    data_dir = resolve_data_dir(args.data_dir)
    task_ids = _task_ids(args.tasks, data_dir)
    policies = [s.strip() for s in (args.policies or "").split(",") if s.strip()] or None
    n_cells = sum((1 + len(policies or policies_for(get_task(t)))) *
                  min(args.test_seeds or 10**9, len(get_task(t).seeds.test)) for t in task_ids)
    args.resume = None  # the journal always lives in --out
    backend = backend_from_args(args, data_dir)
    update, close = progress_bar(n_cells, "benchmark", unit="run")
    try:
        doc = run_benchmark(task_ids, policies, out_dir=args.out, test_seeds=args.test_seeds,
                            n_requests=args.requests, data_dir=data_dir, progress=update, backend=backend,
                            tuned=not args.untuned)
    finally:
        close()
    write_outputs(doc, args.out)
    if args.doc:
        write_doc(doc, args.doc)
    if args.json:
        print(dump_json(leaderboard_json(doc)))
    else:
        print(format_tables(doc))
    return 0


def format_tables(doc: dict) -> str:
    """Every task's markdown table."""
    from prfaas_gym.benchmark.leaderboard import markdown_table
    from prfaas_gym.benchmark.tasks import get_task

    return "\n\n".join(markdown_table(get_task(t), table, doc["runs"][t]) for t, table in doc["tasks"].items())


def write_doc(doc: dict, path: str | Path) -> None:
    """The leaderboard page: how it was produced (command, commit, date), the protocol, the
    tuning, a summary over tasks, then every table."""
    s = doc["settings"]
    smoke = s.get("test_seeds") is not None or s.get("n_requests") is not None
    head = [
        "# Benchmark leaderboard",
        "",
        "Generated by `prfaas-gym benchmark run` (do not edit by hand). Regenerate with",
        "",
        "```",
        DOC_COMMAND,
        "```",
        "",
        f"Produced at commit `{doc['commit']}` on {_dt.date.today().isoformat()}"
        + (f", with smoke settings {s} (not the tasks' protocol)." if smoke else ".")
        + ("" if s.get("tuned", True) else " Heuristics ran with their default knobs (`--untuned`)."),
        "",
        "## Protocol",
        "",
        "A task (`prfaas-gym benchmark list [--json]`, `prfaas_gym/benchmark/tasks.py`) is a scenario, a",
        "load level, a decision interface (env id and knobs), a metric, seed splits and a bound. Train",
        "on its `train` seeds, select models and tune knobs on its `validation` seeds, report on its",
        "`test` seeds only (`TrainSettings.check_seeds` refuses test seeds; `tests/benchmark` checks",
        "that no config in `agents/configs/` names one). Changing a task's semantics bumps its version.",
        "",
        "Every task is ranked by SLO attainment over all arrivals (`docs/metrics.md`) on its 10 test",
        "seeds. Intervals are Student-t 95% intervals over seeds; the ratio to the best heuristic is",
        "paired per seed (mean of per-seed ratios); the fraction of the bound is the mean of per-seed",
        "metric / bound, where the bound is the fluid LP of `prfaas-gym bound` (`docs/policies.md`: it",
        "ignores links, KV memory and faults, so it is loose where those bind, and it relaxes",
        "closed-loop arrival times, so it is loose on `bursty-v1`). The best heuristic is in bold",
        "(the highest test mean among the tuned heuristics; ties: first in registry order); the",
        "bound's headroom over it is the paired per-seed ratio bound / best heuristic. Without",
        "`--policies` a task runs every registered heuristic acting on its knobs and every shipped",
        "trained policy made for its env and scenario.",
        "",
        "## Tuned baselines",
        "",
        "Every heuristic runs with its knobs tuned for the task (`--untuned`: the defaults), read from",
        "`prfaas_gym/benchmark/tuned_knobs.json`, which `prfaas-gym benchmark tune --data-dir",
        "$PRFAAS_DATA_DIR` writes (`prfaas_gym/benchmark/tuning.py`). The search, per task and",
        "heuristic, on the task's validation seeds only (5000-5009; never a test seed): the default",
        "knobs plus up to 23 configurations drawn (seeded) from a grid (`SEARCH_SPACES`: thresholds",
        "as 0.25-5x the scenario's, the adaptive router's bandwidth headroom / queue slack / egress",
        "watermark / re-optimisation, the conductor's reject factors and pull threshold, decode",
        "placement and its spill load where there are several PD regions, the provisioners'",
        "intervals, windows, margins and queue targets), each screened on 3 validation seeds; the 4",
        "best and the default are confirmed on all 10, and the highest mean wins (the default on",
        "ties). The file also names each task's best heuristic on the validation seeds",
        "(`prfaas_gym.benchmark.tuning.best_tuned_heuristic(task_id)`, `tuned_policy(task_id)` gives",
        "its router/provisioner specs). A knob moved by less than the validation noise is kept as",
        "tuned (the test seeds then show whether it generalises).",
        "",
        "Put your own policy on a table: `prfaas-gym benchmark run --tasks ID --policies",
        "mooncake-conductor,path/to/policy_dir`, where the directory holds `policy.safetensors` +",
        "`policy.json` (the safe format the training pipeline writes, `docs/learned_agents.md`;",
        "`notebooks/rl_tutorial.ipynb` trains one). Runs are journaled under `--out` (default",
        "`benchmark_results/`) with the code commit: an interrupted run resumes, a run after a code",
        "change recomputes; `--workers N` runs cells in parallel.",
        "",
        "## Summary",
        "",
        summary_table(doc),
        "",
        "## Tables",
        "",
    ]
    Path(path).write_text("\n".join(head) + "\n" + format_tables(doc) + "\n")


def summary_table(doc: dict) -> str:
    """One row per task: the tuned best heuristic, its metric, the bound and the headroom, and
    the best non-heuristic (learned) policy's ratio to it."""
    from prfaas_gym.benchmark.leaderboard import _ci, _pct, is_heuristic

    lines = ["| task | best heuristic (tuned) | its metric [95% CI] | bound [95% CI] | bound / best "
             "[95% CI, paired] | best learned policy: ratio to best heuristic [95% CI] |",
             "|---|---|---|---|---|---|"]
    for tid, t in doc["tasks"].items():
        best = t["best_heuristic"]
        res = t["results"]
        learned = [p for p in res if not is_heuristic(p)]
        top = max(learned, key=lambda p: res[p]["ratio_to_best_heuristic"]["mean"] or 0.0, default=None)
        h = t["bound_over_best_heuristic"]
        lines.append(f"| `{tid}` | {best} | {_ci(res[best]) if best else '-'} | {_ci(t['bound'])} | "
                     f"{_ci(h)} ({_pct(h['mean'])}) | "
                     + (f"{top}: {_ci(res[top]['ratio_to_best_heuristic'])}" if top else "none shipped") + " |")
    return "\n".join(lines)
