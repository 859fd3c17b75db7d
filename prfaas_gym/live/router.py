"""In-process decisions: ``LiveRouter.decide(tokens)`` -> where to prefill and decode.

The policy is the bundle's (:meth:`~prfaas_gym.export.bundle.RouterBundle.decide`, numpy),
fed the snapshot and request records :class:`~prfaas_gym.live.state.LiveState` builds. The
decision names real workers: the prefill worker (an instance slot's own worker, or the
least-wait open prefill worker of a cluster slot), the decode worker in the home cluster,
and the cluster to pull a cached prefix from.

**Fail open.** When the policy raises, when the snapshot is older than the topology's
``max_snapshot_age_s``, or when the decision took longer than ``decision_timeout_ms``, the
router's own rule decides instead and the reason is counted in :attr:`LiveRouter.fallbacks`:
the open prefill worker with the least predicted wait + prefill time (Mooncake Conductor's
TTFT estimate without rejection). The Dynamo adapter replaces that rule with Dynamo's own
selection (:mod:`prfaas_gym.live.dynamo`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

from prfaas_gym.env.snapshot import ClusterSnapshot, RequestFeatures
from prfaas_gym.export.bundle import Decision, RouterBundle
from prfaas_gym.live.ledger import block_hashes
from prfaas_gym.live.state import LiveState
from prfaas_gym.live.topology import Topology, Worker

FALLBACK_ERROR, FALLBACK_STALE, FALLBACK_TIMEOUT = "error", "stale", "timeout"

Policy = Callable[[ClusterSnapshot, RequestFeatures], Decision]


@dataclass(frozen=True)
class LiveDecision:
    """One routing decision, with the workers it names.

    Attributes:
        decision: the policy's (or the fallback's) :class:`~prfaas_gym.export.bundle.Decision`.
        prefill: the worker to prefill on (``None`` when rejected).
        decode: the decode worker in the home cluster (``None`` when rejected).
        pull_from: cluster name to pull the cached prefix from first, or ``None``.
        fallback: ``None`` when the policy decided, else why the router's own rule did
            (``"error"``, ``"stale"``, ``"timeout"``).
        input_tokens: prompt tokens; ``cached_tokens``: usable prefix per cluster.
        service_s: predicted prefill time on the chosen worker (for the ledger).
        snapshot_age_s: age of the oldest scrape behind the snapshot.
        latency_s: time spent deciding (snapshot + features + policy).
    """

    decision: Decision
    prefill: Worker | None
    decode: Worker | None
    pull_from: str | None
    fallback: str | None
    input_tokens: int
    cached_tokens: tuple[int, ...]
    service_s: float
    snapshot_age_s: float
    latency_s: float

    @property
    def reject(self) -> bool:
        """The request is refused (HTTP 429 at the gateway)."""
        return self.decision.reject


class LiveRouter:
    """Decisions over a :class:`LiveState` (module docstring).

    ``policy``: a callable ``(snapshot, request) -> Decision``; default the bundle's own
    ``decide``. A remote ``prfaas-gym serve`` can stand in (:class:`RemotePolicy`).
    """

    def __init__(self, topology: Topology, bundle: RouterBundle, *, policy: Policy | None = None,
                 state: LiveState | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.topology = topology
        self.bundle = bundle
        self.state = state or LiveState(topology, bundle, clock=clock)
        self.clock = clock
        self.policy: Policy = policy or bundle.decide
        self.decisions = 0
        self.fallbacks: Counter[str] = Counter()
        self.last_error: str | None = None

    def hashes(self, tokens: Sequence[int]) -> list[int]:
        """Prefix block hashes of a prompt (the topology's block size)."""
        return block_hashes(tokens, self.topology.prefix_block_tokens)

    def decide(self, tokens: Sequence[int] | int, hashes: Sequence[int] | None = None) -> LiveDecision:
        """Route one prompt: ``tokens`` (ids, or just the count when ``hashes`` are given or
        the prompt's content is unknown)."""
        t0 = time.perf_counter()
        now = self.clock()
        n = tokens if isinstance(tokens, int) else len(tokens)
        if n < 1:
            raise ValueError("prompt: at least one token is needed")
        if hashes is None:
            hashes = [] if isinstance(tokens, int) else self.hashes(tokens)
        st = self.state
        req = st.request(n, hashes, now)
        age = st.age_s(now)
        fallback = None
        decision = None
        if age > self.topology.max_snapshot_age_s:
            fallback = FALLBACK_STALE
        else:
            try:
                decision = self.policy(st.snapshot(now), req)
            except Exception as exc:  # fail open: any policy failure -> the router's own rule
                fallback = FALLBACK_ERROR
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            else:
                if time.perf_counter() - t0 > self.topology.decision_timeout_s:
                    fallback, decision = FALLBACK_TIMEOUT, None
        if decision is None:
            decision = self.own_choice(req, now)
            self.fallbacks[fallback] += 1
        self.decisions += 1
        return self._resolve(decision, req, fallback, age, now, t0)

    def own_choice(self, req: RequestFeatures, now: float) -> Decision:
        """The router's own rule: least predicted wait + prefill over open prefill workers of
        clusters that can ship KV to the home cluster (never rejects)."""
        st = self.state
        best, best_t = None, math.inf
        for k, (c, w) in enumerate(st.slot_refs):
            if not self.bundle.slot_reach[req.home_cluster][k] or self.bundle.slots[k].pull_from is not None:
                continue
            if w is None:
                w, wait = st.best_prefill_worker(c, now)
            else:
                wait = st.ledger.wait_s(w.name, now) if st._open(w) else math.inf
            t = wait + req.slot_service_s[k]
            if w is not None and t < best_t:
                best, best_t = k, t
        if best is None:  # nothing open: the least-loaded prefill worker anyway (queue, not drop)
            best = next(k for k, (c, w) in enumerate(st.slot_refs)
                        if self.bundle.slot_reach[req.home_cluster][k] and (w is None or w.role == "prefill"))
        s = self.bundle.slots[best]
        return Decision(best, s.label, False, self.bundle.clusters[s.cluster], s.instance, None)

    def _resolve(self, d: Decision, req: RequestFeatures, fallback: str | None, age: float, now: float,
                 t0: float) -> LiveDecision:
        st = self.state
        if d.reject:
            return LiveDecision(d, None, None, None, fallback, req.input_tokens, tuple(req.cached_tokens),
                                0.0, age, time.perf_counter() - t0)
        c = self.bundle.clusters.index(d.prefill_cluster)
        w = st.by_cluster[c][d.prefill_instance] if d.prefill_instance is not None else st.best_prefill_worker(c, now)[0]
        if w is None:  # a cluster slot with nothing open (policy chose a masked slot): any prefill worker
            w = min(st.prefill_workers[c], key=lambda x: st.ledger.wait_s(x.name, now))
        decode = st.best_decode_worker(self.topology.home) or st.decode_workers[self.topology.home][0]
        return LiveDecision(d, w, decode, d.pull_from, fallback, req.input_tokens, tuple(req.cached_tokens),
                            req.slot_service_s[d.action], age, time.perf_counter() - t0)

    # ------------------------------------------------------------------ the gateway's hooks
    async def route(self, rid: object, tokens: Sequence[int], hashes: Sequence[int]) -> LiveDecision:
        """Decide for a request the gateway is about to send, and book its prefill. The Dynamo
        adapter overrides this (and the three hooks below) to book in Dynamo as well."""
        d = self.decide(len(tokens), hashes)
        if not d.reject:
            self.prefill_sent(rid, d)
        return d

    async def aprefill_done(self, rid: object, d: LiveDecision, hashes: Sequence[int], ok: bool = True) -> None:
        """:meth:`prefill_done` for the gateway."""
        self.prefill_done(rid, d, hashes, ok)

    async def adecode_started(self, rid: object, d: LiveDecision, hashes: Sequence[int]) -> None:
        """:meth:`decode_started` for the gateway."""
        self.decode_started(rid, d, hashes)

    async def afinished(self, rid: object, d: LiveDecision) -> None:
        """:meth:`finished` for the gateway."""
        self.finished(rid, d)

    # ------------------------------------------------------------------ bookkeeping
    def prefill_sent(self, rid: object, d: LiveDecision) -> None:
        """Book the prefill of a routed request (call right after :meth:`decide`)."""
        self.state.ledger.start_prefill(rid, d.prefill.name, d.service_s, self.clock())

    def prefill_done(self, rid: object, d: LiveDecision, hashes: Sequence[int], ok: bool = True) -> None:
        """The prefill ended: the prompt's blocks are cached at the prefill cluster, and a
        cross-datacenter KV transfer to the decode worker starts."""
        st = self.state
        st.ledger.end_prefill(rid, d.prefill.name, self.clock())
        if not ok:
            return
        if st.prefix[d.prefill.cluster] is not None:
            st.prefix[d.prefill.cluster].insert(hashes)
        link = st.link_index(d.prefill.cluster, d.decode.cluster)
        if link is not None:
            st.ledger.start_transfer(rid, link)
        st.ledger.start_decode(rid, d.decode.name)

    def decode_started(self, rid: object, d: LiveDecision, hashes: Sequence[int]) -> None:
        """The decode side has the KV (its first token came back): the transfer is over and
        the blocks are cached at the decode cluster too."""
        st = self.state
        st.ledger.end_transfer(rid)
        st.ledger.admit_decode(rid, d.decode.name)
        if st.prefix[d.decode.cluster] is not None:
            st.prefix[d.decode.cluster].insert(hashes)

    def finished(self, rid: object, d: LiveDecision) -> None:
        """The request ended (completed, failed or cancelled): release everything booked."""
        st = self.state
        if d.prefill is not None:
            st.ledger.end_prefill(rid, d.prefill.name, self.clock())
        st.ledger.end_transfer(rid)
        if d.decode is not None:
            st.ledger.end_decode(rid, d.decode.name)


class RemotePolicy:
    """The policy behind a ``prfaas-gym serve`` endpoint (``POST /route``), called
    synchronously with a short timeout; any failure raises, so :class:`LiveRouter` falls back."""

    def __init__(self, url: str, timeout_s: float = 0.05) -> None:
        import httpx

        self.url = url.rstrip("/") + "/route"
        self.client = httpx.Client(timeout=timeout_s)

    def __call__(self, snap: ClusterSnapshot, req: RequestFeatures) -> Decision:
        body = {"snapshot": {k: ([None if x == math.inf else x for x in v] if isinstance(v, (list, tuple)) else v)
                             for k, v in snap._asdict().items()},
                "request": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in req._asdict().items()}}
        r = self.client.post(self.url, json=body)
        r.raise_for_status()
        return Decision(**{k: v for k, v in r.json().items() if k in Decision.__dataclass_fields__})

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.client.close()
