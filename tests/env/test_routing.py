"""Routing-v1 semantics: masks honoured, invalid actions fall back, decision mapping, encoder."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_gym.env.observation import encode_routing_obs
from prfaas_gym.env.routing import RoutingEnv
from prfaas_gym.env.snapshot import ClusterSnapshot, RequestFeatures
from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim import Simulator, ThresholdRouter
from tests.env.conftest import make


def test_slots_of_paper_scenario():
    env = make("prfaas/Routing-v1").unwrapped
    assert env.slot_labels == ["prfaas"] + [f"pd/{i}" for i in range(8)] + ["reject"]
    assert env.action_space.n == 10
    assert env.observation_space.shape == (53,)
    assert len(env.feature_names) == 53


def test_pull_slots_where_caches_exist():
    env = make("prfaas/Routing-bursty-goodput-v1").unwrapped
    assert "prfaas<-pd" in env.slot_labels and "pd<-prfaas" in env.slot_labels


def test_masked_actions_are_honoured():
    env = make("prfaas/Routing-v1", n_requests=200).unwrapped
    obs, info = env.reset(seed=1)
    rng = np.random.default_rng(0)
    while True:
        mask = env.action_masks()
        assert np.array_equal(mask, info["action_mask"])
        # decode-role instances are masked (3 prefill of 8 PD instances at the start)
        assert not mask[1 + 3:1 + 8].any() or env.sim.now_s > 0
        a = int(rng.choice(np.flatnonzero(mask)))
        req = env.pending_request
        obs, r, term, trunc, info = env.step(a)
        assert not info["fallback"] and info["action"] == a
        slot = env.slots[a]
        if slot.kind == "reject":
            assert req.rejected and req.reject_reason == "policy"
        else:
            assert req.prefill_cluster == env.sim.clusters[slot.cluster].name
        if term or trunc:
            break


@pytest.mark.parametrize("bad", [6, 999, -1, None])
def test_invalid_action_in_fallback_mode_uses_the_threshold_rule(bad):
    env = make("prfaas/Routing-v1", invalid_action="fallback").unwrapped
    env.reset(seed=0)
    assert not env.action_masks()[6]  # pd/5 starts in the decode role
    req = env.pending_request
    expected = ThresholdRouter(env.scenario.default_threshold_tokens).route(req, env.sim)
    obs, r, term, trunc, info = env.step(bad)
    assert info["fallback"] and info["invalid_action"] and info["invalid_actions"] == 1
    assert req.prefill_cluster == env.sim.clusters[expected.prefill_cluster].name


def test_action_decision_round_trip():
    env = make("prfaas/Routing-bursty-goodput-v1").unwrapped
    env.reset(seed=0)
    for a in range(env.action_space.n):
        assert env.decision_to_action(env.action_to_decision(a)) == a


def test_threshold_router_through_env_equals_plain_simulation():
    """A heuristic evaluated through the env gives the same run as the simulator alone."""
    env = make("prfaas/Routing-v1", n_requests=150).unwrapped
    env.reset(seed=7)
    router = ThresholdRouter(19_298)
    while True:
        a = env.decision_to_action(router.route(env.pending_request, env.sim))
        _, _, term, trunc, info = env.step(a)
        assert not info["fallback"]
        if term or trunc:
            break
    sim = Simulator(load_scenario("paper/prfaas_pd"), ThresholdRouter(19_298), seed=7, n_requests=150)
    assert repr(sim.run()) == repr(info["summary"])


def test_encoder_needs_only_the_snapshot():
    snap = ClusterSnapshot(
        time_s=1.0, ttft_slo_s=10.0, tpot_slo_s=0.03, slot_open=(1.0, 0.0), slot_queue=(3, 0),
        slot_wait_s=(5.0, math.inf), cluster_prefill_frac=(1.0, 0.5), cluster_decode_mem_frac=(0.0, 0.3),
        cluster_decode_batch_frac=(0.0, 0.9), cluster_decode_queue=(0, 2), link_bw_frac=(1.0,),
        link_util=(0.25,), link_flows=(4,),
    )
    feats = RequestFeatures(input_tokens=4096, output_tokens=0, cached_tokens=(0, 2048), slot_service_s=(1.0, 2.0),
                            home_cluster=1)
    obs = encode_routing_obs(snap, feats)
    assert obs.dtype == np.float32 and obs.shape == (4 * 2 + 6 * 2 + 3 + 2,)
    assert ((obs >= 0) & (obs <= 1)).all()
    assert obs[2] == pytest.approx(3 / 7)  # slot_queue[0]
    assert obs[4] == pytest.approx(5 / 15)  # slot_wait[0]
    assert obs[5] == 1.0  # inf wait
    assert obs[6] == pytest.approx(6 / 16)  # slot_ttft[0]
    assert obs[9] == pytest.approx(0.5)  # cached_frac[1]
    assert obs[-1] == 0.0  # unknown output length


def test_slots_unreachable_from_home_are_masked():
    """Regional PD clusters without links between them: only the home region is offered."""
    env = RoutingEnv("scale_10k_gpu", n_requests=60)
    obs, info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    while True:
        home = env.sim.home_cluster(env.pending_request)
        mask = info["action_mask"]
        for k, slot in enumerate(env.slots[:-1]):
            if not env._reader.slot_reach[home][k]:
                assert mask[k] == 0
        obs, r, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        assert not info["fallback"]
        if term or trunc:
            break
    assert term or info["after_window"]["done"]
