"""CPU stub engines: OpenAI-compatible servers timed by the project's step-time model.

One :class:`StubWorld` stands in for the workers of a topology: each worker gets an ASGI app
(:meth:`StubWorld.app`) that serves

* ``POST /v1/completions`` and ``/v1/chat/completions`` (``stream`` too, as server-sent
  events ending in ``data: [DONE]``), in the vLLM P/D shape: a request with
  ``kv_transfer_params.do_remote_decode`` is a prefill (one token back, plus
  ``kv_transfer_params`` naming the engine and the blocks to read, as vLLM's NIXL connector
  returns from ``request_finished``); a request with ``kv_transfer_params.do_remote_prefill``
  is a decode that first "reads" the KV (transfer time over the scenario's link, fair share
  among the world's concurrent transfers, + RTT) and then generates ``max_tokens`` tokens;
  a plain request does both;
* ``GET /metrics`` with vLLM's names (``vllm:num_requests_waiting``, ``..._running``,
  ``vllm:kv_cache_usage_perc``, ``vllm:cache_config_info{block_size,num_gpu_blocks}``);
* ``GET /health``.

Timing follows the scenario cluster's step-time model, scaled by ``time_scale`` (0.01 runs
100x faster than real time): prefills run in steps batched as the simulator's
``Instance._start_batch`` does (FIFO, token budget, batch-size limit, no chunking), each step
``prefill_s([(new, cached), ...])`` with the cluster's prefix cache (one index per cluster, a
Mooncake-style pool) matched when a prompt leaves the queue; a decode joins the batch when a seat is free (the cluster's decode
``max_batch``) and takes ``output_tokens x decode_s(batch, context)`` with the batch and
context at admission (a simplification: real engines re-batch every step). Every response
carries ``x-prfaas-engine: <worker name>`` and each engine logs ``(x-request-id, phase)`` in
:attr:`StubEngine.served`, which the end-to-end test checks decisions against.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any, Sequence

from prfaas_gym.live.ledger import PrefixIndex, block_hashes
from prfaas_gym.live.topology import Topology, Worker, calibration_simulator

BLOCK_SIZE = 16  # vLLM's default KV block, for cache_config_info


def prompt_tokens(body: dict) -> list[int]:
    """Token ids of an OpenAI request body: ``prompt`` as ids as is; text (a prompt string or
    chat messages) as one pseudo-token per 4 UTF-8 bytes (no tokenizer here: a deployment
    sends ids or puts its tokenizer in front)."""
    p = body.get("prompt")
    if isinstance(p, list) and p and all(type(x) is int for x in p):
        return p
    if isinstance(p, list) and len(p) == 1 and isinstance(p[0], str):
        p = p[0]
    if isinstance(p, str):
        text = p
    elif isinstance(body.get("messages"), list):
        parts = []
        for m in body["messages"]:
            c = m.get("content") if isinstance(m, dict) else None
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, list):
                parts += [x.get("text", "") for x in c if isinstance(x, dict) and isinstance(x.get("text"), str)]
        text = "\n".join(parts)
    else:
        raise ValueError("prompt: expected token ids, a string, or chat messages")
    raw = text.encode()
    return [int.from_bytes(raw[i:i + 4], "little") for i in range(0, len(raw), 4)] or [0]


class StubEngine:
    """One stub worker (module docstring)."""

    def __init__(self, world: "StubWorld", worker: Worker) -> None:
        self.world, self.worker = world, worker
        self.name = worker.name
        self.stm = world.stms[worker.cluster]
        self.pending: deque = deque()  # (tokens, block hashes, future) waiting for a prefill step
        self._runner: asyncio.Task | None = None
        self.max_batch = world.prefill_batch[worker.cluster]
        self.max_batch_tokens = world.prefill_batch_tokens[worker.cluster]
        self.decode_waiting = 0
        self.prefilling = 0
        self.decoding = 0
        self.decode_ctx = 0
        self.decode_seats: asyncio.Semaphore | None = None
        self.served: deque[tuple[str, str]] = deque(maxlen=100_000)
        self.kv_capacity_tokens = world.kv_capacity_tokens[worker.cluster]

    # ------------------------------------------------------------------ phases
    async def prefill(self, tokens: Sequence[int], pull_from: str | None) -> int:
        """Queue, then prefill in a batch; returns the cached tokens it found. A prefix pull
        runs first (its blocks then count as cached here)."""
        w = self.world
        hashes = block_hashes(tokens, w.block_tokens)
        idx = w.prefix[self.worker.cluster]
        if pull_from is not None and pull_from in w.clusters and idx is not None:
            src = w.clusters.index(pull_from)
            other = w.prefix[src]
            here = min(idx.match(hashes) * w.block_tokens, len(tokens) - 1)
            got = min(other.match(hashes) * w.block_tokens, len(tokens) - 1) if other is not None else 0
            if got > here:
                await w.transfer(src, self.worker.cluster, got - here)
                idx.insert(hashes[:got // w.block_tokens])
        fut = asyncio.get_running_loop().create_future()
        self.pending.append((tokens, hashes, fut))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run_prefills())
        return await fut

    async def _run_prefills(self) -> None:
        """One prefill step after another, as the simulator's ``Instance._start_batch``
        (vLLM's scheduler without chunking): queued prompts in FIFO order under the token
        budget and the batch-size limit, each matched against the prefix cache as it leaves
        the queue; a prompt larger than the whole budget runs alone."""
        w = self.world
        idx = w.prefix[self.worker.cluster]
        while self.pending:
            batch, seqs, used = [], [], 0
            while self.pending and len(batch) < self.max_batch:
                tokens, hashes, fut = self.pending[0]
                cached = min(idx.match(hashes) * w.block_tokens, len(tokens) - 1) if idx is not None else 0
                new = len(tokens) - cached
                if batch and used + new > self.max_batch_tokens:
                    break
                self.pending.popleft()
                batch.append((hashes, fut, cached))
                seqs.append((new, cached))
                used += new
            self.prefilling = len(batch)
            try:
                await asyncio.sleep(self.stm.prefill_s(seqs) * w.time_scale)
            finally:
                self.prefilling = 0
            for hashes, fut, cached in batch:
                if idx is not None:
                    idx.insert(hashes)
                if not fut.done():
                    fut.set_result(cached)

    async def decode(self, n_tokens: int, context: int, remote: dict | None, tokens: Sequence[int]):
        """Read the KV (if prefilled elsewhere), wait for a decode seat, generate; yields the
        number of tokens produced so far, a few times along the way."""
        w = self.world
        if self.decode_seats is None:
            self.decode_seats = asyncio.Semaphore(w.decode_max_batch[self.worker.cluster])
        if remote is not None:
            src = remote.get("remote_cluster")
            if src in w.clusters:
                await w.transfer(w.clusters.index(src), self.worker.cluster, context)
        idx = w.prefix[self.worker.cluster]
        if idx is not None:
            idx.insert(block_hashes(tokens, w.block_tokens))
        self.decode_waiting += 1
        async with self.decode_seats:
            self.decode_waiting -= 1
            self.decoding += 1
            self.decode_ctx += context
            try:
                step = self.stm.decode_s(self.decoding, self.decode_ctx) * w.time_scale
                yield 1  # the first token: the KV is in place and the request is in the batch
                chunks = min(4, max(1, n_tokens - 1))
                done = 1
                for i in range(chunks):
                    k = (n_tokens - 1) * (i + 1) // chunks - (n_tokens - 1) * i // chunks
                    await asyncio.sleep(k * step)
                    done += k
                    if k:
                        yield done
            finally:
                self.decoding -= 1
                self.decode_ctx -= context

    def metrics_text(self) -> str:
        """The ``/metrics`` page (vLLM names)."""
        used = min(1.0, self.decode_ctx / self.kv_capacity_tokens) if self.kv_capacity_tokens else 0.0
        blocks = int(self.kv_capacity_tokens // BLOCK_SIZE)
        lbl = f'engine="0",model_name="{self.world.model}"'
        return (
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{{{lbl}}} {float(len(self.pending) + self.decode_waiting)}\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{{{lbl}}} {float(self.prefilling + self.decoding)}\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f"vllm:kv_cache_usage_perc{{{lbl}}} {used}\n"
            "# TYPE vllm:cache_config_info gauge\n"
            f'vllm:cache_config_info{{block_size="{BLOCK_SIZE}",engine="0",num_gpu_blocks="{blocks}"}} 1.0\n'
        )

    # ------------------------------------------------------------------ HTTP
    def app(self) -> Any:
        """The worker's ASGI app (Starlette)."""
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
        from starlette.routing import Route

        engine = self

        async def completions(request):
            chat = request.url.path.endswith("/chat/completions")
            try:
                body = json.loads(await request.body())
                tokens = prompt_tokens(body)
            except (ValueError, AttributeError) as exc:
                return JSONResponse({"error": {"message": str(exc), "type": "invalid_request_error"}}, 400)
            rid = request.headers.get("x-request-id", "-")
            kv = body.get("kv_transfer_params") or {}
            stream = bool(body.get("stream"))
            n_out = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
            headers = {"x-prfaas-engine": engine.name}
            if kv.get("do_remote_decode"):  # prefill only (vLLM P/D: max_tokens=1)
                engine.served.append((rid, "prefill"))
                cached = await engine.prefill(tokens, kv.get("prfaas_pull_from"))
                params = {"do_remote_prefill": True, "do_remote_decode": False,
                          "remote_engine_id": engine.name, "remote_block_ids": list(range((len(tokens) + BLOCK_SIZE - 1) // BLOCK_SIZE))[:4],
                          "remote_host": request.url.hostname, "remote_port": request.url.port,
                          "remote_cluster": engine.world.clusters[engine.worker.cluster], "cached_tokens": cached}
                return JSONResponse(_completion(chat, 1, len(tokens), params, cached), headers=headers)
            remote = kv if kv.get("do_remote_prefill") else None
            if remote is None:
                engine.served.append((rid, "prefill"))
                await engine.prefill(tokens, None)
            engine.served.append((rid, "decode"))
            gen = engine.decode(n_out, len(tokens), remote, tokens)
            if not stream:
                async for _ in gen:
                    pass
                return JSONResponse(_completion(chat, n_out, len(tokens), None, 0), headers=headers)

            async def events():
                sent = 0
                async for done in gen:
                    yield "data: " + json.dumps(_chunk(chat, done - sent)) + "\n\n"
                    sent = done
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

        async def metrics(request):
            return PlainTextResponse(engine.metrics_text(), media_type="text/plain; version=0.0.4")

        async def health(request):
            return JSONResponse({"status": "ok", "engine": engine.name})

        return Starlette(routes=[Route("/v1/completions", completions, methods=["POST"]),
                                 Route("/v1/chat/completions", completions, methods=["POST"]),
                                 Route("/metrics", metrics), Route("/health", health)])


def _completion(chat: bool, n_out: int, n_in: int, kv: dict | None, cached: int) -> dict:
    text = " tok" * n_out
    choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"} if chat
              else {"index": 0, "text": text, "finish_reason": "length"})
    out = {"id": "cmpl-stub", "object": "chat.completion" if chat else "text_completion", "model": "stub",
           "choices": [choice], "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                                          "total_tokens": n_in + n_out,
                                          "prompt_tokens_details": {"cached_tokens": cached}}}
    if kv is not None:
        out["kv_transfer_params"] = kv
    return out


def _chunk(chat: bool, n: int) -> dict:
    text = " tok" * n
    choice = {"index": 0, "delta": {"content": text}} if chat else {"index": 0, "text": text}
    return {"id": "cmpl-stub", "object": "chat.completion.chunk" if chat else "text_completion", "choices": [choice]}


class StubWorld:
    """The stub engines of one topology, sharing per-cluster prefix caches and the links."""

    def __init__(self, topology: Topology, time_scale: float = 0.01, model: str = "stub") -> None:
        if not 0 < time_scale <= 100:
            raise ValueError(f"time_scale: expected (0, 100], got {time_scale}")
        sim = calibration_simulator(topology)
        self.topology = topology
        self.time_scale = float(time_scale)
        self.model = model
        self.clusters = list(topology.clusters)
        self.stms = [c.stm for c in sim.clusters]
        self.decode_max_batch = [c.decode_max_batch for c in sim.clusters]
        self.prefill_batch = [c.max_prefill_batch for c in sim.clusters]
        self.prefill_batch_tokens = [c.max_batch_tokens for c in sim.clusters]
        self.block_tokens = topology.prefix_block_tokens
        self.kv_bytes_per_token = sim.kv_bytes_per_token
        self.state_bytes = sim.state_bytes
        self.kv_capacity_tokens = [max(0.0, c.decode_mem_capacity_bytes) / max(sim.kv_bytes_per_token, 1.0)
                                   for c in sim.clusters]
        self.datacenters = [c.datacenter for c in sim.clusters]
        self.links = {frozenset((l.a, l.b)): (l.nominal_bytes_s, l.flow_cap_bytes_s, l.rtt_s) for l in sim.links}
        self.rdma = [sim._rdma_bytes_s(c) for c in sim.clusters]
        self.intra_latency = topology.scenario.intra_dc_latency_s
        self.prefix = [PrefixIndex(int(c.cache.capacity_bytes // (sim.kv_bytes_per_token * self.block_tokens)))
                       if c.cache is not None else None for c in sim.clusters]
        self.flows: dict[frozenset, int] = {k: 0 for k in self.links}
        self.engines = {w.name: StubEngine(self, w) for w in topology.workers}

    async def transfer(self, src: int, dst: int, tokens: int) -> float:
        """Sleep for moving ``tokens`` of KV from cluster ``src`` to ``dst`` (fair share of the
        link among the transfers in flight when it starts, + RTT); returns the modelled time."""
        nbytes = self.kv_bytes_per_token * tokens + self.state_bytes
        key = frozenset((self.datacenters[src], self.datacenters[dst]))
        if len(key) == 1 or key not in self.links:
            t = nbytes / self.rdma[dst] + self.intra_latency
            await asyncio.sleep(t * self.time_scale)
            return t
        nominal, cap, rtt = self.links[key]
        self.flows[key] += 1
        try:
            t = nbytes / min(cap, nominal / self.flows[key]) + rtt
            await asyncio.sleep(t * self.time_scale)
            return t
        finally:
            self.flows[key] -= 1

    def serve_all(self) -> "StubServers":
        """Serve every worker's app on its URL's port (loopback hosts only), all on one event
        loop in one thread (one thread per engine would make them wait for each other's GIL
        turns); returns the handle to ``stop()``."""
        from urllib.parse import urlsplit

        from prfaas_gym.export.server import Service, ServiceLimits

        limits = ServiceLimits(read_timeout_s=60, idle_timeout_s=60)
        services = []
        try:
            for w in self.topology.workers:
                u = urlsplit(w.url)
                services.append(Service(self.engines[w.name].app(), u.hostname, u.port, limits))
        except BaseException:
            for svc in services:
                svc.sock.close()
            raise
        return StubServers(services).start()


class StubServers:
    """uvicorn servers sharing one event loop in a daemon thread."""

    def __init__(self, services: list[Any]) -> None:
        self.services = services
        self._thread: Any = None

    def start(self, timeout_s: float = 20.0) -> "StubServers":
        """Start serving; returns once every server accepts connections."""
        import threading

        async def main() -> None:
            await asyncio.gather(*(s.server.serve(sockets=[s.sock]) for s in self.services))

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), name="prfaas-stubs", daemon=True)
        self._thread.start()
        for _ in range(int(timeout_s / 0.01)):
            if all(s.server.started for s in self.services):
                return self
            threading.Event().wait(0.01)
        self.stop()
        raise RuntimeError("stub engines did not start")

    def stop(self) -> None:
        """Stop every server and wait for the thread."""
        for s in self.services:
            s.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        for s in self.services:
            s.sock.close()


def stub_topology_doc(bundle: Any, base_port: int, host: str = "127.0.0.1") -> dict:
    """A topology document with one local stub per instance of the bundle's scenario, in the
    scenario's roles (the live twin of the simulated cluster), on consecutive ports."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.scenario import load_scenario

    sc = load_scenario(bundle.manifest["source"]["env_kwargs"].get("scenario") or bundle.manifest["scenario"])
    sim = build_simulator(sc, n_requests=1)
    port = base_port
    clusters: dict[str, Any] = {}
    for c in sim.clusters:
        ws = []
        for inst in c.instances:
            ws.append({"url": f"http://{host}:{port}", "role": inst.role})
            port += 1
        clusters[c.name] = {"workers": ws}
    return {"clusters": clusters}
