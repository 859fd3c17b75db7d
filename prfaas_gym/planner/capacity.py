"""Simulated capacity: the highest arrival rate a scenario sustains, by bisection over runs.

"Sustains" (:class:`Criterion`, defaults in brackets). Requests are taken in arrival order;
the first ``warmup_fraction`` [20 %] are warm-up. The measurement window is
``(a_w, a_last]``, from the arrival of the first measured request to the last arrival. A run
at rate lambda is *sustained* when all three hold:

1. **throughput**: completions whose finish time lies in the window, per second of window, are
   at least ``1 - completion_tolerance`` [99 %] of arrivals in the window per second;
2. **decode SLO**: at least ``tpot_quantile`` [99 %] of the measured requests that complete
   with more than one output token have TPOT <= the scenario's TPOT SLO;
3. **bounded TTFT**: the mean TTFT of the last quarter of requests (by arrival) is at most
   ``ttft_growth_max`` [2] times that of the second quarter (a queue growing linearly from
   empty gives 0.875 / 0.375 = 2.33).

Every run of one bisection uses the same seed and request count, so runs differ only in the
arrival rate (paired). The bracket starts at the planner's Lambda_max when the scenario can
be planned, else at the workload's own rate; it is widened by ``expand`` until one rate is
sustained and another is not, then halved until ``(hi - lo) <= rel_tol * lo``. The capacity
is ``lo``, the highest rate that was sustained.

DistServe's *capacity goodput* (``Criterion(slo_attainment=0.9)``, ``capacity
--slo-attainment 0.9``) replaces the three tests above by one: a run is sustained when its
SLO attainment over all arrivals (``summarize``'s ``slo_attainment``, rejections count as
misses) is at least the target; the capacity is then the highest rate with that attainment. Bisection assumes that sustaining is monotone
in the rate; the trace records every run so a violation is visible.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from prfaas_gym.parallel import SERIAL, Backend, map_tasks

DEFAULT_REQUESTS = 10_000
"""Requests per run unless given: an 8,000-request window keeps the completion test sharp and
the drawn lengths' mean within about 1.5 % of the distribution's (log-normal, sigma 1)."""

MIN_REQUESTS = 40
"""Fewest requests per run: the window needs a few quarters' worth of measured requests."""


@dataclass(frozen=True)
class Criterion:
    """When a simulated run counts as sustaining its arrival rate (see module docstring)."""

    warmup_fraction: float = 0.2
    completion_tolerance: float = 0.01
    tpot_quantile: float = 0.99
    ttft_growth_max: float = 2.0
    slo_attainment: float | None = None
    """When set, the only test: SLO attainment over all arrivals >= this (DistServe)."""

    def __post_init__(self) -> None:
        if self.slo_attainment is not None and not 0 < self.slo_attainment <= 1:
            raise ValueError(f"slo_attainment: must be in (0, 1], got {self.slo_attainment}")
        if not 0 <= self.warmup_fraction < 0.75:
            raise ValueError(f"warmup_fraction: must be in [0, 0.75), got {self.warmup_fraction}")
        if not 0 <= self.completion_tolerance < 1:
            raise ValueError(f"completion_tolerance: must be in [0, 1), got {self.completion_tolerance}")
        if not 0 < self.tpot_quantile <= 1:
            raise ValueError(f"tpot_quantile: must be in (0, 1], got {self.tpot_quantile}")
        if not self.ttft_growth_max >= 1:
            raise ValueError(f"ttft_growth_max: must be >= 1, got {self.ttft_growth_max}")

    def describe(self) -> str:
        """One sentence stating the criterion with its parameters."""
        if self.slo_attainment is not None:
            return (f"SLO attainment over all arrivals (rejections are misses) is >= "
                    f"{self.slo_attainment:.0%} (DistServe's goodput criterion)")
        return (
            f"after a warm-up of the first {self.warmup_fraction:.0%} of requests, completions in "
            f"the measurement window are >= {1 - self.completion_tolerance:.0%} of arrivals, "
            f">= {self.tpot_quantile:.0%} of measured requests meet the TPOT SLO, and the "
            f"last-quarter mean TTFT is <= {self.ttft_growth_max:g}x the second-quarter mean"
        )

    def to_dict(self) -> dict[str, Any]:
        """``{"text", **parameters}`` for JSON output."""
        return {"text": self.describe(), **asdict(self)}


@dataclass(frozen=True)
class Verdict:
    """The criterion applied to one run."""

    sustained: bool
    completion_ratio: float
    tpot_ok_fraction: float
    ttft_growth: float
    reasons: tuple[str, ...] = ()
    slo_attainment: float = math.nan


def judge_attainment(summary: dict[str, Any], criterion: Criterion) -> Verdict:
    """DistServe's test on a run's summary: SLO attainment >= ``criterion.slo_attainment``."""
    target = criterion.slo_attainment
    if target is None:
        raise ValueError("judge_attainment: the criterion sets no slo_attainment target")
    att = float(summary["slo_attainment"])
    ratio = summary["completed"] / summary["requests"] if summary["requests"] else math.nan
    reasons = () if att >= target else (f"SLO attainment {att:.3f}",)
    return Verdict(not reasons, ratio, math.nan, math.nan, reasons, att)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def judge(
    arrival_s: np.ndarray,
    finish_s: np.ndarray,
    prefill_end_s: np.ndarray,
    output_tokens: np.ndarray,
    tpot_slo_s: float,
    criterion: Criterion = Criterion(),
) -> Verdict:
    """Apply ``criterion`` to per-request arrays in arrival order (nan finish: not completed).

    Raises:
        ValueError: fewer than ``MIN_REQUESTS`` requests, or a zero-length window.
    """
    n = int(arrival_s.size)
    if n < MIN_REQUESTS:
        raise ValueError(f"capacity: need >= {MIN_REQUESTS} requests per run, got {n}")
    k0 = int(math.floor(criterion.warmup_fraction * n))
    t0, t1 = float(arrival_s[k0]), float(arrival_s[-1])
    span = t1 - t0
    if not span > 0:
        raise ValueError("capacity: the measurement window is empty (all arrivals at one time)")
    arrived = int(np.count_nonzero((arrival_s > t0) & (arrival_s <= t1)))
    done = np.isfinite(finish_s)
    completed = int(np.count_nonzero(done & (finish_s > t0) & (finish_s <= t1)))
    ratio = completed / arrived if arrived else math.nan

    measured = np.zeros(n, dtype=bool)
    measured[k0:] = True
    multi = measured & done & (output_tokens > 1)
    tpot = (finish_s[multi] - prefill_end_s[multi]) / (output_tokens[multi] - 1)
    tpot_ok = float(np.mean(tpot <= tpot_slo_s)) if tpot.size else math.nan

    ttft = prefill_end_s - arrival_s
    q = n // 4
    q2, q4 = ttft[q:2 * q], ttft[n - q:]
    q2m, q4m = _mean(q2[np.isfinite(q2)]), _mean(q4[np.isfinite(q4)])
    growth = q4m / q2m if q2m > 0 else (1.0 if q4m == q2m else math.inf)
    if not np.isfinite(q4).all():  # requests never prefilled (rejected): unbounded
        growth = math.inf

    reasons = []
    if not ratio >= 1 - criterion.completion_tolerance:
        reasons.append(f"completions {ratio:.3f} of arrivals")
    if not tpot_ok >= criterion.tpot_quantile:
        reasons.append(f"TPOT SLO met by {tpot_ok:.3f}")
    if not growth <= criterion.ttft_growth_max:
        reasons.append(f"TTFT grew {growth:.2f}x")
    return Verdict(not reasons, ratio, tpot_ok, growth, tuple(reasons))


def judge_simulator(sim: Any, criterion: Criterion = Criterion()) -> Verdict:
    """:func:`judge` on a finished ``Simulator``'s requests."""
    reqs = sim.requests
    n = len(reqs)
    arrival = np.fromiter((r.arrival_s for r in reqs), float, n)
    finish = np.fromiter((math.nan if r.rejected else r.finish_s for r in reqs), float, n)
    pend = np.fromiter((math.nan if r.rejected else r.prefill_end_s for r in reqs), float, n)
    out = np.fromiter((r.output_tokens for r in reqs), float, n)
    order = np.argsort(arrival, kind="stable")
    return judge(arrival[order], finish[order], pend[order], out[order],
                 sim.scenario.tpot_slo_s, criterion)


@dataclass(frozen=True)
class RunRecord:
    """One simulated run of the bisection."""

    rate_rps: float
    sustained: bool
    completion_ratio: float
    tpot_ok_fraction: float
    ttft_growth: float
    reasons: tuple[str, ...]
    wall_s: float
    slo_attainment: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (``reasons`` as a list)."""
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


@dataclass
class CapacityResult:
    """Outcome of :func:`find_capacity`."""

    scenario: str
    policy: str | None
    capacity_rps: float
    criterion: Criterion
    summary: dict[str, Any]
    trace: list[RunRecord]
    start_rps: float
    start_source: str
    planner_rps: float | None
    n_requests: int
    seed: int
    wall_time_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``capacity --json`` object."""
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "capacity_rps": self.capacity_rps,
            "planner_rps": self.planner_rps,
            "criterion": self.criterion.to_dict(),
            "summary": self.summary,
            "bisection": {
                "start_rps": self.start_rps,
                "start_source": self.start_source,
                "runs": len(self.trace),
                "requests_per_run": self.n_requests,
                "seed": self.seed,
                "trace": [r.to_dict() for r in self.trace],
            },
            "wall_time_s": self.wall_time_s,
            **self.extra,
        }


def starting_rate(scenario: Any, data_dir: Any = None) -> tuple[float, str, float | None]:
    """``(rate, source, planner Lambda_max or None)``: where the bracket starts."""
    planner_rps = None
    try:
        from .adapter import plan_scenario

        planner_rps = float(plan_scenario(scenario, data_dir=data_dir).throughput_rps)
    except (ValueError, KeyError):
        planner_rps = None
    if planner_rps is not None and math.isfinite(planner_rps) and planner_rps > 0:
        return planner_rps, "planner", planner_rps
    rate = (scenario.workload.get("arrival") or {}).get("rate_rps")
    if isinstance(rate, (int, float)) and rate > 0:
        return float(rate), "workload", planner_rps
    return 1.0, "default", planner_rps


def find_capacity(
    scenario: Any,
    policy: Any = None,
    *,
    criterion: Criterion = Criterion(),
    seed: int | None = None,
    n_requests: int | None = None,
    start_rps: float | None = None,
    rel_tol: float = 0.01,
    expand: float = 1.5,
    max_runs: int = 40,
    data_dir: Any = None,
    on_run: Callable[[RunRecord], None] | None = None,
    backend: Backend | None = None,
) -> CapacityResult:
    """The highest arrival rate ``scenario`` sustains under ``policy`` (module docstring).

    Args:
        scenario: a loaded ``Scenario``.
        policy: router spec for ``build_simulator`` (``None``: the scenario's router).
        criterion: what "sustains" means.
        seed: random seed of every run (default: the scenario's).
        n_requests: requests per run (default ``DEFAULT_REQUESTS``).
        start_rps: first rate tried (default: the planner's Lambda_max, else the workload rate).
        rel_tol: stop when the bracket is narrower than ``rel_tol`` times its lower end.
        expand: factor by which the bracket grows until it holds the capacity.
        max_runs: give up (ValueError) after this many runs.
        on_run: called after every run (progress output).
        backend: where runs go (``prfaas_gym.parallel``); with W local workers the next W
            rates of the bisection tree run at once (same trace and answer as serial).

    Raises:
        ValueError: bad arguments, or no bracket found within ``max_runs`` runs.
    """
    if not rel_tol > 0:
        raise ValueError(f"rel_tol: must be > 0, got {rel_tol}")
    if not expand > 1:
        raise ValueError(f"expand: must be > 1, got {expand}")
    started = time.perf_counter()
    seed = scenario.seed if seed is None else int(seed)
    n = int(n_requests if n_requests is not None else DEFAULT_REQUESTS)
    if n < MIN_REQUESTS:
        raise ValueError(f"--requests: need >= {MIN_REQUESTS} requests per run, got {n}")
    planned: float | None
    if start_rps is None:
        start_rps, source, planned = starting_rate(scenario, data_dir)
    else:
        if not start_rps > 0:
            raise ValueError(f"start_rps: must be > 0, got {start_rps}")
        source, planned = "given", None

    trace: list[RunRecord] = []
    summaries: dict[float, dict[str, Any]] = {}
    backend = backend or SERIAL
    if data_dir is not None and backend.data_dir is None:
        backend = replace(backend, data_dir=Path(data_dir))
    width = (backend.workers or os.cpu_count() or 1) if backend.parallel else 1
    state = _Bracket("start", None, None, float(start_rps))
    while state.phase != "done":
        # with W workers, run the next W rates of the bisection tree at once (both outcomes of
        # the current run, then theirs, breadth first) and keep only the path actually taken:
        # the trace is the serial one, the wall time shorter
        nodes = _speculate(state, width, rel_tol, expand)
        tasks = [_CapacityRun(scenario, policy, seed, n, node.rate, criterion) for node in nodes]
        outcomes = dict(zip(nodes, map_tasks(capacity_run, tasks, backend)))
        while state in outcomes:
            if len(trace) >= max_runs:
                raise ValueError(f"capacity: no answer within {max_runs} runs "
                                 f"(last rate {state.rate:.4g} req/s)")
            out = outcomes[state]
            rec = RunRecord(state.rate, out["sustained"], out["completion_ratio"],
                            out["tpot_ok_fraction"], out["ttft_growth"], tuple(out["reasons"]),
                            out["wall_s"], out["slo_attainment"])
            trace.append(rec)
            if rec.sustained:
                summaries[state.rate] = out["summary"]
            if on_run is not None:
                on_run(rec)
            state = state.next(rec.sustained, rel_tol, expand)
    lo = state.lo
    return CapacityResult(
        scenario=scenario.name,
        policy=policy if isinstance(policy, str) or policy is None else getattr(policy, "name", str(policy)),
        capacity_rps=lo,
        criterion=criterion,
        summary=summaries[lo],
        trace=trace,
        start_rps=float(start_rps),
        start_source=source,
        planner_rps=planned,
        n_requests=n,
        seed=seed,
        wall_time_s=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _Bracket:
    """The bisection's state: ``rate`` is the next rate to run (module docstring)."""

    phase: str  # "start", "up" (widening upwards), "down", "bisect", "done"
    lo: float | None  # highest rate sustained so far
    hi: float | None  # lowest rate not sustained so far
    rate: float

    def next(self, sustained: bool, rel_tol: float, expand: float) -> "_Bracket":
        """The state after running ``rate`` with outcome ``sustained``."""
        lo, hi, rate = self.lo, self.hi, self.rate
        if self.phase in ("start", "up") and sustained:
            return _Bracket("up", rate, hi, rate * expand)
        if self.phase in ("start", "down") and not sustained:
            return _Bracket("down", lo, rate, rate / expand)
        lo, hi = (rate, hi) if sustained else (lo, rate)
        if hi - lo > rel_tol * lo:
            return _Bracket("bisect", lo, hi, 0.5 * (lo + hi))
        return _Bracket("done", lo, hi, 0.0)


def _speculate(state: _Bracket, width: int, rel_tol: float, expand: float) -> list[_Bracket]:
    """The first ``width`` unfinished states of the outcome tree below ``state``, breadth first."""
    nodes, queue = [], [state]
    while queue and len(nodes) < width:
        node = queue.pop(0)
        if node.phase != "done" and node not in nodes:
            nodes.append(node)
            queue += [node.next(True, rel_tol, expand), node.next(False, rel_tol, expand)]
    return nodes


@dataclass(frozen=True)
class _CapacityRun:
    """One run of the bisection (a ``prfaas_gym.parallel`` task)."""

    scenario: Any
    policy: Any
    seed: int
    n_requests: int
    rate_rps: float
    criterion: Criterion


def capacity_run(task: _CapacityRun, data_dir: Any = None) -> dict[str, Any]:
    """Simulate one rate and judge it: the verdict's fields, ``wall_s`` and (when sustained)
    the summary with the verdict's numbers."""
    from prfaas_gym.api import build_simulator

    t = time.perf_counter()
    sim = build_simulator(task.scenario, task.policy, seed=task.seed, data_dir=data_dir,
                          n_requests=task.n_requests, rate_rps=task.rate_rps, duration_s=None)
    summary = sim.run()
    if task.criterion.slo_attainment is None:
        v = judge_simulator(sim, task.criterion)
    else:
        v = judge_attainment(summary, task.criterion)
    verdict = {"sustained": v.sustained, "completion_ratio": v.completion_ratio,
               "tpot_ok_fraction": v.tpot_ok_fraction, "ttft_growth": v.ttft_growth}
    return {**verdict, "reasons": list(v.reasons), "wall_s": time.perf_counter() - t,
            "slo_attainment": summary["slo_attainment"],
            "summary": {**summary, **{k: v for k, v in verdict.items() if k != "sustained"}}
            if v.sustained else None}


def capacity_points(
    scenarios: Sequence[Any], policy: Any = None, **kwargs: Any
) -> list[CapacityResult]:
    """:func:`find_capacity` for each scenario (sweeps for plots)."""
    return [find_capacity(sc, policy, **kwargs) for sc in scenarios]
