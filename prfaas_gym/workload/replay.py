"""Replay transforms on loaded traces: slot jitter, time scaling, target rate, cycling, cuts.

Order of operations (each optional): jitter inside quantisation slots -> multiply times by
``time_scale`` -> rescale to a mean rate of ``rate_rps`` -> cycle the trace until it holds ``n``
requests (or reaches ``duration_s``) -> keep the first ``n`` -> keep arrivals ``< duration_s``.
"""

from __future__ import annotations

import math

import numpy as np

from prfaas_gym.workload.columns import Columns
from prfaas_gym.workload.errors import WorkloadError


def mean_rate(arrival_s: np.ndarray) -> float:
    """Mean arrival rate ``(N - 1) / (t_last - t_first)`` (inverse mean inter-arrival time)."""
    if arrival_s.size < 2:
        return math.nan
    span = float(arrival_s.max() - arrival_s.min())
    return (arrival_s.size - 1) / span if span > 0 else math.inf


def sort_stable(cols: Columns) -> Columns:
    """Rows sorted by arrival time, ties kept in their original order."""
    order = np.argsort(cols.arrival_s, kind="stable")
    if np.all(order == np.arange(order.size)):
        return cols
    return cols.take(order)


def auto_slot(arrival_s: np.ndarray) -> float:
    """Slot width of a quantised trace, or 0.

    A trace counts as quantised when at most half as many distinct timestamps as rows exist; the
    slot is then the smallest gap between distinct timestamps (Mooncake conversation: ~3 s).
    """
    distinct = np.unique(arrival_s)
    if distinct.size < 2 or distinct.size > 0.5 * arrival_s.size:
        return 0.0
    return float(np.diff(distinct).min())


def jitter_in_slots(cols: Columns, jitter_s: float, rng: np.random.Generator) -> Columns:
    """Spread arrivals uniformly over ``[t, t + jitter_s)``, keeping trace order within a slot.

    ``cols`` must be sorted by arrival. Requests sharing a timestamp get sorted uniform offsets in
    their trace order, so a conversation's turns that share a slot stay in order.
    """
    if jitter_s <= 0 or len(cols) == 0:
        return cols
    u = rng.uniform(0.0, jitter_s, len(cols))
    order = np.lexsort((u, cols.arrival_s))
    cols.arrival_s = cols.arrival_s + u[order]
    return cols


def rescale_rate(cols: Columns, rate_rps: float) -> Columns:
    """Scale arrival times so the mean rate (see `mean_rate`) becomes ``rate_rps``."""
    current = mean_rate(cols.arrival_s)
    if not math.isfinite(current) or current <= 0:
        return cols
    t0 = float(cols.arrival_s.min())
    cols.arrival_s = t0 + (cols.arrival_s - t0) * (current / rate_rps)
    return cols


def cycle(cols: Columns, copies: int) -> Columns:
    """The trace repeated ``copies`` times back to back.

    Copy ``k`` is shifted by ``k * period`` where ``period = span + mean inter-arrival time``, so
    the seam looks like any other gap. Its hash ids are offset by ``k * (max id + 1)``: cycled
    copies are new users and never share prefix-cache blocks with earlier copies (the cache stays
    as cold as in the original trace).
    """
    if copies <= 1:
        return cols
    n = len(cols)
    t = cols.arrival_s
    span = float(t.max() - t.min()) if n else 0.0
    gap = span / (n - 1) if n > 1 and span > 0 else 1.0
    period = span + gap
    k = np.repeat(np.arange(copies), n)
    arrival = np.tile(t, copies) + k * period
    hashes = None
    if cols.hash_ids is not None:
        stride = 1 + max((max(h) for h in cols.hash_ids if h), default=-1)
        hashes = list(cols.hash_ids)
        for c in range(1, copies):
            off = c * stride
            hashes.extend(tuple(x + off for x in h) for h in cols.hash_ids)
    sessions = None
    if cols.session_id is not None:
        s_stride = int(cols.session_id.max()) + 1
        sessions = np.tile(cols.session_id, copies) + np.where(np.tile(cols.session_id, copies) >= 0,
                                                               k * s_stride, 0)
    parent = None
    if cols.parent is not None:
        tiled = np.tile(cols.parent, copies)
        parent = np.where(tiled >= 0, tiled + k * n, -1)
    return Columns(arrival, np.tile(cols.input_tokens, copies), np.tile(cols.output_tokens, copies),
                   hashes, sessions,
                   None if cols.turn is None else np.tile(cols.turn, copies), parent,
                   None if cols.think_s is None else np.tile(cols.think_s, copies))


def fit_length(cols: Columns, *, n: int | None, duration_s: float | None, repeat: bool,
               where: str, path: str) -> Columns:
    """Cycle (when ``repeat``) and cut ``cols`` to ``n`` requests and arrivals ``< duration_s``."""
    size = len(cols)
    copies = 1
    if n is not None and n > size:
        if not repeat:
            raise WorkloadError(
                f"{where}.requests: the trace {path} has only {size} requests, {n} asked for; "
                f"set {where}.repeat: true to cycle it")
        copies = max(copies, math.ceil(n / size))
    if duration_s is not None and repeat and n is None and size > 1:
        t = cols.arrival_s
        span = float(t.max() - t.min())
        if span > 0:
            period = span + span / (size - 1)
            copies = max(copies, math.ceil((duration_s - float(t.min())) / period))
    cols = cycle(cols, copies)
    if n is not None:
        cols = cols.head(n)
    if duration_s is not None:
        keep = int(np.searchsorted(cols.arrival_s, duration_s, side="left"))
        cols = cols.head(keep)
    return cols
