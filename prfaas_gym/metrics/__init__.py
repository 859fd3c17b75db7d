"""Metrics: summaries and per-request records of simulations."""

from prfaas_gym.metrics.summary import (
    SUMMARY_KEYS, egress_series, gauge_arrays, request_arrays, role_seconds, summarize,
)

__all__ = ["SUMMARY_KEYS", "egress_series", "gauge_arrays", "request_arrays", "role_seconds", "summarize"]
