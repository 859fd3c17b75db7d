"""Train a per-request router on ``prfaas/Routing-v1`` (MaskablePPO or PPO).

Recipe: behaviour-clone the best heuristic (``bc_heuristic``) on training seeds, then
fine-tune with (Maskable)PPO. Everything else (envs, callbacks, saving) comes from
:mod:`prfaas_gym.training`.

    python agents/train_routing.py --config agents/configs/routing_bursty.yaml   # shipped policy
    python agents/train_routing.py --smoke                                          # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import imitation, pipeline
from prfaas_gym.training.config import TrainSettings, parse_settings


@dataclass
class RoutingSettings(TrainSettings):
    """Routing settings (see :class:`TrainSettings`), plus the imitation warm start.

    Attributes:
        bc_heuristic: heuristic to clone first ("" skips behaviour cloning).
        bc_episodes: demonstration episodes (training seeds ``train_seed_start ..``).
        bc_epochs: supervised epochs over the demonstrations.
        bc_lr: learning rate of the supervised pre-training.
        dagger_rounds: DAgger rounds after cloning (the policy drives, the heuristic labels).
        dagger_episodes: episodes per DAgger round (further training seeds).
        dagger_epochs: supervised epochs over the aggregated data after each round.
    """

    env_id: str = "prfaas/Routing-v1"
    scenario: str = "envs/bursty_fluctuating.yaml"
    algo: str = "maskable_ppo"
    n_requests: int | None = 1000
    total_timesteps: int = 300_000
    learning_rate: float = 5e-5
    n_steps: int = 2048
    batch_size: int = 512
    n_epochs: int = 5
    gamma: float = 0.995
    clip_range: float = 0.1
    ent_coef: float = 0.001
    eval_freq: int = 25_000
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-adaptive,prfaas-threshold"
    bc_heuristic: str = "mooncake-conductor"
    bc_episodes: int = 60
    bc_epochs: int = 30
    bc_lr: float = 1e-3
    dagger_rounds: int = 0
    dagger_episodes: int = 10
    dagger_epochs: int = 10


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    s = parse_settings(RoutingSettings, argv, __doc__)
    return pipeline.train(s, imitation.warm_start(s, imitation.collect_demonstrations))


if __name__ == "__main__":
    main()
