"""Vectorised execution (Gymnasium AsyncVectorEnv, SB3 SubprocVecEnv) and PPO smoke runs."""

from __future__ import annotations

import functools

import gymnasium as gym
import numpy as np
import pytest

from tests.env.conftest import ALL_IDS, VARIANT_SAMPLE, small_kwargs

pytest.importorskip("stable_baselines3")


def _make(env_id: str, kw: dict):
    import prfaas_gym  # noqa: F401  (registers the ids in a spawned worker)

    return gym.make(env_id, **kw)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_async_vector_env(env_id):
    kw = small_kwargs(env_id)
    venv = gym.vector.AsyncVectorEnv([functools.partial(_make, env_id, kw)] * 2)
    try:
        obs, info = venv.reset(seed=[0, 1])
        assert obs.shape == (2,) + venv.single_observation_space.shape
        for _ in range(5):
            obs, r, term, trunc, info = venv.step(venv.action_space.sample())
            assert np.isfinite(r).all()
    finally:
        venv.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sb3_subproc_vec_env(env_id):
    from stable_baselines3.common.vec_env import SubprocVecEnv

    kw = small_kwargs(env_id)
    venv = SubprocVecEnv([functools.partial(_make, env_id, kw)] * 2, start_method="fork")
    try:
        venv.seed(0)
        obs = venv.reset()
        for _ in range(5):
            obs, r, done, info = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
            assert np.isfinite(r).all()
    finally:
        venv.close()


@pytest.mark.parametrize("env_id", VARIANT_SAMPLE)
def test_ppo_smoke(env_id):
    from stable_baselines3 import PPO

    env = _make(env_id, small_kwargs(env_id))
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)


def test_maskable_ppo_smoke_on_routing():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    env = _make("prfaas/Routing-v1", small_kwargs("prfaas/Routing-v1"))
    model = sb3_contrib.MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0,
                                    device="cpu", verbose=0)
    model.learn(total_timesteps=256)
    obs, _ = env.reset(seed=0)
    mask = env.unwrapped.action_masks()
    action, _ = model.predict(obs, action_masks=mask, deterministic=True)
    assert mask[int(action)]
