"""Driving the simulator from an env: a log of the requests that ended.

:class:`EnvSimulator` is a :class:`~prfaas_gym.sim.Simulator` that also appends every request
that ends (completed or rejected) to ``ended``, in the order they end (through the
simulator's ``on_request_end`` hook), so rewards can be paid for exactly the requests that
finished since the last step in O(1) per request.
"""

from __future__ import annotations

from prfaas_gym.sim import Simulator


class EnvSimulator(Simulator):
    """A Simulator that logs ended requests in ``self.ended`` (completion or rejection order)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.ended: list = []
        self.on_request_end.append(self.ended.append)
