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


def imitation_warm_start(s: RoutingSettings):
    """Behaviour cloning from ``s.bc_heuristic``, then DAgger rounds (the learner drives, the
    heuristic labels its states), before RL; a no-op without ``bc_heuristic``."""

    def warm_start(model, venv, ctx, env_kwargs, maskable) -> None:
        if not s.bc_heuristic:
            return
        seeds = s.train_seeds[: s.bc_episodes]
        demos = imitation.collect_demonstrations(s.env_id, env_kwargs, s.bc_heuristic, seeds)
        imitation.fit_normalizer(venv, demos, s.gamma)
        from stable_baselines3.common.logger import configure

        tb = configure(str(ctx.run_dir / "tb" / "bc"), ["tensorboard"])  # the documented bc/actor_nll tag
        hist = imitation.behaviour_clone(model, demos, venv, epochs=s.bc_epochs, lr=s.bc_lr,
                                         gamma=s.gamma, seed=s.seed, logger=tb)
        step = len(hist)
        for k in range(s.dagger_rounds):
            start = s.bc_episodes + k * s.dagger_episodes
            more = imitation.dagger_round(model, venv, s.env_id, env_kwargs, s.bc_heuristic,
                                          s.train_seeds[start:start + s.dagger_episodes], maskable)
            demos = imitation.concat(demos, more)
            goodput = sum(x.get("goodput_rps", 0.0) for x in more.summaries) / max(len(more.summaries), 1)
            print(f"[dagger {k}] learner goodput {goodput:.3f} req/s, {len(demos.actions)} labelled steps", flush=True)
            hist = imitation.behaviour_clone(model, demos, venv, epochs=s.dagger_epochs, lr=s.bc_lr,
                                             gamma=s.gamma, seed=s.seed + k + 1, logger=tb, step0=step)
            step += len(hist)
        ctx.extra["bc"] = {"heuristic": s.bc_heuristic, "episodes": len(seeds), "steps": len(demos.actions),
                           "final_nll": hist[-1], "accuracy": imitation.clone_accuracy(model, demos, venv)}
        print(f"[bc] {ctx.extra['bc']}", flush=True)
        tb.close()

    return warm_start


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    s = parse_settings(RoutingSettings, argv, __doc__)
    return pipeline.train(s, imitation_warm_start(s))


if __name__ == "__main__":
    main()
