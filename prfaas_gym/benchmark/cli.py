"""``prfaas-gym benchmark list|run``: the task registry and the leaderboard."""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from prfaas_gym.commands.common import add_data_dir_argument, dump_json, progress_bar, resolve_data_dir
from prfaas_gym.parallel import BACKENDS

DOC_COMMAND = "prfaas-gym benchmark run --data-dir $PRFAAS_DATA_DIR --doc docs/benchmark.md"


def add_benchmark_parser(sub) -> argparse.ArgumentParser:
    """Register ``benchmark`` with its ``list`` and ``run`` subcommands."""
    p = sub.add_parser("benchmark", help="benchmark tasks and the leaderboard",
                       description="Versioned benchmark tasks (scenario + load + decision interface + "
                                   "metric + seed splits + bound) and their leaderboard; docs/benchmark.md.")
    bsub = p.add_subparsers(dest="benchmark_command", metavar="{list,run}")
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
    rp.add_argument("--workers", type=int, default=None, metavar="N",
                    help="parallel worker processes (default 1: serial); with --backend ray, its CPUs")
    rp.add_argument("--backend", choices=BACKENDS, default="local", help="local (default) or ray")
    rp.add_argument("--address", default=None, metavar="ADDR", help="Ray cluster to join (--backend ray)")
    add_data_dir_argument(rp)
    rp.set_defaults(func=run_run)
    return p


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
    from prfaas_gym.benchmark.tasks import TASKS, get_task
    from prfaas_gym.parallel import backend_from_args

    data_dir = resolve_data_dir(args.data_dir)
    if args.tasks:
        task_ids = [s.strip() for s in args.tasks.split(",") if s.strip()]
    else:
        task_ids = [t for t in TASKS if data_dir is not None or not TASKS[t].needs_data]
    policies = [s.strip() for s in (args.policies or "").split(",") if s.strip()] or None
    n_cells = sum((1 + len(policies or policies_for(get_task(t)))) *
                  min(args.test_seeds or 10**9, len(get_task(t).seeds.test)) for t in task_ids)
    args.resume = None  # the journal always lives in --out
    backend = backend_from_args(args, data_dir)
    update, close = progress_bar(n_cells, "benchmark", unit="run")
    try:
        doc = run_benchmark(task_ids, policies, out_dir=args.out, test_seeds=args.test_seeds,
                            n_requests=args.requests, data_dir=data_dir, progress=update, backend=backend)
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
    """The leaderboard page: how it was produced (command, commit, date), then every table."""
    s = doc["settings"]
    smoke = any(v is not None for v in s.values())
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
        + (f", with smoke settings {s} (not the tasks' protocol)." if smoke else "."),
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
        "ignores links, KV memory and faults, so it is loose where those bind). The best heuristic is",
        "in bold (ties: first in registry order). Heuristics run with their default knobs, not tuned",
        "per task. Without `--policies` a task runs every registered heuristic acting on its knobs",
        "and every shipped trained policy made for its env and scenario.",
        "",
        "Put your own policy on a table: `prfaas-gym benchmark run --tasks ID --policies",
        "mooncake-conductor,path/to/model.zip` (`notebooks/rl_tutorial.ipynb` trains one). Runs are",
        "journaled under `--out` (default `benchmark_results/`) with the code commit: an interrupted",
        "run resumes, a run after a code change recomputes; `--workers N` runs cells in parallel.",
        "",
        "## Tables",
        "",
    ]
    Path(path).write_text("\n".join(head) + "\n" + format_tables(doc) + "\n")
