"""The one place policies are registered: name -> factory ``(scenario, **params) -> policy``.

A new policy is one module plus one line here. Factories take the loaded scenario (for
defaults such as the scenario's threshold) and the spec's keyword parameters.
"""

from __future__ import annotations

from typing import Any, Callable

from prfaas_gym.policies.adaptive import AdaptiveRouter
from prfaas_gym.policies.conductor import ConductorRouter
from prfaas_gym.policies.least_loaded import LeastLoadedRouter
from prfaas_gym.policies.local_only import LocalOnlyRouter
from prfaas_gym.policies.naive_heterogeneous import NaiveHeterogeneousRouter
from prfaas_gym.policies.paper_imbalance import PaperImbalanceProvisioner
from prfaas_gym.policies.queue_autoscaler import QueueAutoscaler
from prfaas_gym.policies.random_router import RandomRouter
from prfaas_gym.policies.round_robin import RoundRobinRouter
from prfaas_gym.policies.threshold import make_threshold

RouterFactory = Callable[..., Any]
ProvisionerFactory = Callable[..., Any]


def _plain(cls: type) -> RouterFactory:
    """A factory for a class whose constructor needs no scenario."""

    def factory(scenario: Any, **params: Any) -> Any:
        return cls(**params)

    factory.__doc__ = cls.__doc__
    factory.policy_class = cls  # type: ignore[attr-defined]
    return factory


def _static(scenario: Any, **params: Any) -> None:
    """``static``: no provisioner at all (the simulator keeps the scenario's split)."""
    if params:
        raise ValueError(f"static provisioner takes no parameters, got {sorted(params)}")
    return None


ROUTERS: dict[str, RouterFactory] = {
    "local-only": _plain(LocalOnlyRouter),
    "naive-heterogeneous": _plain(NaiveHeterogeneousRouter),
    "prfaas-threshold": make_threshold,
    "prfaas-adaptive": AdaptiveRouter.from_scenario,
    "mooncake-conductor": ConductorRouter.from_scenario,
    "least-loaded": _plain(LeastLoadedRouter),
    "round-robin": _plain(RoundRobinRouter),
    "random": _plain(RandomRouter),
}
"""Router name -> factory ``(scenario, **params) -> Router``."""

PROVISIONERS: dict[str, ProvisionerFactory] = {
    "static": _static,
    "paper-imbalance": PaperImbalanceProvisioner.from_scenario,
    "queue-autoscaler": QueueAutoscaler.from_scenario,
}
"""Provisioner name -> factory ``(scenario, **params) -> Provisioner | None``."""
