"""The step-time model protocol and perf errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


class PerfInputError(ValueError):
    """Bad perf input (CSV, spec, profile name); message is ``file:line: message`` or names the field."""


@runtime_checkable
class StepTimeModel(Protocol):
    """Execution time of one engine step on one instance (all its GPUs)."""

    def prefill_s(self, seqs: Sequence[tuple[int, int]]) -> float:
        """Seconds for one batched prefill step; ``seqs`` holds ``(new_tokens, cached_tokens)``."""
        ...

    def decode_s(self, batch: int, context_tokens: int) -> float:
        """Seconds for one decode step of ``batch`` sequences holding ``context_tokens`` KV in total."""
        ...
