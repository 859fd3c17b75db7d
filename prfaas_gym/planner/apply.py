"""Run the simulator at the planner's configuration: ``apply_plan(scenario, plan) -> Scenario``.

The plan fixes two things the simulator reads from the scenario: the PD cluster's starting
split (``prefill_instances = plan.n_p``) and the routing rule. For a ``prfaas_pd`` plan the
router gets ``threshold_tokens = plan.threshold_tokens`` (keeping the scenario's router when it
is a threshold router, else ``prfaas-threshold``); a ``homogeneous`` plan on a scenario with a
PrfaaS cluster routes ``local-only``; a ``naive_heterogeneous`` plan routes
``naive-heterogeneous``. Everything else is unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

THRESHOLD_ROUTERS: tuple[str, ...] = ("prfaas-threshold", "prfaas-adaptive")
"""Registered routers that take ``threshold_tokens`` (kept when a plan is applied)."""


def apply_plan(scenario: Any, plan: Any) -> Any:
    """A copy of ``scenario`` running ``plan``'s P/D split and routing threshold.

    Raises:
        ValueError: the plan does not fit the scenario (instance counts differ, no decode).
    """
    pd = [i for i, c in enumerate(scenario.clusters) if c.kind == "pd"]
    if len(pd) != 1:
        raise ValueError(f"{scenario.source}: clusters: apply_plan needs exactly one pd cluster, got {len(pd)}")
    k = pd[0]
    cluster = scenario.clusters[k]
    if plan.n_p + plan.n_d != cluster.instances:
        raise ValueError(f"{scenario.source}: clusters[{k}].instances: the plan splits "
                         f"{plan.n_p} + {plan.n_d} instances, the cluster has {cluster.instances}")
    if plan.n_d < 1 or plan.n_p < 0:
        raise ValueError(f"plan: split {plan.n_p}/{plan.n_d} leaves no decode instance")
    n_prfaas = sum(c.instances for c in scenario.clusters if c.kind == "prefill_only")
    if plan.n_prfaas and plan.n_prfaas != n_prfaas:
        raise ValueError(f"{scenario.source}: the plan uses {plan.n_prfaas} PrfaaS instances, "
                         f"the scenario has {n_prfaas}")
    if plan.deployment == "naive_heterogeneous" and n_prfaas == 0:
        raise ValueError(f"{scenario.source}: a naive_heterogeneous plan needs a prefill_only cluster")

    clusters = list(scenario.clusters)
    clusters[k] = dataclasses.replace(cluster, prefill_instances=int(plan.n_p))
    router = dict(scenario.router or {})
    if plan.deployment == "prfaas_pd" and plan.threshold_tokens is not None:
        if router.get("name") not in THRESHOLD_ROUTERS:
            router = {"name": "prfaas-threshold"}
        t = float(plan.threshold_tokens)
        router["threshold_tokens"] = int(t) if t.is_integer() else t
    elif plan.deployment == "homogeneous" and n_prfaas > 0:
        router = {"name": "local-only"}
    elif plan.deployment == "naive_heterogeneous":
        router = {"name": "naive-heterogeneous"}
    return dataclasses.replace(scenario, clusters=tuple(clusters), router=router)


def planned_scenario(scenario: Any, **plan_kwargs: Any) -> tuple[Any, Any]:
    """``(apply_plan(scenario, plan), plan)`` with ``plan = plan_scenario(scenario, **plan_kwargs)``."""
    from .adapter import plan_scenario

    plan = plan_scenario(scenario, **plan_kwargs)
    return apply_plan(scenario, plan), plan
