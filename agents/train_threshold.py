"""Train PPO or SAC on ``prfaas/Threshold-v0``: set the routing threshold (and optional bandwidth cap) every control interval.

PPO or SAC on ``prfaas/Threshold-v0``: set the routing threshold (and optional bandwidth cap) every control interval.
Algorithm: "ppo" or "sac". Envs, callbacks and saving come from :mod:`prfaas_gym.training`.

    python agents/train_threshold.py --scenario envs/bursty_fluctuating.yaml --total-timesteps 20000
    python agents/train_threshold.py --smoke                                       # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import pipeline
from prfaas_gym.training.config import TrainSettings, parse_settings


@dataclass
class ThresholdSettings(TrainSettings):
    """Settings (fields documented on :class:`TrainSettings`). Control envs take one step
    per control interval, so budgets are in the tens of thousands of steps."""

    env_id: str = "prfaas/Threshold-v0"
    scenario: str = "envs/bursty_fluctuating.yaml"
    algo: str = "ppo"
    n_requests: int | None = 1000
    total_timesteps: int = 20_000
    n_steps: int = 256
    batch_size: int = 128
    eval_freq: int = 5_000
    checkpoint_freq: int = 10_000
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-threshold,prfaas-adaptive"


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    return pipeline.train(parse_settings(ThresholdSettings, argv, __doc__))


if __name__ == "__main__":
    main()
