"""Routing under faults: a failed instance is masked while down, nothing is lost."""

from __future__ import annotations

import numpy as np

from prfaas_gym.env.routing import RoutingEnv

FAULTS = {"faults": [{"cluster": "pd", "instance": 0, "at_s": 5.0, "duration_s": 20.0},
                     {"link": "vpc", "at_s": 10.0, "duration_s": 5.0}]}


def test_failed_instance_is_masked_and_requests_survive():
    env = RoutingEnv(n_requests=150, overrides=FAULTS)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(1)
    seen_down = False
    while True:
        t = env.sim.now_s
        if 5.0 < t < 25.0:
            assert info["action_mask"][1] == 0  # pd/0 is failed
            seen_down = True
        a = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, r, term, trunc, info = env.step(a)
        assert env.observation_space.contains(obs)
        if term or trunc:
            break
    assert seen_down and (term or info["after_window"]["done"])
    s = info["summary"]
    assert s["completed"] + s["rejected"] == s["requests"] == 150
