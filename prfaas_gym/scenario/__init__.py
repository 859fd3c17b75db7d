"""Scenario files: YAML -> validated, frozen :class:`Scenario` (see ``envs/README.md``)."""

from prfaas_gym.scenario.errors import ScenarioError
from prfaas_gym.scenario.loader import DEFAULT_SCENARIO, list_builtin_scenarios, load_scenario, parse_scenario
from prfaas_gym.scenario.spec import ClusterSpec, FaultSpec, FluctuationSpec, LinkSpec, Scenario

__all__ = [
    "ClusterSpec", "DEFAULT_SCENARIO", "FaultSpec", "FluctuationSpec", "LinkSpec", "Scenario",
    "ScenarioError", "list_builtin_scenarios", "load_scenario", "parse_scenario",
]
