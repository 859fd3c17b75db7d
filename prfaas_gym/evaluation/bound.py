"""An upper bound on the goodput any policy can reach on one workload (a fluid LP relaxation).

How far can a scheduler go? For one seed's workload this module solves a linear program whose
optimum no router can beat, so a learned policy's headroom over a heuristic can be read
off per seed instead of guessed.

The relaxation. A request is *good* when prefill ends within the TTFT SLO of its arrival and
its decode keeps the TPOT SLO. Time is cut into slots of ``slot_s`` seconds. Variable ``y_i``
(0..1) says how much of request ``i`` is good; it must be backed by

* prefill work in slots overlapping ``[arrival, arrival + TTFT SLO]``, on any cluster that can
  prefill, each cluster's slot holding at most (prefill instances x ``slot_s``) seconds of work
  and one request using at most one instance at a time;
* decode occupancy of ``(output - 1) x step`` slot-seconds in slots overlapping
  ``[arrival + fastest prefill, arrival + TTFT SLO + (output - 1) x TPOT SLO]``, each PD
  cluster's slot holding at most (decode instances x max batch x ``slot_s``).

Every real schedule gives a feasible point, because each quantity is at most what the
simulator charges:

* prefill time uses the most prefix tokens *any* cache could hold (every earlier prompt
  inserted, never evicted; hybrid models only at state-snapshot boundaries, as
  :class:`~prfaas_gym.sim.cache.PrefixCache` stores them), on the fastest cluster for it;
* the decode step is the cluster's step at batch 1 and empty context (step times do not
  decrease with batch or context in any shipped back-end);
* work may be preempted and split across instances and clusters; KV transfers, prefix
  pulls, link bandwidth, KV memory and faults are ignored; decode may run on any PD cluster.

``roles="initial"`` keeps each PD cluster's starting prefill/decode split (right for routers
run with the static provisioner, e.g. ``prfaas/Routing-v0``); ``roles="any"`` lets every PD
instance time-share both roles (a bound for provisioners too).

Goodput is good completions / simulated span, and no run ends before its last arrival, so
``goodput_rps_max = good_max / last arrival``. The bound is loose (fluid, clairvoyant); a
policy near it is near-optimal, a policy far below it is not necessarily improvable.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from prfaas_gym.workload.request import BLOCK_TOKENS, Request

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator

ROLE_MODES = ("initial", "any")
MAX_LP_VARIABLES = 5_000_000  # beyond this the LP takes minutes and gigabytes: ask for coarser slots


@dataclass(frozen=True)
class GoodputBound:
    """The LP's answer for one workload.

    Attributes:
        seed: the workload seed.
        requests: requests in the workload.
        good_max: at most this many requests can meet both SLOs (LP optimum).
        hopeless: requests that miss the TTFT SLO even alone on an idle cluster.
        last_arrival_s: the earliest a run can end.
        goodput_rps_max: ``good_max / last_arrival_s``.
        slot_s, roles: the relaxation's settings.
        variables: LP size; solve_s: wall time of the solve.
    """

    seed: int
    requests: int
    good_max: float
    hopeless: int
    last_arrival_s: float
    goodput_rps_max: float
    slot_s: float
    roles: str
    variables: int
    solve_s: float

    def as_dict(self) -> dict:
        """Plain dict (for JSON)."""
        return asdict(self)


def max_cached_tokens(requests: Sequence[Request], needs_state: bool) -> list[int]:
    """Per request, the most prompt tokens any prefix cache could hold when it arrives.

    Every earlier prompt counts as inserted (its blocks, and for hybrid models
    (``needs_state``) a state snapshot after its last full block) and nothing is evicted.
    Blocks match as a leading run of ``hash_ids``; with ``needs_state`` the match must end
    at a snapshot. Capped at ``input_tokens - 1`` like the simulator's lookup.
    """
    seen: set[int] = set()
    snapshots: set[int] = set()
    out: list[int] = []
    for req in requests:  # arrival order
        keys = _chain_keys(req.hash_ids or ())
        best = 0
        for n, key in enumerate(keys, start=1):
            if key not in seen:
                break
            if not needs_state or key in snapshots:
                best = n
        out.append(min(best * BLOCK_TOKENS, req.input_tokens - 1) if best else 0)
        seen.update(keys)
        full = req.input_tokens // BLOCK_TOKENS
        if full > 0 and keys:
            snapshots.add(keys[min(full, len(keys)) - 1])
    return out


def _chain_keys(hash_ids: Sequence[int]) -> list[int]:
    # one key per prefix (block ids are only meaningful after the same leading blocks)
    keys, key = [], None
    for h in hash_ids:
        key = hash((key, h))
        keys.append(key)
    return keys


def fluid_goodput_bound(sim: "Simulator", *, slot_s: float = 1.0, roles: str = "initial") -> GoodputBound:
    """Solve the LP (module docstring) for a built, not yet run, simulator's workload."""
    from scipy import sparse
    from scipy.optimize import linprog

    if not slot_s > 0:
        raise ValueError(f"slot_s: must be > 0, got {slot_s}")
    if roles not in ROLE_MODES:
        raise ValueError(f"roles: expected one of {', '.join(ROLE_MODES)}, got {roles!r}")
    reqs = sim.requests
    n = len(reqs)
    if n == 0:
        raise ValueError("the workload has no requests")
    ttft, tpot = sim.scenario.ttft_slo_s, sim.scenario.tpot_slo_s
    prefill_clusters, decode_clusters = _capacities(sim, roles)
    cached_by_state: dict[bool, list[int]] = {}

    def cached_for(cluster) -> list[int]:
        if cluster.cache is None:
            return [0] * n
        key = bool(cluster.cache.needs_state)
        if key not in cached_by_state:
            cached_by_state[key] = max_cached_tokens(reqs, key)
        return cached_by_state[key]

    prefill_s = [[_prefill_work_s(c, r.input_tokens, k) for r, k in zip(reqs, cached_for(c))]
                 for c, _ in prefill_clusters]
    step_s = [c.stm.decode_s(1, 0) for c, _ in decode_clusters]

    cols: list[int] = []        # sparse entries of the equality rows (2 per request)
    rows: list[int] = []
    vals: list[float] = []
    cap_rows: list[int] = []    # sparse entries of the capacity rows
    cap_cols: list[int] = []
    cap_vals: list[float] = []
    cap_index: dict[tuple, int] = {}
    upper: list[float] = [1.0] * n  # y_i <= 1; the rest below
    nv = n
    hopeless = 0

    def cap_row(key: tuple) -> int:
        row = cap_index.get(key)
        if row is None:
            row = cap_index[key] = len(cap_index)
        return row

    for i, req in enumerate(reqs):
        a = req.arrival_s
        times = [p[i] for p in prefill_s]
        fastest = min(times) if times else math.inf
        if not fastest <= ttft:
            hopeless += 1
            upper[i] = 0.0
            continue
        first, last = int(a // slot_s), int((a + ttft) // slot_s)
        # sum of prefill fractions = y_i
        rows.append(2 * i); cols.append(i); vals.append(-1.0)
        for k, (cluster, _) in enumerate(prefill_clusters):
            p = times[k]
            if not p <= ttft:
                continue
            for t in range(first, last + 1):
                rows.append(2 * i); cols.append(nv); vals.append(1.0)
                cap_rows.append(cap_row(("p", cluster.index, t))); cap_cols.append(nv); cap_vals.append(p)
                upper.append(min(1.0, slot_s / p))
                nv += 1
        steps = req.output_tokens - 1
        if steps <= 0 or not decode_clusters:
            continue
        first = int((a + fastest) // slot_s)
        last = int((a + ttft + steps * tpot) // slot_s)
        # sum of decode occupancy fractions = y_i (occupancy = steps x step, one slot at a time)
        rows.append(2 * i + 1); cols.append(i); vals.append(-1.0)
        for k, (cluster, _) in enumerate(decode_clusters):
            occupancy = steps * step_s[k]
            for t in range(first, last + 1):
                rows.append(2 * i + 1); cols.append(nv); vals.append(1.0)
                cap_rows.append(cap_row(("d", cluster.index, t))); cap_cols.append(nv); cap_vals.append(occupancy)
                upper.append(min(1.0, slot_s / occupancy))
                nv += 1
        if nv > MAX_LP_VARIABLES:
            raise ValueError(f"bound: the LP would exceed {MAX_LP_VARIABLES:,} variables; "
                             "use fewer requests or a larger --slot-s")

    b_cap = np.empty(len(cap_index))
    pre_cap = {c.index: m for c, m in prefill_clusters}
    dec_cap = {c.index: m for c, m in decode_clusters}
    for (kind, cluster, _t), row in cap_index.items():
        b_cap[row] = (pre_cap[cluster] if kind == "p" else dec_cap[cluster]) * slot_s
    if roles == "any":
        cap_rows, cap_cols, cap_vals, b_cap = _share_pd_instances(
            sim, cap_index, cap_rows, cap_cols, cap_vals, b_cap, slot_s)
    objective = np.zeros(nv)
    objective[:n] = -1.0
    a_eq = sparse.csr_matrix((vals, (rows, cols)), shape=(2 * n, nv))
    a_ub = sparse.csr_matrix((cap_vals, (cap_rows, cap_cols)), shape=(len(b_cap), nv))
    bounds = np.column_stack([np.zeros(nv), np.asarray(upper)])
    t0 = time.perf_counter()
    res = linprog(objective, A_ub=a_ub if a_ub.shape[0] else None, b_ub=b_cap if a_ub.shape[0] else None,
                  A_eq=a_eq, b_eq=np.zeros(2 * n), bounds=bounds, method="highs")
    solve_s = time.perf_counter() - t0
    if res.status != 0:
        raise RuntimeError(f"bound: the LP solver failed ({res.message})")
    good = float(-res.fun)
    last_arrival = max(r.arrival_s for r in reqs)
    return GoodputBound(
        seed=sim.seed, requests=n, good_max=good, hopeless=hopeless, last_arrival_s=last_arrival,
        goodput_rps_max=good / last_arrival if last_arrival > 0 else math.inf,
        slot_s=float(slot_s), roles=roles, variables=nv, solve_s=solve_s,
    )


def _capacities(sim: "Simulator", roles: str) -> tuple[list, list]:
    """``[(cluster, instances)]`` able to prefill and to decode (PD clusters), per role mode."""
    prefill, decode = [], []
    for c in sim.clusters:
        n_prefill = sum(1 for inst in c.instances if inst.accepts_prefill)
        n_decode = sum(1 for inst in c.instances if inst.accepts_decode)
        if roles == "any" and c.kind == "pd":
            n_prefill = n_decode = len(c.instances)
        if n_prefill:
            prefill.append((c, n_prefill))
        if n_decode:
            decode.append((c, n_decode * c.decode_max_batch))
    return prefill, decode


def _share_pd_instances(sim, cap_index, cap_rows, cap_cols, cap_vals, b_cap, slot_s):
    """``roles="any"``: a PD cluster's prefill seconds plus decode slot-seconds / max batch
    share its instances: add one combined row per (PD cluster, slot)."""
    extra: dict[tuple, int] = {}
    base = len(b_cap)
    new_rows, new_cols, new_vals = [], [], []
    clusters = {c.index: c for c in sim.clusters if c.kind == "pd"}
    row_of = {row: key for key, row in cap_index.items()}
    for r, c, v in zip(cap_rows, cap_cols, cap_vals):
        kind, cluster, t = row_of[r]
        if cluster not in clusters:
            continue
        row = extra.setdefault((cluster, t), base + len(extra))
        scale = 1.0 if kind == "p" else 1.0 / clusters[cluster].decode_max_batch
        new_rows.append(row); new_cols.append(c); new_vals.append(v * scale)
    b_extra = np.array([len(clusters[cl].instances) * slot_s for (cl, _t) in extra], dtype=float)
    return (cap_rows + new_rows, cap_cols + new_cols, cap_vals + new_vals,
            np.concatenate([b_cap, b_extra]))


def _prefill_work_s(cluster, input_tokens: int, max_cached: int) -> float:
    """Machine seconds one instance of ``cluster`` needs for the prompt, at best."""
    stm = cluster.stm
    best = math.inf
    for cached in {0, max_cached}:
        new = input_tokens - cached
        if new > 0:
            best = min(best, stm.prefill_s([(new, cached)]))
    if cluster.max_prefill_batch > 1:
        # a batch shares its per-step fixed cost: charge only the marginal part
        best = max(best - stm.prefill_s([(1, 0)]), 0.0)
    return best


def goodput_upper_bound(
    scenario,
    seed: int,
    *,
    n_requests: int | None = None,
    rate_rps: float | None = None,
    duration_s: float | None = None,
    data_dir=None,
    slot_s: float = 1.0,
    roles: str = "initial",
) -> GoodputBound:
    """:func:`fluid_goodput_bound` for a scenario's workload with ``seed`` (same workload as
    ``compare``/``simulate`` with that seed)."""
    from prfaas_gym.api import build_simulator

    sim = build_simulator(scenario, seed=seed, data_dir=data_dir, n_requests=n_requests,
                          rate_rps=rate_rps, duration_s=duration_s)
    return fluid_goodput_bound(sim, slot_s=slot_s, roles=roles)
