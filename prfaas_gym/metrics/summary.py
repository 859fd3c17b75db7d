"""Summary metrics of a finished (or paused) simulation, and per-request records.

The definitions follow the serving literature; ``docs/metrics.md`` states each one with its
source. In short:

- ``slo_attainment`` (the headline): requests meeting both the TTFT and the TPOT SLO over
  *all* requests that arrived; a rejected or unfinished request is a miss (DistServe).
- ``goodput_rps``: SLO-meeting requests *that arrived in the measurement window* per second
  of that window. The window runs from the scenario's warm-up (``run.warmup_s``) to the
  last arrival minus its cool-down (``run.cooldown_s``). A fixed window keeps
  the drain tail (and so rejection) from changing the denominator (Wang et al., arXiv
  2410.14257, on goodput that rewards dropping requests). ``throughput_rps`` and
  ``output_tokens_per_s`` count the window's completed requests the same way.
- TTFT: arrival to the end of prefill. TPOT: (finish - first token) / (output tokens - 1)
  (vLLM ``benchmarks/serve.py`` ``calculate_metrics``).
- ``ttft_p*_s`` / ``tpot_p*_s``: percentiles over completed requests; ``ttft_p*_all_s`` /
  ``tpot_p*_all_s``: the same with every rejected or unfinished request counted as infinite
  latency (``inf``, ``null`` in JSON, once more than 1 - q of the requests are such).
- ``ttft_client_p50_s`` / ``ttft_client_p90_s``: arrival to the decode side streaming the first
  token (``Request.ttft_client_s``: after the KV transfer and decode admission, as the client
  of a vLLM/SGLang PD deployment sees it), over completed requests.
- egress: cross-DC bytes per second summed over links and directions, in 1-second bins (mean
  and p99); ``egress_by_direction`` splits the bytes by direction (``"link:dc-a->dc-b"``);
  ``egress_dir_gbps_p99``: the largest p99 of one direction of one link on its own (links are
  full duplex, a capacity per direction).
- prefill_utilisation: prefill busy time over the time instances spent in the prefill role;
  decode_batch_utilisation: time-averaged decode batch size over the max batch, in the decode role.
- preemptions: decode preemptions by recompute (KV memory ran out as contexts grew).
"""

from __future__ import annotations

import math
from itertools import repeat
from operator import attrgetter, ne
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request

PERCENTILES = (50, 90, 99)

SLO_KEYS = (
    "requests", "completed", "rejected", "slo_attainment", "slo_attainment_window", "goodput_rps",
    "throughput_rps", "output_tokens_per_s", "window_start_s", "window_end_s", "window_requests",
    "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s",
    "ttft_p50_all_s", "ttft_p90_all_s", "ttft_p99_all_s",
    "tpot_mean_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s",
    "tpot_p50_all_s", "tpot_p90_all_s", "tpot_p99_all_s",
)
"""Keys of :func:`slo_metrics` (request outcomes and latencies), in order."""

SUMMARY_KEYS = SLO_KEYS + (
    "ttft_client_p50_s", "ttft_client_p90_s",
    "egress_gbps_mean", "egress_gbps_p99", "egress_dir_gbps_p99", "egress_utilisation",
    "prefix_hit_fraction", "offload_fraction", "prefill_utilisation", "decode_batch_utilisation",
    "preemptions",
    "gpu_hours", "cost_usd", "goodput_per_dollar", "sim_time_s",
    "rejected_policy", "rejected_no_prefill_capacity", "rejected_queue_full", "rejected_too_long",
    "rejected_fault", "rejected_other", "retries", "fault_affected",
)
"""Keys of :func:`summarize`, in order."""

REJECT_REASONS = ("policy", "no_prefill_capacity", "queue_full", "too_long", "fault")
"""Reasons the simulator rejects for; ``rejected_<reason>`` counts each, ``rejected_other`` the rest."""


def _pct(x: np.ndarray, q: float) -> float:
    """numpy's default (linear) percentile, extended to ``inf`` entries: a percentile that
    falls on or between them is ``inf`` (numpy would answer ``nan``)."""
    if not x.size:
        return math.nan
    if np.isfinite(x).all():
        return float(np.percentile(x, q))
    s = np.sort(x)
    h = (s.size - 1) * q / 100.0
    lo, hi = int(math.floor(h)), int(math.ceil(h))
    if not math.isfinite(s[hi]):
        return float(s[lo]) if hi == lo else math.inf
    return float(s[lo] + (s[hi] - s[lo]) * (h - lo))


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if x.size else math.nan


def request_arrays(requests: Iterable["Request"]) -> dict[str, np.ndarray]:
    """Column arrays of the per-request records (the table users save for notebooks)."""
    reqs = list(requests)
    cols: dict[str, np.ndarray] = {
        "rid": np.array([r.rid for r in reqs], dtype=np.int64),
        "arrival_s": np.array([r.arrival_s for r in reqs], dtype=float),
        "input_tokens": np.array([r.input_tokens for r in reqs], dtype=np.int64),
        "output_tokens": np.array([r.output_tokens for r in reqs], dtype=np.int64),
        "cached_tokens": np.array([r.cached_tokens for r in reqs], dtype=np.int64),
        "pulled_tokens": np.array([r.pulled_tokens for r in reqs], dtype=np.int64),
        "prefill_start_s": np.array([r.prefill_start_s for r in reqs], dtype=float),
        "prefill_end_s": np.array([r.prefill_end_s for r in reqs], dtype=float),
        "transfer_end_s": np.array([r.transfer_end_s for r in reqs], dtype=float),
        "decode_start_s": np.array([r.decode_start_s for r in reqs], dtype=float),
        "ttft_client_s": np.array([r.ttft_client_s for r in reqs], dtype=float),
        "finish_s": np.array([r.finish_s for r in reqs], dtype=float),
        "kv_bytes": np.array([r.kv_bytes for r in reqs], dtype=float),
        "rejected": np.array([r.rejected for r in reqs], dtype=bool),
        "retries": np.array([r.retries for r in reqs], dtype=np.int64),
        "fault_affected": np.array([r.fault_affected for r in reqs], dtype=bool),
        "session_id": np.array([r.session_id for r in reqs], dtype=np.int64),
        "turn": np.array([r.turn for r in reqs], dtype=np.int64),
        "parent_rid": np.array([r.parent_rid for r in reqs], dtype=np.int64),
        "attempt": np.array([r.attempt for r in reqs], dtype=np.int64),
        "think_s": np.array([r.think_s for r in reqs], dtype=float),
        "preemptions": np.array([r.preemptions for r in reqs], dtype=np.int64),
    }
    cols["prefill_cluster"] = np.array([r.prefill_cluster for r in reqs], dtype=object)
    cols["decode_cluster"] = np.array([r.decode_cluster for r in reqs], dtype=object)
    cols["reject_reason"] = np.array([r.reject_reason for r in reqs], dtype=object)
    return cols


def egress_series(sim: "Simulator", bin_s: float = 1.0, end_s: float | None = None,
                  channels=None) -> tuple[np.ndarray, np.ndarray]:
    """Cross-DC egress in ``bin_s`` bins: (bin start times, Gbps summed over ``channels``,
    by default every direction of every link)."""
    end = sim.env.now if end_s is None else end_s
    nbins = max(1, int(math.ceil(end / bin_s)))
    edges = np.arange(nbins + 1, dtype=float) * bin_s
    total = np.zeros(nbins)
    if channels is None:
        channels = [ch for link in sim.links for ch in link.channels]
    for ch in channels:
        t = np.asarray(ch.rate_log_t + [max(end, ch.rate_log_t[-1])], dtype=float)
        r = np.asarray(ch.rate_log_bytes_s + [ch.rate_log_bytes_s[-1]], dtype=float)
        cum = np.concatenate([[0.0], np.cumsum(r[:-1] * np.diff(t))])
        at_edges = np.interp(edges, t, cum)
        total += np.diff(at_edges) / bin_s
    return edges[:-1], total * 8 / 1e9


def egress_by_direction(sim: "Simulator", bin_s: float = 1.0) -> dict[str, dict[str, float]]:
    """Per direction of each link (``"link:src->dst"``): bytes sent, mean and p99 Gbps (1 s bins)."""
    span = sim.env.now if sim.env.now > 0 else math.nan
    out = {}
    for link in sim.links:
        for ch in link.channels:
            _, g = egress_series(sim, bin_s, channels=[ch])
            out[ch.name] = {"bytes": ch.bytes_sent, "gbps_mean": ch.bytes_sent * 8 / 1e9 / span,
                            "gbps_p99": _pct(g, 99)}
    return out


def role_seconds(sim: "Simulator") -> dict[tuple[int, int], tuple[float, float]]:
    """Seconds each instance has served as (prefill, decode) so far, keyed by (cluster, index)."""
    from prfaas_gym.sim.instance import DECODE, DRAINING, PREFILL, UP

    now = sim.env.now
    out = {}
    for c in sim.clusters:
        for i in c.instances:
            t = dict(i.role_time_s)
            if i.state in (UP, DRAINING):
                t[i.role] += now - i._role_since_s
            out[(c.index, i.index)] = (t[PREFILL], t[DECODE])
    return out


def measurement_window(arrival_s: np.ndarray, *, warmup_s: float = 0.0, cooldown_s: float = 0.0,
                       horizon_s: float | None = None) -> tuple[float, float]:
    """``(start, end)`` of the goodput measurement window, in simulated seconds.

    ``start = warmup_s``; ``end = horizon - cooldown_s`` where the horizon is ``horizon_s``
    (the run's arrival horizon, ``duration_s``) when given, else the last arrival. The window
    depends on the workload only, never on how a policy served it.
    """
    arrived = arrival_s[np.isfinite(arrival_s)]  # turns of abandoned conversations never arrive
    last = float(arrived.max()) if arrived.size else 0.0
    horizon = float(horizon_s) if horizon_s is not None else last
    return float(warmup_s), horizon - float(cooldown_s)


def slo_metrics(
    arrival_s: np.ndarray,
    first_token_s: np.ndarray,
    finish_s: np.ndarray,
    output_tokens: np.ndarray,
    rejected: np.ndarray,
    *,
    ttft_slo_s: float,
    tpot_slo_s: float,
    window: tuple[float, float],
) -> dict:
    """Request-outcome metrics (keys :data:`SLO_KEYS`) from per-request columns.

    Args:
        arrival_s, first_token_s, finish_s: per-request times (``nan`` when it never happened).
        output_tokens: tokens generated per request.
        rejected: True where the request was refused.
        ttft_slo_s, tpot_slo_s: the SLOs a *good* request meets (both, inclusive).
        window: the goodput measurement window ``(start, end)``
            (:func:`measurement_window`); arrivals in ``[start, end]`` are measured.
    """
    arrival = np.asarray(arrival_s, dtype=float)
    first = np.asarray(first_token_s, dtype=float)
    finish = np.asarray(finish_s, dtype=float)
    out = np.asarray(output_tokens, dtype=float)
    rejected = np.asarray(rejected, dtype=bool)
    n = arrival.size
    done = ~rejected & np.isfinite(finish)
    ttft_all = np.where(done, first - arrival, math.inf)
    multi = out > 1
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot_all = np.where(done, (finish - first) / np.maximum(out - 1, 1), math.inf)
    # single-token outputs have no TPOT: they only need the TTFT SLO
    good = done & (ttft_all <= ttft_slo_s) & (~multi | (tpot_all <= tpot_slo_s))
    ttft = ttft_all[done]
    tpot = tpot_all[done & multi]

    start, end = window
    length = end - start
    measured = (arrival >= start) & (arrival <= end)
    per_s = (lambda k: float(k / length)) if length > 0 else (lambda k: math.nan)
    m: dict = {
        "requests": int(n),
        "completed": int(done.sum()),
        "rejected": int(rejected.sum()),
        "slo_attainment": float(good.sum() / n) if n else math.nan,
        "slo_attainment_window": float(good[measured].mean()) if measured.any() else math.nan,
        "goodput_rps": per_s(int((good & measured).sum())),
        "throughput_rps": per_s(int((done & measured).sum())),
        "output_tokens_per_s": per_s(float(out[done & measured].sum())),
        "window_start_s": float(start),
        "window_end_s": float(end),
        "window_requests": int(measured.sum()),
        "ttft_mean_s": _mean(ttft),
    }
    for q in PERCENTILES:
        m[f"ttft_p{q}_s"] = _pct(ttft, q)
    for q in PERCENTILES:
        m[f"ttft_p{q}_all_s"] = _pct(ttft_all, q)
    m["tpot_mean_s"] = _mean(tpot)
    for q in PERCENTILES:
        m[f"tpot_p{q}_s"] = _pct(tpot, q)
    for q in PERCENTILES:
        m[f"tpot_p{q}_all_s"] = _pct(tpot_all[multi], q)
    return m


def sim_window(sim: "Simulator") -> tuple[float, float]:
    """The measurement window of a simulator's run (its scenario's warm-up and cool-down)."""
    arrival = _column(sim.requests, "arrival_s", float)
    sc = sim.scenario
    return measurement_window(arrival, warmup_s=sc.warmup_s, cooldown_s=sc.cooldown_s)


def _column(reqs: list, name: str, dtype) -> np.ndarray:
    # map(attrgetter) runs in C: a generator expression costs a Python frame step per request
    return np.fromiter(map(attrgetter(name), reqs), dtype, len(reqs))


def summarize(sim: "Simulator") -> dict:
    """The summary dictionary (keys in ``SUMMARY_KEYS`` order)."""
    reqs = sim.requests
    scenario = sim.scenario
    n = len(reqs)
    arrival = _column(reqs, "arrival_s", float)
    out = _column(reqs, "output_tokens", float)
    inp = _column(reqs, "input_tokens", float)
    cached = _column(reqs, "cached_tokens", float)
    rejected = _column(reqs, "rejected", bool)
    prefill_cluster = list(map(attrgetter("prefill_cluster"), reqs))
    offloaded = np.fromiter(map(ne, prefill_cluster, map(attrgetter("decode_cluster"), reqs)), bool, n)
    finish = _column(reqs, "finish_s", float)
    slo = slo_metrics(
        arrival, _column(reqs, "prefill_end_s", float), finish, out, rejected,
        ttft_slo_s=scenario.ttft_slo_s, tpot_slo_s=scenario.tpot_slo_s,
        window=measurement_window(arrival, warmup_s=scenario.warmup_s, cooldown_s=scenario.cooldown_s))
    n_good = round(slo["slo_attainment"] * n) if n else 0
    sim_time = float(sim.env.now)
    span = sim_time if sim_time > 0 else math.nan

    done_mask = ~rejected & np.isfinite(finish)
    ttft_client = (_column(reqs, "decode_start_s", float) - arrival)[done_mask]

    _, egress = egress_series(sim)
    nominal_gbps = sum(l.nominal_bytes_s for l in sim.links) * 8 / 1e9
    egress_mean = float(sum(l.bytes_sent for l in sim.links) * 8 / 1e9 / span) if sim.links else 0.0
    gpu_hours = scenario.total_gpus * sim_time / 3600.0
    cost = sum(c.gpus * c.hardware.price_per_gpu_hour_usd for c in scenario.clusters) * sim_time / 3600.0
    role_time = role_seconds(sim)
    prefill_busy = sum(i.busy_s for c in sim.clusters for i in c.instances)
    decode_batch = sum(i.batch_time_s for c in sim.clusters for i in c.instances)
    decode_slots = sum(
        role_time[(c.index, i.index)][1] * c.decode_max_batch for c in sim.clusters for i in c.instances
    )
    prefill_capacity = sum(t[0] for t in role_time.values())
    routed = ~rejected & np.fromiter(map(ne, prefill_cluster, repeat("")), bool, n)
    return {
        **slo,
        "ttft_client_p50_s": _pct(ttft_client, 50),
        "ttft_client_p90_s": _pct(ttft_client, 90),
        "egress_gbps_mean": egress_mean,
        "egress_gbps_p99": _pct(egress, 99) if sim.links else 0.0,
        "egress_dir_gbps_p99": max((d["gbps_p99"] for d in egress_by_direction(sim).values()), default=0.0),
        "egress_utilisation": egress_mean / nominal_gbps if nominal_gbps > 0 else 0.0,
        "prefix_hit_fraction": float(cached[routed].sum() / inp[routed].sum()) if routed.any() else 0.0,
        "offload_fraction": float(offloaded[routed].mean()) if routed.any() else 0.0,
        "prefill_utilisation": float(prefill_busy / prefill_capacity) if prefill_capacity > 0 else 0.0,
        "decode_batch_utilisation": float(decode_batch / decode_slots) if decode_slots > 0 else 0.0,
        "preemptions": int(sim.preemptions),
        "gpu_hours": gpu_hours,
        "cost_usd": cost,
        "goodput_per_dollar": float(n_good / cost) if cost > 0 else math.nan,
        "sim_time_s": sim_time,
        **fault_accounting(reqs),
    }


def fault_accounting(reqs: Iterable["Request"]) -> dict[str, int]:
    """Rejections by reason, re-routing retries, and requests a fault re-routed at least once."""
    out = {f"rejected_{r}": 0 for r in REJECT_REASONS}
    out["rejected_other"] = 0
    retries = affected = 0
    for r in reqs:
        if r.rejected:
            key = f"rejected_{r.reject_reason}"
            out[key if key in out else "rejected_other"] += 1
        retries += r.retries
        affected += r.fault_affected
    return {**out, "retries": retries, "fault_affected": affected}


def gauge_arrays(sim: "Simulator") -> dict[str, np.ndarray]:
    """The simulator's sampled gauges (``Simulator(gauge_interval_s=...)``) as column arrays."""
    rows = np.array(sim.gauges, dtype=float).reshape(-1, 6)
    names = ("time_s", "cluster", "queued_prefill", "decode_queue", "kv_bytes_in_use", "decode_batch")
    return {n: rows[:, k] for k, n in enumerate(names)}
