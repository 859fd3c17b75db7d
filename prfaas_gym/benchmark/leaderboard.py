"""The leaderboard: every applicable policy on a task's test seeds, against the best heuristic
and the task's upper bound.

The unit of work is a *cell*: one (task, policy, seed) simulation (:func:`evaluate_cell`) or
one (task, seed) bound (:func:`bound_cell`); both are plain functions of picklable arguments
returning plain dicts. :func:`run_benchmark` runs the cells through
:func:`prfaas_gym.parallel.map_tasks` (serial, ``--workers N`` processes, or Ray) with its
journal in ``out_dir/journal``: every finished cell is appended there, keyed by the cell and
the code commit (:func:`code_commit`), so an interrupted run resumes where it stopped and a
run after a code change recomputes everything.

Statistics are paired per seed (every policy sees the same workload on a seed): a policy's
ratio to the best heuristic is the mean over test seeds of ``metric(policy) / metric(best)``
with a Student-t 95% interval (``evaluation.stats``); its fraction of the bound is the mean
over seeds of ``metric(policy) / bound``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from prfaas_gym.benchmark.tasks import Task, get_task
from prfaas_gym.benchmark.tuning import tuned_knobs
from prfaas_gym.evaluation.stats import mean_ci

BOUND_KEY = {"slo_attainment": "attainment_max", "goodput_rps": "goodput_rps_max"}
"""Task metric -> the bound's field that caps it (``evaluation.bound.GoodputBound``)."""

TABLE_EXTRA = ("slo_attainment", "goodput_rps", "ttft_p90_all_s", "rejected")
"""Context columns of the per-task table besides the headline metric."""

# ------------------------------------------------------------------------------- policies
def _scenario_key(name: str) -> str:
    return str(name).removeprefix("envs/").removesuffix(".yaml")


def heuristics_for(task: Task) -> list[str]:
    """Registered heuristic policy specs that act on the task's knobs.

    Routing tasks: every registered router. Provisioning tasks: the scenario's router with
    every registered provisioner (``ROUTER+PROVISIONER``).
    """
    from prfaas_gym.policies.registry import PROVISIONERS, ROUTERS
    from prfaas_gym.scenario import load_scenario

    if "provision" in task.knobs:
        router = load_scenario(task.scenario).router.get("name", "prfaas-threshold")
        return [f"{router}+{p}" for p in PROVISIONERS]
    return list(ROUTERS)


def trained_for(task: Task) -> list[str]:
    """Shipped trained policies (``trained:NAME``) made for the task's env and scenario
    (metadata ``task`` equal to the task id, or its env id base and scenario)."""
    from prfaas_gym.policies.trained import list_trained, load_metadata

    out = []
    base = task.env_id.split("-")[0]  # prfaas/Routing
    prefix = ""
    if "provision" in task.knobs:  # a learned provisioner runs under the scenario's router
        from prfaas_gym.scenario import load_scenario

        prefix = load_scenario(task.scenario).router.get("name", "prfaas-threshold") + "+"
    for name in list_trained():
        meta = load_metadata(f"trained:{name}")
        scenario = (meta.get("env_kwargs") or {}).get("scenario", "")
        if meta.get("task") == task.id or (str(meta.get("env_id", "")).startswith(base)
                                           and _scenario_key(scenario) == _scenario_key(task.scenario)):
            out.append(f"{prefix}trained:{name}")
    return out


def policies_for(task: Task) -> list[str]:
    """Every heuristic, then every shipped trained policy, applicable to the task."""
    return heuristics_for(task) + trained_for(task)


def is_heuristic(policy: str) -> bool:
    """True for registered heuristics (not ``trained:``/model paths)."""
    return not ("trained:" in policy or policy.endswith(".zip") or "/" in policy)


# ------------------------------------------------------------------------------- cells
def evaluate_cell(task_id: str, policy: str, seed: int, *, n_requests: int | None = None,
                  data_dir: str | None = None, knobs: dict | None = None) -> dict:
    """Run ``policy`` on ``task_id`` with ``seed``; the run's summary (numbers only).
    ``knobs``: parameters of a heuristic's tunable part (``benchmark.tuning.policy_specs``)."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.benchmark.tuning import policy_specs

    task = get_task(task_id)
    load = task.load
    if n_requests is not None:
        load["n_requests"] = n_requests
    router, prov = policy_specs(policy, knobs)
    summary = build_simulator(task.scenario, router, prov, seed=seed, data_dir=data_dir, **load).run()
    return {k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def bound_cell(task_id: str, seed: int, *, n_requests: int | None = None, data_dir: str | None = None) -> dict:
    """The task's upper bound on ``seed`` (``GoodputBound.as_dict()``)."""
    from prfaas_gym.evaluation.bound import goodput_upper_bound

    task = get_task(task_id)
    load = task.load
    if n_requests is not None:
        load["n_requests"] = n_requests
    b = goodput_upper_bound(task.scenario, seed, data_dir=data_dir, slot_s=task.bound_slot_s,
                            roles=task.bound_roles, **load)
    return b.as_dict()


def benchmark_cell(cell: tuple, data_dir: Any = None) -> dict:
    """``(task, kind, policy, seed, n_requests, commit, knobs_json)`` -> the cell's result
    (``map_tasks`` task function; ``commit`` only keys the journal)."""
    task_id, kind, policy, seed, n_requests, _commit, knobs = cell
    data = str(data_dir) if data_dir is not None else None
    if kind == "bound":
        return bound_cell(task_id, seed, n_requests=n_requests, data_dir=data)
    return evaluate_cell(task_id, policy, seed, n_requests=n_requests, data_dir=data, knobs=json.loads(knobs))


def code_commit() -> str:
    """The package's git commit, plus a hash of uncommitted edits to ``prfaas_gym/`` and
    ``envs/`` (``+dirty.<hash>``), or ``unknown`` outside a git checkout: the journal key."""
    import hashlib
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        diff = subprocess.run(["git", "diff", "HEAD", "--", "prfaas_gym", "envs"], cwd=root,
                              capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + (f"+dirty.{hashlib.sha256(diff).hexdigest()[:8]}" if diff else "")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_")


# ------------------------------------------------------------------------------- the run
def run_benchmark(
    task_ids: Sequence[str],
    policies: Sequence[str] | None = None,
    *,
    out_dir: str | Path = "benchmark_results",
    test_seeds: int | None = None,
    n_requests: int | None = None,
    data_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    backend: Any = None,
    tuned: bool = True,
) -> dict:
    """Run the leaderboard; returns ``{"tasks": {id: table}, "runs": {id: rows}, "commit", ...}``.

    Args:
        task_ids: registered task ids.
        policies: policy specs (default: :func:`policies_for` each task). Ratios need at
            least one heuristic among them.
        out_dir: the journal (``out_dir/journal``) and the per-task outputs (:func:`write_outputs`).
        test_seeds: use only the first N test seeds (smoke runs; the outputs say so).
        n_requests: override the task's request count (smoke runs; the outputs say so).
        backend: a :class:`prfaas_gym.parallel.Backend` (default: serial); its ``resume_dir``
            is replaced by ``out_dir/journal``.
        tuned: run heuristics with their knobs tuned for the task on its validation seeds
            (``benchmark.tuning.TUNED_FILE``); ``False``: their defaults.
    """
    from dataclasses import replace

    from prfaas_gym.parallel import SERIAL, map_tasks

    tasks = [get_task(t) for t in task_ids]
    if not tasks:
        raise ValueError("--tasks: give at least one task")
    if test_seeds is not None and test_seeds < 1:
        raise ValueError("--test-seeds: must be >= 1")
    if n_requests is not None and n_requests < 1:
        raise ValueError("--requests: must be >= 1")
    for t in tasks:
        if t.needs_data and data_dir is None:
            raise ValueError(f"task {t.id}: needs the data directory (--data-dir or PRFAAS_DATA_DIR)")
    plan: dict[str, tuple[list[str], list[int]]] = {}
    for t in tasks:
        pols = list(policies) if policies else policies_for(t)
        if len(set(pols)) != len(pols):
            raise ValueError(f"--policies: duplicates in {pols}")
        _check_policies(t, pols)
        seeds = list(t.seeds.test[:test_seeds] if test_seeds else t.seeds.test)
        plan[t.id] = (pols, seeds)
    commit = code_commit()
    knobs = {(tid, p): (tuned_knobs(tid, p) if tuned and is_heuristic(p) else {})
             for tid, (pols, _) in plan.items() for p in pols}
    cells = [(tid, kind, pol, seed, n_requests, commit,
              "{}" if kind == "bound" else json.dumps(knobs[(tid, pol)], sort_keys=True))
             for tid, (pols, seeds) in plan.items() for seed in seeds
             for kind, pol in [("bound", "bound")] + [("policy", p) for p in pols]]
    backend = replace(backend or SERIAL, resume_dir=(Path(out_dir) / "journal").resolve(),
                      data_dir=Path(data_dir) if data_dir is not None else None)
    results = dict(zip([c[:4] for c in cells], map_tasks(benchmark_cell, cells, backend, progress=progress)))

    settings = {"test_seeds": test_seeds, "n_requests": n_requests, "tuned": tuned}
    doc: dict[str, Any] = {"tasks": {}, "runs": {}, "commit": commit, "settings": settings}
    for t in tasks:
        pols, seeds = plan[t.id]
        runs = {p: [results[(t.id, "policy", p, s)] for s in seeds] for p in pols}
        bounds = [results[(t.id, "bound", "bound", s)] for s in seeds]
        doc["tasks"][t.id] = task_table(t, runs, bounds)
        doc["tasks"][t.id]["knobs"] = {p: knobs[(t.id, p)] for p in pols if is_heuristic(p)}
        doc["tasks"][t.id]["tuned"] = tuned
        doc["runs"][t.id] = {"seeds": seeds, "policies": runs, "bounds": bounds}
    return doc


def _check_policies(task: Task, policies: Sequence[str]) -> None:
    """Fail fast (before any run) on a policy spec the registry cannot build."""
    from prfaas_gym.evaluation.compare import split_policy
    from prfaas_gym.policies import make_provisioner, make_router
    from prfaas_gym.scenario import load_scenario

    sc = load_scenario(task.scenario)
    for p in policies:
        router, prov = split_policy(p)
        make_router(router, sc)
        make_provisioner(prov, sc)


def _ratio(a: float, b: float) -> float:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return math.nan
    return a / b


def task_table(task: Task, runs: dict[str, list[dict]], bounds: list[dict]) -> dict:
    """One task's leaderboard entry (the ``benchmark run --json`` shape) from per-seed cells."""
    metric = task.metric
    values = {p: [r.get(metric, math.nan) for r in rs] for p, rs in runs.items()}
    bound = [b[BOUND_KEY[metric]] for b in bounds]
    heur = [p for p in runs if is_heuristic(p)]
    means = {p: mean_ci(values[p])["mean"] for p in heur}
    finite = [p for p in heur if means[p] is not None and math.isfinite(means[p])]
    best = max(finite, key=lambda p: means[p]) if finite else None
    results = {}
    for p, v in values.items():
        entry = mean_ci(v)
        if best is not None:
            entry["ratio_to_best_heuristic"] = mean_ci([_ratio(a, b) for a, b in zip(v, values[best])])
        else:
            entry["ratio_to_best_heuristic"] = {"mean": math.nan, "ci95": [math.nan, math.nan]}
        fr = [_ratio(a, b) for a, b in zip(v, bound)]
        entry["fraction_of_bound"] = mean_ci(fr)["mean"]
        results[p] = entry
    headroom = (mean_ci([_ratio(b, a) for a, b in zip(values[best], bound)]) if best is not None
                else {"mean": math.nan, "ci95": [math.nan, math.nan]})
    return {"metric": metric, "bound": mean_ci(bound), "best_heuristic": best,
            "bound_over_best_heuristic": headroom, "results": results}


# ------------------------------------------------------------------------------- outputs
def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "inf" if isinstance(x, float) and x == math.inf else "-"
    return f"{x:.{digits}f}"


def _ci(e: dict, digits: int = 3) -> str:
    lo, hi = e["ci95"]
    return f"{_f(e['mean'], digits)} [{_f(lo, digits)}, {_f(hi, digits)}]"


def markdown_table(task: Task, table: dict, runs: dict) -> str:
    """The task's leaderboard as a markdown table (best first; ties keep registry order)."""
    res = table["results"]
    order = sorted(res, key=lambda p: -(res[p]["mean"] if res[p]["mean"] is not None and
                                        math.isfinite(res[p]["mean"]) else -math.inf))
    seeds = runs["seeds"]
    extra = [k for k in TABLE_EXTRA if k != table["metric"]]
    names = {"slo_attainment": "attainment", "goodput_rps": "goodput (req/s)",
             "ttft_p90_all_s": "TTFT p90, rejected = inf (s)", "rejected": "rejected"}
    lines = [
        f"### `{task.id}`",
        "",
        f"{task.description}. Scenario `{task.scenario}`, env `{task.env_id}` (knobs: "
        f"{', '.join(task.knobs)}), metric `{table['metric']}`, test seeds {seeds[0]}-{seeds[-1]} "
        f"({len(seeds)}). Bound (fluid LP, {task.bound_slot_s:g} s slots, roles={task.bound_roles}): "
        f"{_ci(table['bound'])}.",
        "",
        f"| policy | {table['metric']} [95% CI] | ratio to best heuristic [95% CI, paired] | fraction of bound | "
        + " | ".join(names[k] for k in extra) + " |",
        "|---|---|---|---|" + "---|" * len(extra),
    ]
    for p in order:
        e = res[p]
        per_seed = runs["policies"][p]
        cols = []
        for k in extra:
            if k == "ttft_p90_all_s":
                cols.append(_p90_all(per_seed))
            else:
                cols.append(_f(mean_ci([r.get(k, math.nan) for r in per_seed])["mean"], 1 if k == "rejected" else 3))
        name = f"**{p}**" if p == table["best_heuristic"] else p
        lines.append(f"| {name} | {_ci(e)} | {_ci(e['ratio_to_best_heuristic'])} | {_f(e['fraction_of_bound'])} | "
                     + " | ".join(cols) + " |")
    best = table["best_heuristic"]
    if best is not None:
        h = table["bound_over_best_heuristic"]
        lines += ["", f"Best heuristic: **{best}**{' (tuned)' if table.get('knobs', {}).get(best) else ''}. "
                  f"Bound / best heuristic (paired per seed): {_ci(h)}, i.e. at most "
                  f"{_pct(h['mean'])} headroom for any policy on this task's metric."]
    knobs = table.get("knobs") or {}
    if not table.get("tuned", True):
        lines += ["", "Heuristics ran with their default knobs (`--untuned`), not the tuned ones."]
    elif knobs:
        tuned = [f"`{p}`: " + ", ".join(f"{k}={v}" for k, v in k_.items()) for p, k_ in knobs.items() if k_]
        same = [f"`{p}`" for p, k_ in knobs.items() if not k_]
        lines += ["", "Knobs (tuned on the validation seeds, `prfaas_gym/benchmark/tuned_knobs.json`): "
                  + ("; ".join(tuned) if tuned else "none moved")
                  + (f"; defaults (no knobs, or the default won): {', '.join(same)}" if same else "") + "."]
    if task.notes:
        lines += ["", f"Note: {task.notes}"]
    return "\n".join(lines)


def _pct(ratio: float) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "-"
    return f"{100 * (ratio - 1):+.1f}%"


def _p90_all(per_seed: list[dict]) -> str:
    vals = [r.get("ttft_p90_all_s") for r in per_seed]
    if any(v is None or (isinstance(v, float) and math.isinf(v)) for v in vals):
        return "inf (some seeds)"
    return _f(mean_ci(vals)["mean"], 1)


def runs_csv(runs: dict) -> str:
    """Per-(policy, seed) rows of every summary metric, plus the bound per seed."""
    rows = []
    for p, per_seed in runs["policies"].items():
        for seed, r in zip(runs["seeds"], per_seed):
            rows.append({"policy": p, "seed": seed, **r})
    for seed, b in zip(runs["seeds"], runs["bounds"]):
        rows.append({"policy": "bound", "seed": seed, **{k: v for k, v in b.items() if k != "roles"}})
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def leaderboard_json(doc: dict) -> dict:
    """The ``benchmark run --json`` object: ``{"tasks": {id: table}}``."""
    return {"tasks": doc["tasks"]}


def write_outputs(doc: dict, out_dir: str | Path) -> list[Path]:
    """Per task: ``leaderboard.md``, ``leaderboard.json``, ``runs.csv`` under ``out_dir/<task>/``."""
    from prfaas_gym.commands.common import dump_json

    written = []
    for tid, table in doc["tasks"].items():
        d = Path(out_dir) / _slug(tid)
        d.mkdir(parents=True, exist_ok=True)
        task = get_task(tid)
        files = {
            "leaderboard.md": markdown_table(task, table, doc["runs"][tid]) + "\n",
            "leaderboard.json": dump_json({"task": task.as_dict(), "commit": doc["commit"],
                                           "settings": doc["settings"], **table,
                                           "runs": doc["runs"][tid]}) + "\n",
            "runs.csv": runs_csv(doc["runs"][tid]),
        }
        for name, text in files.items():
            (d / name).write_text(text)
            written.append(d / name)
    return written
