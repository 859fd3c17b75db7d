"""Train on ``prfaas/Provisioning-v1``: move PD instances between prefill and decode every long interval.

PPO on ``prfaas/Provisioning-v1``: move PD instances between prefill and decode every long interval.
Algorithm: "ppo". Envs, callbacks and saving come from :mod:`prfaas_gym.training`.

    python agents/train_provisioning.py --scenario envs/bursty_fluctuating.yaml --total-timesteps 20000
    python agents/train_provisioning.py --smoke                                       # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import pipeline
from prfaas_gym.training.config import ControlSettings, parse_settings


@dataclass
class ProvisioningSettings(ControlSettings):
    """Settings: :class:`ControlSettings` defaults (fields documented on :class:`TrainSettings`)."""

    env_id: str = "prfaas/Provisioning-v1"
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-threshold,prfaas-threshold+paper-imbalance,prfaas-threshold+queue-autoscaler"


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    return pipeline.train(parse_settings(ProvisioningSettings, argv, __doc__))


if __name__ == "__main__":
    main()
