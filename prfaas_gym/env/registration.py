"""The one place where the ``prfaas/`` env ids are registered with Gymnasium.

Naming scheme (CompilerGym-style, variants are ids):

* ``prfaas/<Base>-v1``: the paper scenario (``paper/prfaas_pd``) with the ``goodput`` reward;
* ``prfaas/<Base>-<scenario>-<reward>-v1`` for every scenario key in :data:`SCENARIOS`
  (``paper``, ``mooncake``, ``bursty``) and reward in
  :data:`~prfaas_gym.env.rewards.REWARD_VARIANTS` (``goodput``, ``slo``, ``latency``, ``cost``),

with ``<Base>`` one of ``Routing``, ``Threshold``, ``Provisioning``, ``DualTimescale``. Every
id accepts the env's keyword arguments (``scenario=`` a name or path, ``n_requests=``, ...)
through ``gymnasium.make(id, **kwargs)``. Entry points are strings, so registering imports
no simulator code.
"""

from __future__ import annotations

import gymnasium

NAMESPACE = "prfaas"

BASES: dict[str, tuple[str, str]] = {
    "Routing": ("prfaas_gym.env.routing:RoutingEnv", "route each arriving request to a prefill slot or reject"),
    "Threshold": ("prfaas_gym.env.threshold:ThresholdEnv", "set the routing threshold every control interval"),
    "Provisioning": ("prfaas_gym.env.provisioning:ProvisioningEnv",
                     "move PD instances between prefill and decode every long interval"),
    "DualTimescale": ("prfaas_gym.env.dual:DualTimescaleEnv",
                      "threshold every short interval and P/D split every long one"),
}

SCENARIOS: dict[str, str] = {
    "paper": "paper/prfaas_pd",
    "mooncake": "mooncake_conversation",
    "bursty": "bursty_fluctuating",
}

REWARDS: dict[str, str] = {
    "goodput": "goodput reward",
    "slo": "SLO-attainment reward",
    "latency": "latency-penalty reward",
    "cost": "goodput-per-dollar reward",
}


def _env_ids() -> dict[str, tuple[str, dict, str]]:
    ids: dict[str, tuple[str, dict, str]] = {}
    for base, (entry, what) in BASES.items():
        ids[f"{NAMESPACE}/{base}-v1"] = (
            entry, {"scenario": SCENARIOS["paper"], "reward": "goodput"},
            f"{what}; paper scenario, goodput reward",
        )
    for base, (entry, what) in BASES.items():
        for skey, scenario in SCENARIOS.items():
            for reward, rdesc in REWARDS.items():
                ids[f"{NAMESPACE}/{base}-{skey}-{reward}-v1"] = (
                    entry, {"scenario": scenario, "reward": reward}, f"{what}; {scenario}, {rdesc}",
                )
    return ids


ENV_IDS: dict[str, tuple[str, dict, str]] = _env_ids()
"""id -> (entry point, default kwargs, one-line description)."""

BASE_IDS: tuple[str, ...] = tuple(f"{NAMESPACE}/{b}-v1" for b in BASES)


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` (idempotent)."""
    registry = gymnasium.registry
    for env_id, (entry, kwargs, _) in ENV_IDS.items():
        if env_id not in registry:
            gymnasium.register(id=env_id, entry_point=entry, kwargs=dict(kwargs))


register_envs()
