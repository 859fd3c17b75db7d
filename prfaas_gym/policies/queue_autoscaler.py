"""``queue-autoscaler``: move PD instances toward whichever side has the longer backlog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.provisioning import IntervalProvisioner

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator


class QueueAutoscaler(IntervalProvisioner):
    """A reactive baseline: every ``interval_s``, if the local prefill backlog (predicted
    wait at the best PD-P instance) exceeds ``prefill_wait_high_s`` while no request waits
    for decode, convert one decode instance to prefill; if more than
    ``decode_waiting_high`` requests wait for a decode slot while the prefill wait is under
    ``prefill_wait_low_s``, convert one prefill instance to decode.
    """

    name = "queue-autoscaler"

    def __init__(self, interval_s: float = 60.0, *, prefill_wait_high_s: float = 5.0,
                 prefill_wait_low_s: float = 1.0, decode_waiting_high: int = 4) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s: must be > 0")
        self.interval_s = float(interval_s)
        self.prefill_wait_high_s = float(prefill_wait_high_s)
        self.prefill_wait_low_s = float(prefill_wait_low_s)
        self.decode_waiting_high = int(decode_waiting_high)

    def provision(self, view: "Simulator") -> dict[int, int] | None:
        targets: dict[int, int] = {}
        for c in view.pd_clusters:
            cl = view.clusters[c]
            wait = cl.min_prefill_wait_s()
            waiting = len(cl.decode_queue)
            cur = cl.prefill_count()
            if wait > self.prefill_wait_high_s and waiting == 0:
                targets[c] = cur + 1
            elif waiting > self.decode_waiting_high and wait < self.prefill_wait_low_s:
                targets[c] = cur - 1
        return targets or None
