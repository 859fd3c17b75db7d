"""Causal multi-turn sessions: the simulator's second source of arrivals.

A closed-loop follow-up turn (``arrival_s`` is ``nan`` in the workload, ``think_s`` set) arrives
``think_s`` seconds after its parent turn *ended*; a rejected turn of a conversation is resent
after a backoff or abandons the conversation, as its `RejectPolicy` says. This mirrors vLLM's
multi-turn benchmark client (``benchmarks/multi_turn/benchmark_serving_multi_turn.py``,
``client_main``): it sends a conversation's next turn only once the previous answer is complete,
retries a failed turn with ``exponential_backoff_sleep`` up to ``--max-retries`` times and
otherwise drops the conversation.

The simulator calls :meth:`SessionClock.on_end` each time a request ends; the clock schedules
what follows. Think times and every other piece of content come from the workload, so the only
thing that depends on the policy is *when* turns arrive.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from prfaas_gym.sim.kernel import PRIO_ARRIVAL, schedule_at
from prfaas_gym.workload.request import Request
from prfaas_gym.workload.sessions import RejectPolicy

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator


class SessionClock:
    """Times closed-loop turns and retries of one simulation.

    Args:
        sim: the simulator (its ``requests`` are indexed by ``rid``).
        policy: what a client does after a rejection (retries apply to requests of a session).
    """

    def __init__(self, sim: "Simulator", policy: RejectPolicy) -> None:
        self.sim = sim
        self.policy = policy
        self.next_turn: dict[int, Request] = {}  # rid of a turn -> its closed-loop follow-up
        self.timed = 0  # closed-loop requests in the workload
        for r in sim.requests:
            if r.parent_rid >= 0 and math.isnan(r.arrival_s):
                self.next_turn[r.parent_rid] = r
                self.timed += 1
        self.retried = 0  # retry attempts created
        self.abandoned = 0  # turns never sent because their conversation was abandoned

    @staticmethod
    def needed(requests: list[Request], policy: RejectPolicy) -> bool:
        """Whether a workload needs a clock: closed-loop turns, or sessions that retry."""
        retry = policy.action == "retry" and policy.max_retries > 0
        return any(math.isnan(r.arrival_s) or (retry and r.session_id >= 0) for r in requests)

    def on_end(self, req: Request) -> None:
        """``req`` completed or was rejected: schedule its follow-up, a retry, or abandon."""
        nxt = self.next_turn.pop(req.rid, None)
        if not req.rejected:
            if nxt is not None:
                nxt.parent_rid = req.rid
                self._schedule(nxt, self.sim.env._now + nxt.think_s)
            return
        if req.reject_reason == "abandoned" or req.session_id < 0:
            return
        p = self.policy
        if p.action == "retry" and req.attempt < p.max_retries:
            retry = self.sim.add_request(req, attempt=req.attempt + 1)
            self.retried += 1
            if nxt is not None:
                self.next_turn[retry.rid] = nxt
            self._schedule(retry, self.sim.env._now + p.backoff_s_after(req.attempt))
            return
        while nxt is not None:  # the user leaves: later turns are never sent
            self.abandoned += 1
            self.sim.abandon(nxt)
            nxt = self.next_turn.pop(nxt.rid, None)

    def _schedule(self, req: Request, time_s: float) -> None:
        req.arrival_s = time_s
        schedule_at(self.sim.env, time_s, PRIO_ARRIVAL, self.sim._on_timed_arrival, req)
