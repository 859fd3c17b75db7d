"""``naive-heterogeneous``: every prefill on the PrfaaS cluster, no length routing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.base import PolicyBase
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class NaiveHeterogeneousRouter(PolicyBase):
    """All prefill on a PrfaaS cluster (the one with the longest cached prefix; ties: the
    first), decode at home. Without a PrfaaS cluster (or none accepting work) it falls back
    to the home PD cluster."""

    name = "naive-heterogeneous"

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        prfaas = [c for c in view.prfaas_clusters if view.clusters[c].has_prefill_capacity]
        if not prfaas:
            return RouteDecision(prefill_cluster=view.home_cluster(req))
        best = max(prfaas, key=lambda c: (view.cached_tokens(c, req), -c))
        return RouteDecision(prefill_cluster=best)
