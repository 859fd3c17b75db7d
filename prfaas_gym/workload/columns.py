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
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    hash_ids: list[tuple[int, ...]] | None = None
    session_id: np.ndarray | None = None

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
        )

    def head(self, n: int) -> "Columns":
        """The first ``n`` rows."""
        return Columns(
            arrival_s=self.arrival_s[:n],
            input_tokens=self.input_tokens[:n],
            output_tokens=self.output_tokens[:n],
            hash_ids=None if self.hash_ids is None else self.hash_ids[:n],
            session_id=None if self.session_id is None else self.session_id[:n],
        )
