"""Train on ``prfaas/Provisioning-v0``: move PD instances between prefill and decode every long interval.

PPO on ``prfaas/Provisioning-v0``: move PD instances between prefill and decode every long interval.
Algorithm: "ppo". Envs, callbacks and saving come from :mod:`prfaas_gym.training`.

    python agents/train_provisioning.py --scenario envs/bursty_fluctuating.yaml --total-timesteps 20000
    python agents/train_provisioning.py --smoke                                       # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import pipeline
from prfaas_gym.training.config import TrainSettings, parse_settings
from prfaas_gym.training.envs import env_kwargs_of


@dataclass
class ProvisioningSettings(TrainSettings):
    """Settings (fields documented on :class:`TrainSettings`). Control envs take one step
    per control interval, so budgets are in the tens of thousands of steps."""

    env_id: str = "prfaas/Provisioning-v0"
    scenario: str = "envs/bursty_fluctuating.yaml"
    algo: str = "ppo"
    n_requests: int | None = 1000
    total_timesteps: int = 20_000
    n_steps: int = 256
    batch_size: int = 128
    eval_freq: int = 5_000
    checkpoint_freq: int = 10_000
    heuristics: str = "mooncake-conductor,least-loaded,prfaas-threshold,prfaas-threshold+paper-imbalance,prfaas-threshold+queue-autoscaler"


def main(argv: list[str] | None = None) -> dict:
    s = parse_settings(ProvisioningSettings, argv, __doc__)
    ctx = pipeline.start_run(s)
    env_kwargs = env_kwargs_of(s)
    venv = pipeline.build_venv(s, env_kwargs)
    model = pipeline.build_model(s, venv, ctx.run_dir)
    callbacks, eval_cb = pipeline.build_callbacks(s, ctx, env_kwargs, maskable=False)
    model.learn(total_timesteps=s.total_timesteps, callback=callbacks, tb_log_name="rl")
    meta = pipeline.finish_run(ctx, model, env_kwargs, eval_cb)
    venv.close()
    print(f"[done] {ctx.run_dir} wall {meta['wall_time_s']} s", flush=True)
    return meta


if __name__ == "__main__":
    main()
