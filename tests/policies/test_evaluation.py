"""Statistics and egress helpers of prfaas_gym.evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_gym.api import build_simulator
from prfaas_gym.evaluation import BandwidthRecorder, split_policy, t_interval
from prfaas_gym.metrics import egress_series


def test_t_interval_hand_worked():
    mean, lo, hi = t_interval([1.0, 2.0, 3.0])
    # sd = 1, sem = 1/sqrt(3), t_0.975,2 = 4.302653
    assert mean == 2.0
    assert hi - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert lo == pytest.approx(2 * mean - hi)
    assert t_interval([5.0]) == (5.0, 5.0, 5.0)
    assert all(math.isnan(v) for v in t_interval([]))


def test_split_policy():
    assert split_policy("a+b") == ("a", "b")
    assert split_policy("a") == ("a", None)
    assert split_policy("trained:x+y") == ("trained:x+y", None)


def test_recorder_matches_egress_series_and_does_not_change_results():
    sim = build_simulator("bursty_fluctuating", "naive-heterogeneous", seed=1, n_requests=300)
    rec = BandwidthRecorder(sim)
    s1 = sim.run()
    ref = build_simulator("bursty_fluctuating", "naive-heterogeneous", seed=1, n_requests=300).run()
    assert s1 == ref
    t, eg, av = rec.series(0, bin_s=5.0)
    t2, eg2 = egress_series(sim, bin_s=5.0)
    n = min(len(eg), len(eg2)) - 1
    assert np.allclose(eg[:n], eg2[:n], rtol=1e-6, atol=1e-9)
    assert (eg <= av * (1 + 1e-9) + 1e-9).all()  # egress never exceeds what is available
    rep = rec.dip_report(0)
    assert 0.0 <= rep["saturated_fraction"] <= 1.0
