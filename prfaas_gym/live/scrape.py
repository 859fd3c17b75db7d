"""Periodic scrapes of every worker's ``/metrics`` into a :class:`~prfaas_gym.live.state.LiveState`.

Like a Prometheus scrape (or Dynamo's metrics publisher interval), load is read every
``interval_s``: between scrapes the router relies on its own accounting. A failed scrape
(connection refused, timeout, a page without the needed names) marks the worker closed
until a scrape succeeds again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prfaas_gym.live.metrics import parse_engine_metrics
from prfaas_gym.live.state import LiveState


async def scrape_once(state: LiveState, client: Any, timeout_s: float = 1.0) -> int:
    """Scrape every worker once, concurrently; returns how many answered."""
    flavour = state.topology.metrics

    async def one(w) -> bool:
        try:
            r = await client.get(f"{w.url}/metrics", timeout=timeout_s)
            r.raise_for_status()
            state.observe(w.name, parse_engine_metrics(r.text, flavour, state.clock()))
            return True
        except Exception:  # any failure closes the worker until it answers again
            state.observe(w.name, None)
            return False

    return sum(await asyncio.gather(*(one(w) for w in state.workers)))


async def scrape_forever(state: LiveState, client: Any, interval_s: float = 0.5) -> None:
    """Scrape every ``interval_s`` (after a first wait of ``interval_s``) until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        await scrape_once(state, client, timeout_s=max(1.0, interval_s))
