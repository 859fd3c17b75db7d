"""The decision interfaces the simulator calls: Router (per request) and Provisioner (periodic).

Heuristics, learned policies and the Gymnasium envs all plug in here. The simulator passes
itself as the read-only ``view``; policies must not mutate it except through the methods
documented as control inputs (``Simulator.set_prefill_count``,
``Link.set_cap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where one request goes.

    Attributes:
        prefill_cluster: index into ``sim.clusters`` of the cluster that prefills.
        prefill_instance: index into that cluster's ``instances``; ``None`` lets the cluster
            pick its prefill instance with the lowest predicted wait.
        decode_cluster: PD cluster that decodes; ``None`` means the request's home cluster.
        pull_from: cluster whose cached prefix is copied to the prefill cluster first
            (over the inter-DC link, or RDMA inside a datacenter); ``None``: no pull.
        reject: refuse the request (counted as rejected with reason ``"policy"``).
    """

    prefill_cluster: int = 0
    prefill_instance: int | None = None
    decode_cluster: int | None = None
    pull_from: int | None = None
    reject: bool = False


REJECT = RouteDecision(reject=True)


@lru_cache(maxsize=None)
def prefill_at(cluster: int) -> RouteDecision:
    """``RouteDecision(prefill_cluster=cluster)``, built once per cluster (decisions are
    immutable; building one costs about as much as the rest of a simple routing rule)."""
    return RouteDecision(prefill_cluster=cluster)


@runtime_checkable
class Router(Protocol):
    """Per-request routing policy."""

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        """Decide where ``req`` is prefilled (and optionally decoded)."""
        ...


@runtime_checkable
class Provisioner(Protocol):
    """Long-timescale policy: how many instances of each PD cluster serve prefill.

    The simulator calls :meth:`provision` every ``interval_s``, first after one interval, or
    at ``first_tick_s`` when the provisioner has that attribute (optional)."""

    interval_s: float

    def provision(self, view: "Simulator") -> dict[int, int] | None:
        """Return ``{cluster index: target prefill instances}`` or ``None`` to keep the split."""
        ...


class ThresholdRouter:
    """The paper's length rule: uncached length above ``threshold_tokens`` goes to PrfaaS.

    The uncached length is judged against the home PD cluster's own prefix cache (the
    paper's bandwidth-scarce rule): if ``input - cached_in_pd <= t`` the local PD prefill
    instances serve it, otherwise the PrfaaS cluster (linked to the home cluster) with the
    longest cached prefix (ties: the first) does. Without one every request stays local.

    It is also the simulator's fallback, so it checks capacity: a PrfaaS cluster with no
    prefill instance up, or whose link to the home cluster is down, is not chosen; when none
    is left (or the home cluster has no prefill capacity either way) the request goes where
    prefill capacity remains, so losing PrfaaS means local prefill, not rejection.
    """

    name = "prfaas-threshold"

    def __init__(self, threshold_tokens: float = 19_400) -> None:
        if not threshold_tokens >= 0:  # also refuses NaN, which would offload everything
            raise ValueError(f"threshold_tokens must be >= 0, got {threshold_tokens!r}")
        self.threshold_tokens = float(threshold_tokens)

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        home = view.home_cluster(req)
        prfaas = view.prfaas_reaching[home]
        if not prfaas:
            return prefill_at(home)
        local_len = req.input_tokens - view.cached_tokens(home, req)
        local_ok = view.clusters[home].has_prefill_capacity
        if local_len <= self.threshold_tokens and local_ok:
            return prefill_at(home)
        best = prfaas[0] if len(prfaas) == 1 else max(prfaas, key=lambda c: (view.cached_tokens(c, req), -c))
        if _can_prefill(view, best, home):
            return prefill_at(best)
        usable = [c for c in prfaas if _can_prefill(view, c, home)]  # faults: only then
        if usable:
            return prefill_at(max(usable, key=lambda c: (view.cached_tokens(c, req), -c)))
        return prefill_at(home)


def _can_prefill(view: "Simulator", cluster: int, home: int) -> bool:
    """``cluster`` has a prefill instance up and its KV can reach ``home`` now."""
    link_up = getattr(view, "link_up", None)
    return view.clusters[cluster].has_prefill_capacity and (link_up is None or link_up(cluster, home))
