"""A trained router in front of real serving endpoints (docs/live.md).

* :mod:`~prfaas_gym.live.topology`: the topology file mapping bundle clusters/slots to workers;
* :mod:`~prfaas_gym.live.metrics`: engine ``/metrics`` under vLLM or SGLang names;
* :mod:`~prfaas_gym.live.ledger`: router-side accounting (predicted wait, transfers, prefix index);
* :mod:`~prfaas_gym.live.state`: the snapshot builder; :mod:`~prfaas_gym.live.router`: ``decide()``;
* :mod:`~prfaas_gym.live.gateway`: ``prfaas-gym gateway`` (OpenAI-compatible proxy, PD hand-off);
* :mod:`~prfaas_gym.live.stub_engine`: CPU stub engines timed by the step-time model;
* :mod:`~prfaas_gym.live.dynamo`: the NVIDIA Dynamo adapter (``live`` extra).
"""

from prfaas_gym.live.metrics import EngineMetrics, parse_engine_metrics
from prfaas_gym.live.router import LiveDecision, LiveRouter, RemotePolicy
from prfaas_gym.live.state import LiveState
from prfaas_gym.live.topology import Topology, TopologyError, Worker, load_topology, parse_topology

__all__ = ["EngineMetrics", "LiveDecision", "LiveRouter", "LiveState", "RemotePolicy", "Topology",
           "TopologyError", "Worker", "load_topology", "parse_topology", "parse_engine_metrics"]
