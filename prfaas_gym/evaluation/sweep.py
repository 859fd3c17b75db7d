"""Load sweeps: throughput-latency curves of several policies over arrival rates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from prfaas_gym.evaluation.compare import (
    collect_comparison, comparison_tasks, prepare_comparison, run_task,
)
from prfaas_gym.parallel import SERIAL, Backend, map_tasks

CURVE_METRICS = (
    "throughput_rps", "goodput_rps", "slo_attainment", "ttft_mean_s", "ttft_p90_s",
    "ttft_p99_s", "tpot_p90_s", "egress_gbps_mean", "rejected",
)


def load_sweep(
    scenario: Any,
    policies: Sequence[str],
    rates: Sequence[float],
    *,
    seeds: int = 2,
    seed_offset: int = 0,
    n_requests: int | None = None,
    duration_s: float | None = None,
    data_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    backend: Backend = SERIAL,
    trust_pickle: bool = False,
) -> dict:
    """Run :func:`compare_policies` at each arrival rate (paired seeds at each rate); all
    rates' runs go to ``backend`` as one batch (same numbers on any backend).

    Returns ``{"scenario", "seeds", "rates", "curves": {policy: {metric: [{"rate_rps",
    "mean", "ci95"}...]}}, "rows": [...]}``; ``rows`` is the per-(rate, policy, seed) table.
    """
    if not rates:
        raise ValueError("rates: give at least one")
    if any(not r > 0 for r in rates):
        raise ValueError(f"rates: must all be > 0, got {list(rates)}")
    sc, seed_list = prepare_comparison(scenario, policies, seeds, seed_offset, trust_pickle=trust_pickle)
    batches = [comparison_tasks(sc, policies, seed_list, n_requests=n_requests, rate_rps=float(r),
                                duration_s=duration_s, trust_pickle=trust_pickle) for r in rates]
    if data_dir is not None and backend.data_dir is None:
        backend = replace(backend, data_dir=Path(data_dir))
    summaries = iter(map_tasks(run_task, [t for b in batches for t in b], backend, progress=progress))
    curves: dict[str, dict[str, list[dict]]] = {p: {m: [] for m in CURVE_METRICS} for p in policies}
    rows: list[dict] = []
    for rate, tasks in zip(rates, batches):
        comp = collect_comparison(sc, policies, seed_list, float(rate), tasks,
                                  [(next(summaries), None) for _ in tasks])
        agg = comp.aggregate()
        for p in policies:
            for m in CURVE_METRICS:
                if m in agg[p]:
                    curves[p][m].append({"rate_rps": float(rate), **agg[p][m]})
        rows.extend(comp.rows())
    return {"scenario": sc.name, "seeds": seed_list, "rates": [float(r) for r in rates],
            "curves": curves, "rows": rows}


def max_sustained_rate(curve: list[dict], slo_attainment: float = 0.9) -> float:
    """Highest swept rate whose mean SLO attainment is at least ``slo_attainment`` (0 if none).

    ``curve`` is ``curves[policy]["slo_attainment"]`` from :func:`load_sweep`.
    """
    ok = [pt["rate_rps"] for pt in curve if pt["mean"] is not None and pt["mean"] >= slo_attainment]
    return max(ok) if ok else 0.0
