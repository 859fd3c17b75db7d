"""Workloads: the `Request` record, trace loaders and synthetic generators.

The entry point is `build_workload`, which turns a scenario's ``workload:`` mapping into a list of
requests sorted by arrival (see docs/workloads.md for the schema).
"""

from prfaas_gym.workload.build import KINDS, build_workload
from prfaas_gym.workload.errors import WorkloadError
from prfaas_gym.workload.request import BLOCK_TOKENS, Request
from prfaas_gym.workload.stats import workload_stats

__all__ = ["BLOCK_TOKENS", "KINDS", "Request", "WorkloadError", "build_workload", "workload_stats"]
