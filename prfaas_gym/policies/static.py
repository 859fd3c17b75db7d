"""``static``: the scenario's P/D split, never changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator


class StaticProvisioner:
    """Keeps every PD cluster's prefill/decode split (returns ``None`` at each tick)."""

    name = "static"

    def __init__(self, interval_s: float = 60.0) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s: must be > 0")
        self.interval_s = float(interval_s)

    def provision(self, view: "Simulator") -> dict[int, int] | None:
        return None
