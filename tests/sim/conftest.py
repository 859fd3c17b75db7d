"""Fixtures for the simulator tests."""

from __future__ import annotations

import types
from typing import Any

import pytest
from tests.sim.tiny_scenarios import link, pd_cluster, prfaas_cluster, scenario_dict

from prfaas_gym.scenario import parse_scenario


@pytest.fixture
def tiny():
    """Builders of tiny scenario pieces: ``tiny.pd_cluster(...)``, ``tiny.prfaas_cluster``, ``tiny.link``."""
    return types.SimpleNamespace(pd_cluster=pd_cluster, prfaas_cluster=prfaas_cluster, link=link)


@pytest.fixture
def make_scenario():
    """``make_scenario(clusters, links, model=..., **top_level_keys)`` -> a validated Scenario."""
    def make(*args: Any, **kw: Any):
        return parse_scenario(scenario_dict(*args, **kw), "tiny.yaml")
    return make
