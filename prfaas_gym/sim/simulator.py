"""The simulator: builds clusters and links from a scenario and moves requests through them.

Life of a request: arrival -> routing decision -> (optional cross-cluster prefix pull) ->
prefill queue -> batched prefill (KV streamed layer by layer to the decode side while it
runs) -> KV transfer end -> decode admission (KV memory, max batch) -> decode -> finish.
Every request ends completed or rejected; parts that fail hand their requests back to be
re-routed, so nothing is lost.
"""

from __future__ import annotations

import gc
import math
from heapq import heappop
from typing import Any, Callable, Sequence

import numpy as np

from prfaas_gym.perf import build_step_time_model
from prfaas_gym.sim.cluster import PD, Cluster
from prfaas_gym.sim.disturbances import schedule_disturbances
from prfaas_gym.sim.job import Job
from prfaas_gym.sim.kernel import (
    PRIO_ARRIVAL, PRIO_COMPLETION, PRIO_CONTROL, PRIO_ENVIRONMENT, SimEnvironment, schedule,
)
from prfaas_gym.sim.link import Channel, Link, per_flow_cap_bytes_s
from prfaas_gym.sim.predictor import LengthPredictor
from prfaas_gym.sim.router import Provisioner, RouteDecision, Router, ThresholdRouter
from prfaas_gym.sim.sessions import SessionClock
from prfaas_gym.sim.streams import STREAM_HOME, STREAM_POLICY, STREAM_WORKLOAD, rng_stream
from prfaas_gym.workload import build_workload
from prfaas_gym.workload.request import BLOCK_TOKENS, Request
from prfaas_gym.workload.sessions import reject_policy

MAX_RETRIES = 3
STALL_LIMIT_S = 86_400.0  # simulated seconds with requests in flight and none ending


def _with_gc_paused(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` with Python's cyclic garbage collector paused (run() and run_until()).

    Reference counting frees almost everything the simulation discards; the few reference
    cycles (a KV flow and its job point at each other) wait for the collector, which resumes
    when the call returns. Its periodic scans of the young objects cost ~9% of the simulator's
    time (callgrind, 10k-GPU scenario); peak memory grows by ~4 MB per 100,000 requests."""
    if not gc.isenabled():
        return fn(*args)
    gc.disable()
    try:
        return fn(*args)
    finally:
        gc.enable()


class SimulationError(RuntimeError):
    """The simulation reached a state it cannot leave (a bug or an impossible scenario)."""


class Simulator:
    """A discrete-event simulation of one scenario under one router (and provisioner).

    Args:
        scenario: a loaded ``Scenario``.
        router: per-request policy; ``None``: the paper's threshold rule at the scenario's
            threshold (``api.build_simulator`` resolves the scenario's ``router:`` block by
            name). Ignored when ``external_routing`` is set.
        provisioner: long-timescale policy (``None``: static split).
        seed: random seed (default: the scenario's).
        data_dir: where trace paths in the scenario are resolved.
        requests: use these requests instead of building the scenario's workload.
        n_requests, rate_rps, duration_s: workload overrides (exactly ``n_requests`` enter).
        external_routing: do not call a router; ``next_decision()`` returns each arriving
            request and ``apply()`` routes it (the Gymnasium envs drive the simulator so).
        gauge_interval_s: when set, sample per-cluster gauges (queued prefill requests,
            decode queue, decode KV memory in use, decode batch) every this many simulated
            seconds into ``gauges``; a fixed-interval sample mean is a time-weighted mean.
    """

    def __init__(
        self,
        scenario,
        router: Router | None = None,
        provisioner: Provisioner | None = None,
        *,
        seed: int | None = None,
        data_dir=None,
        requests: Sequence[Request] | None = None,
        n_requests: int | None = None,
        rate_rps: float | None = None,
        duration_s: float | None = None,
        external_routing: bool = False,
        gauge_interval_s: float | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        self.model = scenario.model
        self.env = SimEnvironment()
        self.external_routing = external_routing
        self.fallback_router: Router = ThresholdRouter(scenario.default_threshold_tokens)
        self.router: Router = router if router is not None else self.fallback_router
        self.provisioner = provisioner
        self.policy_rng = rng_stream(self.seed, STREAM_POLICY)

        if requests is None:
            requests = build_workload(
                scenario.workload,
                rng=rng_stream(self.seed, STREAM_WORKLOAD),
                data_dir=data_dir,
                n_requests=n_requests if n_requests is not None else scenario.requests,
                rate_rps=rate_rps,
                duration_s=duration_s if duration_s is not None else scenario.duration_s,
                source=scenario.source,
            )
        self.requests: list[Request] = list(requests)

        self.clusters: list[Cluster] = []
        for i, spec in enumerate(scenario.clusters):
            stm = build_step_time_model(spec.step_time, self.model, spec.hardware, spec.gpus_per_instance)
            self.clusters.append(Cluster(self, i, spec, stm))
        self.cluster_by_name = {c.name: c.index for c in self.clusters}
        self.prfaas_clusters = [c.index for c in self.clusters if c.is_prfaas]
        self.pd_clusters = [c.index for c in self.clusters if c.kind == PD]

        self.links: list[Link] = []
        # one channel per direction: links are full duplex
        self._link_between: dict[tuple[str, str], Channel] = {}
        for spec in scenario.links:
            p = spec.profile
            cap = per_flow_cap_bytes_s(p.tcp_connections, p.per_connection_bytes_s, p.rtt_s, p.loss)
            link = Link(self.env, p.name, spec.a, spec.b, p.bandwidth_bytes_s, p.rtt_s, cap, self._on_flow_done)
            self.links.append(link)
            self._link_between[(spec.a, spec.b)] = link.forward
            self._link_between[(spec.b, spec.a)] = link.reverse
        # PrfaaS clusters whose KV can reach each PD cluster (the threshold rule's candidates)
        self.prfaas_reaching = {
            pd: [c for c in self.prfaas_clusters if self.connected(c, pd)] for pd in self.pd_clusters
        }
        # per cluster pair: can KV move (connected), and over which link (link_between, None
        # inside a datacenter); _dispatch and valid_decision look these up once per request
        n_c = len(self.clusters)
        self._conn = [[self.connected(a, b) for b in range(n_c)] for a in range(n_c)]
        self._pair_link = [[self.link_between(a, b) if self._conn[a][b] else None for b in range(n_c)]
                           for a in range(n_c)]

        # home PD cluster of each request (where its user traffic lands and decode runs)
        weights = np.array([self.clusters[c].spec.traffic_weight for c in self.pd_clusters], dtype=float)
        if len(self.pd_clusters) == 1:
            self._home = np.zeros(len(self.requests), dtype=np.int64) + self.pd_clusters[0]
        else:
            pick = rng_stream(self.seed, STREAM_HOME).choice(
                len(self.pd_clusters), size=len(self.requests), p=weights / weights.sum()
            )
            self._home = np.asarray(self.pd_clusters, dtype=np.int64)[pick]
        self._home_list: list[int] = self._home.tolist()  # plain ints: cheaper per lookup

        self.on_request_end: list[Callable[[Request], None]] = []  # called as each request ends
        # arrivals: requests with a fixed arrival time come in order from _open; closed-loop
        # turns and retries are timed by the session clock when their parent ends
        self._open = [r for r in self.requests if not math.isnan(r.arrival_s)]
        self._next_arrival = 0  # index into _open
        self._arrivals_left = len(self.requests)  # requests that will still arrive
        self.arrived: list[Request] = []  # requests in order of arrival
        policy = reject_policy(scenario.workload, scenario.source)
        self.sessions = SessionClock(self, policy) if SessionClock.needed(self.requests, policy) else None
        self._last_end_s = 0.0  # when a request last completed or was rejected (stall watchdog)
        self.completed = 0
        self.preemptions = 0  # decode preemptions (by recompute) so far
        self.length_predictor = LengthPredictor()
        self.rejected = 0
        self.in_flight = 0
        self.events_processed = 0
        self._pending: Request | None = None
        self.kv_bytes_per_token = self.model.kv_bytes_per_token
        self.state_bytes = self.model.state_bytes_per_request
        self.num_layers = max(self.model.num_layers, 1)
        self.prefill_counts_log: list[tuple[float, int, int]] = []  # (time, cluster, prefill instances)
        self._next_turn = self._next_turns() if any(c.spec.cache_output for c in self.clusters) else {}

        # the next open-loop arrival is kept off the event heap as its heap key (time,
        # PRIO_ARRIVAL, sequence number), drawn exactly when it would have been scheduled, and
        # merged with the heap in run()/run_until(): the order of events is unchanged and each
        # request saves a heap push and pop
        self._arrival_key: tuple[float, int, int] | None = None
        if self._open:
            self._arrival_key = self._key_at(self._open[0].arrival_s)
        schedule_disturbances(self)
        if provisioner is not None:
            # first decision after one interval, unless the provisioner asks for another start
            # (a learned one acts at t = 0, as its env's agent does at reset)
            first = getattr(provisioner, "first_tick_s", None)
            schedule(self.env, provisioner.interval_s if first is None else float(first), PRIO_CONTROL,
                     self._on_provision_tick)
        # rows of (time, cluster, queued prefill, decode queue, KV bytes in use, decode batch)
        self.gauges: list[tuple[float, int, int, int, float, int]] = []
        self.gauge_interval_s = gauge_interval_s
        if gauge_interval_s is not None:
            if not gauge_interval_s > 0:
                raise ValueError("gauge_interval_s must be positive")
            schedule(self.env, 0.0, PRIO_CONTROL, self._on_gauge_tick)
        self._log_prefill_counts()

    # ================================================================== queries for policies
    @property
    def now_s(self) -> float:
        """Simulated time in seconds."""
        return self.env._now

    @property
    def done(self) -> bool:
        """All requests have arrived and ended (completed or rejected)."""
        return self._arrivals_left == 0 and self.in_flight == 0

    @property
    def arrivals_left(self) -> int:
        """Requests that have not arrived yet (closed-loop turns included; retries once made)."""
        return self._arrivals_left

    def home_cluster(self, req: Request) -> int:
        """Index of the PD cluster where ``req``'s traffic lands and decodes by default."""
        return self._home_list[req.rid]

    def cached_tokens(self, cluster: int, req: Request, in_flight: bool = False) -> int:
        """Tokens of ``req``'s prompt that cluster ``cluster`` holds as a usable cached prefix.

        This is a router's estimate at routing time: the hit that counts is decided when
        the request leaves its prefill queue (the cache may have gained or lost blocks by
        then). ``in_flight=True`` also counts the prompts queued or prefilling in the
        cluster as if already cached (what it expects to hold by the time ``req`` is
        scheduled, like Dynamo's KV router tracking active blocks per worker)."""
        cache = self.clusters[cluster].cache
        if cache is None or not req.hash_ids:
            return 0
        blocks = cache.match_blocks(req.hash_ids, in_flight)
        return min(blocks * BLOCK_TOKENS, req.input_tokens - 1)

    def _next_turns(self) -> dict[int, Request]:
        """rid -> the next request of the same session (arrival order; session workloads)."""
        last: dict[int, Request] = {}
        out: dict[int, Request] = {}
        for r in self.requests:
            if r.session_id >= 0:
                prev = last.get(r.session_id)
                if prev is not None:
                    out[prev.rid] = r
                last[r.session_id] = r
        return out

    def connected(self, a: int, b: int) -> bool:
        """Whether KV can move between clusters ``a`` and ``b`` (same datacenter, or a link)."""
        da, db = self.clusters[a].datacenter, self.clusters[b].datacenter
        return da == db or (da, db) in self._link_between

    def link_between(self, a: int, b: int) -> Channel | None:
        """The direction from cluster ``a``'s datacenter to ``b``'s of the link joining them
        (``None`` inside one datacenter). Links are full duplex: each direction has the link's
        capacity and its own flows."""
        da, db = self.clusters[a].datacenter, self.clusters[b].datacenter
        if da == db:
            return None
        link = self._link_between.get((da, db))
        if link is None:
            raise SimulationError(f"no link between datacenters {da!r} and {db!r}")
        return link

    def kv_transfer_bytes(self, req: Request, decode_cluster: int) -> float:
        """Bytes shipped to the decode cluster: the KV it lacks plus the fixed linear state."""
        missing = req.input_tokens - self.cached_tokens(decode_cluster, req)
        return self.kv_bytes_per_token * missing + self.state_bytes

    def predicted_ttft_s(self, req: Request, cluster: int, pull_from: int | None = None) -> float:
        """Queueing + prefill of the uncached part (+ a prefix pull) if ``req`` went to ``cluster``."""
        c = self.clusters[cluster]
        cached = self.cached_tokens(cluster, req)
        pull_s = 0.0
        if pull_from is not None and pull_from != cluster:
            other = self.cached_tokens(pull_from, req)
            if other > cached:
                pull_s = self._pull_time_estimate_s(other - cached, pull_from, cluster)
                cached = other
        new = req.input_tokens - cached
        return c.min_prefill_wait_s() + pull_s + c.stm.prefill_s([(new, cached)])

    def _pull_time_estimate_s(self, tokens: int, src: int, dst: int) -> float:
        nbytes = self.kv_bytes_per_token * tokens + self.state_bytes
        link = self.link_between(src, dst)
        if link is None:
            return nbytes / self._rdma_bytes_s(self.clusters[dst]) + self.scenario.intra_dc_latency_s
        rate = link.per_flow_rate_if_added()
        return (nbytes / rate if rate > 0 else math.inf) + link.rtt_s

    # ================================================================== control inputs
    def set_prefill_count(self, cluster: int, n_prefill: int) -> None:
        """Ask PD cluster ``cluster`` to run ``n_prefill`` prefill instances (at least one of each role)."""
        c = self.clusters[cluster]
        n = len(c.instances)
        c.set_prefill_count(max(1, min(int(n_prefill), n - 1)))
        self._log_prefill_counts()

    # ================================================================== running
    def run(self, progress: Callable[[int, int], None] | None = None) -> dict:
        """Run to completion with the router; return the summary. ``progress(ended, total)``."""
        if self.external_routing:
            raise SimulationError("external_routing is set: drive with next_decision()/apply()")
        return _with_gc_paused(self._run, progress)

    def _run(self, progress: Callable[[int, int], None] | None) -> dict:
        env = self.env
        queue = env._queue
        n = 0
        # SimPy's Environment.step inlined: our events never fail, and this loop is the
        # simulator's hot path (about five events per request)
        while self.in_flight or self._arrivals_left:
            key = self._arrival_key
            if key is not None and (not queue or key < queue[0]):
                env._now = key[0]
                self._on_arrival()
            else:
                if not queue:
                    self._stuck()
                env._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
            n += 1
            if not n & 0x3FFF:
                self._check_stall()
                if progress is not None:
                    progress(self.completed + self.rejected, len(self.requests))
        self.events_processed += n
        if progress is not None:
            progress(self.completed + self.rejected, len(self.requests))
        self._warn_overtaking()
        return self.summary()

    def run_until(self, time_s: float) -> Request | None:
        """Process events up to ``time_s`` (or until a request awaits an external decision, or
        the run is done). The clock ends at ``time_s`` unless the run finished before it."""
        return _with_gc_paused(self._run_until, time_s)

    def _run_until(self, time_s: float) -> Request | None:
        env = self.env
        queue = env._queue
        n = 0
        done_before = self.events_processed  # only this method and run() change it
        while (self.in_flight or self._arrivals_left) and self._pending is None:
            key = self._arrival_key
            if key is not None and (not queue or key < queue[0]):
                if key[0] > time_s:
                    env._now = max(env._now, time_s)
                    break
                env._now = key[0]
                self._on_arrival()
            else:
                if not queue:
                    self._stuck()
                if queue[0][0] > time_s:
                    env._now = max(env._now, time_s)
                    break
                env._now, _, _, event = heappop(queue)
                callbacks, event.callbacks = event.callbacks, None
                for callback in callbacks:
                    callback(event)
            n += 1
            if not (done_before + n) & 0x3FFF:
                self._check_stall()
        self.events_processed += n
        return self._pending  # when done, the clock stays at the last event (the makespan)

    def next_decision(self, until_s: float = math.inf) -> Request | None:
        """Run until a request needs routing (external mode); ``None`` when done or at ``until_s``."""
        return self.run_until(until_s)

    @property
    def pending_request(self) -> Request | None:
        """The request awaiting an external routing decision, if any."""
        return self._pending

    def apply(self, decision: RouteDecision) -> None:
        """Route the pending request (external mode)."""
        req = self._pending
        if req is None:
            raise SimulationError("no request is waiting for a decision")
        self._pending = None
        self._dispatch(req, decision)

    def summary(self) -> dict:
        """The run's summary metrics (see ``prfaas_gym.metrics.summarize``)."""
        from prfaas_gym.metrics.summary import summarize

        return summarize(self)

    def _check_stall(self) -> None:
        # periodic events (fluctuation, provisioning) can keep the queue alive forever
        if self.in_flight and self.env._now - self._last_end_s > STALL_LIMIT_S:
            raise SimulationError(
                f"no request has ended for {STALL_LIMIT_S:.0f} simulated seconds (t={self.env._now:.0f}s, "
                f"{self.in_flight} in flight): is every decode or prefill instance failed for good?"
            )

    def _stuck(self) -> None:
        raise SimulationError(
            f"no events left at t={self.env._now:.3f}s with {self.in_flight} requests in flight "
            "(is there any decode capacity?)"
        )

    # ================================================================== arrivals and routing
    def _key_at(self, time_s: float) -> tuple[float, int, int]:
        """The heap key ``schedule_at(env, time_s, PRIO_ARRIVAL, ...)`` would give an event now."""
        env = self.env
        return (max(time_s, env._now), PRIO_ARRIVAL, next(env._eid))

    def _on_arrival(self) -> None:
        """The next open-loop request arrives (the clock is at its arrival time)."""
        i = self._next_arrival
        req = self._open[i]
        self._next_arrival = i + 1
        self._arrival_key = self._key_at(self._open[i + 1].arrival_s) if i + 1 < len(self._open) else None
        self._arrive(req)

    def _on_timed_arrival(self, event) -> None:
        self._arrive(event._value)

    def _arrive(self, req: Request) -> None:
        self._arrivals_left -= 1
        self.in_flight += 1
        self.arrived.append(req)
        if self.external_routing:
            self._pending = req
        else:
            self._dispatch(req, self.router.route(req, self))

    def valid_decision(self, req: Request, d: RouteDecision) -> bool:
        """Whether ``d`` names an existing cluster/instance that accepts prefill now."""
        if d.reject:
            return True
        if not 0 <= d.prefill_cluster < len(self.clusters):
            return False
        c = self.clusters[d.prefill_cluster]
        if d.prefill_instance is not None:
            if not 0 <= d.prefill_instance < len(c.instances):
                return False
            if not c.instances[d.prefill_instance].accepts_prefill:
                return False
        elif not c.prefill_up():
            return False
        decode = self._home_list[req.rid] if d.decode_cluster is None else d.decode_cluster
        if not 0 <= decode < len(self.clusters) or self.clusters[decode].kind != PD:
            return False
        if not self._conn[d.prefill_cluster][decode]:  # indices checked above
            return False
        if d.pull_from is not None and not (
            0 <= d.pull_from < len(self.clusters) and self._conn[d.pull_from][d.prefill_cluster]
        ):
            return False
        return True

    def _dispatch(self, req: Request, d: RouteDecision) -> None:
        if not self.valid_decision(req, d):
            # documented fallback: the paper's threshold rule
            d = self.fallback_router.route(req, self)
            if not self.valid_decision(req, d):
                self._reject(req, "no_prefill_capacity")
                return
        if d.reject:
            self._reject(req, "policy")
            return
        pc = self.clusters[d.prefill_cluster]
        inst = pc.instances[d.prefill_instance] if d.prefill_instance is not None else pc.pick_prefill_instance()
        if inst is None:
            self._reject(req, "no_prefill_capacity")
            return
        if len(inst.queue) >= pc.max_queue_requests:
            self._reject(req, "queue_full")
            return
        dc_index = d.decode_cluster if d.decode_cluster is not None else self._home_list[req.rid]
        dc = self.clusters[dc_index]
        # the API's max_model_len check against the request's max_tokens (here its output
        # length, a client parameter): the only use of the output length in the simulator
        if self.kv_bytes_per_token * (req.input_tokens + req.output_tokens) + self.state_bytes > dc.decode_mem_capacity_bytes:
            self._reject(req, "too_long")
            return
        # decode KV is reserved for the current context (the prompt) and grows per token
        mem = self.kv_bytes_per_token * req.input_tokens + self.state_bytes

        job = Job(req)
        job.prefill_cluster = pc
        job.decode_cluster = dc
        job.mem_bytes = mem
        # a routing-time estimate for the queue's accounting; the hit that counts is matched
        # when the job leaves the queue (_match_at_schedule). cached_tokens() is 0 without a
        # cache: skip the call (most scenarios have none)
        cached = self.cached_tokens(pc.index, req) if pc.cache is not None else 0
        pulled = 0
        if d.pull_from is not None and d.pull_from != pc.index:
            other = self.cached_tokens(d.pull_from, req)
            if other > cached:
                pulled = other - cached
                cached = other
                job.pulled_cached = other
        job.cached_tokens = cached
        job.new_tokens = job.est_new_tokens = req.input_tokens - cached
        job.prefill_estimate_s = pc.stm.prefill_s([(job.new_tokens, cached)])
        req.prefill_cluster = pc.name
        req.decode_cluster = dc.name
        req.cached_tokens = cached
        req.pulled_tokens = pulled
        if pc.cache is not None and req.hash_ids:
            job.pending_keys = pc.cache.chain_keys(req.hash_ids, req.input_tokens // BLOCK_TOKENS)
            pc.cache.add_pending(job.pending_keys)
        # the pair is connected (valid_decision): its link, or None inside one datacenter
        job.link = self._pair_link[pc.index][dc.index]
        if pulled:
            self._start_pull(job, d.pull_from, inst)
        else:
            inst.enqueue(job)

    def _reject(self, req: Request, reason: str) -> None:
        req.rejected = True
        req.reject_reason = reason
        self.rejected += 1
        self.in_flight -= 1
        self._last_end_s = self.env._now
        for fn in self.on_request_end:
            fn(req)
        if self.sessions is not None:
            self.sessions.on_end(req)

    # ================================================================== sessions
    def add_request(self, like: Request, *, attempt: int) -> Request:
        """A new request with ``like``'s content (a client's retry), not yet scheduled."""
        req = Request(len(self.requests), math.nan, like.input_tokens, like.output_tokens, like.hash_ids,
                      like.session_id, like.turn, like.parent_rid, like.think_s, attempt)
        self.requests.append(req)
        self._home_list.append(self._home_list[like.rid])
        self._arrivals_left += 1
        return req

    def abandon(self, req: Request) -> None:
        """End a turn that will never be sent (its conversation was abandoned)."""
        req.rejected = True
        req.reject_reason = "abandoned"
        self.rejected += 1
        self._arrivals_left -= 1
        for fn in self.on_request_end:
            fn(req)

    def _warn_overtaking(self) -> None:
        # open-loop turns (synthetic `loop: open`, trace replay, rescaled by --rate) may arrive
        # before the turn they continue has ended: say how often
        reqs = self.requests
        late = total = 0
        for r in reqs:
            if r.parent_rid >= 0 and math.isnan(r.think_s) and not reqs[r.parent_rid].rejected:
                total += 1
                if not r.arrival_s >= reqs[r.parent_rid].finish_s:
                    late += 1
        if late:
            import warnings

            warnings.warn(f"{late} of {total} follow-up turns arrived before the turn they continue "
                          "ended (open-loop timing: synthetic `loop: open`, or trace timestamps, "
                          "perhaps rescaled by --rate)", stacklevel=4)

    # ================================================================== prefix pulls
    def _start_pull(self, job: Job, src: int, inst) -> None:
        nbytes = self.kv_bytes_per_token * job.req.pulled_tokens + self.state_bytes
        link = self.link_between(src, job.prefill_cluster.index)
        job.prefill_inst = inst
        if link is None:
            delay = nbytes / self._rdma_bytes_s(job.prefill_cluster) + self.scenario.intra_dc_latency_s
            schedule(self.env, delay, PRIO_COMPLETION, self._on_pull_done, (job, job.epoch))
        else:
            link.start_flow(nbytes, ("pull", job, job.epoch))

    def _on_pull_done(self, event) -> None:
        job, epoch = event._value
        self._pull_arrived(job, epoch)

    def _pull_arrived(self, job: Job, epoch: int) -> None:
        if epoch != job.epoch:
            return
        inst = job.prefill_inst
        if inst is None or not inst.accepts_prefill:
            inst = job.prefill_cluster.pick_prefill_instance()
            if inst is None:
                self._reroute(job)
                return
        inst.enqueue(job)

    # ================================================================== prefill and KV transfer
    def _rdma_bytes_s(self, cluster: Cluster) -> float:
        hw = cluster.spec.hardware
        nodes = max(1, math.ceil(cluster.gpus_per_instance / hw.gpus_per_node))
        return hw.rdma_bandwidth_bytes_s * nodes

    def _match_at_schedule(self, job: Job) -> None:
        """Match the prefix cache as ``job`` leaves its prefill queue (idempotent).

        vLLM v1 looks cached blocks up when its scheduler takes a request from the waiting
        queue (``Scheduler.schedule`` -> ``kv_cache_manager.get_computed_blocks``); SGLang
        matches its radix tree when it forms a batch. A pulled prefix stays with the job."""
        req = job.req
        cache = job.prefill_cluster.cache
        cached = job.pulled_cached
        if cache is not None and req.hash_ids:
            local = min(cache.match_blocks(req.hash_ids) * BLOCK_TOKENS, req.input_tokens - 1)
            if local > cached:
                cached = local
        job.cached_tokens = cached
        job.new_tokens = req.input_tokens - cached

    def _on_prefill_start(self, job: Job, now: float, duration: float) -> None:
        req = job.req
        req.prefill_start_s = now
        # the schedule-time hit is final now: record it, refresh the LRU, and size the KV to
        # send against the decode cluster's cache as it is now
        cached = job.cached_tokens
        job.cached_blocks = cached // BLOCK_TOKENS
        req.cached_tokens = cached
        cache = job.prefill_cluster.cache
        if cache is not None and req.hash_ids:
            cache.touch(req.hash_ids, job.cached_blocks)
            cache.lookups_tokens += req.input_tokens
            cache.hits_tokens += cached
        if job.link is not None:
            job.transfer_bytes = self.kv_transfer_bytes(req, job.decode_cluster.index)
        else:
            job.transfer_bytes = self.kv_bytes_per_token * req.input_tokens + self.state_bytes
        req.kv_bytes = job.transfer_bytes
        job.flow_done = False
        job.prefill_done = False
        # layer-wise pipelining: the KV stream may start with the prefill, but a layer's KV
        # goes only once computed; KV of cached prefix tokens (in the pool) may go at once
        ready = job.transfer_bytes - (self.kv_bytes_per_token * job.new_tokens + self.state_bytes)
        job.prod_ready = ready if ready > 0.0 else 0.0
        job.prod_rate = self._production_rate(job, duration)
        job.prod_t0 = now
        job.reserved = False
        # the transfer starts once the decode side has reserved the KV (backpressure)
        job.decode_cluster.request_reservation(job)

    def _on_reserved(self, job: Job) -> None:
        """The decode side has reserved ``job``'s KV: its transfer may start."""
        job.reserved = True
        if job.link is not None:
            if job.prefill_done:
                ready, rate = None, 0.0
            else:
                produced = job.prod_ready + job.prod_rate * (self.env._now - job.prod_t0)
                ready, rate = min(produced, job.transfer_bytes), job.prod_rate
            job.flow = job.link.start_flow(job.transfer_bytes, ("kv", job, job.epoch),
                                           ready_bytes=ready, produce_bytes_s=rate)
        elif job.prefill_done:  # held back by a full decode side: all the KV goes now
            delay = job.transfer_bytes / self._rdma_bytes_s(job.prefill_cluster)
            schedule(self.env, delay + self.scenario.intra_dc_latency_s, PRIO_COMPLETION,
                     self._on_transfer_event, (job, job.epoch))

    def _set_production(self, job: Job, rate: float) -> None:
        now = self.env._now
        job.prod_ready = min(job.prod_ready + job.prod_rate * (now - job.prod_t0), job.transfer_bytes)
        job.prod_t0 = now
        job.prod_rate = rate
        if job.flow is not None:
            job.link.set_production(job.flow, rate)

    def _production_rate(self, job: Job, duration: float) -> float:
        """Bytes/s of ``job``'s KV stream that this prefill step produces: its share of the
        bytes that are not in a pool, spread over the step (layer by layer, fluid). The
        linear state is final only after the last chunk."""
        if duration <= 0.0:
            return math.inf
        kv = self.kv_bytes_per_token
        total = kv * job.new_tokens + self.state_bytes
        step = kv * job.chunk_tokens
        if job.done_tokens + job.chunk_tokens >= job.new_tokens:
            step += self.state_bytes
        fresh = job.transfer_bytes if job.transfer_bytes < total else total
        return fresh * (step / total) / duration if total > 0.0 else math.inf

    def _on_prefill_step(self, job: Job, duration: float) -> None:
        """A further chunk of ``job``'s prompt starts prefill for ``duration`` seconds."""
        self._set_production(job, self._production_rate(job, duration))

    def _on_prefill_done(self, job: Job) -> None:
        req = job.req
        now = self.env._now
        req.prefill_end_s = now
        job.prefill_done = True
        pc = job.prefill_cluster
        if pc.cache is not None and req.hash_ids:
            pc.cache.insert(req.hash_ids, req.input_tokens // BLOCK_TOKENS)
            self._release_pending(job)
        layer_bytes = job.transfer_bytes / self.num_layers
        if not job.reserved:
            return  # the transfer starts when the decode side reserves (_on_reserved)
        if job.link is None:
            rdma = self._rdma_bytes_s(pc)
            # the last layer's KV leaves after prefill; the rest overlapped it
            delay = max(layer_bytes / rdma, req.prefill_start_s + job.transfer_bytes / rdma - now)
            schedule(self.env, delay + self.scenario.intra_dc_latency_s, PRIO_COMPLETION,
                     self._on_transfer_event, (job, job.epoch))
        elif job.flow_done:
            self._finish_cross_dc_transfer(job)
        elif job.flow is not None:  # (None: abandoned on a dead link, the request re-routed)
            # the last layer exists: a flow that kept pace with production ends now
            # (its on_done runs from here and finds prefill_done set)
            job.link.end_production(job.flow)

    def _on_prefill_chunk_done(self, job: Job) -> None:
        """A chunk of ``job``'s prompt is computed: its full blocks become reusable now
        (vLLM commits a request's full blocks to the prefix hash table as it schedules them,
        ``KVCacheManager.allocate_slots`` -> ``cache_blocks``)."""
        req = job.req
        self._set_production(job, 0.0)  # no KV is produced until its next chunk runs
        cache = job.prefill_cluster.cache
        if cache is not None and req.hash_ids:
            blocks = (job.cached_tokens + job.done_tokens) // BLOCK_TOKENS
            if blocks > 0:
                cache.insert(req.hash_ids[:blocks], blocks, final=False)

    def _release_pending(self, job: Job) -> None:
        if job.pending_keys is not None:
            job.prefill_cluster.cache.remove_pending(job.pending_keys)
            job.pending_keys = None

    def _finish_cross_dc_transfer(self, job: Job) -> None:
        # all bytes are through; but with layer-wise pipelining the last layer's KV exists
        # only at prefill end, so the transfer ends no earlier than prefill end + its share
        link = job.link
        rate = link.per_flow_rate_if_added()
        tail = job.transfer_bytes / self.num_layers / rate if rate > 0 else 0.0
        wait = job.req.prefill_end_s + tail - self.env._now
        schedule(self.env, max(wait, 0.0) + link.rtt_s / 2, PRIO_COMPLETION,
                 self._on_transfer_event, (job, job.epoch))

    def _on_flow_done(self, token) -> None:
        kind, job, epoch = token
        if epoch != job.epoch:
            return
        if kind == "pull":
            self._pull_arrived(job, epoch)
            return
        job.flow_done = True
        if job.prefill_done:
            self._finish_cross_dc_transfer(job)

    def _on_transfer_event(self, event) -> None:
        job, epoch = event._value
        if epoch != job.epoch:
            return
        req = job.req
        req.transfer_end_s = self.env._now
        if job.hold_inst is not None:  # the decode side has the KV: the prefill side frees it
            job.hold_inst.release_hold(job)
        dc = job.decode_cluster
        if dc.cache is not None and req.hash_ids:
            dc.cache.insert(req.hash_ids, req.input_tokens // BLOCK_TOKENS)
        if job.decode_steps == 0:  # one output token: it came with the KV, no decode
            job.decode_inst.unreserve(job)
            dc.decode_key_changed(job.decode_inst)
            if dc.prealloc:
                dc._reserve_waiting()
            req.decode_start_s = req.finish_s = self.env._now
            self._complete(job)
            return
        dc.enqueue_decode(job)

    # ================================================================== decode
    def _on_decode_start(self, job: Job) -> None:
        job.req.decode_start_s = self.env._now

    def _on_decode_done(self, job: Job) -> None:
        job.req.finish_s = self.env._now
        dc = job.decode_cluster
        if dc.cache is not None and dc.spec.cache_output:
            self._cache_output(job.req, dc.cache)
        self._complete(job)

    def _cache_output(self, req: Request, cache) -> None:
        """Store prompt + generated tokens at finish (SGLang ``RadixCache.cache_finished_req``).

        The generated tokens' block ids are those the next turn of the same conversation
        carries (its prompt = this prompt + this output + new text), so only session-built
        workloads with a later turn cache their output."""
        nxt = self._next_turn.get(req.rid)
        if nxt is None or not req.hash_ids:
            return
        full = (req.input_tokens + req.output_tokens) // BLOCK_TOKENS
        ids = nxt.hash_ids
        n_prompt = req.input_tokens // BLOCK_TOKENS
        if ids is None or len(ids) < full or tuple(ids[:n_prompt]) != tuple(req.hash_ids[:n_prompt]):
            return
        cache.insert(ids[:full], full)

    def _complete(self, job: Job) -> None:
        self.length_predictor.observe(job.req)
        self.completed += 1
        self.in_flight -= 1
        self._last_end_s = self.env._now
        for fn in self.on_request_end:
            fn(job.req)
        if self.sessions is not None:
            self.sessions.on_end(job.req)

    # ================================================================== faults and environment
    def _reroute(self, job: Job) -> None:
        req = job.req
        job.epoch += 1
        if job.flow is not None:  # stop streaming KV the new route will not use
            job.link.cancel(job.flow)
            job.flow = None
        if job.hold_inst is not None:
            job.hold_inst.release_hold(job)
        if job.decode_inst is not None:
            job.decode_inst.unreserve(job)
            job.decode_cluster.decode_key_changed(job.decode_inst)
        job.reserved = False
        req.retries += 1
        req.fault_affected = True
        self._release_pending(job)
        if req.retries > MAX_RETRIES:
            self._reject(req, "fault")
            return
        req.prefill_start_s = req.prefill_end_s = req.transfer_end_s = req.decode_start_s = math.nan
        self._dispatch(req, self.fallback_router.route(req, self))

    def fail_instance(self, cluster: int, index: int) -> None:
        """Fail an instance now; its requests are re-routed (prefill restarts)."""
        for job in self.clusters[cluster].fail_instance(index):
            self._reroute(job)
        inst = self.clusters[cluster].instances[index]
        rebind, inst.rebind = inst.rebind, []
        for job in rebind:  # a decode instance failed under a transfer: reserve again
            job.epoch += 1  # its flow or RDMA copy is void
            if job.flow is not None:
                job.link.cancel(job.flow)
                job.flow = None
            job.decode_inst = None
            job.flow_done = False
            job.reserved = False
            job.decode_cluster.request_reservation(job)
        self._log_prefill_counts()

    def link_up(self, a: int, b: int) -> bool:
        """Whether KV can move between clusters ``a`` and ``b`` now (connected, link not failed)."""
        link = self._pair_link[a][b]
        return self._conn[a][b] and (link is None or link.up)

    def set_link_up(self, link: Link, up: bool) -> None:
        """Fail or recover ``link``. While it is down its flows stall; every
        ``scenario.transfer_timeout_s`` the transfers still on it are abandoned and their
        requests prefilled again elsewhere (vLLM's ``kv_load_failure_policy="recompute"``)."""
        link.set_up(up)
        if not up:
            link.down_epoch += 1
            schedule(self.env, self.scenario.transfer_timeout_s, PRIO_ENVIRONMENT, self._on_link_timeout,
                     (link, link.down_epoch))

    def _on_link_timeout(self, event) -> None:
        link, epoch = event._value
        if link.up or link.down_epoch != epoch or self.done:
            return
        for kind, job, job_epoch in link.abort_flows():
            if job_epoch == job.epoch:
                self._reroute(job)
        # flows started on the dead link since then go at the next check
        schedule(self.env, self.scenario.transfer_timeout_s, PRIO_ENVIRONMENT, self._on_link_timeout, event._value)

    def recover_instance(self, cluster: int, index: int) -> None:
        """Recover a failed instance."""
        self.clusters[cluster].recover_instance(index)
        self._log_prefill_counts()

    def _on_provision_tick(self, event) -> None:
        if self.done:
            return
        targets = self.provisioner.provision(self)
        if targets:
            for cluster, n in sorted(targets.items()):
                self.set_prefill_count(cluster, n)
        schedule(self.env, self.provisioner.interval_s, PRIO_CONTROL, self._on_provision_tick)

    def _on_gauge_tick(self, event) -> None:
        if self.done:
            return
        now = self.env._now
        for c in self.clusters:
            self.gauges.append((
                now, c.index, c.queued_prefill_requests(), len(c.decode_queue),
                sum(i.mem_used_bytes for i in c.instances), sum(len(i.members) for i in c.instances),
            ))
        schedule(self.env, self.gauge_interval_s, PRIO_CONTROL, self._on_gauge_tick)

    def _log_prefill_counts(self) -> None:
        now = self.env._now
        for c in self.pd_clusters:
            self.prefill_counts_log.append((now, c, self.clusters[c].prefill_count()))
