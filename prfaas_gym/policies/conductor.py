"""``mooncake-conductor``: Mooncake's (FAST'25) cache-aware, SLO-aware global scheduler.

For every cluster that may prefill the request (its home PD cluster and each PrfaaS
cluster) the Conductor predicts TTFT = queueing + prefill of the uncached part
(``view.predicted_ttft_s``), also with the longest prefix held elsewhere pulled over first.
A pull is chosen only when it beats the same cluster without a pull by more than
``balance_threshold_s``. The lowest predicted TTFT wins (ties: lowest cluster index).

Early rejection (Mooncake's HTTP 429): a request is refused when even the best predicted
TTFT exceeds ``reject_ttft_factor x`` the TTFT SLO, or when its decode cluster is predicted
to be overloaded: requests already bound for it (decoding, waiting for a decode slot, or
in prefill/transfer) exceed ``reject_decode_factor x`` its decode slots.

Decode placement (several PD regions): home by default; ``decode_placement="least-loaded"``
spills decode to the least-loaded region when home's decode slots are full
(``policies.decode_placement``); the decode-overload rejection then judges that region.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from prfaas_gym.policies.base import PolicyBase, candidate_prefill_clusters
from prfaas_gym.policies.decode_placement import DecodePlacement
from prfaas_gym.sim.router import REJECT, RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


def decode_slots(view: "Simulator", cluster: int) -> int:
    """Decode batch slots on the cluster's decode instances now."""
    c = view.clusters[cluster]
    return sum(c.decode_max_batch for inst in c.instances if inst.accepts_decode)


def decode_load(view: "Simulator", cluster: int) -> int:
    """Requests decoding or waiting to decode on ``cluster``, plus those still in prefill or
    KV transfer that will decode there (estimated from the simulator's in-flight count)."""
    c = view.clusters[cluster]
    decoding = sum(inst.batch_size for inst in c.instances)
    waiting = len(c.decode_queue)
    # in-flight requests not yet at any decode cluster (prefill or transfer), shared
    # evenly among PD clusters when there are several
    at_decode = sum(
        sum(i.batch_size for i in view.clusters[d].instances) + len(view.clusters[d].decode_queue)
        for d in view.pd_clusters
    )
    upstream = max(view.in_flight - at_decode, 0) / max(len(view.pd_clusters), 1)
    return int(decoding + waiting + upstream)


class ConductorRouter(PolicyBase):
    """Lowest predicted TTFT with prefix pulls, and early rejection (module docstring).

    Args:
        ttft_slo_s: TTFT SLO used for rejection (default: the scenario's).
        balance_threshold_s: a pull must save more than this to be chosen.
        reject_ttft_factor: reject when best predicted TTFT > factor x SLO (``inf``: never).
        reject_decode_factor: reject when predicted decode load > factor x decode slots.
        decode_placement, decode_spill_at: where decode runs with several PD clusters
            (``policies.decode_placement``: ``home``, or ``least-loaded`` past the spill load).
    """

    name = "mooncake-conductor"

    def __init__(
        self,
        ttft_slo_s: float = 10.0,
        *,
        balance_threshold_s: float = 0.1,
        reject_ttft_factor: float = 1.0,
        reject_decode_factor: float = 2.0,
        decode_placement: str = "home",
        decode_spill_at: float = 1.0,
    ) -> None:
        if not ttft_slo_s > 0:
            raise ValueError("ttft_slo_s: must be > 0")
        self.ttft_slo_s = float(ttft_slo_s)
        self.balance_threshold_s = float(balance_threshold_s)
        self.reject_ttft_factor = float(reject_ttft_factor)
        self.reject_decode_factor = float(reject_decode_factor)
        self.placement = DecodePlacement(decode_placement, decode_spill_at)

    @classmethod
    def from_scenario(cls, scenario: Any, **params: Any) -> "ConductorRouter":
        """Factory: the TTFT SLO defaults to the scenario's."""
        params.setdefault("ttft_slo_s", scenario.ttft_slo_s)
        return cls(**params)

    def best_option(self, req: "Request", view: "Simulator") -> tuple[float, int, int | None] | None:
        """``(predicted TTFT, prefill cluster, pull_from)`` of the best option, or ``None``."""
        home = view.home_cluster(req)
        cands = candidate_prefill_clusters(view, req)
        if not cands:
            return None
        every = sorted({home, *view.prfaas_clusters})
        best: tuple[float, int, int | None] | None = None
        for c in cands:
            own = view.cached_tokens(c, req)
            option = (view.predicted_ttft_s(req, c), c, None)
            donor = max((o for o in every if o != c), key=lambda o: (view.cached_tokens(o, req), -o), default=None)
            if donor is not None and view.cached_tokens(donor, req) > own:
                pulled = view.predicted_ttft_s(req, c, pull_from=donor)
                if pulled < option[0] - self.balance_threshold_s:
                    option = (pulled, c, donor)
            if best is None or option[0] < best[0]:
                best = option
        return best

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        home = view.home_cluster(req)
        best = self.best_option(req, view)
        if best is None:
            return RouteDecision(prefill_cluster=home)
        ttft, cluster, pull = best
        if ttft > self.reject_ttft_factor * self.ttft_slo_s:
            return REJECT
        decode = self.placement.choose(req, view, cluster)
        dc = home if decode is None else decode
        slots = decode_slots(view, dc)
        if not math.isinf(self.reject_decode_factor) and decode_load(view, dc) >= self.reject_decode_factor * max(slots, 1):
            return REJECT
        self.placement.record(req, view, decode)
        return RouteDecision(prefill_cluster=cluster, pull_from=pull, decode_cluster=decode)
