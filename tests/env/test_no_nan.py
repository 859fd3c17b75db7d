"""No NaN or inf reaches an observation (#16 item 4): fault storms on every env base,
the encoders on hostile snapshots, and NaN actions on the control envs (#16 item 11)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prfaas_gym.env.observation import encode_control_obs, encode_routing_obs, WindowStats
from prfaas_gym.env.registration import BASE_IDS
from prfaas_gym.env.snapshot import ClusterSnapshot, RequestFeatures
from tests.env.conftest import make

# one fault: (target, index, at_s, duration_s); targets of the paper and bursty scenarios
_fault = st.tuples(
    st.sampled_from(["pd", "prfaas", "link"]),
    st.integers(0, 7),
    st.floats(0.0, 40.0, allow_nan=False),
    st.floats(0.5, 30.0, allow_nan=False),
)


def _faults(storm, n_prefill_instances: dict[str, int]) -> list[dict]:
    out = []
    for target, idx, at, dur in storm:
        if target == "link":
            out.append({"link": "vpc", "at_s": at, "duration_s": dur})
        else:
            out.append({"cluster": target, "instance": idx % n_prefill_instances[target], "at_s": at,
                        "duration_s": dur})
    return out


def _check(env, obs) -> None:
    assert np.isfinite(obs).all(), [env.unwrapped.feature_names[i] for i in np.flatnonzero(~np.isfinite(obs))]
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("env_id", BASE_IDS + ("prfaas/Routing-bursty-latency-v1",))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(storm=st.lists(_fault, min_size=1, max_size=6), seed=st.integers(0, 50))
def test_fault_storm_observations_are_finite(env_id, storm, seed):
    counts = {"pd": 8, "prfaas": 4} if "bursty" not in env_id else {"pd": 8, "prfaas": 2}
    faults = _faults(storm, counts)
    kw = {"n_requests": 120} if "Routing" in env_id else {"n_requests": 120, "interval_s": 5.0}
    env = make(env_id, overrides={"faults": faults}, **kw)
    obs, info = env.reset(seed=seed)
    _check(env, obs)
    space = env.action_space
    space.seed(seed)
    for _ in range(400):
        mask = info.get("action_mask")
        a = space.sample(mask=mask) if mask is not None and "Routing" in env_id else space.sample()
        obs, r, term, trunc, info = env.step(a)
        _check(env, obs)
        assert math.isfinite(r)
        if term or trunc:
            break


def _snap(**kw) -> ClusterSnapshot:
    base = dict(time_s=1.0, ttft_slo_s=10.0, tpot_slo_s=0.03, slot_open=(1.0, 0.0), slot_queue=(3, 0),
                slot_wait_s=(5.0, math.inf), cluster_prefill_frac=(1.0, 0.5), cluster_decode_mem_frac=(0.0, 0.3),
                cluster_decode_batch_frac=(0.0, 0.9), cluster_decode_queue=(0, 2), link_bw_frac=(1.0,),
                link_util=(0.25,), link_flows=(4,))
    base.update(kw)
    return ClusterSnapshot(**base)


@pytest.mark.parametrize("bad", [math.inf, math.nan, -math.inf])
def test_encoders_map_non_finite_inputs_into_the_box(bad):
    """An outage gives an infinite pull time (inf/inf was NaN); any non-finite input is clamped."""
    snap = _snap(slot_wait_s=(bad, 1.0), link_bw_frac=(bad,), link_util=(bad,),
                 cluster_decode_mem_frac=(bad, 0.3))
    feats = RequestFeatures(4096, 0, (0, 2048), (bad, math.inf), 1)
    obs = encode_routing_obs(snap, feats)
    assert np.isfinite(obs).all() and ((obs >= 0) & (obs <= 1)).all()
    win = WindowStats(bad, 1.0, bad, bad, bad, bad, bad)
    obs = encode_control_obs(snap, win)
    assert np.isfinite(obs).all() and ((obs >= 0) & (obs <= 1)).all()


def test_pull_slot_during_link_outage_encodes_as_worst():
    """The #16 reproduction: a pull slot's service time is inf while the link is down."""
    snap = _snap()
    feats = RequestFeatures(4096, 0, (0, 2048), (1.0, math.inf), 1)
    obs = encode_routing_obs(snap, feats)
    assert obs[7] == 1.0  # slot_ttft[1]: wait 1 s + inf service
