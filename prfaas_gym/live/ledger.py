"""Router-side accounting: what no engine exports, counted by the router itself.

* **Predicted prefill wait** per worker: each prefill the router sends is booked with its
  predicted service time from the scenario's calibrated step-time model; a worker is busy
  until ``max(now, busy_until) + service`` (FIFO, one prefill at a time). When a prefill ends,
  the worker's remaining jobs are re-timed from that instant, so prediction errors do not
  accumulate. This is Mooncake Conductor's "queue + uncached prefill" estimate and what
  Dynamo's KV router books as ``potential_prefill_tokens`` (``SelectionService.potential_loads``).
* **In-flight cross-datacenter transfers** per link (prefill end -> decode start): the link
  features (flows, utilisation) come from this count, as the simulator's link does.
* **A prefix index** per cluster (:class:`PrefixIndex`): chained hashes of the prompt's
  full blocks, inserted where the prompt's KV now lives (the prefill cluster when the prefill
  ends, the decode cluster when the KV arrives), LRU-bounded by the cluster's prefix-cache
  size. Dynamo's approximate indexer (``use_kv_events: false``) and SGLang's router tree do
  the same from routed requests.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence


def block_hashes(tokens: Sequence[int], block_tokens: int) -> list[int]:
    """Chained hashes of the full ``block_tokens``-token blocks of a prompt (a block's hash
    depends on every token before it, as vLLM's and Dynamo's block hashes do)."""
    out: list[int] = []
    h = 0
    for start in range(0, len(tokens) - block_tokens + 1, block_tokens):
        h = hash((h, tuple(tokens[start:start + block_tokens])))
        out.append(h)
    return out


class PrefixIndex:
    """Cached prefix blocks of one cluster (chained block hashes), LRU-bounded."""

    def __init__(self, capacity_blocks: int) -> None:
        self.capacity_blocks = max(0, int(capacity_blocks))
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def match(self, hashes: Sequence[int]) -> int:
        """Leading blocks of ``hashes`` present (refreshes their recency)."""
        n = 0
        for h in hashes:
            if h not in self._blocks:
                break
            self._blocks.move_to_end(h)
            n += 1
        return n

    def insert(self, hashes: Sequence[int]) -> None:
        """Record the blocks as cached, evicting the least recently used beyond capacity."""
        if self.capacity_blocks == 0:
            return
        for h in hashes:
            self._blocks[h] = None
            self._blocks.move_to_end(h)
        while len(self._blocks) > self.capacity_blocks:
            self._blocks.popitem(last=False)

    def __len__(self) -> int:
        return len(self._blocks)


@dataclass
class _WorkerBook:
    busy_until: float = 0.0
    prefills: dict = field(default_factory=dict)  # rid -> predicted service (s), FIFO order
    decodes: set = field(default_factory=set)  # assigned (KV in transfer or decoding)
    decoding: set = field(default_factory=set)  # admitted: the first token came back


class Ledger:
    """In-flight work per worker and per link (module docstring). Not thread-safe: the
    gateway and the adapters call it from one event loop."""

    def __init__(self, worker_names: Sequence[str], n_links: int) -> None:
        self.books = {w: _WorkerBook() for w in worker_names}
        self.link_flows = [0] * n_links
        self._transfers: dict[object, int] = {}

    # -- prefill ------------------------------------------------------------------------
    def start_prefill(self, rid: object, worker: str, service_s: float, now: float) -> None:
        """Book a prefill sent to ``worker`` with its predicted service time."""
        b = self.books[worker]
        b.prefills[rid] = service_s
        b.busy_until = max(now, b.busy_until) + service_s

    def end_prefill(self, rid: object, worker: str, now: float) -> None:
        """The prefill ended (or failed): re-time the worker's remaining prefills from now."""
        b = self.books[worker]
        if b.prefills.pop(rid, None) is None:
            return
        b.busy_until = now + sum(b.prefills.values())

    def wait_s(self, worker: str, now: float) -> float:
        """Predicted wait before a new prefill starts on ``worker``."""
        w = self.books[worker].busy_until - now
        return w if w > 0.0 else 0.0

    def prefills(self, worker: str) -> int:
        """Prefills booked on ``worker`` and not ended."""
        return len(self.books[worker].prefills)

    # -- transfer and decode ------------------------------------------------------------
    def start_transfer(self, rid: object, link: int) -> None:
        """A cross-datacenter KV transfer on ``link`` began (prefill ended, decode not started)."""
        if rid not in self._transfers:
            self._transfers[rid] = link
            self.link_flows[link] += 1

    def end_transfer(self, rid: object) -> None:
        """The KV arrived (or the request ended); idempotent."""
        link = self._transfers.pop(rid, None)
        if link is not None:
            self.link_flows[link] -= 1

    def start_decode(self, rid: object, worker: str) -> None:
        """A decode was sent to ``worker``."""
        self.books[worker].decodes.add(rid)

    def admit_decode(self, rid: object, worker: str) -> None:
        """The decode worker has the KV and is generating (its first token came back)."""
        self.books[worker].decoding.add(rid)

    def end_decode(self, rid: object, worker: str) -> None:
        """The decode ended (or failed); idempotent."""
        self.books[worker].decodes.discard(rid)
        self.books[worker].decoding.discard(rid)

    def decoding(self, worker: str) -> int:
        """Decodes admitted on ``worker`` (in its running batch)."""
        return len(self.books[worker].decoding)

    def decodes(self, worker: str) -> int:
        """Decodes in flight on ``worker``."""
        return len(self.books[worker].decodes)

    def in_flight(self) -> int:
        """Prefills, transfers and decodes booked anywhere (0 when every request has ended)."""
        return (sum(len(b.prefills) + len(b.decodes) for b in self.books.values())
                + len(self._transfers))
