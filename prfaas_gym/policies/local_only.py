"""``local-only``: homogeneous PD, every request prefills on its home PD cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.base import PolicyBase
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class LocalOnlyRouter(PolicyBase):
    """Never offload: prefill and decode on the request's home PD cluster."""

    name = "local-only"

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        return RouteDecision(prefill_cluster=view.home_cluster(req))
