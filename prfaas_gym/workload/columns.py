"""Column-wise workload data, the common currency of loaders, generators and scaling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class Columns:
    """Requests as parallel arrays (row ``i`` is one request), before `Request` objects exist.

    Attributes:
        arrival_s: arrival times, seconds (float64).
        input_tokens: prompt lengths (int64, >= 1).
        output_tokens: output lengths (int64, >= 1).
        hash_ids: per-request prefix block ids, or ``None`` for the whole workload.
        session_id: conversation ids (int64), or ``None`` (all -1).
        turn: turn index within the conversation (int64), or ``None`` (all 0).
        parent: row of the previous turn (int64, -1: none), or ``None`` (all -1).
        think_s: closed-loop think time after the parent ends (float64; ``nan``: open-loop),
            or ``None`` (all open-loop). Closed-loop rows have ``arrival_s = nan``.
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    hash_ids: list[tuple[int, ...]] | None = None
    session_id: np.ndarray | None = None
    turn: np.ndarray | None = None
    parent: np.ndarray | None = None
    think_s: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    def take(self, index: np.ndarray) -> "Columns":
        """The rows at ``index`` (an integer index array), in that order."""
        return Columns(
            arrival_s=self.arrival_s[index],
            input_tokens=self.input_tokens[index],
            output_tokens=self.output_tokens[index],
            hash_ids=None if self.hash_ids is None else [self.hash_ids[i] for i in index.tolist()],
            session_id=None if self.session_id is None else self.session_id[index],
            turn=None if self.turn is None else self.turn[index],
            parent=None if self.parent is None else _remap(self.parent, index),
            think_s=None if self.think_s is None else self.think_s[index],
        )

    def head(self, n: int) -> "Columns":
        """The first ``n`` rows."""
        return Columns(
            arrival_s=self.arrival_s[:n],
            input_tokens=self.input_tokens[:n],
            output_tokens=self.output_tokens[:n],
            hash_ids=None if self.hash_ids is None else self.hash_ids[:n],
            session_id=None if self.session_id is None else self.session_id[:n],
            turn=None if self.turn is None else self.turn[:n],
            parent=None if self.parent is None else np.where(self.parent[:n] < n, self.parent[:n], -1),
            think_s=None if self.think_s is None else self.think_s[:n],
        )


def _remap(parent: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Parent rows after taking rows ``index``: old row numbers -> new ones (-1 if dropped)."""
    new_of = np.full(parent.size, -1, dtype=np.int64)
    new_of[index] = np.arange(index.size)
    p = parent[index]
    return np.where(p >= 0, new_of[np.maximum(p, 0)], -1)
