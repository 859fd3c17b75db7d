"""Driving the simulator from an env: a completion log and time advancement helpers.

:class:`EnvSimulator` is a :class:`~prfaas_gym.sim.Simulator` that also appends every request
that ends (completed or rejected) to ``ended``, in the order they end, so rewards can be paid
for exactly the requests that finished since the last step in O(1) per request. (The
simulator exposes only counters; see docs/envs.md "What the simulator could add".)
"""

from __future__ import annotations

import math

from prfaas_gym.sim import Simulator


class EnvSimulator(Simulator):
    """A Simulator that logs ended requests in ``self.ended`` (completion or rejection order)."""

    def __init__(self, *args, **kwargs) -> None:
        self.ended: list = []
        super().__init__(*args, **kwargs)

    def _complete(self, job) -> None:  # noqa: D401 - hook
        super()._complete(job)
        self.ended.append(job.req)

    def _reject(self, req, reason: str) -> None:
        super()._reject(req, reason)
        self.ended.append(req)


def advance_to(sim: Simulator, time_s: float) -> None:
    """Process every event up to ``time_s`` (internal routing), or until the run is done.

    Unlike a bare ``sim.run_until(time_s)``, the clock is not pushed to ``time_s`` when the
    workload drains earlier, so summaries keep the true makespan.
    """
    last_arrival = sim.requests[-1].arrival_s if sim.requests else 0.0
    if time_s < last_arrival:
        sim.run_until(time_s)  # cannot finish before the last arrival
        return
    if sim.env.now < last_arrival:
        sim.run_until(last_arrival)
    drain(sim, time_s)


def drain(sim: Simulator, until_s: float = math.inf) -> None:
    """Run until every request has ended (or ``until_s``), leaving the clock at the last event."""
    env = sim.env
    while not sim.done:
        t = env.peek()
        if t > until_s:
            sim.run_until(until_s)
            return
        sim.run_until(t)
