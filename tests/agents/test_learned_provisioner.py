"""A trained ``prfaas/Provisioning-v1`` policy runs as a plain simulator provisioner
(``ROUTER+trained:NAME``) and decides there exactly as through the env."""

from __future__ import annotations

import numpy as np
import pytest

from prfaas_gym.policies.trained import list_trained

SCENARIO = "diurnal_day"


def _untrained_policy(env):
    from sb3_contrib import MaskablePPO

    return MaskablePPO("MlpPolicy", env, seed=3, device="cpu", n_steps=64, batch_size=64).policy


def test_provisioner_matches_the_env_rollout():
    """Same seed: env + policy and simulator + LearnedProvisioner give identical summaries
    and the same prefill-count history (an untrained policy, so it moves instances often)."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained.provisioner import LearnedProvisioner
    from prfaas_gym.training.envs import make_env

    env = make_env("prfaas/Provisioning-v1", scenario=SCENARIO, n_requests=500, interval_s=40.0)
    base = env.unwrapped
    policy = _untrained_policy(env)
    prov = LearnedProvisioner(policy, interval_s=40.0, threshold_max_tokens=base.config["threshold_max_tokens"],
                              feature_names=base.feature_names)
    obs, info = env.reset(seed=7)
    first = True
    while True:
        if first:  # the provisioner sees the same first observation as the env's agent
            assert np.array_equal(obs, prov.observe(_shadow(base)))
            first = False
        a, _ = policy.predict(obs, deterministic=True, action_masks=base.action_masks())
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    env_log = [(t, n) for t, _, n in base.sim.prefill_counts_log]
    sim = build_simulator(base.scenario, "prfaas-threshold", prov, seed=7, n_requests=500)
    plain = sim.run()
    assert [(t, n) for t, _, n in sim.prefill_counts_log] == env_log
    assert len(set(n for _, n in env_log)) > 1  # the policy did move instances
    for k in ("completed", "rejected", "slo_attainment", "goodput_rps", "ttft_p90_s", "tpot_p90_s"):
        assert plain[k] == pytest.approx(info["summary"][k]), k


def _shadow(base):
    """A fresh simulator of the env's episode at t = 0 (the provisioner binds to it)."""
    from prfaas_gym.api import build_simulator

    return build_simulator(base.scenario, "prfaas-threshold", None, seed=7, n_requests=500)


def test_router_loader_refuses_a_provisioning_policy_and_vice_versa(tmp_path):
    from prfaas_gym.policies import make_provisioner
    from prfaas_gym.scenario import load_scenario

    sc = load_scenario(SCENARIO)
    with pytest.raises(ValueError, match="unknown trained policy"):
        make_provisioner("trained:no-such-policy", sc)
    routers = [n for n in list_trained() if n.startswith("routing-")]
    if routers:
        with pytest.raises(ValueError, match="not a provisioner"):
            make_provisioner(f"trained:{routers[0]}", sc)


@pytest.mark.skipif("diurnal-provisioning" not in list_trained(), reason="policy not shipped yet")
def test_shipped_provisioner_runs_in_compare():
    from prfaas_gym.evaluation.compare import run_policy
    from prfaas_gym.policies import make_router
    from prfaas_gym.scenario import load_scenario

    summary, _ = run_policy(SCENARIO, "prfaas-threshold+trained:diurnal-provisioning", seed=11, n_requests=400)
    assert summary["completed"] + summary["rejected"] == summary["requests"]
    with pytest.raises(ValueError, match="not a router"):
        make_router("trained:diurnal-provisioning", load_scenario(SCENARIO))


@pytest.mark.skipif("diurnal-provisioning" not in list_trained(), reason="policy not shipped yet")
def test_leaderboard_lists_the_learned_provisioner_under_the_scenario_router():
    from prfaas_gym.benchmark.leaderboard import is_heuristic, trained_for
    from prfaas_gym.benchmark.tasks import get_task

    spec = "prfaas-threshold+trained:diurnal-provisioning"
    assert spec in trained_for(get_task("prfaas/diurnal-v1"))
    assert not is_heuristic(spec)
