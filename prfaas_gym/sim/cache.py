"""Per-cluster prefix-cache pool: block-level KV plus linear-state snapshots on a block grid.

Blocks are 512-token units named by the workload's prefix hash ids (equal ids mean equal
prefixes, and ids are prefix-chained, so the last block id of a prefix names the prefix).
Hybrid models (linear attention / sliding window) also need the layer state at exactly the
cached length; those snapshots are kept at block boundaries under the key ``~block_id`` and
share the pool's byte capacity and its LRU order with the blocks. A prompt stores a snapshot
after its last full block, and with ``snapshot_interval_blocks = N > 0`` also after every
N-th block (vLLM's hybrid prefix caching "align" mode keeps one per block, N = 1). The usable
hit is the longest prefix that has both its blocks and, for hybrid models, a snapshot at its
end.

Eviction is LRU, tail-first within a prefix chain: a chain is (re)inserted or touched from
its last key to its first, so its head is the most recently used and its tail leaves first
(vLLM ``KVCacheManager.free`` frees "in reverse order so that the tail blocks are evicted
first"; SGLang's radix tree evicts LRU leaves).

Blocks of prefills queued or running in the cluster can be registered as *pending*
(:meth:`add_pending`): they are not hits (nothing is computed yet), but routers may look
them up (``match_blocks(..., include_pending=True)``), as Dynamo's KV router counts a
worker's active blocks from routing onwards.
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
        snapshot_interval_blocks: int = 0,
    ) -> None:
        if block_bytes <= 0:
            raise ValueError("block_bytes must be positive")
        if snapshot_interval_blocks < 0:
            raise ValueError("snapshot_interval_blocks must be >= 0")
        self.capacity_bytes = capacity_bytes
        self.block_bytes = block_bytes
        self.state_bytes = state_bytes
        self.needs_state = needs_state
        self.snapshot_interval = snapshot_interval_blocks
        self.used_bytes = 0.0
        self._lru: OrderedDict[int, None] = OrderedDict()  # key: block id, or ~block id for a snapshot
        self._pending: dict[int, int] = {}  # key -> prefills in flight that will store it
        self.hits_tokens = 0
        self.lookups_tokens = 0
        self.evicted_blocks = 0

    def __len__(self) -> int:
        return len(self._lru)

    def match_blocks(self, hash_ids: Sequence[int] | None, include_pending: bool = False) -> int:
        """Number of leading blocks usable as a cached prefix (no LRU update).

        ``include_pending``: also count keys that prefills in flight will store (a router's
        view of the cache it expects when the request is scheduled)."""
        if not hash_ids:
            return 0
        lru = self._lru
        pending = self._pending if include_pending else None
        n = 0
        for h in hash_ids:
            if h not in lru and (pending is None or h not in pending):
                break
            n += 1
        if not self.needs_state:
            return n
        while n > 0:
            key = ~hash_ids[n - 1]
            if key in lru or (pending is not None and key in pending):
                break
            n -= 1
        return n

    def snapshot_positions(self, n_keys: int, full_blocks: int, final: bool = True) -> list[int]:
        """Block indices after which a prompt stores a state snapshot (hybrid models): the
        interval grid up to ``full_blocks`` and, when ``final``, its last full block."""
        if not self.needs_state or full_blocks <= 0 or n_keys <= 0:
            return []
        full_blocks = min(full_blocks, n_keys)
        n = self.snapshot_interval
        out = list(range(n - 1, full_blocks, n)) if n > 0 else []
        if final and (not out or out[-1] != full_blocks - 1):
            out.append(full_blocks - 1)
        return out

    def chain_keys(self, hash_ids: Sequence[int], full_blocks: int, final: bool = True) -> list[int]:
        """Keys a prompt stores: its blocks and its snapshots (``~block id``)."""
        keys = list(hash_ids)
        return keys + [~keys[i] for i in self.snapshot_positions(len(keys), full_blocks, final)]

    def touch(self, hash_ids: Sequence[int], n_blocks: int) -> None:
        """Mark the first ``n_blocks`` (and the snapshot at their end) as recently used, tail first."""
        lru = self._lru
        if self.needs_state and n_blocks > 0:
            key = ~hash_ids[n_blocks - 1]
            if key in lru:
                lru.move_to_end(key)
        for h in reversed(hash_ids[:n_blocks]):
            if h in lru:
                lru.move_to_end(h)

    def insert(self, hash_ids: Sequence[int] | None, full_blocks: int, final: bool = True) -> None:
        """Store a prompt's blocks and snapshots (see :meth:`snapshot_positions`), tail first so
        that the head ends most recently used; then evict to capacity. ``hash_ids`` may be a
        leading part of the prompt (the blocks computed so far, ``final=False``)."""
        if not hash_ids or self.capacity_bytes <= 0:
            return
        lru = self._lru
        snaps = self.snapshot_positions(len(hash_ids), full_blocks, final)
        added = 0.0
        for i in range(len(hash_ids) - 1, -1, -1):
            if snaps and snaps[-1] == i:
                snaps.pop()
                key = ~hash_ids[i]
                if key in lru:
                    lru.move_to_end(key)
                else:
                    lru[key] = None
                    added += self.state_bytes
            key = hash_ids[i]
            if key in lru:
                lru.move_to_end(key)
            else:
                lru[key] = None
                added += self.block_bytes
        self.used_bytes += added
        self._evict()

    def add_pending(self, keys: Sequence[int]) -> None:
        """Register keys a prefill in flight will store (see :meth:`match_blocks`)."""
        pending = self._pending
        for k in keys:
            pending[k] = pending.get(k, 0) + 1

    def remove_pending(self, keys: Sequence[int]) -> None:
        """Undo :meth:`add_pending` (the prefill ended or was lost)."""
        pending = self._pending
        for k in keys:
            c = pending[k] - 1
            if c:
                pending[k] = c
            else:
                del pending[k]

    @property
    def pending_keys(self) -> int:
        """Distinct keys registered by prefills in flight."""
        return len(self._pending)

    def _evict(self) -> None:
        lru = self._lru
        while self.used_bytes > self.capacity_bytes and lru:
            key, _ = lru.popitem(last=False)
            if key < 0:
                self.used_bytes -= self.state_bytes
            else:
                self.used_bytes -= self.block_bytes
                self.evicted_blocks += 1

