"""Discrete-event simulation of a cross-datacenter PD-disaggregated LLM cluster (SimPy core).

Free of Gymnasium, torch, plotting and CLI imports.
"""

from prfaas_gym.sim.router import REJECT, Provisioner, RouteDecision, Router, ThresholdRouter
from prfaas_gym.sim.simulator import SimulationError, Simulator, rng_stream

__all__ = [
    "REJECT", "Provisioner", "RouteDecision", "Router", "SimulationError", "Simulator",
    "ThresholdRouter", "rng_stream",
]
