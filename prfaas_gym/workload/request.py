"""The Request record: one prompt entering the simulated cluster.

The simulator annotates the same object with its timeline (``*_s`` fields, simulated
seconds, ``nan`` until the event happens) so that per-request records need no second table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

BLOCK_TOKENS = 512
"""Prefix-cache block size in tokens (the Mooncake traces' hash-id granularity)."""

NAN = math.nan


@dataclass(slots=True, eq=False)
class Request:
    """A request and, once simulated, its timeline.

    Workload fields (set by loaders and generators):
        rid: dense id, 0..N-1 in arrival order.
        arrival_s: arrival time in simulated seconds.
        input_tokens: prompt length.
        output_tokens: tokens to generate (>= 1).
        hash_ids: prefix block ids, one per 512-token block (ceil(input/512) of them), or
            ``None`` when the workload carries no prefix information.
        session_id: conversation id for shared-prefix generators (-1: none).
        turn: index of this turn in its conversation (0: the first turn, or no session).
        parent_rid: rid of the previous turn of the conversation (-1: none). In a closed-loop
            session the simulator sets it to the attempt that ended, when a turn was retried.
        think_s: closed-loop sessions: the user's think time, seconds; the turn arrives this
            long after its parent ended, and ``arrival_s`` is ``nan`` until then. ``nan`` for
            open-loop requests (whose ``arrival_s`` is fixed up front).
        attempt: 0 for a turn's first send; a retry after a rejection is a new request with the
            same content and ``attempt`` one higher.
    """

    rid: int
    arrival_s: float
    input_tokens: int
    output_tokens: int
    hash_ids: tuple[int, ...] | None = None
    session_id: int = -1
    turn: int = 0
    parent_rid: int = -1
    think_s: float = NAN
    attempt: int = 0
    # --- filled in by the simulator ---
    prefill_cluster: str = ""
    decode_cluster: str = ""
    cached_tokens: int = 0
    pulled_tokens: int = 0
    prefill_start_s: float = NAN
    prefill_end_s: float = NAN
    transfer_end_s: float = NAN
    decode_start_s: float = NAN
    finish_s: float = NAN
    rejected: bool = False
    reject_reason: str = ""
    retries: int = 0
    fault_affected: bool = False  # a fault re-routed it at least once (instance or link)
    preemptions: int = 0
    kv_bytes: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def ttft_s(self) -> float:
        """Time to first token: arrival to the end of prefill (the first token exists then)."""
        return self.prefill_end_s - self.arrival_s

    @property
    def ttft_client_s(self) -> float:
        """Client-visible time to first token: arrival to the moment the decode side streams
        the first token, i.e. when the request joins a decode batch after its KV arrived
        (SGLang PD: the prefill's first token travels with the KV and the decode server
        streams it; vLLM's P/D proxy discards the prefill's token, ``max_tokens=1``)."""
        return self.decode_start_s - self.arrival_s

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (nan for single-token outputs)."""
        if self.output_tokens <= 1:
            return NAN
        return (self.finish_s - self.prefill_end_s) / (self.output_tokens - 1)

    @property
    def uncached_tokens(self) -> int:
        """Tokens that prefill has to compute after prefix matching."""
        return self.input_tokens - self.cached_tokens
