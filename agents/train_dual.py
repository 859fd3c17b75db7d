"""Train on ``prfaas/DualTimescale-v1``: the threshold every short interval and the P/D split every long one.

PPO on ``prfaas/DualTimescale-v1``: the threshold every short interval and the P/D split every long one.
Algorithm: "ppo". Envs, callbacks and saving come from :mod:`prfaas_gym.training`.

    python agents/train_dual.py --scenario envs/bursty_fluctuating.yaml --total-timesteps 20000
    python agents/train_dual.py --smoke                                       # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import pipeline
from prfaas_gym.training.config import ControlSettings, parse_settings


@dataclass
class DualSettings(ControlSettings):
    """Settings: :class:`ControlSettings` defaults (fields documented on :class:`TrainSettings`)."""

    env_id: str = "prfaas/DualTimescale-v1"
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-threshold,prfaas-adaptive,prfaas-threshold+paper-imbalance"


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    return pipeline.train(parse_settings(DualSettings, argv, __doc__))


if __name__ == "__main__":
    main()
