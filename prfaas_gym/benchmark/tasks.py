"""The versioned benchmark task registry.

A task fixes everything a number in a paper depends on: the scenario, the load level, the
decision interface (which env id, which knobs a policy turns), the metric it is ranked by,
the seed splits, and how its upper bound is computed. Changing any of that changes the
task's semantics and bumps its version (``prfaas/bursty-v1`` -> ``-v2``); old ids are kept
as long as they can be run.

Seeds. ``train`` seeds are for training episodes, ``validation`` seeds for model selection
and tuning heuristics' knobs, ``test`` seeds only for the leaderboard. Test seeds never
appear in training: :func:`check_training_seeds` refuses them in the training settings
(``prfaas_gym.training.config``), and ``tests/benchmark`` checks every config in
``agents/configs/``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

METRICS = ("slo_attainment", "goodput_rps")
"""Metrics a task can be ranked by (``docs/metrics.md``); higher is better for both."""

KNOBS = ("route", "provision")
"""``route``: per-request prefill (and decode) placement and rejection, the Router API
(``prfaas/Routing-v1``); ``provision``: the PD clusters' prefill/decode split every
provisioning interval, the Provisioner API (``prfaas/Provisioning-v1``)."""

TRAIN_SEEDS = tuple(range(0, 1000))
VALIDATION_SEEDS = tuple(range(5000, 5010))
TEST_SEEDS = tuple(range(90_000, 90_010))


@dataclass(frozen=True)
class SeedSplits:
    """Disjoint episode seeds: training, validation (model selection, knob tuning), test."""

    train: tuple[int, ...] = TRAIN_SEEDS
    validation: tuple[int, ...] = VALIDATION_SEEDS
    test: tuple[int, ...] = TEST_SEEDS

    def __post_init__(self) -> None:
        sets = [set(self.train), set(self.validation), set(self.test)]
        if sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2]:
            raise ValueError("seed splits: train, validation and test must be disjoint")
        if not self.test:
            raise ValueError("seed splits: test must hold at least one seed")

    def as_dict(self) -> dict[str, list[int]]:
        """``{"train": [...], "validation": [...], "test": [...]}``."""
        return {"train": list(self.train), "validation": list(self.validation), "test": list(self.test)}


@dataclass(frozen=True)
class Task:
    """One benchmark task (see the module docstring).

    Attributes:
        id: ``prfaas/<name>-v<version>``.
        scenario: scenario name or path (``load_scenario``).
        description: one line: what the world is and what makes it hard.
        env_id: the Gymnasium env id that exposes the task's decision interface.
        knobs: what a policy controls (:data:`KNOBS`).
        metric: the headline metric the leaderboard ranks by (:data:`METRICS`).
        n_requests, rate_rps, duration_s: the load level (``None``: the scenario's own).
        seeds: the seed splits.
        bound_slot_s: LP time slot of the task's bound (``evaluation.bound``).
        needs_data: the scenario replays a trace from the data directory.
        notes: known limits of the task's interface or bound (shown under its table).
    """

    id: str
    scenario: str
    description: str
    env_id: str
    knobs: tuple[str, ...]
    metric: str = "slo_attainment"
    n_requests: int | None = None
    rate_rps: float | None = None
    duration_s: float | None = None
    seeds: SeedSplits = field(default_factory=SeedSplits)
    bound_slot_s: float = 1.0
    needs_data: bool = False
    notes: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"task {self.id}: metric {self.metric!r} (known: {', '.join(METRICS)})")
        unknown = set(self.knobs) - set(KNOBS)
        if not self.knobs or unknown:
            raise ValueError(f"task {self.id}: knobs {list(self.knobs)} (known: {', '.join(KNOBS)})")

    @property
    def bound_roles(self) -> str:
        """``initial`` (P/D split fixed) for routing tasks, ``any`` when the split is a knob."""
        return "any" if "provision" in self.knobs else "initial"

    @property
    def load(self) -> dict[str, Any]:
        """Keyword arguments of ``build_simulator`` / ``run_policy`` fixing the load level."""
        return {"n_requests": self.n_requests, "rate_rps": self.rate_rps, "duration_s": self.duration_s}

    def env_kwargs(self) -> dict[str, Any]:
        """``gymnasium.make(task.env_id, **task.env_kwargs())``: the task's world in its env."""
        kw: dict[str, Any] = {"scenario": self.scenario}
        if self.n_requests is not None:
            kw["n_requests"] = self.n_requests
        overrides = {}
        if self.rate_rps is not None:
            overrides["workload.arrival.rate_rps"] = self.rate_rps
        if self.duration_s is not None:
            overrides["run.duration_s"] = self.duration_s
        if overrides:
            kw["overrides"] = overrides
        return kw

    def as_dict(self) -> dict[str, Any]:
        """The ``benchmark list --json`` entry (id, scenario, env_id, metric, seeds, and the rest)."""
        d = asdict(self)
        d["knobs"] = list(self.knobs)
        d["seeds"] = self.seeds.as_dict()
        d["bound"] = {"slot_s": self.bound_slot_s, "roles": self.bound_roles}
        del d["bound_slot_s"]
        return d


ROUTING = "prfaas/Routing-v1"
PROVISIONING = "prfaas/Provisioning-v1"

_TASKS: tuple[Task, ...] = (
    Task("prfaas/paper-steady-v1", "paper/prfaas_pd",
         "the PrfaaS case study: uniform arrivals at 2.8 req/s (90% of simulated capacity), "
         "long log-normal prompts, one 100 Gbps link", ROUTING, ("route",), n_requests=2000),
    Task("prfaas/bursty-v1", "bursty_fluctuating",
         "bursty multi-turn sessions with shared prefixes and heavy-tailed prompts over a 40 Gbps "
         "link that jitters and dips to 15%", ROUTING, ("route",), n_requests=2000),
    Task("prfaas/mooncake-v1", "mooncake_conversation",
         "Mooncake (Kimi) conversation trace replayed at its own rate (1.0x, ~3.3 req/s), "
         "prefix caches on both sides", ROUTING, ("route",), n_requests=3000, needs_data=True),
    Task("prfaas/mooncake-stress-v1", "mooncake_conversation",
         "the Mooncake conversation trace replayed at 1.5x its rate (5.0 req/s): the same "
         "requests, queues that build", ROUTING, ("route",), n_requests=3000, rate_rps=5.0,
         needs_data=True),
    Task("prfaas/diurnal-v1", "diurnal_day",
         "a diurnal day (ServeGen swing 0.4x-1.6x, 6x time-compressed) on the case-study "
         "deployment: move PD instances between prefill and decode every 120 s",
         PROVISIONING, ("provision",), bound_slot_s=30.0,
         notes="The bound lets every PD instance time-share both roles with no switch delay (roles=any)."),
    Task("prfaas/three-region-v1", "three_region",
         "three PD regions with uneven traffic (0.5/0.3/0.2) sharing one PrfaaS cluster over a "
         "100 Gbps mesh; requests may be prefilled and decoded outside their home region",
         ROUTING, ("route",), n_requests=3000, bound_slot_s=2.0,
         notes="Decode placement: `mooncake-conductor` and `least-loaded` choose the decode region "
               "(knobs decode_placement / decode_spill_at, `policies/decode_placement.py`: home, or the "
               "least-loaded region once home's decode slots are full; KV over the inter-region link), "
               "tuned with their other knobs. At this load the fleet is prefill-bound (decode waits are "
               "~0), so placement rarely triggers. Routing-v1's action still chooses the prefill slot "
               "only (decode at home)."),
    Task("prfaas/link-outage-v1", "link_outage",
         "the case-study deployment whose cross-DC link fails twice (3 and 1 min) and runs at "
         "40% for 5 min: keep serving locally, recover after", ROUTING, ("route",), bound_slot_s=2.0,
         notes="The bound ignores links and faults, so it does not see the outage: it is loose here."),
)

TASKS: dict[str, Task] = {t.id: t for t in _TASKS}
"""Task id -> :class:`Task`."""


def get_task(task_id: str) -> Task:
    """The task called ``task_id``; a ValueError lists the known ids."""
    try:
        return TASKS[task_id]
    except KeyError:
        raise ValueError(f"unknown task {task_id!r} (known: {', '.join(TASKS)})") from None


def list_tasks() -> list[Task]:
    """Every registered task, in registry order."""
    return list(_TASKS)


def all_test_seeds() -> set[int]:
    """The union of every task's test seeds."""
    return {s for t in _TASKS for s in t.seeds.test}


def check_training_seeds(seeds: Iterable[int], where: str = "training") -> None:
    """Refuse seeds that are some task's test seeds (they are for the leaderboard only)."""
    bad = sorted(set(int(s) for s in seeds) & all_test_seeds())
    if bad:
        raise ValueError(f"{where}: seeds {bad[:5]}{'...' if len(bad) > 5 else ''} are benchmark test "
                         "seeds (prfaas_gym.benchmark.tasks); train and validate on others")
