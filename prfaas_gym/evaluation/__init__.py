"""Evaluation: paired-seed policy comparison, confidence intervals, load sweeps, egress
analysis, and (imported lazily) plotting helpers in ``prfaas_gym.evaluation.plots``."""

from prfaas_gym.evaluation.compare import Comparison, compare_policies, run_policy, split_policy
from prfaas_gym.evaluation.egress import BandwidthRecorder
from prfaas_gym.evaluation.stats import mean_ci, t_interval
from prfaas_gym.evaluation.sweep import CURVE_METRICS, load_sweep, max_sustained_rate

__all__ = [
    "CURVE_METRICS", "BandwidthRecorder", "Comparison", "compare_policies", "load_sweep",
    "max_sustained_rate", "mean_ci", "run_policy", "split_policy", "t_interval",
]
