"""``round-robin``: cycle over every prefill instance the request may use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.base import PolicyBase, candidate_prefill_clusters
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class RoundRobinRouter(PolicyBase):
    """The n-th request goes to the (n mod k)-th of the k prefill instances (home PD
    cluster's and every PrfaaS cluster's, in cluster then instance order) accepting work."""

    name = "round-robin"

    def __init__(self) -> None:
        self._counter = 0

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        slots = [
            (c, inst.index)
            for c in candidate_prefill_clusters(view, req)
            for inst in view.clusters[c].instances
            if inst.accepts_prefill
        ]
        if not slots:
            return RouteDecision(prefill_cluster=view.home_cluster(req))
        c, i = slots[self._counter % len(slots)]
        self._counter += 1
        return RouteDecision(prefill_cluster=c, prefill_instance=i)
