"""#12 item 5: attributes through wrappers, render_mode, reset(options=...)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from prfaas_gym.env.registration import BASE_IDS
from tests.env.conftest import make


def test_public_attributes_through_gym_make_wrappers():
    env = make("prfaas/Routing-v1")
    env.reset(seed=0)
    assert env.get_wrapper_attr("slot_labels")[0] == "prfaas"
    assert env.unwrapped.slot_labels == env.get_wrapper_attr("slot_labels")
    mask = env.get_wrapper_attr("action_masks")()
    assert mask.dtype == np.int8
    base = env.unwrapped
    a = base.decision_to_action(base.sim.fallback_router.route(base.pending_request, base.sim))
    assert 0 <= a < env.action_space.n
    prov = make("prfaas/Provisioning-v1")
    prov.reset(seed=0)
    assert prov.get_wrapper_attr("action_masks")().shape == (3,)


@pytest.mark.parametrize("env_id", BASE_IDS)
def test_render_modes(env_id):
    env = make(env_id, render_mode="ansi")
    assert env.render_mode == "ansi"
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert "t=" in text and "pd" in text and "link vpc" in text
    plain = make(env_id)
    plain.reset(seed=0)
    assert plain.render() is None


def test_human_render_prints(capsys):
    env = make("prfaas/Routing-v1", render_mode="human")
    env.reset(seed=0)
    assert env.render() is None
    assert "next: request 0" in capsys.readouterr().out


def test_rgb_array_render():
    env = make("prfaas/Provisioning-v1", render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.shape[0] == 10 * (8 + 4 + 1)  # 8 PD + 4 PrfaaS instances + 1 link in the paper scenario
    assert (img != 255).any()


def test_unknown_render_mode_is_refused():
    with pytest.raises(ValueError, match="render_mode"):
        gym.make("prfaas/Routing-v1", render_mode="rgb", n_requests=10)


@pytest.mark.parametrize("env_id", BASE_IDS)
def test_reset_options_are_honoured_or_refused(env_id):
    env = make(env_id).unwrapped
    env.reset(seed=0, options={"n_requests": 7})
    assert len(env.sim.requests) == 7
    env.reset(seed=0, options={})
    assert len(env.sim.requests) != 7
    with pytest.raises(ValueError, match="unknown key"):
        env.reset(seed=0, options={"scenario": "bursty_fluctuating"})
    with pytest.raises(ValueError, match="n_requests"):
        env.reset(seed=0, options={"n_requests": 0})


def test_sb3_make_vec_env_passes_render_mode_without_warning():
    pytest.importorskip("stable_baselines3")
    import warnings

    from stable_baselines3.common.env_util import make_vec_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        venv = make_vec_env("prfaas/Routing-v1", n_envs=1, env_kwargs={"n_requests": 10})
    venv.reset()
    venv.close()
