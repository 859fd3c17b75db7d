"""Metrics: summaries and per-request records of simulations (definitions: docs/metrics.md)."""

from prfaas_gym.metrics.summary import (
    SLO_KEYS, SUMMARY_KEYS, egress_by_direction, egress_series, gauge_arrays, measurement_window, request_arrays, role_seconds,
    sim_window, slo_metrics, summarize,
)

__all__ = [
    "SLO_KEYS", "SUMMARY_KEYS", "egress_by_direction", "egress_series", "gauge_arrays", "measurement_window", "request_arrays",
    "role_seconds", "sim_window", "slo_metrics", "summarize",
]
