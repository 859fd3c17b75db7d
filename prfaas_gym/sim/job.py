"""Simulator-private state of one request in flight."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prfaas_gym.sim.cluster import Cluster
    from prfaas_gym.sim.instance import Instance
    from prfaas_gym.sim.link import Channel, Flow
    from prfaas_gym.workload.request import Request


class Job:
    """Bookkeeping for a request between routing and finish (kept out of ``Request``)."""

    __slots__ = (
        "req", "epoch", "new_tokens", "cached_tokens", "cached_blocks", "prefill_estimate_s",
        "prefill_cluster", "prefill_inst", "decode_cluster", "decode_inst", "transfer_bytes",
        "mem_bytes", "link", "flow_done", "prefill_done", "tail_s", "decode_steps", "join_step",
        "context_at_join", "est_new_tokens", "pulled_cached", "pending_keys", "done_tokens",
        "chunk_tokens", "flow", "generated", "recompute", "hold_bytes", "hold_inst", "reserved",
        "prod_ready", "prod_rate", "prod_t0",
    )

    def __init__(self, req: "Request") -> None:
        self.req = req
        self.epoch = 0  # bumped when the job is re-routed after a fault
        self.new_tokens = req.input_tokens
        self.cached_tokens = 0
        self.cached_blocks = 0
        self.prefill_estimate_s = 0.0
        self.prefill_cluster: Cluster | None = None
        self.prefill_inst: Instance | None = None
        self.decode_cluster: Cluster | None = None
        self.decode_inst: Instance | None = None
        self.transfer_bytes = 0.0
        self.mem_bytes = 0.0
        self.link: Channel | None = None  # the direction prefill -> decode, None inside a DC
        self.flow: Flow | None = None  # the KV flow on ``link``
        self.generated = 0  # decode steps done before a preemption
        self.recompute = False  # preempted: its KV must be recomputed before it resumes
        self.hold_bytes = 0.0  # KV held on the prefill instance until the transfer ends
        self.hold_inst: Instance | None = None
        self.reserved = False  # decode KV reserved (the transfer may start)
        # KV production for the transfer: prod_ready bytes at prod_t0, then prod_rate bytes/s
        self.prod_ready = 0.0
        self.prod_rate = 0.0
        self.prod_t0 = 0.0
        self.flow_done = False
        self.prefill_done = False
        self.tail_s = 0.0
        self.decode_steps = max(req.output_tokens - 1, 0)
        self.join_step = 0.0
        self.context_at_join = 0
        # prefix reuse (see Simulator._match_at_schedule): the routing-time estimate stays in
        # the queue's accounting; the schedule-time match sets cached/new tokens
        self.est_new_tokens = req.input_tokens
        self.pulled_cached = 0  # prompt tokens whose KV a prefix pull brought for this job
        self.pending_keys: list[int] | None = None  # keys registered as in flight in the cache
        # chunked prefill: new tokens computed so far and in the current step
        self.done_tokens = 0
        self.chunk_tokens = 0
