"""Paired-seed comparison of policies on one scenario.

Paired: for each seed every policy sees the *same* workload (the simulator draws it from the
seed's workload sub-stream, independent of the policy), so per-seed differences between
policies remove workload noise. A policy spec is a router spec (name, ``trained:NAME`` or a
model path), optionally ``ROUTER+PROVISIONER`` (e.g. ``prfaas-threshold+paper-imbalance``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from prfaas_gym.evaluation.stats import mean_ci
from prfaas_gym.parallel import SERIAL, Backend, map_tasks

EXCLUDED_METRICS = ("wall_time_s",)


def split_policy(spec: str) -> tuple[str, str | None]:
    """``"router+provisioner"`` -> ``(router, provisioner)``; no ``+`` -> ``(spec, None)``."""
    if "+" in spec and not spec.startswith("trained:") and not spec.endswith(".zip"):
        router, prov = spec.split("+", 1)
        return router.strip(), prov.strip() or None
    return spec.strip(), None


def run_policy(
    scenario: Any,
    policy: str,
    seed: int,
    *,
    n_requests: int | None = None,
    rate_rps: float | None = None,
    duration_s: float | None = None,
    data_dir: str | Path | None = None,
    keep_sim: bool = False,
    trust_pickle: bool = False,
) -> tuple[dict, Any]:
    """Run one policy on one seed; ``(summary, simulator or None)``."""
    from prfaas_gym.api import build_simulator

    router, prov = split_policy(policy)
    sim = build_simulator(scenario, router, prov, seed=seed, data_dir=data_dir,
                          n_requests=n_requests, rate_rps=rate_rps, duration_s=duration_s,
                          trust_pickle=trust_pickle)
    summary = sim.run()
    return summary, (sim if keep_sim else None)


@dataclass(frozen=True)
class RunTask:
    """One (policy, seed) run of a comparison: what a worker needs (see ``prfaas_gym.parallel``)."""

    scenario: Any
    policy: str
    seed: int
    n_requests: int | None = None
    rate_rps: float | None = None
    duration_s: float | None = None
    trust_pickle: bool = False  # the policy may be a pickle-based model.zip (docs/security.md)


def run_task(task: RunTask, data_dir: str | Path | None = None) -> dict:
    """The summary of one :class:`RunTask` (the parallel backends' unit of work)."""
    summary, _ = run_policy(task.scenario, task.policy, task.seed, n_requests=task.n_requests,
                            rate_rps=task.rate_rps, duration_s=task.duration_s, data_dir=data_dir,
                            trust_pickle=task.trust_pickle)
    return summary


@dataclass
class Comparison:
    """Per-seed summaries of each policy (``runs[policy][i]`` is seed ``seeds[i]``)."""

    scenario: str
    policies: list[str]
    seeds: list[int]
    runs: dict[str, list[dict]] = field(default_factory=dict)
    sims: dict[str, list[Any]] = field(default_factory=dict)
    rate_rps: float | None = None

    @property
    def metrics(self) -> list[str]:
        """Metric names (the summary keys, minus non-deterministic ones)."""
        first = self.runs[self.policies[0]][0] if self.policies and self.runs.get(self.policies[0]) else {}
        return [k for k, v in first.items() if k not in EXCLUDED_METRICS and _is_number(v)]

    def values(self, policy: str, metric: str) -> list[float]:
        """One value per seed."""
        return [float(r[metric]) if r[metric] is not None else float("nan") for r in self.runs[policy]]

    def aggregate(self) -> dict[str, dict[str, dict]]:
        """``{policy: {metric: {"mean", "ci95": [lo, hi]}}}`` (t-interval over seeds)."""
        return {p: {m: mean_ci(self.values(p, m)) for m in self.metrics} for p in self.policies}

    def paired_differences(self) -> dict[str, dict[str, dict]]:
        """``{policy: {metric: {"mean", "ci95"}}}`` of per-seed (policy - first policy)."""
        base = self.policies[0]
        out: dict[str, dict[str, dict]] = {}
        for p in self.policies[1:]:
            out[p] = {
                m: mean_ci([a - b for a, b in zip(self.values(p, m), self.values(base, m))])
                for m in self.metrics
            }
        return out

    def to_json(self) -> dict:
        """The ``compare --json`` document."""
        doc = {"scenario": self.scenario, "seeds": list(self.seeds), "results": self.aggregate()}
        if len(self.policies) > 1:
            doc["paired_differences"] = {"baseline": self.policies[0], **self.paired_differences()}
        if self.rate_rps is not None:
            doc["rate_rps"] = self.rate_rps
        return doc

    def rows(self) -> list[dict]:
        """One row per (policy, seed) with every metric: the CSV form."""
        rows = []
        for p in self.policies:
            for seed, summary in zip(self.seeds, self.runs[p]):
                row = {"scenario": self.scenario, "policy": p, "seed": seed}
                if self.rate_rps is not None:
                    row["rate_rps"] = self.rate_rps
                row.update({m: summary[m] for m in self.metrics})
                rows.append(row)
        return rows


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def compare_policies(
    scenario: Any,
    policies: Sequence[str],
    *,
    seeds: int = 3,
    seed_offset: int = 0,
    n_requests: int | None = None,
    rate_rps: float | None = None,
    duration_s: float | None = None,
    data_dir: str | Path | None = None,
    keep_sims: bool = False,
    progress: Callable[[int, int], None] | None = None,
    backend: Backend = SERIAL,
    trust_pickle: bool = False,
) -> Comparison:
    """Run every policy on seeds ``seed_offset .. seed_offset + seeds - 1`` (paired).

    Args:
        scenario: a scenario name, path or loaded ``Scenario``.
        policies: policy specs (see the module docstring); checked before anything runs.
        keep_sims: keep the finished simulators (``Comparison.sims``) for plots.
        progress: ``progress(done_runs, total_runs)``.
        backend: where the runs go (``prfaas_gym.parallel``); any backend gives the same numbers.
        trust_pickle: allow pickle-based saved models among ``policies`` (runs their code).
    """
    sc, seed_list = prepare_comparison(scenario, policies, seeds, seed_offset, trust_pickle=trust_pickle)
    tasks = comparison_tasks(sc, policies, seed_list, n_requests=n_requests, rate_rps=rate_rps,
                             duration_s=duration_s, trust_pickle=trust_pickle)
    if data_dir is not None and backend.data_dir is None:
        backend = replace(backend, data_dir=Path(data_dir))
    if keep_sims:  # simulators cannot leave their process: serial, not journaled
        if backend.parallel or backend.resume_dir is not None:
            raise ValueError("keep_sims: needs the serial backend without a journal")
        pairs = map_tasks(_run_task_keep_sim, tasks, backend, progress=progress)
    else:
        pairs = [(s, None) for s in map_tasks(run_task, tasks, backend, progress=progress)]
    return collect_comparison(sc, policies, seed_list, rate_rps, tasks, pairs)


def prepare_comparison(scenario: Any, policies: Sequence[str], seeds: int,
                       seed_offset: int, *, trust_pickle: bool = False) -> tuple[Any, list[int]]:
    """Check the arguments, load the scenario and build every policy once (fail fast on
    unknown names, before any run); returns ``(scenario, seed list)``."""
    from prfaas_gym.policies import make_provisioner, make_router
    from prfaas_gym.scenario import Scenario, load_scenario

    if not policies:
        raise ValueError("policies: give at least one")
    if seeds < 1:
        raise ValueError("seeds: must be >= 1")
    if len(set(policies)) != len(policies):
        raise ValueError(f"policies: duplicates in {list(policies)}")
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    for p in policies:
        router, prov = split_policy(p)
        make_router(router, sc, seed=seed_offset, trust_pickle=trust_pickle)
        make_provisioner(prov, sc)
    return sc, [seed_offset + i for i in range(seeds)]


def collect_comparison(sc: Any, policies: Sequence[str], seeds: list[int], rate_rps: float | None,
                       tasks: Sequence[RunTask], pairs: Sequence[tuple[dict, Any]]) -> Comparison:
    """A :class:`Comparison` from the tasks of :func:`comparison_tasks` and their
    ``(summary, simulator or None)`` results."""
    result = Comparison(sc.name, list(policies), list(seeds), rate_rps=rate_rps)
    for task, (summary, sim) in zip(tasks, pairs):
        result.runs.setdefault(task.policy, []).append(summary)
        if sim is not None:
            result.sims.setdefault(task.policy, []).append(sim)
    return result


def _run_task_keep_sim(task: RunTask, data_dir: str | Path | None = None) -> tuple[dict, Any]:
    return run_policy(task.scenario, task.policy, task.seed, n_requests=task.n_requests,
                      rate_rps=task.rate_rps, duration_s=task.duration_s, data_dir=data_dir,
                      keep_sim=True, trust_pickle=task.trust_pickle)


def comparison_tasks(scenario: Any, policies: Sequence[str], seeds: Sequence[int], *,
                     n_requests: int | None = None, rate_rps: float | None = None,
                     duration_s: float | None = None, trust_pickle: bool = False) -> list[RunTask]:
    """The runs of a comparison, seed-major (the serial order)."""
    return [RunTask(scenario, p, seed, n_requests, rate_rps, duration_s, trust_pickle)
            for seed in seeds for p in policies]
