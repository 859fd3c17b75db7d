"""Gymnasium environments over the PrfaaS simulator.

Ids (registered on ``import prfaas_gym``, see :mod:`prfaas_gym.env.registration` and
docs/envs.md): ``prfaas/Routing-v1``, ``prfaas/Threshold-v1``, ``prfaas/Provisioning-v1``,
``prfaas/DualTimescale-v1`` and their ``prfaas/<Base>-<scenario>-<reward>-v1`` variants.

The env classes are imported lazily so that ``import prfaas_gym`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RoutingEnv": "prfaas_gym.env.routing",
    "ThresholdEnv": "prfaas_gym.env.threshold",
    "ProvisioningEnv": "prfaas_gym.env.provisioning",
    "DualTimescaleEnv": "prfaas_gym.env.dual",
    "ClusterSnapshot": "prfaas_gym.env.snapshot",
    "RequestFeatures": "prfaas_gym.env.snapshot",
    "take_snapshot": "prfaas_gym.env.snapshot",
    "SnapshotReader": "prfaas_gym.env.snapshot",
    "Slot": "prfaas_gym.env.snapshot",
    "build_slots": "prfaas_gym.env.snapshot",
    "RewardConfig": "prfaas_gym.env.rewards",
    "REWARD_VARIANTS": "prfaas_gym.env.rewards",
    "request_features": "prfaas_gym.env.snapshot",
    "WindowStats": "prfaas_gym.env.observation",
    "encode_routing_obs": "prfaas_gym.env.observation",
    "encode_control_obs": "prfaas_gym.env.observation",
    "ENV_IDS": "prfaas_gym.env.registration",
    "register_envs": "prfaas_gym.env.registration",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prfaas_gym.env' has no attribute {name!r}")
