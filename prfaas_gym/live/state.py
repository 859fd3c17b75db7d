"""The snapshot builder: engine metrics + router-side accounting -> the bundle's two records.

:class:`LiveState` holds the latest scrape of every worker (:mod:`prfaas_gym.live.metrics`),
the router's :class:`~prfaas_gym.live.ledger.Ledger` and one
:class:`~prfaas_gym.live.ledger.PrefixIndex` per cluster, and builds the
:class:`~prfaas_gym.env.snapshot.ClusterSnapshot` and
:class:`~prfaas_gym.env.snapshot.RequestFeatures` that the simulator's ``SnapshotReader``
builds, field by field:

======================  =========================================================================
field                   live source
======================  =========================================================================
slot_open               prefill role, last scrape succeeded, queue below the scenario's limit
slot_queue              prefill work only, as the simulator's instance queue + running: for a
                        prefill worker max(scraped waiting + running, the router's prefills
                        in flight there); 0 for a decode worker
slot_wait_s             router's predicted wait (ledger), ``inf`` for a closed instance slot
cluster_prefill_frac    prefill workers / workers (the topology's roles)
cluster_decode_mem_frac capacity-weighted ``kv_cache_usage_perc`` of the decode workers
cluster_decode_batch_   max(scraped running, router's admitted decodes) / (decode workers x the
frac                    scenario's decode ``max_batch``); a request whose KV is still in transfer
                        is not in a batch yet, as in the simulator
cluster_decode_queue    scraped waiting on the decode workers
link_bw_frac            1.0 unless :meth:`LiveState.set_link_bandwidth` says otherwise (no engine
                        measures it; a probe can set it)
link_util, link_flows   the router's in-flight cross-datacenter transfers
cached_tokens           the router's prefix index (capped at input - 1, as vLLM does)
slot_service_s          the scenario's calibrated step-time model (+ predicted pull time)
output_tokens           0: unknown live (the shipped routers do not use it, REAL_ENGINES #10)
======================  =========================================================================

Cluster-level slots resolve to the cluster's open prefill worker with the least predicted
wait, as the simulator's ``pick_prefill_instance`` does. The snapshot's age is the age of
the oldest scrape it used (:meth:`LiveState.age_s`).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

from prfaas_gym.env.snapshot import SLOT_INSTANCE, SLOT_PULL, SLOT_REJECT, ClusterSnapshot, RequestFeatures
from prfaas_gym.export.bundle import RouterBundle
from prfaas_gym.live.ledger import Ledger, PrefixIndex
from prfaas_gym.live.metrics import EngineMetrics
from prfaas_gym.live.topology import DECODE, PREFILL, Topology, Worker, calibration_simulator

_INF = math.inf


class LiveState:
    """Cluster state as the router knows it (module docstring)."""

    def __init__(self, topology: Topology, bundle: RouterBundle, clock=time.monotonic) -> None:
        self.topology = topology
        self.bundle = bundle
        self.clock = clock
        sim = calibration_simulator(topology)
        self.stms = [c.stm for c in sim.clusters]
        self.kv_bytes_per_token = sim.kv_bytes_per_token
        self.state_bytes = sim.state_bytes
        self.max_queue = [c.max_queue_requests for c in sim.clusters]
        self.decode_max_batch = [c.decode_max_batch for c in sim.clusters]
        self.rdma_bytes_s = [sim._rdma_bytes_s(c) for c in sim.clusters]
        self.intra_dc_latency_s = topology.scenario.intra_dc_latency_s
        self.datacenters = [c.datacenter for c in sim.clusters]
        self.links = [(l.a, l.b) for l in sim.links]
        self.link_nominal = [l.nominal_bytes_s for l in sim.links]
        self.link_flow_cap = [l.flow_cap_bytes_s for l in sim.links]
        self.link_rtt = [l.rtt_s for l in sim.links]
        self.link_bw_frac = [1.0] * len(self.links)
        self.ttft_slo_s, self.tpot_slo_s = topology.scenario.ttft_slo_s, topology.scenario.tpot_slo_s
        block = topology.prefix_block_tokens
        self.prefix = [PrefixIndex(int(c.cache.capacity_bytes // (self.kv_bytes_per_token * block)))
                       if c.cache is not None else None for c in sim.clusters]
        self.workers = topology.workers
        self.ledger = Ledger([w.name for w in self.workers], len(self.links))
        self.metrics: dict[str, EngineMetrics | None] = {w.name: None for w in self.workers}
        self.healthy: dict[str, bool] = {w.name: True for w in self.workers}
        n_c = len(topology.clusters)
        self.by_cluster = [topology.cluster_workers(c) for c in range(n_c)]
        self.prefill_workers = [topology.cluster_workers(c, PREFILL) for c in range(n_c)]
        self.decode_workers = [topology.cluster_workers(c, DECODE) for c in range(n_c)]
        # per slot (reject excluded): (cluster, worker for instance slots or None)
        self.slot_refs: list[tuple[int, Worker | None]] = []
        for s in bundle.slots:
            if s.kind == SLOT_REJECT:
                continue
            w = self.by_cluster[s.cluster][s.instance] if s.kind == SLOT_INSTANCE else None
            self.slot_refs.append((s.cluster, w))
        self.pull_slots = [(k, s.cluster, s.pull_from) for k, s in enumerate(bundle.slots) if s.kind == SLOT_PULL]
        self.slot_cluster = [c for c, _ in self.slot_refs]

    # ------------------------------------------------------------------ inputs
    def observe(self, worker: str, metrics: EngineMetrics | None) -> None:
        """Record a scrape of ``worker`` (``None``: the scrape failed, the worker is closed)."""
        self.healthy[worker] = metrics is not None
        if metrics is not None:
            self.metrics[worker] = metrics

    def set_link_bandwidth(self, link: int, frac: float) -> None:
        """Usable bandwidth of ``link`` as a fraction of nominal (from a probe; default 1)."""
        self.link_bw_frac[link] = max(0.0, float(frac))

    def age_s(self, now: float | None = None) -> float:
        """Age of the oldest scrape in use (``inf`` before every worker was scraped once)."""
        now = self.clock() if now is None else now
        oldest = _INF
        for m in self.metrics.values():
            if m is None:
                return _INF
            oldest = min(oldest, m.time_s)
        return now - oldest

    # ------------------------------------------------------------------ helpers
    def link_index(self, a: int, b: int) -> int | None:
        """The link between clusters ``a`` and ``b`` (``None`` inside one datacenter)."""
        da, db = self.datacenters[a], self.datacenters[b]
        if da == db:
            return None
        for i, (x, y) in enumerate(self.links):
            if {x, y} == {da, db}:
                return i
        return None

    def _queue(self, w: Worker) -> float:
        if w.role != PREFILL:
            return float(self.ledger.prefills(w.name))  # its decodes are not prefill queue
        m = self.metrics[w.name]
        scraped = m.waiting + m.running if m is not None else 0.0
        return max(scraped, self.ledger.prefills(w.name))

    def _open(self, w: Worker) -> bool:
        if w.role != PREFILL or not self.healthy[w.name]:
            return False
        m = self.metrics[w.name]
        waiting = max(m.waiting if m is not None else 0.0, self.ledger.prefills(w.name) - 1)
        return waiting < self.max_queue[w.cluster]

    def best_prefill_worker(self, cluster: int, now: float) -> tuple[Worker | None, float]:
        """The open prefill worker of ``cluster`` with the least predicted wait, and the wait."""
        best, best_w = None, _INF
        for w in self.prefill_workers[cluster]:
            if self._open(w):
                wait = self.ledger.wait_s(w.name, now)
                if wait < best_w:
                    best, best_w = w, wait
        return best, best_w

    def best_decode_worker(self, cluster: int) -> Worker | None:
        """The decode worker of ``cluster`` with the fewest decodes in flight, then the lowest
        KV use (the simulator admits to the instance with the most free memory; the router's
        own count reacts before the next scrape does)."""
        best, key = None, None
        for w in self.decode_workers[cluster]:
            if not self.healthy[w.name]:
                continue
            m = self.metrics[w.name]
            k = (max(self.ledger.decodes(w.name), m.running if m is not None else 0.0),
                 m.kv_usage if m is not None else 0.0)
            if key is None or k < key:
                best, key = w, k
        return best

    # ------------------------------------------------------------------ the records
    def snapshot(self, now: float | None = None) -> ClusterSnapshot:
        """The :class:`ClusterSnapshot` now (module docstring)."""
        now = self.clock() if now is None else now
        n_c = len(self.by_cluster)
        best_w = [self.best_prefill_worker(c, now)[1] for c in range(n_c)]
        s_open, s_queue, s_wait = [], [], []
        for c, w in self.slot_refs:
            if w is None:
                s_open.append(1.0 if best_w[c] < _INF else 0.0)
                s_queue.append(sum(self._queue(x) for x in self.by_cluster[c]))
                s_wait.append(best_w[c])
            else:
                op = self._open(w)
                s_open.append(1.0 if op else 0.0)
                s_queue.append(self._queue(w))
                s_wait.append(self.ledger.wait_s(w.name, now) if w.role == PREFILL and self.healthy[w.name] else _INF)
        pf, mem, batch, dq = [], [], [], []
        for c in range(n_c):
            ws = self.by_cluster[c]
            pf.append(len(self.prefill_workers[c]) / len(ws) if ws else 0.0)
            dws = self.decode_workers[c]
            used = cap = running = waiting = 0.0
            for w in dws:
                m = self.metrics[w.name]
                if m is None:
                    running += self.ledger.decoding(w.name)
                    continue
                k = m.kv_capacity_tokens or 1.0
                used += m.kv_usage * k
                cap += k
                running += max(m.running, self.ledger.decoding(w.name))
                waiting += m.waiting
            mem.append(used / cap if cap > 0 else 0.0)
            batch.append(running / (len(dws) * self.decode_max_batch[c]) if dws else 0.0)
            dq.append(waiting)
        l_bw, l_util, l_flows = [], [], []
        for i, nominal in enumerate(self.link_nominal):
            eff = nominal * self.link_bw_frac[i]
            flows = self.ledger.link_flows[i]
            l_bw.append(self.link_bw_frac[i])
            l_util.append(min(eff, flows * self.link_flow_cap[i]) / nominal if nominal > 0 else 0.0)
            l_flows.append(flows)
        return ClusterSnapshot(now, self.ttft_slo_s, self.tpot_slo_s, s_open, s_queue, s_wait,
                               pf, mem, batch, dq, l_bw, l_util, l_flows)

    def cached_tokens(self, input_tokens: int, hashes: Sequence[int]) -> list[int]:
        """Usable cached prefix per cluster (router's prefix index, at most ``input - 1``)."""
        block = self.topology.prefix_block_tokens
        return [min(p.match(hashes) * block, input_tokens - 1) if p is not None and hashes else 0
                for p in self.prefix]

    def pull_time_s(self, tokens: int, src: int, dst: int) -> float:
        """Predicted time to pull ``tokens`` of cached prefix from cluster ``src`` to ``dst``
        (the simulator's ``_pull_time_estimate_s``: fair share of the link if added, + RTT)."""
        nbytes = self.kv_bytes_per_token * tokens + self.state_bytes
        link = self.link_index(src, dst)
        if link is None:
            return nbytes / self.rdma_bytes_s[dst] + self.intra_dc_latency_s
        eff = self.link_nominal[link] * self.link_bw_frac[link]
        rate = min(self.link_flow_cap[link], eff / (self.ledger.link_flows[link] + 1))
        return (nbytes / rate if rate > 0 else _INF) + self.link_rtt[link]

    def request(self, input_tokens: int, hashes: Sequence[int], now: float | None = None) -> RequestFeatures:
        """The :class:`RequestFeatures` of a prompt of ``input_tokens`` with prefix block
        hashes ``hashes`` (:func:`~prfaas_gym.live.ledger.block_hashes`)."""
        now = self.clock() if now is None else now
        cached = self.cached_tokens(input_tokens, hashes)
        svc_c = [stm.prefill_s([(input_tokens - k, k)]) for stm, k in zip(self.stms, cached)]
        svc = [svc_c[c] for c in self.slot_cluster]
        for k, dst, src in self.pull_slots:
            if cached[src] > cached[dst] and self.best_prefill_worker(dst, now)[1] < _INF:
                svc[k] = (self.pull_time_s(cached[src] - cached[dst], src, dst)
                          + self.stms[dst].prefill_s([(input_tokens - cached[src], cached[src])]))
        return RequestFeatures(input_tokens, 0, cached, svc, self.topology.home)
