"""``least-loaded``: prefill where the predicted queueing delay is smallest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.base import PolicyBase, candidate_prefill_clusters
from prfaas_gym.policies.decode_placement import DecodePlacement
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class LeastLoadedRouter(PolicyBase):
    """Among the home PD cluster and the PrfaaS clusters, the one whose best prefill
    instance has the lowest predicted wait (ties: lowest index). Ignores lengths, caches
    and bandwidth: a load-balancing baseline. Decode: home, or with
    ``decode_placement="least-loaded"`` the least-loaded region once home's decode slots are
    full (``policies.decode_placement``)."""

    name = "least-loaded"

    def __init__(self, decode_placement: str = "home", decode_spill_at: float = 1.0) -> None:
        self.placement = DecodePlacement(decode_placement, decode_spill_at)

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        cands = candidate_prefill_clusters(view, req)
        if not cands:
            return RouteDecision(prefill_cluster=view.home_cluster(req))
        best = min(cands, key=lambda c: (view.clusters[c].min_prefill_wait_s(), c))
        decode = self.placement.choose(req, view, best)
        self.placement.record(req, view, decode)
        return RouteDecision(prefill_cluster=best, decode_cluster=decode)
