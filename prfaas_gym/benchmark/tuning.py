"""Tuned baselines: every heuristic's knobs searched per task on its validation seeds.

A learned policy has to beat the *tuned* best heuristic (#13), so each heuristic's knobs
(thresholds, reject margins, bandwidth budgets, autoscaler targets) are searched per task, on
the task's ``validation`` seeds only, by :func:`tune_task` (``prfaas-gym benchmark tune``).
The result is :data:`TUNED_FILE` (``prfaas_gym/benchmark/tuned_knobs.json``), which the
leaderboard reads: a heuristic on a task's table runs with its tuned knobs.

The search (documented in ``docs/benchmark.md``), per task and tunable heuristic:

1. candidates: the heuristic's default knobs plus up to ``budget - 1`` configurations drawn
   without replacement from its grid (:data:`SEARCH_SPACES`; the whole grid when it is
   smaller), with a fixed random seed, so the search is reproducible;
2. screening: every candidate on the first ``screen_seeds`` validation seeds;
3. confirmation: the ``finalists`` best screened candidates, and the default, on all the
   validation seeds; the highest mean of the task's metric wins, the default on ties (a
   knob moves only when that measurably helps).

Heuristics without knobs (``round-robin``, ``least-loaded``, ...) are run on all validation
seeds too, so the file also names the *tuned best heuristic* of each task (by validation
mean): the one a learned policy imitates and must beat.

Grids are relative to the scenario where a knob is (``threshold_tokens``: multiples of the
scenario router's threshold); infinite values are written as the string ``"inf"`` (every
constructor reads knobs with ``float``).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any, Callable, Sequence

from prfaas_gym.benchmark.tasks import Task, get_task
from prfaas_gym.evaluation.stats import mean_ci

TUNED_FILE = Path(__file__).with_name("tuned_knobs.json")
"""Where the tuned knobs live (read by the leaderboard; written by ``benchmark tune``)."""

INF = "inf"

THRESHOLD_FACTORS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
"""``threshold_tokens`` candidates, as multiples of the scenario router's threshold."""

SEARCH_SPACES: dict[str, dict[str, Any]] = {
    "prfaas-threshold": {"threshold_tokens": THRESHOLD_FACTORS},
    "prfaas-adaptive": {
        "threshold_tokens": (0.5, 1.0, 2.0),
        "bandwidth_headroom": (0.5, 0.8, 1.0, 1.5, INF),
        "queue_slack_s": (0.5, 2.0, 5.0),
        "egress_high": (0.6, 0.8, 0.95),
        "reoptimise_every": (0, 32),
    },
    "mooncake-conductor": {
        "reject_ttft_factor": (1.0, 1.5, 2.0, 3.0, INF),
        "reject_decode_factor": (1.0, 1.5, 2.0, 3.0, INF),
        "balance_threshold_s": (0.05, 0.1, 0.5, 2.0),
    },
    "least-loaded": {},
    "paper-imbalance": {
        "interval_s": (60.0, 120.0, 240.0),
        "window_s": (120.0, 300.0, 600.0),
        "margin": (0.1, 0.25, 0.5),
        "load_fraction": (0.5, 0.7, 0.9),
    },
    "queue-autoscaler": {
        "interval_s": (30.0, 60.0, 120.0),
        "prefill_wait_high_s": (2.0, 5.0, 10.0),
        "prefill_wait_low_s": (0.5, 1.0, 2.0),
        "decode_waiting_high": (1, 4, 16),
    },
}
"""Heuristic -> knob -> candidate values (``threshold_tokens``: factors of the scenario's)."""

DECODE_PLACEMENT_KNOBS: dict[str, tuple] = {
    "decode_placement": ("home", "least-loaded"),
    "decode_spill_at": (0.8, 0.9, 1.0, 1.2),
}
"""Added to the routers that place decode (``policies.decode_placement``) on scenarios with
several PD clusters (elsewhere decode can only stay home)."""

DECODE_PLACING = ("mooncake-conductor", "least-loaded")

RELATIVE_KNOBS = ("threshold_tokens",)


# ------------------------------------------------------------------------------- specs
def _split(policy: str) -> tuple[str, str | None]:
    from prfaas_gym.evaluation.compare import split_policy

    return split_policy(policy)


def tunable_part(policy: str) -> str | None:
    """The part of a heuristic spec whose knobs are searched (``ROUTER+PROV``: the
    provisioner, the task's knob), or ``None`` when it has none."""
    router, prov = _split(policy)
    part = prov if prov is not None else router
    return part if part in SEARCH_SPACES else None


def search_space(part: str, scenario: Any) -> dict[str, Any]:
    """The knobs searched for heuristic ``part`` on ``scenario`` (``{}``: none)."""
    space = dict(SEARCH_SPACES.get(part, {}))
    if part in DECODE_PLACING and sum(1 for c in scenario.clusters if c.kind == "pd") > 1:
        space.update(DECODE_PLACEMENT_KNOBS)
    return space


def _candidates(part: str, scenario: Any, budget: int, rng: random.Random) -> list[dict[str, Any]]:
    """The default (``{}``) plus up to ``budget - 1`` grid points (absolute values)."""
    space = search_space(part, scenario)
    if not space:
        return [{}]
    base = float(scenario.default_threshold_tokens)
    names = list(space)
    grid = []
    for values in itertools.product(*(space[k] for k in names)):
        cfg = {}
        for k, v in zip(names, values):
            cfg[k] = round(v * base) if k in RELATIVE_KNOBS else v
        grid.append(cfg)
    picked = grid if len(grid) <= budget - 1 else rng.sample(grid, budget - 1)
    return [{}] + picked


def policy_specs(policy: str, knobs: dict[str, Any] | None) -> tuple[Any, Any]:
    """``(router spec, provisioner spec)`` for :func:`prfaas_gym.api.build_simulator`: the
    heuristic with ``knobs`` on its tunable part (``None`` for a part: the scenario's own)."""
    router, prov = _split(policy)
    part = tunable_part(policy)
    knobs = {k: (math.inf if v == INF else v) for k, v in (knobs or {}).items()}
    if prov is not None:
        return router, ({"name": prov, **knobs} if part == prov and knobs else prov)
    return ({"name": router, **knobs} if part == router and knobs else router), None


# ------------------------------------------------------------------------------- the file
def load_tuned(path: str | Path | None = None) -> dict:
    """The tuned-knobs document (``{"tasks": {id: {...}}}``); empty when the file is absent."""
    p = Path(path) if path is not None else TUNED_FILE
    if not p.is_file():
        return {"tasks": {}}
    from prfaas_gym.policies.trained import read_json_file

    doc = read_json_file(p)
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks"), dict):
        raise ValueError(f"{p}: expected an object with 'tasks'")
    return doc


def tuned_knobs(task_id: str, policy: str, path: str | Path | None = None) -> dict[str, Any]:
    """The tuned knobs of ``policy`` on ``task_id`` (``{}``: its defaults, or not tuned)."""
    entry = load_tuned(path)["tasks"].get(task_id, {}).get("policies", {}).get(policy, {})
    return dict(entry.get("knobs") or {})


def best_tuned_heuristic(task_id: str, path: str | Path | None = None) -> tuple[str, dict[str, Any]]:
    """``(policy, knobs)``: the task's best heuristic on its validation seeds, with its tuned
    knobs (what a learned policy imitates and must beat). Raises if the task is not tuned."""
    entry = load_tuned(path)["tasks"].get(task_id)
    if not entry or not entry.get("best_heuristic"):
        raise ValueError(f"task {task_id}: no tuned knobs (run `prfaas-gym benchmark tune --tasks {task_id}`)")
    best = entry["best_heuristic"]
    return best, dict(entry["policies"][best].get("knobs") or {})


def tuned_policy(task_id: str, policy: str | None = None, path: str | Path | None = None) -> tuple[Any, Any]:
    """``(router spec, provisioner spec)`` of ``policy`` (default: the tuned best heuristic)
    with its tuned knobs on ``task_id``; give them to ``build_simulator`` or ``make_router``.

    >>> router, prov = tuned_policy("prfaas/bursty-v1")          # doctest: +SKIP
    """
    if policy is None:
        policy, knobs = best_tuned_heuristic(task_id, path)
    else:
        knobs = tuned_knobs(task_id, policy, path)
    return policy_specs(policy, knobs)


# ------------------------------------------------------------------------------- the search
def tune_cell(cell: tuple, data_dir: Any = None) -> dict:
    """``(task, policy, knobs_json, seed, n_requests)`` -> the run's numeric summary
    (``map_tasks`` task function)."""
    from prfaas_gym.benchmark.leaderboard import evaluate_cell

    task_id, policy, knobs, seed, n_requests = cell
    return evaluate_cell(task_id, policy, seed, knobs=json.loads(knobs), n_requests=n_requests,
                         data_dir=str(data_dir) if data_dir is not None else None)


def _metric(task: Task, summary: dict) -> float:
    v = summary.get(task.metric)
    return float(v) if v is not None else math.nan


def tune_task(
    task_id: str,
    policies: Sequence[str] | None = None,
    *,
    budget: int = 24,
    screen_seeds: int = 3,
    finalists: int = 4,
    data_dir: str | Path | None = None,
    backend: Any = None,
    progress: Callable[[int, int], None] | None = None,
    search_seed: int = 0,
    n_requests: int | None = None,
) -> dict:
    """Tune every heuristic of ``task_id`` on its validation seeds (module docstring).

    Returns the task's entry of :data:`TUNED_FILE`: ``{"metric", "validation_seeds",
    "best_heuristic", "policies": {policy: {"knobs", "validation": {"mean", "ci95"},
    "default_validation": {...}, "searched"}}}``. ``n_requests``: smoke runs only (tests).
    """
    from prfaas_gym.benchmark.leaderboard import heuristics_for
    from prfaas_gym.parallel import SERIAL, map_tasks
    from prfaas_gym.scenario import load_scenario

    task = get_task(task_id)
    if budget < 1 or screen_seeds < 1 or finalists < 1:
        raise ValueError("tune: budget, screen_seeds and finalists must be >= 1")
    policies = list(policies) if policies else heuristics_for(task)
    seeds = list(task.seeds.validation)
    screen = seeds[:screen_seeds]
    scenario = load_scenario(task.scenario)
    rng = random.Random(search_seed)
    cands = {p: (_candidates(tunable_part(p), scenario, budget, rng) if tunable_part(p) else [{}])
             for p in policies}
    backend = backend or SERIAL
    total = sum(len(c) * len(screen) for c in cands.values()) + sum(
        min(finalists + 1, len(c)) * (len(seeds) - len(screen)) for c in cands.values())
    done = [0]

    def run(cells: list[tuple]) -> list[dict]:
        def prog(k: int, _n: int) -> None:
            if progress:
                progress(done[0] + k, total)
        out = map_tasks(tune_cell, cells, backend, progress=prog)
        done[0] += len(cells)
        return out

    # screening
    cells = [(task.id, p, json.dumps(k, sort_keys=True), s, n_requests)
             for p in policies for k in cands[p] for s in screen]
    results = dict(zip(cells, run(cells)))

    def scores(p: str, k: dict, on: list[int]) -> list[float]:
        key = json.dumps(k, sort_keys=True)
        return [_metric(task, results[(task.id, p, key, s, n_requests)]) for s in on]

    # confirmation
    finals: dict[str, list[dict]] = {}
    for p in policies:
        ranked = sorted(cands[p], key=lambda k: -_nanmean(scores(p, k, screen)))
        top = ranked[:finalists]
        finals[p] = [{}] + [k for k in top if k]
    rest = seeds[len(screen):]
    cells = [(task.id, p, json.dumps(k, sort_keys=True), s, n_requests)
             for p in policies for k in finals[p] for s in rest]
    results.update(zip(cells, run(cells)))

    entry: dict[str, Any] = {"metric": task.metric, "validation_seeds": seeds, "policies": {}}
    for p in policies:
        default = scores(p, {}, seeds)
        best_k, best_v = {}, _nanmean(default)
        for k in finals[p][1:]:
            v = _nanmean(scores(p, k, seeds))
            if v > best_v + 1e-12:
                best_k, best_v = k, v
        entry["policies"][p] = {
            "knobs": best_k,
            "validation": mean_ci(scores(p, best_k, seeds)),
            "default_validation": mean_ci(default),
            "searched": len(cands[p]) - 1,
        }
    means = {p: e["validation"]["mean"] for p, e in entry["policies"].items()}
    finite = [p for p in policies if means[p] is not None and math.isfinite(means[p])]
    entry["best_heuristic"] = max(finite, key=lambda p: means[p]) if finite else None
    return entry


def _nanmean(xs: list[float]) -> float:
    vals = [x for x in xs if math.isfinite(x)]
    return sum(vals) / len(vals) if vals else -math.inf


def search_settings(budget: int, screen_seeds: int, finalists: int, search_seed: int) -> dict:
    """The search's settings, as recorded in the tuned-knobs file."""
    return {"budget": budget, "screen_seeds": screen_seeds, "finalists": finalists,
            "search_seed": search_seed, "spaces": SEARCH_SPACES,
            "relative_knobs": {k: "multiple of the scenario router's threshold_tokens" for k in RELATIVE_KNOBS}}


def write_tuned(entries: dict[str, dict], settings: dict, commit: str, path: str | Path | None = None) -> Path:
    """Merge ``entries`` (task id -> :func:`tune_task` entry) into the tuned-knobs file."""
    from prfaas_gym.atomic import write_file_atomic
    from prfaas_gym.commands.common import jsonable

    p = Path(path) if path is not None else TUNED_FILE
    doc = load_tuned(p)
    for tid, e in entries.items():
        doc["tasks"][tid] = {**e, "commit": commit}
    doc["search"] = settings
    doc["command"] = "prfaas-gym benchmark tune --data-dir $PRFAAS_DATA_DIR"
    doc["tasks"] = dict(sorted(doc["tasks"].items()))
    text = json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n"
    write_file_atomic(p, lambda tmp: Path(tmp).write_text(text), suffix=".json")
    return p
