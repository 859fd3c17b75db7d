"""The NVIDIA Dynamo adapter (``live`` extra: ``ai-dynamo-runtime==1.6.1``).

Two integration points of Dynamo 1.6.1, both used as they ship (no mock):

* **Worker selection** (:class:`DynamoRouter`): Dynamo's in-process selection core,
  ``dynamo.llm.SelectionService`` (Python bindings over the Rust ``dynamo_kv_router``; it runs
  on a CPU without NATS, etcd or a GPU). Every topology worker is registered with
  ``upsert_worker`` (endpoint, KV block size, ``topology_domains = {datacenter, cluster}``,
  ``kv_transfer_domain = datacenter``) in the routing group ``"<cluster>:<role>"``. The
  policy decides; Dynamo enforces and accounts: the chosen prefill worker is booked with
  ``create_reservation({selection_id, worker_id, token_ids})`` (so Dynamo's own load view,
  ``loads()`` / ``potential_loads``, includes the decision), ``prefill_complete`` moves it to
  decode load when the prefill returns and ``free_reservation`` releases it when the request
  ends; the decode worker is booked the same way. **Fail open**: when the policy fails, its
  snapshot is stale or it is too slow (:class:`~prfaas_gym.live.router.LiveRouter`), Dynamo
  chooses: ``select_and_reserve`` over the home cluster's prefill group (KV overlap + load,
  Dynamo's default cost function), and the fallback is counted.
* **Pool selection** (:class:`PrfaasPoolStrategy`): Dynamo's global router asks a strategy
  ``select_pool(isl, ttft_target_ms, priority) -> int`` for the prefill pool of each request
  (``dynamo/global_router/handler.py: handle_prefill``). This strategy answers with the
  learned policy's cluster (the PrfaaS-or-local decision) and falls back to the grid strategy
  the global router's config defines (``PrefillPoolSelectionStrategy``) on failure, staleness
  or a reject (a pool selector cannot reject). :func:`install_pool_strategy` puts it into a
  ``GlobalRouterConfig`` loaded by Dynamo's own ``load_config``.

Dynamo's selection service tracks cached blocks from KV events by default; the stub engines
publish none, so the adapter turns them off (``DYN_ROUTER_USE_KV_EVENTS=false``, unless set):
Dynamo then uses its approximate indexer, which assumes the blocks of routed requests are
cached (``router_assume_kv_reuse``), like this package's own prefix index.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import replace
from typing import Any, Sequence

from prfaas_gym.env.snapshot import SLOT_CLUSTER, SLOT_INSTANCE
from prfaas_gym.export.bundle import Decision, RouterBundle
from prfaas_gym.live.router import LiveDecision, LiveRouter
from prfaas_gym.live.topology import Topology, Worker

DYNAMO_VERSION = "1.6.1"
KV_BLOCK_SIZE = 16


def _require_dynamo() -> Any:
    os.environ.setdefault("DYN_LOG", "warn")  # Dynamo logs every selection at info level
    try:
        import dynamo.llm as dl
    except ModuleNotFoundError:
        raise ValueError(f"the Dynamo adapter needs ai-dynamo-runtime=={DYNAMO_VERSION} "
                         "(pip install 'prfaas-gym[live]')") from None
    return dl


def group(w: Worker, clusters: Sequence[str]) -> str:
    """Dynamo routing group of a worker: ``"<cluster>:<role>"``."""
    return f"{clusters[w.cluster]}:{w.role}"


class DynamoRouter(LiveRouter):
    """A :class:`LiveRouter` whose decisions are booked in (and fallbacks made by) Dynamo's
    ``SelectionService`` (module docstring). Call :meth:`start` once inside the event loop."""

    def __init__(self, topology: Topology, bundle: RouterBundle, *, policy: Any = None, service: Any = None,
                 model_name: str = "prfaas", **kw: Any) -> None:
        super().__init__(topology, bundle, policy=policy, **kw)
        dl = _require_dynamo()
        os.environ.setdefault("DYN_ROUTER_USE_KV_EVENTS", "false")
        self.service = service if service is not None else dl.SelectionService(indexer_threads=1)
        self.model_name = model_name
        self.worker_id = {w.name: i + 1 for i, w in enumerate(topology.workers)}
        self.by_id = {i: w for w, i in ((w, self.worker_id[w.name]) for w in topology.workers)}
        self.dynamo_errors: Counter[str] = Counter()
        self.fallback_group = self._fallback_group()

    def _fallback_group(self) -> str:
        home = self.topology.home
        ws = self.state.prefill_workers[home] or next(p for p in self.state.prefill_workers if p)
        return group(ws[0], self.topology.clusters)

    async def start(self) -> list[dict]:
        """Register every worker with Dynamo; returns Dynamo's catalog records."""
        out = []
        for w in self.topology.workers:
            out.append(await self.service.upsert_worker({
                "worker_id": self.worker_id[w.name], "model_name": self.model_name,
                "routing_group": group(w, self.topology.clusters), "endpoint": w.url,
                "block_size": KV_BLOCK_SIZE, "total_kv_blocks": 1 << 20,
                "topology_domains": {"datacenter": w.datacenter, "cluster": self.topology.clusters[w.cluster]},
                "kv_transfer_domain": w.datacenter}))
        return out

    def _book(self, w: Worker) -> dict:
        return {"worker_id": self.worker_id[w.name], "model_name": self.model_name,
                "routing_group": group(w, self.topology.clusters)}

    def _slot_of(self, w: Worker) -> int:
        for k, s in enumerate(self.bundle.slots):
            if s.cluster == w.cluster and (s.kind == SLOT_CLUSTER or (s.kind == SLOT_INSTANCE and s.instance == w.index)):
                return k
        raise ValueError(f"{w.name}: no slot of the bundle routes to it")

    async def route(self, rid: object, tokens: Sequence[int], hashes: Sequence[int]) -> LiveDecision:
        """Decide, then book in Dynamo (the policy's worker), or let Dynamo choose (fallback)."""
        d = self.decide(len(tokens), hashes)
        if d.reject:
            return d
        sid = str(rid)
        toks = list(tokens)
        if d.fallback is not None:
            try:
                r = await self.service.select_and_reserve({
                    "token_ids": toks, "model_name": self.model_name, "routing_group": self.fallback_group,
                    "selection_id": sid})
                w = self.by_id[int(r["worker_id"])]
                k = self._slot_of(w)
                s = self.bundle.slots[k]
                cached = d.cached_tokens[w.cluster]
                d = replace(d, prefill=w, pull_from=None,
                            decision=Decision(k, s.label, False, self.bundle.clusters[w.cluster],
                                              s.instance, None),
                            service_s=self.state.stms[w.cluster].prefill_s([(d.input_tokens - cached, cached)]))
            except Exception:  # Dynamo failed too: keep the router's own rule, count it
                self.dynamo_errors["select"] += 1
        else:
            try:
                r = await self.service.create_reservation({**self._book(d.prefill), "selection_id": sid,
                                                           "token_ids": toks})
                if r.get("endpoint") != d.prefill.url:
                    raise RuntimeError(f"Dynamo booked {r.get('endpoint')}, not {d.prefill.url}")
            except Exception:
                self.dynamo_errors["reserve"] += 1
        try:
            await self.service.create_reservation({**self._book(d.decode), "selection_id": sid + "/decode",
                                                   "token_ids": toks})
        except Exception:
            self.dynamo_errors["reserve"] += 1
        self.prefill_sent(rid, d)
        return d

    async def aprefill_done(self, rid: object, d: LiveDecision, hashes: Sequence[int], ok: bool = True) -> None:
        """The prefill returned: Dynamo moves the reservation's load from prefill to decode."""
        self.prefill_done(rid, d, hashes, ok)
        try:
            await self.service.prefill_complete(str(rid))
        except Exception:
            self.dynamo_errors["prefill_complete"] += 1

    async def afinished(self, rid: object, d: LiveDecision) -> None:
        """The request ended: free both reservations in Dynamo."""
        self.finished(rid, d)
        if d.reject:
            return
        for sid in (str(rid), f"{rid}/decode"):
            try:
                await self.service.free_reservation(sid)
            except Exception:
                self.dynamo_errors["free"] += 1

    def active_requests(self) -> int:
        """Requests Dynamo still counts as active on any worker (0 once all are freed)."""
        return sum(l["active_requests"] for g in self.service.loads(model_name=self.model_name) for l in g["loads"])


class PrfaasPoolStrategy:
    """The learned prefill-pool choice behind Dynamo's global-router strategy interface:
    ``select_pool(isl, ttft_target_ms=None, priority=None) -> int`` (module docstring).

    ``pools``: the bundle cluster served by each prefill pool, in the global router's
    ``prefill_pool_dynamo_namespaces`` order. ``fallback``: the strategy to use when the
    policy cannot answer (Dynamo's ``PrefillPoolSelectionStrategy`` from the config).
    """

    def __init__(self, router: LiveRouter, pools: Sequence[str], fallback: Any = None) -> None:
        unknown = [p for p in pools if p not in router.bundle.clusters]
        if unknown:
            raise ValueError(f"pools: {unknown[0]!r} is not a cluster of the bundle ({', '.join(router.bundle.clusters)})")
        self.router = router
        self.pools = list(pools)
        self.fallback = fallback
        self.fallbacks: Counter[str] = Counter()

    def select_pool(self, isl: int, ttft_target_ms: float | None = None, priority: int | None = None) -> int:
        """Pool index for a prompt of ``isl`` tokens (prefix unknown at this level)."""
        reason = None
        try:
            d = self.router.decide(max(1, int(isl)))
            reason = d.fallback or ("reject" if d.reject else None)
            if reason is None and d.decision.prefill_cluster in self.pools:
                return self.pools.index(d.decision.prefill_cluster)
            reason = reason or "no_pool"
        except Exception:
            reason = "error"
        self.fallbacks[reason] += 1
        if self.fallback is not None:
            return int(self.fallback.select_pool(isl=isl, ttft_target_ms=ttft_target_ms, priority=priority))
        home = self.router.bundle.clusters[self.router.topology.home]
        return self.pools.index(home) if home in self.pools else 0


def install_pool_strategy(config: Any, router: LiveRouter, pools: Sequence[str]) -> PrfaasPoolStrategy:
    """Replace the prefill-pool strategy of a Dynamo ``GlobalRouterConfig`` (from
    ``dynamo.global_router.pool_selection.load_config``) by the learned one, keeping the
    configured grid as its fallback."""
    n = getattr(config, "num_prefill_pools", None)
    if n is not None and n != len(pools):
        raise ValueError(f"pools: the global router has {n} prefill pools, {len(pools)} named")
    strategy = PrfaasPoolStrategy(router, pools, fallback=config.prefill_pool_selection_strategy)
    config.prefill_pool_selection_strategy = strategy
    return strategy


__all__ = ["DynamoRouter", "PrfaasPoolStrategy", "install_pool_strategy"]
