"""A simulator pickles mid-run and both copies finish identically; same seed, same run."""

from __future__ import annotations

import pickle

import pytest

from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim import Simulator
from tests.conftest import needs_data


@pytest.mark.parametrize("name", ["bursty_fluctuating", "paper/prfaas_pd", pytest.param("azure_conv", marks=needs_data)])
def test_pickle_mid_run_round_trip(name):
    sc = load_scenario(name)
    sim = Simulator(sc, n_requests=150)
    sim.run_until(20.0)
    copy = pickle.loads(pickle.dumps(sim))
    assert sim.run() == copy.run()


def test_same_seed_same_summary_and_timelines():
    sc = load_scenario("bursty_fluctuating")
    a, b = Simulator(sc, n_requests=300, seed=7), Simulator(sc, n_requests=300, seed=7)
    assert a.run() == b.run()
    assert [(r.prefill_end_s, r.finish_s) for r in a.requests] == [(r.prefill_end_s, r.finish_s) for r in b.requests]
