"""Builders of tiny scenarios whose answers can be worked out by hand (imported by the sim tests)."""

from __future__ import annotations

import copy
from typing import Any


# prefill: 10 ms + 0.1 ms per token (no quadratic term); decode: 20 ms per step, any batch
POLY = {"backend": "polynomial", "prefill_s": [0.01, 1e-4, 0.0], "decode_step_s": 0.02}


def pd_cluster(**kw: Any) -> dict:
    c = {"name": "pd", "datacenter": "dc-local", "kind": "pd", "hardware": "h100-sxm",
         "gpus_per_instance": 1, "instances": 2, "prefill_instances": 1, "step_time": dict(POLY),
         "prefill": {"max_batch": 1}}
    c.update(kw)
    return c


def prfaas_cluster(**kw: Any) -> dict:
    c = {"name": "prfaas", "datacenter": "dc-remote", "kind": "prefill_only", "hardware": "h200-sxm",
         "gpus_per_instance": 1, "instances": 1, "step_time": dict(POLY), "prefill": {"max_batch": 1}}
    c.update(kw)
    return c


def link(**kw: Any) -> dict:
    l = {"name": "vpc", "between": ["dc-remote", "dc-local"], "bandwidth_gbps": 8.0, "rtt_ms": 2.0,
         "tcp_connections": 1, "per_connection_gbps": 100.0}
    l.update(kw)
    return l


def scenario_dict(clusters: list[dict], links: list[dict] | None = None, model: str = "llama3-8b",
                  **extra: Any) -> dict:
    d = {"name": "tiny", "model": model, "clusters": clusters, "links": links or [],
         "slo": {"ttft_s": 5.0, "tpot_s": 0.05},
         "workload": {"kind": "synthetic", "requests": 20, "arrival": {"process": "poisson", "rate_rps": 5},
                      "input_tokens": {"dist": "constant", "value": 1000},
                      "output_tokens": {"dist": "constant", "value": 10}}}
    d.update(extra)
    return copy.deepcopy(d)


