"""Golden outputs: a fixed scenario + policy + seed gives the committed summary.

A change that moves these numbers changes the simulated dynamics: check that it is intended,
then regenerate the file (the command is in each case below) and say why in the commit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from prfaas_gym.api import build_simulator

GOLDEN = Path(__file__).parent / "golden"

CASES = [
    # prfaas-gym simulate paper/prfaas_pd --requests 300 --seed 0 --json
    ("paper_prfaas_pd_300_seed0.json", "paper/prfaas_pd", None, 0),
    # prfaas-gym simulate bursty_fluctuating --requests 300 --seed 1 --policy mooncake-conductor --json
    ("bursty_conductor_300_seed1.json", "bursty_fluctuating", "mooncake-conductor", 1),
]


@pytest.mark.parametrize("filename, scenario, policy, seed", CASES)
def test_summary_matches_golden(filename, scenario, policy, seed):
    expected = json.loads((GOLDEN / filename).read_text())
    expected.pop("scenario")
    got = build_simulator(scenario, policy=policy, seed=seed, n_requests=300).run()
    assert set(got) == set(expected)
    for key, value in expected.items():
        if value is None:  # NaN or inf in the JSON
            assert not math.isfinite(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
