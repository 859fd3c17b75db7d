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

* prefill time uses the most prefix tokens *any* cache could hold when the request is
  scheduled, on the fastest cluster for it. The simulator matches a request's prefix when it
  leaves its prefill queue (schedule time), so for a good request no later than arrival +
  TTFT SLO - its fastest prefill; a prompt enters a pool no sooner than its fastest prefill
  ends (with chunked prefill anywhere: from its arrival, since chunks are stored as they are
  computed). Relaxed: every prompt ready by then counts, whichever cluster computed it and
  whether or not it was evicted since (a union of all pools, never evicting); hybrid models
  only at state-snapshot boundaries (after the last full block, and on the finest snapshot
  grid any pool keeps), as :class:`~prfaas_gym.sim.cache.PrefixCache` stores them; with
  ``cache_output`` the generated tokens count from the same time as the prompt. The same
  holds under faults and role switches, since a re-routed request is still good only if it
  starts by that time;
* the decode step is the cluster's step at batch 1 and empty context (step times do not
  decrease with batch or context in any shipped back-end);
* work may be preempted and split across instances and clusters; KV transfers, prefix
  pulls, link bandwidth, KV memory and faults are ignored; decode may run on any PD cluster.

Closed-loop sessions (a follow-up turn arrives a think time after its parent *ended*, so
when depends on the policy) are bounded as they are: each request's good attempt arrives in a
window from its earliest possible arrival to its latest one given a good parent
(:func:`arrival_windows`), and a follow-up of a parent that was not good gets a free part with
no window and no capacity (a policy could have delayed it past everyone else), allowed only as
far as its parent is not good: ``y_i + g_i <= 1``, ``g_i + y_parent <= 1``. Loose there, but a
bound (``docs/policies.md``).

``roles="initial"`` keeps each PD cluster's starting prefill/decode split (right for routers
run with the static provisioner, e.g. ``prfaas/Routing-v1``); ``roles="any"`` lets every PD
instance time-share both roles (a bound for provisioners too).

The metrics' headline, SLO attainment (good / all requests), is bounded by
``attainment_max = good_max / requests``. Goodput counts the good requests that arrived in
the scenario's measurement window per second of that window (``docs/metrics.md``), so
``goodput_rps_max`` is the same LP with only the window's requests in the objective, over the
window's length. The bound is loose (fluid, clairvoyant); a policy near it is near-optimal,
one far below it is not necessarily improvable.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Sequence

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
        last_arrival_s: the last arrival.
        attainment_max: no policy's SLO attainment exceeds this (``good_max / requests``).
        window_good_max: at most this many requests arriving in the measurement window
            can meet both SLOs.
        goodput_rps_max: no policy's goodput (``window_good_max`` per second of window)
            exceeds this; nan when the window is empty.
        slot_s, roles: the relaxation's settings.
        cache_timing: prompts entered the caches only after their fastest prefill (see
            :func:`max_cached_tokens`); off with chunked prefill (then from arrival).
        variables: LP size (no end time); solve_s: wall time of all the solves.
    """

    seed: int
    requests: int
    good_max: float
    hopeless: int
    last_arrival_s: float
    attainment_max: float
    window_good_max: float
    goodput_rps_max: float
    slot_s: float
    roles: str
    cache_timing: bool
    variables: int
    solve_s: float

    def as_dict(self) -> dict:
        """Plain dict (for JSON)."""
        return asdict(self)


def max_cached_tokens(
    requests: Sequence[Request],
    needs_state: bool,
    ready_at_s: Sequence[float] | None = None,
    lookup_by_s: Sequence[float] | None = None,
    *,
    snapshot_interval: int = 0,
    continuations: dict[int, Request] | None = None,
) -> list[int]:
    """Per request, the most prompt tokens any prefix cache could hold when it is scheduled.

    Request ``j``'s prompt counts for request ``i != j`` when ``ready_at_s[j] <= lookup_by_s[i]``
    (defaults: both the arrival time, so every earlier prompt counts), as its blocks and, for
    hybrid models (``needs_state``), state snapshots after its last full block and every
    ``snapshot_interval`` blocks; nothing is evicted. ``continuations[j]``: the next turn of
    ``j``'s conversation, whose leading blocks up to ``j``'s prompt + output then count too
    (the simulator's ``cache_output``). Blocks match as a leading run of ``hash_ids``; with
    ``needs_state`` the match must end at a snapshot. Capped at ``input_tokens - 1`` like the
    simulator's lookup.
    """
    n = len(requests)
    ready = [r.arrival_s for r in requests] if ready_at_s is None else list(ready_at_s)
    lookup = [r.arrival_s for r in requests] if lookup_by_s is None else list(lookup_by_s)
    keys = [_chain_keys(r.hash_ids or ()) for r in requests]
    stored: list[tuple[set[int], set[int]]] = []  # per request: (block keys, snapshot keys)
    for j, req in enumerate(requests):
        blocks = set(keys[j])
        snaps = {keys[j][p] for p in _snapshot_positions(len(keys[j]), req.input_tokens // BLOCK_TOKENS,
                                                         snapshot_interval)}
        nxt = continuations.get(req.rid) if continuations else None
        if nxt is not None and nxt.hash_ids:
            full = (req.input_tokens + req.output_tokens) // BLOCK_TOKENS
            more = _chain_keys(nxt.hash_ids)[:full]
            n_prompt = req.input_tokens // BLOCK_TOKENS
            if len(more) == full and more[:n_prompt] == keys[j][:n_prompt]:
                blocks.update(more)
                snaps.update(more[p] for p in _snapshot_positions(len(more), full, snapshot_interval))
        stored.append((blocks, snaps) if needs_state else (blocks, set()))
    count: dict[int, int] = {}
    snap_count: dict[int, int] = {}
    inserted = [False] * n
    by_ready = sorted(range(n), key=lambda j: (ready[j], j))
    k = 0
    out = [0] * n
    for i in sorted(range(n), key=lambda j: (lookup[j], j)):
        while k < n and (ready[by_ready[k]], by_ready[k]) <= (lookup[i], i):
            j = by_ready[k]
            for key in stored[j][0]:
                count[key] = count.get(key, 0) + 1
            for key in stored[j][1]:
                snap_count[key] = snap_count.get(key, 0) + 1
            inserted[j] = True
            k += 1
        own_blocks, own_snaps = stored[i] if inserted[i] else (set(), set())
        best = 0
        for m, key in enumerate(keys[i], start=1):
            if count.get(key, 0) - (key in own_blocks) <= 0:
                break
            if not needs_state or snap_count.get(key, 0) - (key in own_snaps) > 0:
                best = m
        req = requests[i]
        out[i] = min(best * BLOCK_TOKENS, req.input_tokens - 1) if best else 0
    return out


def _snapshot_positions(n_keys: int, full_blocks: int, interval: int) -> list[int]:
    # as PrefixCache.snapshot_positions: the interval grid and the last full block
    full_blocks = min(full_blocks, n_keys)
    if full_blocks <= 0:
        return []
    out = list(range(interval - 1, full_blocks, interval)) if interval > 0 else []
    return out + [full_blocks - 1]


def _chain_keys(hash_ids: Sequence[int]) -> list[int]:
    # one key per prefix (block ids are only meaningful after the same leading blocks)
    keys, key = [], None
    for h in hash_ids:
        key = hash((key, h))
        keys.append(key)
    return keys


def fluid_goodput_bound(sim: "Simulator", *, slot_s: float = 1.0, roles: str = "initial") -> GoodputBound:
    """Solve the LP (module docstring) for a built, not yet run, simulator's workload.

    ``good_max`` is the LP over every request; ``window_good_max`` the LP counting only the
    requests that arrive in the measurement window (:func:`prfaas_gym.metrics.sim_window`).
    """
    from prfaas_gym.metrics.summary import sim_window

    if not slot_s > 0:
        raise ValueError(f"slot_s: must be > 0, got {slot_s}")
    if roles not in ROLE_MODES:
        raise ValueError(f"roles: expected one of {', '.join(ROLE_MODES)}, got {roles!r}")
    if not sim.requests:
        raise ValueError("the workload has no requests")
    t0 = time.perf_counter()
    lp = _FluidLP(sim, slot_s, roles)
    good_max, hopeless, variables = lp.solve()
    start, end = sim_window(sim)
    if lp.closed_loop:
        # a policy moves closed-loop arrivals, hence which requests the window holds and its
        # end (the last arrival): count every request, over the shortest window a run can have
        # (it ends no earlier than the last timed arrival less the cool-down)
        window_good = good_max
    else:
        measured = [start <= r.arrival_s <= end for r in sim.requests]
        n_measured = sum(measured)
        if all(measured):
            window_good = good_max
        elif good_max >= len(sim.requests) - hopeless - 1e-6:
            # every feasible request is fully good in the optimum: so is every measured one
            window_good = float(n_measured - sum(1 for i in lp.hopeless_ids if measured[i]))
        else:
            window_good = lp.solve(measured)[0]
    n = len(sim.requests)
    return GoodputBound(
        seed=sim.seed, requests=n, good_max=good_max, hopeless=hopeless,
        last_arrival_s=max(r.arrival_s for r in sim.requests if not math.isnan(r.arrival_s)),
        attainment_max=good_max / n,
        window_good_max=window_good,
        goodput_rps_max=window_good / (end - start) if end > start else math.nan,
        slot_s=float(slot_s), roles=roles, cache_timing=lp.cache_timing, variables=variables,
        solve_s=time.perf_counter() - t0,
    )


class _FluidLP:
    """Per-request inputs of the LP, computed once; :meth:`solve` for one end time."""

    def __init__(self, sim: "Simulator", slot_s: float, roles: str) -> None:
        self.sim, self.slot_s, self.roles = sim, slot_s, roles
        reqs = sim.requests
        self.prefill_clusters, self.decode_clusters = _capacities(sim, roles)
        caching = [c.cache is not None for c, _ in self.prefill_clusters]
        cached_clusters = [c for c in sim.clusters if c.cache is not None]
        needs_state = any(c.cache.needs_state for c in cached_clusters)
        # the finest snapshot grid any pool keeps covers every pool's snapshots
        intervals = [c.cache.snapshot_interval for c in cached_clusters if c.cache.snapshot_interval > 0]
        interval = math.gcd(*intervals) if intervals else 0
        continuations = sim._next_turns() if any(c.spec.cache_output for c in cached_clusters) else None
        # chunked prefill commits blocks before the prompt's prefill ends
        chunked = any(c.chunked_prefill for c in sim.clusters)

        def fastest_prefill_s(i: int, cached: int) -> float:
            L = reqs[i].input_tokens
            return min(c.stm.prefill_s([(L - (cached if has else 0), cached if has else 0)])
                       for (c, _), has in zip(self.prefill_clusters, caching))

        n = len(reqs)
        self.step_s = [c.stm.decode_s(1, 0) for c, _ in self.decode_clusters]
        self.cache_timing = not chunked and any(caching) and bool(self.prefill_clusters)
        # pass 1: any other prompt counts, whenever it came; a request's hit is at most this,
        # so its prefill takes at least fastest_prefill_s(i, loose[i])
        loose = (max_cached_tokens(reqs, needs_state, [-math.inf] * n, [math.inf] * n,
                                   snapshot_interval=interval, continuations=continuations)
                 if any(caching) else [0] * n)
        fastest = [fastest_prefill_s(i, loose[i]) if self.prefill_clusters else 0.0 for i in range(n)]
        self.fastest_loose = fastest  # the free part of a closed-loop turn may come any time later
        self.closed_loop = any(math.isnan(r.arrival_s) for r in reqs)
        self.earliest, self.latest = arrival_windows(sim, fastest, min(self.step_s, default=0.0))
        if any(caching):
            ttft = sim.scenario.ttft_slo_s
            # a good request starts prefill by its latest arrival + TTFT SLO - its fastest prefill,
            # and looks its prefix up then; a prompt is stored no sooner than its fastest prefill
            # ends after its earliest arrival
            lookup = [lt + ttft - f for lt, f in zip(self.latest, fastest)]
            ready = [e + (0.0 if chunked else f) for e, f in zip(self.earliest, fastest)]
            cached = max_cached_tokens(reqs, needs_state, ready, lookup,
                                       snapshot_interval=interval, continuations=continuations)
        else:
            cached = [0] * n
        self.prefill_s = [[_prefill_work_s(c, r.input_tokens, k if has else 0) for r, k in zip(reqs, cached)]
                          for (c, _), has in zip(self.prefill_clusters, caching)]

    def solve(self, counted: Sequence[bool] | None = None) -> tuple[float, int, int]:
        """``(good requests at most, hopeless requests, LP variables)``; the objective counts
        the requests flagged in ``counted`` (default: all)."""
        from scipy import sparse
        from scipy.optimize import linprog

        sim, slot_s = self.sim, self.slot_s
        reqs = sim.requests
        n = len(reqs)
        ttft, tpot = sim.scenario.ttft_slo_s, sim.scenario.tpot_slo_s
        rows: list[int] = []        # sparse entries of the equality rows (2 per request)
        cols: list[int] = []
        vals: list[float] = []
        cap_rows: list[int] = []    # sparse entries of the capacity rows
        cap_cols: list[int] = []
        cap_vals: list[float] = []
        cap_index: dict[tuple, int] = {}
        upper: list[float] = [1.0] * n  # y_i <= 1; the rest below
        nv = n
        hopeless = 0
        hopeless_ids: list[int] = []

        def cap_row(key: tuple) -> int:
            row = cap_index.get(key)
            if row is None:
                row = cap_index[key] = len(cap_index)
            return row

        for i, req in enumerate(reqs):
            a, a_late = self.earliest[i], self.latest[i]
            times = [p[i] for p in self.prefill_s]
            fastest = min(times, default=math.inf)
            steps = req.output_tokens - 1
            if not fastest <= ttft:
                hopeless += 1
                hopeless_ids.append(i)
                upper[i] = 0.0
                continue
            first, last = int(a // slot_s), int((a_late + ttft) // slot_s)
            # sum of prefill fractions = y_i
            rows.append(2 * i); cols.append(i); vals.append(-1.0)
            for k, (cluster, _) in enumerate(self.prefill_clusters):
                p = times[k]
                if not p <= ttft:
                    continue
                for t in range(first, last + 1):
                    rows.append(2 * i); cols.append(nv); vals.append(1.0)
                    cap_rows.append(cap_row(("p", cluster.index, t))); cap_cols.append(nv); cap_vals.append(p)
                    upper.append(min(1.0, slot_s / p) if p > 0 else 1.0)  # batched: marginal may be 0
                    nv += 1
            if steps <= 0 or not self.decode_clusters:
                continue
            first = int((a + fastest) // slot_s)
            last = int((a_late + ttft + steps * tpot) // slot_s)
            # sum of decode occupancy fractions = y_i (occupancy = steps x step, one slot at a time)
            rows.append(2 * i + 1); cols.append(i); vals.append(-1.0)
            for k, (cluster, _) in enumerate(self.decode_clusters):
                occupancy = steps * self.step_s[k]
                for t in range(first, last + 1):
                    rows.append(2 * i + 1); cols.append(nv); vals.append(1.0)
                    cap_rows.append(cap_row(("d", cluster.index, t))); cap_cols.append(nv); cap_vals.append(occupancy)
                    upper.append(min(1.0, slot_s / occupancy))
                    nv += 1
            if nv > MAX_LP_VARIABLES:
                raise ValueError(f"bound: the LP would exceed {MAX_LP_VARIABLES:,} variables; "
                                 "use fewer requests or a larger --slot-s")

        b_cap = np.empty(len(cap_index))
        pre_cap = {c.index: m for c, m in self.prefill_clusters}
        dec_cap = {c.index: m for c, m in self.decode_clusters}
        for (kind, cluster, _t), row in cap_index.items():
            b_cap[row] = (pre_cap[cluster] if kind == "p" else dec_cap[cluster]) * slot_s
        if self.roles == "any":
            cap_rows, cap_cols, cap_vals, b_cap = _share_pd_instances(
                sim, cap_index, cap_rows, cap_cols, cap_vals, b_cap, slot_s)
        # closed-loop turns: a free part g_i (no window, no capacity) allowed only as far as the
        # parent is not good within its own window: y_i + g_i <= 1, g_i + y_parent <= 1
        free = [i for i, r in enumerate(reqs) if math.isnan(r.arrival_s) and r.parent_rid >= 0]
        base_row, b_free = len(b_cap), []
        for k, i in enumerate(free):
            col = nv + k
            upper.append(1.0 if self.fastest_loose[i] <= ttft else 0.0)
            for row_cols in ((i, col), (col, reqs[i].parent_rid)):
                row = base_row + len(b_free)
                for c in row_cols:
                    cap_rows.append(row); cap_cols.append(c); cap_vals.append(1.0)
                b_free.append(1.0)
        nv += len(free)
        b_cap = np.concatenate([b_cap, np.asarray(b_free, dtype=float)])
        objective = np.zeros(nv)
        weight = -1.0 if counted is None else -np.asarray(counted, dtype=float)
        objective[:n] = weight
        if free:
            objective[nv - len(free):] = weight if counted is None else weight[free]
        a_eq = sparse.csr_matrix((vals, (rows, cols)), shape=(2 * n, nv))
        a_ub = sparse.csr_matrix((cap_vals, (cap_rows, cap_cols)), shape=(len(b_cap), nv))
        bounds = np.column_stack([np.zeros(nv), np.asarray(upper)])
        res = linprog(objective, A_ub=a_ub if a_ub.shape[0] else None, b_ub=b_cap if a_ub.shape[0] else None,
                      A_eq=a_eq, b_eq=np.zeros(2 * n), bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"bound: the LP solver failed ({res.message})")
        self.hopeless_ids = hopeless_ids
        return float(-res.fun), hopeless, nv


def arrival_windows(sim: "Simulator", fastest_prefill_s: Sequence[float],
                    min_step_s: float) -> tuple[list[float], list[float]]:
    """``(earliest, latest)`` arrival of each request's good attempt, for the LP's windows.

    A timed request (open-loop, or a conversation's first turn) arrives at its time; a
    closed-loop follow-up (``arrival_s`` nan) a think time after its parent ended, so no
    sooner than the parent's earliest arrival + its fastest prefill + ``(output - 1)`` steps
    at ``min_step_s``; and, when the parent was good (ended by its arrival + TTFT SLO +
    ``(output - 1)`` x TPOT SLO), no later than the parent's latest arrival + that. A
    conversation's rejected turn is resent after a backoff (``on_reject: retry``), so a good
    attempt may come up to the sum of the backoffs later. A follow-up of a parent that was not
    good has no latest arrival: the LP gives it a free part (:meth:`_FluidLP.solve`).

    Raises:
        ValueError: retries with faults (a fault rejects a request late, so its retry has no
            latest arrival even when every earlier turn was good).
    """
    reqs = sim.requests
    sc = sim.scenario
    clock = sim.sessions
    retry = clock is not None and clock.policy.action == "retry" and clock.policy.max_retries > 0
    backoff = sum(clock.policy.backoff_s_after(k) for k in range(clock.policy.max_retries)) if retry else 0.0
    if retry and sc.faults:
        raise ValueError("bound: retried turns with faults have no latest arrival (a fault rejects late); "
                         "bound the workload without faults or without on_reject: retry")
    earliest = [math.nan] * len(reqs)
    latest = [math.nan] * len(reqs)
    for i in _parents_first(reqs):
        r = reqs[i]
        delay = backoff if r.session_id >= 0 else 0.0
        if not math.isnan(r.arrival_s):
            earliest[i], latest[i] = r.arrival_s, r.arrival_s + delay
            continue
        p = reqs[r.parent_rid]
        steps = max(p.output_tokens - 1, 0)
        earliest[i] = earliest[p.rid] + fastest_prefill_s[p.rid] + steps * min_step_s + r.think_s
        latest[i] = latest[p.rid] + sc.ttft_slo_s + steps * sc.tpot_slo_s + r.think_s + delay
    return earliest, latest


def _parents_first(reqs: Sequence[Request]) -> list[int]:
    """Request indices, every closed-loop turn after its parent."""
    order, seen = [], set()
    for i in range(len(reqs)):
        chain = []
        j = i
        while j not in seen and math.isnan(reqs[j].arrival_s) and reqs[j].parent_rid >= 0:
            chain.append(j)
            j = reqs[j].parent_rid
        if j not in seen:
            seen.add(j)
            order.append(j)
        for k in reversed(chain):
            seen.add(k)
            order.append(k)
    return order


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
    ``compare``/``simulate`` with that seed), closed-loop sessions included (their turns'
    arrival windows: :func:`arrival_windows`)."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.scenario import load_scenario

    if not hasattr(scenario, "workload"):
        scenario = load_scenario(scenario)
    sim = build_simulator(scenario, seed=seed, data_dir=data_dir, n_requests=n_requests,
                          rate_rps=rate_rps, duration_s=duration_s)
    return fluid_goodput_bound(sim, slot_s=slot_s, roles=roles)


def open_loop(scenario):
    """``scenario`` with closed-loop sessions replaced by their open-loop timing (every turn at
    its drawn arrival time); others unchanged. (The bound no longer needs it: the LP of the
    open-loop timing is not a bound for the closed-loop run.)"""
    import copy
    import dataclasses

    prefix = scenario.workload.get("prefix")
    if not isinstance(prefix, dict) or prefix.get("loop", "closed") != "closed":
        return scenario
    workload = copy.deepcopy(scenario.workload)
    workload["prefix"]["loop"] = "open"
    workload["prefix"].pop("on_reject", None)
    return dataclasses.replace(scenario, workload=workload)
