"""Frozen snapshots of cluster state: the only input of the observation encoders.

The envs build a :class:`ClusterSnapshot` (and, for routing, a :class:`RequestFeatures`)
from a live :class:`~prfaas_gym.sim.Simulator` with a :class:`SnapshotReader`; an exported
router builds the same two immutable records (``NamedTuple`` s) from live metrics and
calls the same encoder (:func:`prfaas_gym.env.observation.encode_routing_obs`), so the
encoder never needs a simulator. Everything in them is plain numbers and sequences (SI units: seconds, tokens,
fractions).

Candidate *slots* (:class:`Slot`) are the fixed routing targets of ``prfaas/Routing-v1``,
laid out once per scenario by :func:`build_slots`:

1. one slot per PrfaaS (prefill-only) cluster; its instance is picked by the cluster's
   least-predicted-wait rule;
2. per PD cluster, one slot per instance if the cluster has at most ``max_instance_slots``
   instances (an instance in the decode role, draining, switching or failed is a masked slot),
   otherwise one cluster-level slot (least-wait instance);
3. for every ordered pair of clusters (X, Y), X != Y, that both hold a prefix cache and are
   connected (same datacenter or a link): one "prefill at X after pulling Y's cached
   prefix" slot (cluster level at X);
4. ``reject`` (last).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from prfaas_gym.sim.instance import PREFILL, UP

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request

_INF = math.inf

SLOT_CLUSTER = "cluster"
SLOT_INSTANCE = "instance"
SLOT_PULL = "pull"
SLOT_REJECT = "reject"

DEFAULT_MAX_INSTANCE_SLOTS = 16


@dataclass(frozen=True, slots=True)
class Slot:
    """One routing target.

    Attributes:
        kind: ``"cluster"``, ``"instance"``, ``"pull"`` or ``"reject"``.
        cluster: index of the prefill cluster (``-1`` for reject).
        instance: instance index for ``"instance"`` slots, else ``None``.
        pull_from: source cluster of the prefix pull for ``"pull"`` slots, else ``None``.
        label: human-readable name, e.g. ``"pd/3"``, ``"prfaas"``, ``"pd<-prfaas"``.
    """

    kind: str
    cluster: int
    instance: int | None = None
    pull_from: int | None = None
    label: str = ""


def build_slots(sim: "Simulator", max_instance_slots: int = DEFAULT_MAX_INSTANCE_SLOTS,
                pull_slots: bool = True) -> tuple[Slot, ...]:
    """The fixed slot layout of a scenario (see the module docstring); reject is last."""
    slots: list[Slot] = []
    for c in sim.clusters:
        if c.is_prfaas:
            slots.append(Slot(SLOT_CLUSTER, c.index, label=c.name))
    for c in sim.clusters:
        if c.is_prfaas:
            continue
        if len(c.instances) <= max_instance_slots:
            slots += [Slot(SLOT_INSTANCE, c.index, i, label=f"{c.name}/{i}") for i in range(len(c.instances))]
        else:
            slots.append(Slot(SLOT_CLUSTER, c.index, label=c.name))
    if pull_slots:
        cached = [c for c in sim.clusters if c.cache is not None]
        for dst in cached:
            for src in cached:
                if src.index != dst.index and sim.connected(src.index, dst.index):
                    slots.append(Slot(SLOT_PULL, dst.index, None, src.index, label=f"{dst.name}<-{src.name}"))
    slots.append(Slot(SLOT_REJECT, -1, label="reject"))
    return tuple(slots)


class ClusterSnapshot(NamedTuple):
    """Cluster state at one instant (request-independent). Tuples are indexed by slot
    (reject excluded), cluster or link, in the simulator's order.

    An immutable record (a ``NamedTuple``: cheaper to build than a frozen dataclass, which
    matters at 20K+ snapshots per second). Sequences are tuples or lists (the envs pass
    lists for speed; treat them as read-only).

    Attributes:
        time_s: simulated (or wall) time of the snapshot.
        ttft_slo_s, tpot_slo_s: the scenario's SLOs.
        slot_open: 1.0 if the slot accepts a request now (prefill role, up, queue not full).
        slot_queue: requests queued or prefilling at the slot (cluster slots: whole cluster).
        slot_wait_s: predicted wait before a new request starts prefill there (``inf`` if none).
        cluster_prefill_frac: instances up in the prefill role / all instances.
        cluster_decode_mem_frac: KV memory used / capacity over decode instances (0 if none).
        cluster_decode_batch_frac: sequences decoding / (decode instances x max batch).
        cluster_decode_queue: requests whose KV arrived, waiting for decode admission.
        link_bw_frac: usable bandwidth (available, capped, 0 when down) / nominal.
        link_util: aggregate flow rate / nominal.
        link_flows: concurrent transfers on the link.
    """

    time_s: float
    ttft_slo_s: float
    tpot_slo_s: float
    slot_open: Sequence[float]
    slot_queue: Sequence[int]
    slot_wait_s: Sequence[float]
    cluster_prefill_frac: Sequence[float]
    cluster_decode_mem_frac: Sequence[float]
    cluster_decode_batch_frac: Sequence[float]
    cluster_decode_queue: Sequence[int]
    link_bw_frac: Sequence[float]
    link_util: Sequence[float]
    link_flows: Sequence[int]


class RequestFeatures(NamedTuple):
    """The request being routed.

    Attributes:
        input_tokens: prompt length.
        output_tokens: tokens to generate (0 when unknown, e.g. in a live router).
        cached_tokens: usable cached prefix per cluster (tokens).
        slot_service_s: predicted prefill compute time of the uncached part at each slot,
            plus the predicted pull time for pull slots (seconds; reject excluded).
        home_cluster: index of the PD cluster where the request decodes (-1: unknown).
    """

    input_tokens: int
    output_tokens: int
    cached_tokens: Sequence[int]
    slot_service_s: Sequence[float]
    home_cluster: int = -1


class SnapshotReader:
    """Reads :class:`ClusterSnapshot` s from one live simulator, fast.

    Built once per simulator (it keeps references to its clusters, instances and links,
    which never change identity during a run); :meth:`read` uses public attributes only.
    ``oracle_output_len``: :meth:`request` reports the request's true output length (an
    oracle feature no live router has); otherwise 0, the encoding of "unknown".
    """

    def __init__(self, sim: "Simulator", slots: tuple[Slot, ...], oracle_output_len: bool = False) -> None:
        self.sim = sim
        self.oracle_output_len = bool(oracle_output_len)
        self.env = sim.env
        self.clusters = list(sim.clusters)
        self.links = list(sim.links)
        self.ttft_slo_s = sim.scenario.ttft_slo_s
        self.tpot_slo_s = sim.scenario.tpot_slo_s
        # per slot: (cluster index, instance index or -1 for the cluster's best instance)
        self.slot_refs = [
            (s.cluster, s.instance if s.kind == SLOT_INSTANCE else -1) for s in slots if s.kind != SLOT_REJECT
        ]
        self.slot_cluster = [ci for ci, _ in self.slot_refs]
        self.per_instance = [any(ci == c.index and ii >= 0 for ci, ii in self.slot_refs) for c in self.clusters]
        self.pull_slots = [
            (k, s.cluster, s.pull_from) for k, s in enumerate(slots) if s.kind == SLOT_PULL
        ]
        self.stms = [c.stm for c in self.clusters]
        self.has_cache = any(c.cache is not None for c in self.clusters)
        self.no_cache = (0,) * len(self.clusters)
        # slot_reach[h][k]: slot k's prefill cluster can ship KV to decode cluster h
        self.slot_reach = [[sim.connected(ci, h) for ci in self.slot_cluster] for h in range(len(self.clusters))]
        self.inv_n = [1.0 / len(c.instances) if c.instances else 0.0 for c in self.clusters]
        self.plan = [
            (c.index, c, tuple(c.instances), self.per_instance[c.index], c.max_queue_requests, self.inv_n[c.index])
            for c in self.clusters
        ]
        # slot assembly: runs of consecutive instance slots of one cluster, or one cluster-level slot
        recipe: list[tuple[bool, int]] = []
        for ci, ii in self.slot_refs:
            if ii < 0:
                recipe.append((False, ci))
            elif ii == 0:
                recipe.append((True, ci))
        self.recipe = recipe
        self.inv_nominal = [1.0 / l.nominal_bytes_s if l.nominal_bytes_s > 0 else 0.0 for l in self.links]

    def read(self) -> ClusterSnapshot:
        """The snapshot now."""
        now = self.env.now
        inf = _INF
        up, prefill = UP, PREFILL
        n_c = len(self.clusters)
        best_w = [inf] * n_c
        best_open = [0.0] * n_c
        cq = [0] * n_c
        pf = [0.0] * n_c
        mem = [0.0] * n_c
        batch = [0.0] * n_c
        dq = [0] * n_c
        detail_w: list = [None] * n_c
        detail_o: list = [None] * n_c
        detail_q: list = [None] * n_c
        for ci, c, instances, detail, maxq, inv_n in self.plan:
            bw, bo = inf, 0.0
            n_pf = nd = nb = qsum = 0
            mu = mc = 0.0
            if detail:
                w_c: list[float] = []
                o_c: list[float] = []
                q_c: list[int] = []
                detail_w[ci], detail_o[ci], detail_q[ci] = w_c, o_c, q_c
                for inst in instances:
                    q = len(inst.queue)
                    qr = q + len(inst.running)
                    qsum += qr
                    q_c.append(qr)
                    if inst.state == up:
                        if inst.role == prefill:
                            n_pf += 1
                            w = inst.busy_until_s - now
                            w = (w if w > 0.0 else 0.0) + inst.queued_work_s
                            op = 1.0 if q < maxq else 0.0
                            if w < bw:
                                bw, bo = w, op
                            w_c.append(w)
                            o_c.append(op)
                            continue
                        nd += 1
                        mu += inst.mem_used()
                        mc += inst.mem_capacity_bytes
                        nb += len(inst.members)
                    w_c.append(inf)
                    o_c.append(0.0)
            else:
                for inst in instances:
                    q = len(inst.queue)
                    qsum += q + len(inst.running)
                    if inst.state == up:
                        if inst.role == prefill:
                            n_pf += 1
                            w = inst.busy_until_s - now
                            w = (w if w > 0.0 else 0.0) + inst.queued_work_s
                            if w < bw:
                                bw, bo = w, (1.0 if q < maxq else 0.0)
                            continue
                        nd += 1
                        mu += inst.mem_used()
                        mc += inst.mem_capacity_bytes
                        nb += len(inst.members)
            best_w[ci] = bw
            best_open[ci] = bo
            cq[ci] = qsum
            pf[ci] = n_pf * inv_n
            if mc > 0.0:
                mem[ci] = mu / mc
            if nd:
                batch[ci] = nb / (nd * c.decode_max_batch)
            dq[ci] = len(c.decode_queue)
        s_open: list[float] = []
        s_queue: list[int] = []
        s_wait: list[float] = []
        for detail, ci in self.recipe:
            if detail:
                s_open += detail_o[ci]
                s_queue += detail_q[ci]
                s_wait += detail_w[ci]
            else:
                s_open.append(best_open[ci])
                s_queue.append(cq[ci])
                s_wait.append(best_w[ci])
        # one loop, not three comprehensions: scenarios have one or two links, and each
        # comprehension sets up a function frame (Python < 3.12)
        l_bw: list[float] = []
        l_util: list[float] = []
        l_flows: list[int] = []
        for l, k in zip(self.links, self.inv_nominal):
            l_bw.append(l.effective_bytes_s * k)
            l_util.append(l.utilisation)
            l_flows.append(l.active_flows)
        return ClusterSnapshot(
            now, self.ttft_slo_s, self.tpot_slo_s, s_open, s_queue, s_wait,
            pf, mem, batch, dq, l_bw, l_util, l_flows,
        )

    def request(self, req: "Request") -> RequestFeatures:
        """The :class:`RequestFeatures` of ``req`` now."""
        sim = self.sim
        inp = req.input_tokens
        if self.has_cache:
            cached = tuple([sim.cached_tokens(ci, req) for ci in range(len(self.clusters))])
        else:
            cached = self.no_cache
        svc_c: list[float] = []  # per cluster (a loop: a comprehension's setup costs more here)
        for stm, k in zip(self.stms, cached):
            svc_c.append(stm.prefill_s([(inp - k, k)]))
        svc = [svc_c[ci] for ci in self.slot_cluster]
        for k, dst, src in self.pull_slots:
            if cached[src] > cached[dst]:
                wait = self.clusters[dst].min_prefill_wait_s()
                if wait < math.inf:
                    # public API: predicted TTFT with the pull, minus the queueing part
                    svc[k] = sim.predicted_ttft_s(req, dst, src) - wait
        return RequestFeatures(inp, req.output_tokens if self.oracle_output_len else 0, cached, svc,
                               sim.home_cluster(req))


class SnapshotView:
    """What a deployed router sees of the cluster: metrics refreshed periodically and noisy.

    A live router reads load metrics from a periodically refreshed source (a Prometheus
    scrape, a metrics-publisher interval, KV events), not the engines' state at the
    instant of the decision. This models that as *sample and hold*: a snapshot is kept
    until it is ``staleness_s`` old and then replaced by a fresh one at the next read (so
    the age seen at a decision lies in [0, ``staleness_s``); reads happen at decisions only,
    so with sparse decisions the age is below the scrape period's). Each refresh multiplies
    the load metrics (queues, waits, decode memory/batch/queue, link bandwidth, utilisation
    and flows) by independent factors ``max(0, 1 + noise * N(0, 1))``; membership
    (``slot_open``) stays exact. Staleness 0 and noise 0 (the defaults) return the fresh
    snapshot itself at no cost. Deterministic for a given ``rng``.
    """

    def __init__(self, staleness_s: float = 0.0, noise: float = 0.0, rng: np.random.Generator | None = None) -> None:
        if not (0.0 <= staleness_s < _INF):
            raise ValueError(f"snapshot_staleness_s: must be finite and >= 0, got {staleness_s!r}")
        if not (0.0 <= noise < _INF):
            raise ValueError(f"snapshot_noise: must be finite and >= 0, got {noise!r}")
        self.staleness_s = float(staleness_s)
        self.noise = float(noise)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.active = self.staleness_s > 0.0 or self.noise > 0.0
        self._held: ClusterSnapshot | None = None
        self._held_t = -_INF

    def __call__(self, snap: ClusterSnapshot) -> ClusterSnapshot:
        """The router's view given the true snapshot ``snap`` now."""
        if not self.active:
            return snap
        if self._held is not None and snap.time_s - self._held_t < self.staleness_s:
            return self._held
        self._held_t = snap.time_s
        self._held = self._perturb(snap) if self.noise > 0.0 else snap
        return self._held

    def _perturb(self, snap: ClusterSnapshot) -> ClusterSnapshot:
        def jitter(seq: Sequence[float]) -> list[float]:
            k = 1.0 + self.noise * self.rng.standard_normal(len(seq))
            return [x if x == _INF else x * f if f > 0.0 else 0.0 for x, f in zip(seq, k.tolist())]

        return snap._replace(
            slot_queue=jitter(snap.slot_queue), slot_wait_s=jitter(snap.slot_wait_s),
            cluster_decode_mem_frac=jitter(snap.cluster_decode_mem_frac),
            cluster_decode_batch_frac=jitter(snap.cluster_decode_batch_frac),
            cluster_decode_queue=jitter(snap.cluster_decode_queue), link_bw_frac=jitter(snap.link_bw_frac),
            link_util=jitter(snap.link_util), link_flows=jitter(snap.link_flows),
        )


def take_snapshot(sim: "Simulator", slots: tuple[Slot, ...]) -> ClusterSnapshot:
    """Read a :class:`ClusterSnapshot` from a live simulator (public attributes only)."""
    return SnapshotReader(sim, slots).read()


def request_features(sim: "Simulator", req: "Request", slots: tuple[Slot, ...],
                     oracle_output_len: bool = False) -> RequestFeatures:
    """Read a :class:`RequestFeatures` for ``req`` from a live simulator."""
    return SnapshotReader(sim, slots, oracle_output_len).request(req)
