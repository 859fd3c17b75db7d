"""Replaying a simulated trace through a live stack (the end-to-end test, the sim-to-live
check and ``benchmarks/live_decisions.py``).

:func:`trace_tokens` turns a :class:`~prfaas_gym.workload.Request` into token ids with the
same prefix structure: each 512-token prefix block id becomes a fixed pseudo-random block of
ids, so two prompts share a token prefix exactly when they share block ids (what the
simulator's prefix cache matches). :func:`replay` sends the requests to a gateway at their
arrival times (scaled by ``time_scale``) as streaming ``/v1/completions`` and records status,
routing headers and client TTFT (first streamed byte, rescaled to real seconds).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from prfaas_gym.workload.request import BLOCK_TOKENS, Request

VOCAB = 50_000


class TokenMaker:
    """Token ids for trace requests (module docstring); blocks are memoised by id."""

    def __init__(self) -> None:
        self._blocks: dict[int, list[int]] = {}

    def block(self, h: int) -> list[int]:
        b = self._blocks.get(h)
        if b is None:
            b = np.random.default_rng([h & 0xFFFFFFFF, h >> 32 & 0xFFFFFFFF]).integers(1, VOCAB, BLOCK_TOKENS).tolist()
            self._blocks[h] = b
        return b

    def tokens(self, req: Request) -> list[int]:
        """Token ids of ``req``'s prompt (``input_tokens`` of them)."""
        n = req.input_tokens
        if not req.hash_ids:
            return np.random.default_rng([req.rid, 7]).integers(1, VOCAB, n).tolist()
        out: list[int] = []
        for h in req.hash_ids:
            out += self.block(h)
            if len(out) >= n:
                break
        while len(out) < n:  # fewer block ids than the prompt needs: pad deterministically
            out += self.block(-len(out) - 1 - req.rid)
        return out[:n]


def trace_tokens(reqs: Sequence[Request]) -> list[list[int]]:
    """Token ids for every request (module docstring)."""
    maker = TokenMaker()
    return [maker.tokens(r) for r in reqs]


@dataclass
class ReplayResult:
    """One replayed request: ``status`` (HTTP), the routing headers, the client TTFT and
    end-to-end latency in real (unscaled) seconds (``nan`` when not served)."""

    rid: int
    status: int
    slot: str
    prefill: str
    decode: str
    ttft_s: float
    latency_s: float


async def replay(url: str, reqs: Sequence[Request], tokens: Sequence[Sequence[int]], *, time_scale: float,
                 max_tokens_cap: int | None = None, client: Any = None, on_sent: Any = None) -> list[ReplayResult]:
    """Send ``reqs`` to the gateway at ``url`` at their ``arrival_s`` x ``time_scale``
    (open loop, relative to the first) as streaming completions; results in ``reqs`` order.
    ``on_sent(i)`` is called as request ``i`` is sent (the tests kill the policy from it)."""
    import httpx

    own = client is None
    client = client or httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=10.0),
                                         limits=httpx.Limits(max_connections=2048))
    t_base = reqs[0].arrival_s if reqs else 0.0
    start = time.perf_counter()
    nan = float("nan")

    async def one(i: int, r: Request) -> ReplayResult:
        delay = (r.arrival_s - t_base) * time_scale - (time.perf_counter() - start)
        if delay > 0:
            await asyncio.sleep(delay)
        if on_sent is not None:
            on_sent(i)
        n_out = r.output_tokens if max_tokens_cap is None else min(r.output_tokens, max_tokens_cap)
        body = {"model": "m", "prompt": list(tokens[i]), "max_tokens": max(1, n_out), "stream": True,
                "ignore_eos": True}
        t0 = time.perf_counter()
        ttft = nan
        try:
            async with client.stream("POST", f"{url}/v1/completions", json=body,
                                     headers={"x-request-id": f"r{r.rid}"}) as resp:
                async for _ in resp.aiter_raw():
                    if ttft != ttft:
                        ttft = (time.perf_counter() - t0) / time_scale
                h = resp.headers
                status = resp.status_code
            lat = (time.perf_counter() - t0) / time_scale
            if status != 200:
                ttft = lat = nan
            return ReplayResult(r.rid, status, h.get("x-prfaas-slot", ""), h.get("x-prfaas-prefill", ""),
                                h.get("x-prfaas-decode", ""), ttft, lat)
        except httpx.HTTPError:
            return ReplayResult(r.rid, 0, "", "", "", nan, nan)

    try:
        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(reqs))))
    finally:
        if own:
            await client.aclose()
