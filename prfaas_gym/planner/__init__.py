"""The paper's analytical planner (PAPER.md Eqs. 1-8): stage throughputs, the optimal routing
threshold and P/D split by grid search, the two baselines, and sweeps for plots.

Pure library: numpy only, no simulator. See ``docs/planner.md``.
"""

from .inputs import PlannerInputs, empirical_lengths, lognormal_lengths
from .model import (
    CONVENTIONS,
    GridResult,
    ThresholdStats,
    cluster_egress_bytes_s,
    evaluate_grid,
    kv_throughput_bytes_s,
    threshold_stats,
)
from .plan import DEPLOYMENTS, JSON_KEYS, Plan
from .search import (
    SplitSweep,
    ThresholdSweep,
    compare_deployments,
    default_thresholds,
    equal_gpu_instances,
    plan_homogeneous,
    plan_naive_heterogeneous,
    plan_prfaas_pd,
    sweep_split,
    sweep_threshold,
)

__all__ = [
    "CONVENTIONS",
    "DEPLOYMENTS",
    "JSON_KEYS",
    "GridResult",
    "Plan",
    "PlannerInputs",
    "SplitSweep",
    "ThresholdStats",
    "ThresholdSweep",
    "cluster_egress_bytes_s",
    "compare_deployments",
    "default_thresholds",
    "empirical_lengths",
    "equal_gpu_instances",
    "evaluate_grid",
    "kv_throughput_bytes_s",
    "lognormal_lengths",
    "plan_homogeneous",
    "plan_naive_heterogeneous",
    "plan_prfaas_pd",
    "sweep_split",
    "sweep_threshold",
    "threshold_stats",
]
