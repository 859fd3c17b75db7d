"""Summary metrics of a finished (or paused) simulation, and per-request records.

All latency metrics are over completed requests. Definitions:

- TTFT: arrival to prefill end (the first token exists when prefill ends).
- TPOT: (finish - prefill end) / (output tokens - 1): the user-visible time per output token
  after the first, so KV transfer and decode queueing count against it.
- goodput: completed requests meeting both the TTFT and the TPOT SLO, per simulated second.
- slo_attainment: those requests over all requests that entered (rejections count as misses).
- egress: cross-DC bytes per second summed over links, in 1-second bins (mean and p99).
- prefill_utilisation: prefill busy time over the time instances spent in the prefill role;
  decode_batch_utilisation: time-averaged decode batch size over the max batch, in the decode role.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

import numpy as np

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request

SUMMARY_KEYS = (
    "requests", "completed", "rejected", "throughput_rps", "output_tokens_per_s", "goodput_rps",
    "ttft_mean_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_mean_s", "tpot_p50_s",
    "tpot_p90_s", "tpot_p99_s", "slo_attainment", "egress_gbps_mean", "egress_gbps_p99",
    "egress_utilisation", "prefix_hit_fraction", "offload_fraction", "prefill_utilisation",
    "decode_batch_utilisation",
    "gpu_hours", "cost_usd", "goodput_per_dollar", "sim_time_s",
    "rejected_policy", "rejected_no_prefill_capacity", "rejected_queue_full", "rejected_too_long",
    "rejected_fault", "rejected_other", "retries", "fault_affected",
)
REJECT_REASONS = ("policy", "no_prefill_capacity", "queue_full", "too_long", "fault")
"""Reasons the simulator rejects for; ``rejected_<reason>`` counts each, ``rejected_other`` the rest."""


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if x.size else math.nan


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
        "finish_s": np.array([r.finish_s for r in reqs], dtype=float),
        "kv_bytes": np.array([r.kv_bytes for r in reqs], dtype=float),
        "rejected": np.array([r.rejected for r in reqs], dtype=bool),
        "retries": np.array([r.retries for r in reqs], dtype=np.int64),
        "fault_affected": np.array([r.fault_affected for r in reqs], dtype=bool),
    }
    cols["prefill_cluster"] = np.array([r.prefill_cluster for r in reqs], dtype=object)
    cols["decode_cluster"] = np.array([r.decode_cluster for r in reqs], dtype=object)
    cols["reject_reason"] = np.array([r.reject_reason for r in reqs], dtype=object)
    return cols


def egress_series(sim: "Simulator", bin_s: float = 1.0, end_s: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cross-DC egress in ``bin_s`` bins: (bin start times, Gbps summed over links)."""
    end = sim.env.now if end_s is None else end_s
    nbins = max(1, int(math.ceil(end / bin_s)))
    edges = np.arange(nbins + 1, dtype=float) * bin_s
    total = np.zeros(nbins)
    for link in sim.links:
        t = np.asarray(link.rate_log_t + [max(end, link.rate_log_t[-1])], dtype=float)
        r = np.asarray(link.rate_log_bytes_s + [link.rate_log_bytes_s[-1]], dtype=float)
        cum = np.concatenate([[0.0], np.cumsum(r[:-1] * np.diff(t))])
        at_edges = np.interp(edges, t, cum)
        total += np.diff(at_edges) / bin_s
    return edges[:-1], total * 8 / 1e9


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


def summarize(sim: "Simulator") -> dict:
    """The summary dictionary (keys in ``SUMMARY_KEYS`` order)."""
    reqs = sim.requests
    scenario = sim.scenario
    n = len(reqs)
    arrival = np.fromiter((r.arrival_s for r in reqs), float, n)
    pend = np.fromiter((r.prefill_end_s for r in reqs), float, n)
    finish = np.fromiter((r.finish_s for r in reqs), float, n)
    out = np.fromiter((r.output_tokens for r in reqs), float, n)
    inp = np.fromiter((r.input_tokens for r in reqs), float, n)
    cached = np.fromiter((r.cached_tokens for r in reqs), float, n)
    rejected = np.fromiter((r.rejected for r in reqs), bool, n)
    offloaded = np.fromiter((r.prefill_cluster != r.decode_cluster for r in reqs), bool, n)
    done = ~rejected & np.isfinite(finish)
    sim_time = float(sim.env.now)
    span = sim_time if sim_time > 0 else math.nan

    ttft = (pend - arrival)[done]
    multi = done & (out > 1)
    tpot = ((finish - pend)[multi] / (out[multi] - 1))
    tpot_ok = np.ones(n, dtype=bool)
    tpot_ok[multi] = (finish - pend)[multi] / (out[multi] - 1) <= scenario.tpot_slo_s
    good = done & ((pend - arrival) <= scenario.ttft_slo_s) & tpot_ok
    n_good = int(good.sum())

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
    routed = ~rejected & (np.fromiter((r.prefill_cluster != "" for r in reqs), bool, n))
    return {
        "requests": n,
        "completed": int(done.sum()),
        "rejected": int(rejected.sum()),
        "throughput_rps": float(done.sum() / span),
        "output_tokens_per_s": float(out[done].sum() / span),
        "goodput_rps": float(n_good / span),
        "ttft_mean_s": _mean(ttft),
        "ttft_p50_s": _pct(ttft, 50),
        "ttft_p90_s": _pct(ttft, 90),
        "ttft_p99_s": _pct(ttft, 99),
        "tpot_mean_s": _mean(tpot),
        "tpot_p50_s": _pct(tpot, 50),
        "tpot_p90_s": _pct(tpot, 90),
        "tpot_p99_s": _pct(tpot, 99),
        "slo_attainment": float(n_good / n) if n else math.nan,
        "egress_gbps_mean": egress_mean,
        "egress_gbps_p99": _pct(egress, 99) if sim.links else 0.0,
        "egress_utilisation": egress_mean / nominal_gbps if nominal_gbps > 0 else 0.0,
        "prefix_hit_fraction": float(cached[routed].sum() / inp[routed].sum()) if routed.any() else 0.0,
        "offload_fraction": float(offloaded[routed].mean()) if routed.any() else 0.0,
        "prefill_utilisation": float(prefill_busy / prefill_capacity) if prefill_capacity > 0 else 0.0,
        "decode_batch_utilisation": float(decode_batch / decode_slots) if decode_slots > 0 else 0.0,
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
