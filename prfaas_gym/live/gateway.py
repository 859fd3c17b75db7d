"""``prfaas-gym gateway``: an OpenAI-compatible proxy that routes with a trained bundle.

``POST /v1/completions`` and ``POST /v1/chat/completions`` (``stream: true`` too) are routed
by :class:`~prfaas_gym.live.router.LiveRouter` and handed off in the shape of vLLM's P/D
proxy (``tests/v1/kv_connector/nixl_integration/toy_proxy_server.py``): the prefill worker
gets the request with ``max_tokens = 1`` (``max_completion_tokens`` for chat), ``stream``
off and ``kv_transfer_params = {"do_remote_decode": true, ...}``; the decode worker gets the
original request plus the ``kv_transfer_params`` the prefill returned, and its answer
(streamed or not) goes back to the client. A prefix pull adds ``prfaas_pull_from`` to the
prefill's ``kv_transfer_params`` (an extension vLLM ignores; the stubs model it).

A rejected request gets HTTP 429 (OpenAI's error shape). ``GET /metrics`` is Prometheus
text (``prometheus_client``): decisions by slot, fallbacks by reason, rejections, the
decision-latency histogram, requests in flight; ``GET /health`` answers while the process
runs and reports how many workers answered their last scrape. Each response carries
``x-prfaas-slot``, ``x-prfaas-prefill`` and ``x-prfaas-decode`` (where it was routed).

Runs on Starlette + httpx (connection-pooled) under uvicorn through
:class:`~prfaas_gym.export.server.Service` (read timeouts, connection cap). Engine load is
scraped every ``scrape_interval_s`` (:mod:`prfaas_gym.live.scrape`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from typing import Any

from prfaas_gym.live.router import LiveDecision, LiveRouter
from prfaas_gym.live.scrape import scrape_forever, scrape_once
from prfaas_gym.live.stub_engine import prompt_tokens

MAX_BODY_BYTES = 16 * 1024 * 1024  # prompts as token ids: ~7 bytes per token, 128K-token contexts fit
_PREFILL_DEFAULTS = {"do_remote_decode": True, "do_remote_prefill": False, "remote_engine_id": None,
                     "remote_block_ids": None, "remote_host": None, "remote_port": None}


def _error(status: int, message: str, kind: str) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status)


class Gateway:
    """The gateway's state: router, HTTP client pool, Prometheus registry, decision log."""

    def __init__(self, router: LiveRouter, *, scrape_interval_s: float = 0.5, upstream_timeout_s: float = 600.0,
                 log: logging.Logger | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.router = router
        self.scrape_interval_s = scrape_interval_s
        self.upstream_timeout_s = upstream_timeout_s
        self.log = log or logging.getLogger("prfaas_gym.gateway")
        self.registry = CollectorRegistry()
        self.m_decisions = Counter("prfaas_gateway_decisions", "Routing decisions by slot and source",
                                   ["slot", "source"], registry=self.registry)
        self.m_fallbacks = Counter("prfaas_gateway_fallbacks", "Decisions made by the router's own rule",
                                   ["reason"], registry=self.registry)
        self.m_rejects = Counter("prfaas_gateway_rejected", "Requests answered 429", registry=self.registry)
        self.m_errors = Counter("prfaas_gateway_upstream_errors", "Engine calls that failed", ["phase"],
                                registry=self.registry)
        self.m_latency = Histogram("prfaas_gateway_decision_seconds", "Time to decide (snapshot + policy)",
                                   buckets=(25e-6, 50e-6, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2),
                                   registry=self.registry)
        self.m_inflight = Gauge("prfaas_gateway_in_flight", "Requests being served", registry=self.registry)
        self.decision_log: deque[tuple[str, LiveDecision]] = deque(maxlen=100_000)
        self._ids = itertools.count()
        self._client: Any = None  # scrapes
        self._pools: dict[str, Any] = {}  # worker URL -> its own connection pool
        self._scraper: asyncio.Task | None = None

    async def _ensure_started(self) -> None:
        if self._client is not None:
            if not self._first_scrape.done():
                await asyncio.shield(self._first_scrape)
            return
        import httpx

        # created in the serving loop, on the first request (the Service runs without lifespan)
        start = getattr(self.router, "start", None)
        # one pool per worker: httpcore scans every connection of a pool for each request
        import ssl

        timeout = httpx.Timeout(self.upstream_timeout_s, connect=5.0)
        tls = ssl.create_default_context()  # one context: building one per pool costs ~0.1 s each
        for w in self.router.state.workers:
            self._pools[w.url] = httpx.AsyncClient(timeout=timeout, verify=tls, limits=httpx.Limits(
                max_connections=512, max_keepalive_connections=128))
        self._client = client = httpx.AsyncClient(timeout=timeout, verify=tls)
        self._first_scrape = asyncio.get_running_loop().create_task(self._start(client, start))
        self._scraper = asyncio.get_running_loop().create_task(
            scrape_forever(self.router.state, client, self.scrape_interval_s))
        await self._first_scrape

    async def _start(self, client: Any, start: Any) -> None:
        if start is not None:  # the Dynamo adapter registers its workers
            await start()
        await scrape_once(self.router.state, client)

    # ------------------------------------------------------------------ the proxy
    async def completions(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        await self._ensure_started()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(413, f"body: more than {MAX_BODY_BYTES} bytes", "invalid_request_error")
        data = await request.body()
        if len(data) > MAX_BODY_BYTES:
            return _error(413, f"body: more than {MAX_BODY_BYTES} bytes", "invalid_request_error")
        try:
            body = json.loads(data)
            if not isinstance(body, dict):
                raise ValueError("body: expected a JSON object")
            tokens = prompt_tokens(body)
        except (ValueError, RecursionError) as exc:
            return _error(400, str(exc).splitlines()[0][:200] or "bad request", "invalid_request_error")
        rid = request.headers.get("x-request-id") or f"gw-{next(self._ids)}"
        router = self.router
        hashes = router.hashes(tokens)
        d = await router.route(rid, tokens, hashes)
        self.m_latency.observe(d.latency_s)
        self.m_decisions.labels(d.decision.slot, "fallback" if d.fallback else "policy").inc()
        if d.fallback:
            self.m_fallbacks.labels(d.fallback).inc()
        self.decision_log.append((rid, d))
        if d.reject:
            self.m_rejects.inc()
            return _error(429, "rejected by the router: no capacity to meet the SLO", "rate_limit_exceeded")
        headers = {"x-prfaas-slot": d.decision.slot, "x-prfaas-prefill": d.prefill.name,
                   "x-prfaas-decode": d.decode.name, "x-request-id": rid}
        self.m_inflight.inc()
        done = False
        try:
            kv = await self._prefill(request.url.path, body, d, rid)
            if kv is None:
                await router.aprefill_done(rid, d, hashes, ok=False)
                return _error(502, f"prefill on {d.prefill.name} failed", "upstream_error")
            await router.aprefill_done(rid, d, hashes)
            dbody = dict(body)
            dbody["kv_transfer_params"] = kv
            url = f"{d.decode.url}{request.url.path}"
            if not body.get("stream"):
                r = await self._pools[d.decode.url].post(url, json=dbody, headers={"x-request-id": rid})
                await router.adecode_started(rid, d, hashes)
                if r.status_code >= 400:
                    self.m_errors.labels("decode").inc()
                return JSONResponse(r.json(), r.status_code, headers=headers)
            pool = self._pools[d.decode.url]
            upstream = await pool.send(pool.build_request("POST", url, json=dbody, headers={"x-request-id": rid}),
                                       stream=True)
            if upstream.status_code >= 400:
                self.m_errors.labels("decode").inc()
                payload = await upstream.aread()
                await upstream.aclose()
                return JSONResponse(json.loads(payload or b"{}"), upstream.status_code, headers=headers)
            done = True  # the stream's generator releases from here on

            async def relay():
                first = True
                try:
                    async for chunk in upstream.aiter_raw():
                        if first:
                            await router.adecode_started(rid, d, hashes)
                            first = False
                        yield chunk
                finally:
                    await upstream.aclose()
                    await router.afinished(rid, d)
                    self.m_inflight.dec()

            return StreamingResponse(relay(), media_type="text/event-stream", headers=headers)
        except Exception as exc:  # connection refused, timeout, malformed upstream answer
            self.m_errors.labels("proxy").inc()
            self.log.warning("%s: %s", rid, f"{type(exc).__name__}: {exc}"[:200])
            return _error(502, f"upstream failed: {type(exc).__name__}", "upstream_error")
        finally:
            if not done:
                await router.afinished(rid, d)
                self.m_inflight.dec()

    async def _prefill(self, path: str, body: dict, d: LiveDecision, rid: str) -> dict | None:
        """Send the prefill half; the ``kv_transfer_params`` for the decode, ``None`` on failure."""
        pbody = dict(body)  # as vLLM's toy_proxy_server.send_request_to_service
        pbody["max_tokens"] = 1
        if "max_completion_tokens" in pbody:
            pbody["max_completion_tokens"] = 1
        pbody["stream"] = False
        for k in ("stream_options", "min_tokens", "min_completion_tokens"):  # not for the prefill side
            pbody.pop(k, None)
        kv = dict(_PREFILL_DEFAULTS)
        if d.pull_from is not None:
            kv["prfaas_pull_from"] = d.pull_from
        pbody["kv_transfer_params"] = kv
        try:
            r = await self._pools[d.prefill.url].post(f"{d.prefill.url}{path}", json=pbody,
                                                      headers={"x-request-id": rid})
        except Exception as exc:
            self.m_errors.labels("prefill").inc()
            self.log.warning("%s: prefill on %s: %s", rid, d.prefill.name, type(exc).__name__)
            return None
        if r.status_code >= 400:
            self.m_errors.labels("prefill").inc()
            return None
        params = r.json().get("kv_transfer_params")
        return params if isinstance(params, dict) else {}

    # ------------------------------------------------------------------ the app
    def app(self) -> Any:
        """The ASGI app (Starlette)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def metrics(request):
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        async def health(request):
            await self._ensure_started()  # the first probe starts scraping (and the Dynamo registration)
            st = self.router.state
            up = sum(1 for v in st.healthy.values() if v)
            return JSONResponse({"status": "ok", "workers_up": up, "workers": len(st.healthy),
                                 "snapshot_age_s": min(st.age_s(), 1e9), "decisions": self.router.decisions,
                                 "fallbacks": dict(self.router.fallbacks)})

        async def info(request):
            b = self.router.bundle
            return JSONResponse({"bundle": b.name, "slots": b.slot_labels, "home": b.clusters[self.router.topology.home],
                                 "workers": [{"name": w.name, "url": w.url, "role": w.role} for w in self.router.state.workers]})

        return Starlette(routes=[Route("/v1/completions", self.completions, methods=["POST"]),
                                 Route("/v1/chat/completions", self.completions, methods=["POST"]),
                                 Route("/metrics", metrics), Route("/health", health), Route("/", info)])

    async def aclose(self) -> None:
        """Stop scraping and close the connection pool."""
        if self._scraper is not None:
            self._scraper.cancel()
        for c in [self._client, *self._pools.values()]:
            if c is not None:
                await c.aclose()
