"""Per-cluster prefix-cache pool: block-level KV plus exact-length linear-state snapshots.

Blocks are 512-token units named by the workload's prefix hash ids (equal ids mean equal
prefixes, and ids are prefix-chained, so the last block id of a prefix names the prefix).
Hybrid models (linear attention / sliding window) also need the layer state at exactly the
cached length; those snapshots are kept at block boundaries under the key ``~block_id`` and
share the pool's byte capacity and its LRU order with the blocks. The usable hit is the
longest prefix that has both its blocks and, for hybrid models, a snapshot at its end.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence


class PrefixCache:
    """LRU pool of prefix blocks and state snapshots with a byte capacity."""

    def __init__(
        self,
        capacity_bytes: float,
        block_bytes: float,
        state_bytes: float,
        needs_state: bool,
    ) -> None:
        if block_bytes <= 0:
            raise ValueError("block_bytes must be positive")
        self.capacity_bytes = capacity_bytes
        self.block_bytes = block_bytes
        self.state_bytes = state_bytes
        self.needs_state = needs_state
        self.used_bytes = 0.0
        self._lru: OrderedDict[int, None] = OrderedDict()  # key: block id, or ~block id for a snapshot
        self.hits_tokens = 0
        self.lookups_tokens = 0

    def __len__(self) -> int:
        return len(self._lru)

    def match_blocks(self, hash_ids: Sequence[int] | None) -> int:
        """Number of leading blocks usable as a cached prefix (no LRU update)."""
        if not hash_ids:
            return 0
        lru = self._lru
        n = 0
        for h in hash_ids:
            if h not in lru:
                break
            n += 1
        if not self.needs_state:
            return n
        while n > 0 and ~hash_ids[n - 1] not in lru:
            n -= 1
        return n

    def touch(self, hash_ids: Sequence[int], n_blocks: int) -> None:
        """Mark the first ``n_blocks`` (and the snapshot at their end) as recently used."""
        lru = self._lru
        for h in hash_ids[:n_blocks]:
            if h in lru:
                lru.move_to_end(h)
        if self.needs_state and n_blocks > 0:
            key = ~hash_ids[n_blocks - 1]
            if key in lru:
                lru.move_to_end(key)

    def insert(self, hash_ids: Sequence[int] | None, full_blocks: int) -> None:
        """Store a request's blocks, and a state snapshot after its last full block."""
        if not hash_ids or self.capacity_bytes <= 0:
            return
        lru = self._lru
        for h in hash_ids:
            if h in lru:
                lru.move_to_end(h)
            else:
                lru[h] = None
                self.used_bytes += self.block_bytes
        if self.needs_state and full_blocks > 0:
            key = ~hash_ids[full_blocks - 1]
            if key in lru:
                lru.move_to_end(key)
            else:
                lru[key] = None
                self.used_bytes += self.state_bytes
        self._evict()

    def _evict(self) -> None:
        lru = self._lru
        while self.used_bytes > self.capacity_bytes and lru:
            key, _ = lru.popitem(last=False)
            self.used_bytes -= self.state_bytes if key < 0 else self.block_bytes
