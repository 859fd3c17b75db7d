"""#12/#13: oracle features off by default; stale and noisy metric snapshots (SnapshotView)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_gym.env.observation import LOG_TOKENS_MAX
from prfaas_gym.env.routing import RoutingEnv
from prfaas_gym.env.snapshot import SnapshotView
from prfaas_gym.env.threshold import ThresholdEnv


def _rollout(env, seed=0, steps=60):
    obs, info = env.reset(seed=seed)
    out = [(obs, env.pending_request)]
    for k in range(steps):
        a = int(np.flatnonzero(info["action_mask"])[k % int(info["action_mask"].sum())])
        obs, _, term, trunc, info = env.step(a)
        out.append((obs, env.pending_request))
        if term or trunc:
            break
    return out


def test_output_length_is_hidden_unless_the_oracle_flag_is_set():
    hidden = RoutingEnv(n_requests=30)
    assert hidden.oracle_features is False
    i = hidden.feature_names.index("output_len")
    for obs, req in _rollout(hidden, steps=20)[:-1]:
        assert obs[i] == 0.0
    oracle = RoutingEnv(n_requests=30, oracle_features=True)
    for obs, req in _rollout(oracle, steps=20)[:-1]:
        assert obs[i] == pytest.approx(min(1.0, math.log2(1 + req.output_tokens) / LOG_TOKENS_MAX), rel=1e-6)


def test_stale_snapshots_hold_the_load_metrics_between_refreshes():
    fresh = RoutingEnv(n_requests=200)
    stale = RoutingEnv(n_requests=200, snapshot_staleness_s=2.0)
    names = fresh.feature_names
    queue = [k for k, n in enumerate(names) if n.startswith("slot_queue[")]
    a, b = _rollout(fresh, steps=150), _rollout(stale, steps=150)
    held = changed = 0
    last_t, last_q = None, None
    for (of, rf), (os_, rs) in zip(a, b):
        assert rf is rs or (rf.rid == rs.rid)  # same decisions, same workload
        q = os_[queue].tolist()
        if last_q is not None and not np.array_equal(of[queue], os_[queue]):
            changed += 1
        if last_q is not None and q == last_q:
            held += 1
        last_q = q
    assert changed > 0 and held > 0  # the stale view differs from the truth, and is held
    assert stale.observation_space.contains(b[-1][0])


def test_noise_is_seeded_and_leaves_the_dynamics_alone():
    clean = _rollout(RoutingEnv(n_requests=80), seed=4)
    n1 = _rollout(RoutingEnv(n_requests=80, snapshot_noise=0.3), seed=4)
    n2 = _rollout(RoutingEnv(n_requests=80, snapshot_noise=0.3), seed=4)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(n1, n2))
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(clean, n1))
    assert [x[1].rid if x[1] else None for x in clean] == [y[1].rid if y[1] else None for y in n1]


def test_control_envs_take_the_same_options():
    env = ThresholdEnv(n_requests=60, interval_s=5.0, snapshot_noise=0.2, snapshot_staleness_s=0.1)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(1, np.float32))
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("kw", [{"snapshot_staleness_s": -0.1}, {"snapshot_noise": math.inf},
                                {"snapshot_staleness_s": math.nan}])
def test_bad_view_settings_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        RoutingEnv(**kw)
    with pytest.raises(ValueError):
        SnapshotView(kw.get("snapshot_staleness_s", 0.0), kw.get("snapshot_noise", 0.0))


def test_check_env_with_stale_noisy_snapshots():
    from gymnasium.utils.env_checker import check_env

    check_env(RoutingEnv(n_requests=40, snapshot_staleness_s=0.2, snapshot_noise=0.1), skip_render_check=True)
