"""Shared fixtures for the planner tests."""

from __future__ import annotations

import numpy as np
import pytest

from prfaas_gym.planner import PlannerInputs
from prfaas_gym.planner.casestudy import case_study_inputs


def two_length_inputs(**overrides) -> PlannerInputs:
    """The hand-worked oracle: lengths {1000, 10000} with equal weight, constant prefill times.

    PrfaaS: 1 instance, 0.5 s per prefill -> 2 req/s. PD: 4 instances, 1.0 s per prefill ->
    1 req/s each. Decode: 20 / (0.1 s * 100 tokens) = 2 req/s per instance. KV: 1 MB/token.
    """
    kw = dict(
        prfaas_prefill_s=lambda l: 0.5,
        pd_prefill_s=lambda l: 1.0,
        kv_bytes=lambda l: 1e6 * l,
        n_prfaas=1,
        n_pd_total=4,
        b_out_bytes_s=1e12,
        bs_max=20,
        t_decode_s=0.1,
        l_out_tokens=100,
        lengths_tokens=np.array([1000.0, 10000.0]),
        length_weights=np.array([1.0, 1.0]),
    )
    kw.update(overrides)
    return PlannerInputs(**kw)


@pytest.fixture
def oracle() -> PlannerInputs:
    return two_length_inputs()


@pytest.fixture
def make_two_length():
    """The oracle builder, for tests that vary one input."""
    return two_length_inputs


@pytest.fixture(scope="session")
def case_study() -> PlannerInputs:
    return case_study_inputs()
