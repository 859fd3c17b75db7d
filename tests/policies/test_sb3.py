"""Heuristics through SB3's ``predict`` shape on the routing env."""

from __future__ import annotations

import pytest

pytest.importorskip("stable_baselines3")
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from prfaas_gym.api import simulate_scenario  # noqa: E402
from prfaas_gym.env.routing import RoutingEnv  # noqa: E402
from prfaas_gym.policies import make_router  # noqa: E402


@pytest.mark.parametrize("name", ["prfaas-threshold", "local-only", "naive-heterogeneous"])
def test_predict_drives_env_like_route(name):
    env = RoutingEnv("bursty_fluctuating", n_requests=120)
    obs, _ = env.reset(seed=3)
    router = make_router(name, env.scenario).bind(env)
    done, fallbacks = False, 0
    while not done:
        action, state = router.predict(obs, deterministic=True)
        assert state is None
        obs, _, term, trunc, info = env.step(action)
        fallbacks += info["fallback"]
        done = term or trunc
    assert fallbacks == 0
    ref = simulate_scenario("bursty_fluctuating", policy=name, seed=3, n_requests=120).summary()
    got = env.sim.summary()
    for k in ("completed", "goodput_rps", "ttft_p90_s", "offload_fraction"):
        assert got[k] == pytest.approx(ref[k])


def test_evaluate_policy_on_dummy_vec_env():
    venv = DummyVecEnv([lambda: RoutingEnv("bursty_fluctuating", n_requests=40)])
    router = make_router("prfaas-adaptive", venv.envs[0].unwrapped.scenario).bind(venv)
    mean, std = evaluate_policy(router, venv, n_eval_episodes=2, warn=False)
    assert mean == mean  # finite


def test_unbound_predict_explains():
    from prfaas_gym.scenario import load_scenario

    with pytest.raises(ValueError, match="bind"):
        make_router("random", load_scenario("bursty_fluctuating")).predict(None)
