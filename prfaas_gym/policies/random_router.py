"""``random``: a uniformly random prefill cluster, drawn from the simulator's policy stream."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.base import PolicyBase, candidate_prefill_clusters
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class RandomRouter(PolicyBase):
    """Home PD cluster or a PrfaaS cluster, uniformly at random (``view.policy_rng``, so a
    run is reproducible from the seed); the cluster picks its least-loaded instance."""

    name = "random"

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        cands = candidate_prefill_clusters(view, req)
        if not cands:
            return RouteDecision(prefill_cluster=view.home_cluster(req))
        return RouteDecision(prefill_cluster=cands[int(view.policy_rng.integers(len(cands)))])
