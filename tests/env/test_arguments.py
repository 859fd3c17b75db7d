"""Env arguments are checked (#16 item 17): each bad value raises one ValueError naming it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_gym.env.dual import DualTimescaleEnv
from prfaas_gym.env.provisioning import ProvisioningEnv
from prfaas_gym.env.routing import RoutingEnv
from prfaas_gym.env.threshold import ThresholdEnv
from prfaas_gym.scenario import ScenarioError, load_scenario

BAD = [
    (ThresholdEnv, {"interval_s": 1e-9}, "interval_s"),
    (ThresholdEnv, {"interval_s": math.inf}, "interval_s"),
    (ProvisioningEnv, {"interval_s": -5.0}, "interval_s"),
    (ThresholdEnv, {"env_config": {"control_interval_s": 1e-9}}, "env_config.control_interval_s"),
    (RoutingEnv, {"max_instance_slots": -3}, "max_instance_slots"),
    (RoutingEnv, {"max_instance_slots": 2.5}, "max_instance_slots"),
    (RoutingEnv, {"env_config": {"max_instance_slots": 0}}, "env_config.max_instance_slots"),
    (RoutingEnv, {"env_config": {"shaping_weight": math.inf}}, "env_config.shaping_weight"),
    (RoutingEnv, {"env_config": {"shaping_weight": math.nan}}, "env_config.shaping_weight"),
    (RoutingEnv, {"env_config": {"reject_penalty": -1.0}}, "env_config.reject_penalty"),
    (RoutingEnv, {"env_config": {"usd_per_request": 0.0}}, "env_config.usd_per_request"),
    (RoutingEnv, {"env_config": {"nonsense": 1}}, "env_config"),
    (DualTimescaleEnv, {"env_config": {"threshold_bins": 1}}, "env_config.threshold_bins"),
    (DualTimescaleEnv, {"provision_every": 0}, "provision_every"),
    (ThresholdEnv, {"env_config": {"threshold_max_tokens": 100}}, "env_config.threshold_max_tokens"),
    (RoutingEnv, {"n_requests": 0}, "n_requests"),
    (RoutingEnv, {"n_requests": math.nan}, "n_requests"),
    (RoutingEnv, {"max_sim_time_s": math.nan}, "max_sim_time_s"),
    (RoutingEnv, {"max_sim_time_s": -1.0}, "max_sim_time_s"),
    (RoutingEnv, {"max_steps": 0}, "max_steps"),
    (RoutingEnv, {"overrides": {"env.shaping_weight": math.inf}}, "env.shaping_weight"),
]


@pytest.mark.parametrize("cls,kwargs,field", BAD, ids=[f"{c.__name__}-{f}-{i}" for i, (c, _, f) in enumerate(BAD)])
def test_bad_argument_is_refused_naming_it(cls, kwargs, field):
    with pytest.raises(ValueError) as e:
        cls(**kwargs)
    msg = str(e.value)
    assert field in msg and "\n" not in msg


def test_infinite_time_cap_means_none():
    env = RoutingEnv(n_requests=20, max_sim_time_s=math.inf)
    assert env.max_sim_time_s == math.inf


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_scenario_threshold_must_be_a_finite_non_negative_number(value):
    with pytest.raises(ScenarioError, match="router.threshold_tokens"):
        load_scenario("paper/prfaas_pd", {"router.threshold_tokens": value})


@pytest.mark.parametrize("cls", [RoutingEnv, ThresholdEnv, ProvisioningEnv, DualTimescaleEnv])
def test_step_after_the_end_raises_on_every_env(cls):
    kw = {"n_requests": 20} if cls is RoutingEnv else {"n_requests": 20, "interval_s": 30.0}
    env = cls(**kw)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())  # before reset
    env.reset(seed=0)
    while True:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            break
    with pytest.raises(RuntimeError, match="reset"):
        env.step(env.action_space.sample())
    env.reset(seed=1)
    env.step(env.action_space.sample())  # a new episode steps again
