"""``prfaas-threshold``: the paper's static length threshold (the simulator's default rule)."""

from __future__ import annotations

from typing import Any

from prfaas_gym.policies.base import PolicyBase
from prfaas_gym.sim.router import ThresholdRouter


class PrfaasThresholdRouter(ThresholdRouter, PolicyBase):
    """The simulator's :class:`~prfaas_gym.sim.router.ThresholdRouter` with SB3's ``predict``.

    Uncached length (against the home PD cluster's cache) above ``threshold_tokens`` goes to
    PrfaaS, the rest stays on local PD-P.
    """

    name = "prfaas-threshold"


def resolve_threshold(scenario: Any, value: Any = None, *, data_dir: Any = None) -> float:
    """A threshold in tokens: a number, ``"plan"`` (the analytical planner's optimum for the
    scenario), or ``None`` (the scenario router's ``threshold_tokens``)."""
    if value is None:
        return float(scenario.default_threshold_tokens)
    if isinstance(value, str):
        if value != "plan":
            raise ValueError(f"threshold_tokens: expected a number or 'plan', got {value!r}")
        from prfaas_gym.planner.adapter import plan_scenario

        plan = plan_scenario(scenario, deployment="prfaas_pd", data_dir=data_dir)
        return float(plan.threshold_tokens)
    return float(value)


def make_threshold(scenario: Any, threshold_tokens: Any = None) -> PrfaasThresholdRouter:
    """Factory: ``threshold_tokens`` as :func:`resolve_threshold` reads it."""
    return PrfaasThresholdRouter(resolve_threshold(scenario, threshold_tokens))
