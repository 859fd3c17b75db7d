"""The one exception type of the workload package."""

from __future__ import annotations


class WorkloadError(ValueError):
    """A workload spec or trace file is invalid.

    The message always starts with where the problem is: ``path:line: ...`` for trace files,
    ``workload.field: ...`` (optionally prefixed by the scenario source) for spec fields.
    """


MAX_REQUESTS = 5_000_000
"""Requests one run may hold (about 1 KB each in memory): larger counts are refused up front."""
