"""Train PPO or SAC on ``prfaas/Threshold-v1``: set the routing threshold (and optional bandwidth cap) every control interval.

PPO or SAC on ``prfaas/Threshold-v1``: set the routing threshold (and optional bandwidth cap) every control interval.
Algorithm: "ppo" or "sac". Envs, callbacks and saving come from :mod:`prfaas_gym.training`.

    python agents/train_threshold.py --scenario envs/bursty_fluctuating.yaml --total-timesteps 20000
    python agents/train_threshold.py --smoke                                       # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import pipeline
from prfaas_gym.training.config import ControlSettings, parse_settings


@dataclass
class ThresholdSettings(ControlSettings):
    """Settings: :class:`ControlSettings` defaults (fields documented on :class:`TrainSettings`)."""

    env_id: str = "prfaas/Threshold-v1"
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-threshold,prfaas-adaptive"


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    return pipeline.train(parse_settings(ThresholdSettings, argv, __doc__))


if __name__ == "__main__":
    main()
