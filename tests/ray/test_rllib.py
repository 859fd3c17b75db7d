"""RLlib: env ids by name, the masking observation, a saved module as a router, and the
example script (PPO, two env runners) end to end on a smoke budget."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib")

import prfaas_gym.rllib as prl  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _context(config, worker_index=1, num_workers=2):
    from ray.rllib.env.env_context import EnvContext

    return EnvContext(config, worker_index=worker_index, num_workers=num_workers)


def test_register_makes_every_id_usable_by_name(local_ray):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    names = prl.register()
    assert "prfaas/Routing-v1" in names and "prfaas/DualTimescale-bursty-cost-v1" in names
    assert len(names) == len(prl.env_ids()) >= 52
    creator = _global_registry.get(ENV_CREATOR, "prfaas/Routing-v1")
    env = creator(_context({"action_mask": True, "n_requests": 40, "train_seeds": [0, 10]}))
    assert isinstance(env.observation_space, gym.spaces.Dict)
    obs, _ = env.reset()
    assert env.observation_space.contains(obs)
    for _ in range(20):
        mask = obs[prl.MASK_KEY]
        assert np.array_equal(mask, env.unwrapped.action_masks().astype(np.float32))
        obs, _, term, trunc, _ = env.step(int(np.flatnonzero(mask)[-1]))
        if term or trunc:
            break
    # runner 1 of 2 plays seeds 0, 2, 4, ...
    assert env.env.last_seed == 0
    plain = creator(_context({"n_requests": 40}))
    assert isinstance(plain.observation_space, gym.spaces.Box)
    with pytest.raises(ValueError, match="action_mask"):
        prl.make_env("prfaas/Threshold-v1", {"action_mask": True, "n_requests": 40})


def test_saved_module_routes_in_the_plain_simulator(tmp_path):
    from prfaas_gym.evaluation import compare_policies
    from prfaas_gym.policies import make_router

    env = prl.make_env("prfaas/Routing-v1", {"action_mask": True, "n_requests": 40})
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    spec = prl.masked_module_spec()
    module = RLModuleSpec(module_class=spec.module_class, observation_space=env.observation_space,
                          action_space=env.action_space, model_config=spec.model_config).build()
    d = prl.save_policy(module, tmp_path / "policy", env_id="prfaas/Routing-v1",
                        env_kwargs={"scenario": "paper/prfaas_pd", "reward": "goodput", "n_requests": 40})
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["algo"] == "rllib_ppo" and meta["slot_labels"]
    policy = prl.load_module_policy(d)
    only = np.zeros(len(meta["slot_labels"]), np.float32)
    only[1] = 1
    x = np.random.default_rng(0).random(len(meta["feature_names"])).astype(np.float32)
    assert policy.predict(x, action_masks=only)[0] == 1  # the mask is honoured
    router = make_router(str(d), None)
    assert router.policy.module is not None
    comp = compare_policies("paper/prfaas_pd", [str(d), "prfaas-threshold"], seeds=1, n_requests=40)
    assert comp.runs[str(d)][0]["completed"] + comp.runs[str(d)][0]["rejected"] == 40


@pytest.mark.slow
def test_example_script_trains_ppo_with_two_env_runners(local_ray, tmp_path):
    spec = importlib.util.spec_from_file_location("agents_train_rllib", REPO / "agents" / "train_rllib.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    res = mod.main(["--out", str(tmp_path), "--smoke", "--env-runners", "2"])
    assert res["history"][0]["env_steps"] >= 256
    report = json.loads((tmp_path / "held_out.json").read_text())
    assert report["seeds"] == [1000, 1001] and res["policy_dir"] in report["results"]
