"""``build_workload``: a scenario's ``workload:`` mapping -> a sorted list of `Request`.

Kinds: ``synthetic`` (generators), ``mooncake``, ``azure`` and ``csv`` (trace replay) and
``servegen`` (ServeGen per-client parameter files). The schema is documented in docs/workloads.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prfaas_gym.workload import replay
from prfaas_gym.workload.arrivals import draw_arrivals
from prfaas_gym.workload.columns import Columns
from prfaas_gym.workload.errors import MAX_REQUESTS, WorkloadError
from prfaas_gym.workload.lengths import draw_lengths
from prfaas_gym.workload.request import Request
from prfaas_gym.workload.sessions import (
    PrefixSpec, build_sessions, closed_loop_arrivals, draw_think_times, infer_parents, turns_of,
)
from prfaas_gym.workload.spec import Fields
from prfaas_gym.workload.traces import TIME_UNITS, read_azure, read_generic_csv, read_mooncake, resolve_data_path

KINDS = ("synthetic", "mooncake", "azure", "csv", "servegen")
"""Known values of ``workload.kind``."""

DEFAULT_MAX_CONTEXT = 131072


def build_workload(
    spec: dict[str, Any],
    *,
    rng: np.random.Generator,
    data_dir: Path | str | None = None,
    n_requests: int | None = None,
    rate_rps: float | None = None,
    duration_s: float | None = None,
    source: str = "<scenario>",
) -> list[Request]:
    """Build the requests of a scenario's ``workload:`` mapping.

    Args:
        spec: the ``workload:`` mapping (see docs/workloads.md).
        rng: the only source of randomness; the result depends only on ``spec``, the overrides
            and this generator's state, so every policy sees the same workload under one seed.
        data_dir: base directory of relative trace paths (falls back to ``$PRFAAS_DATA_DIR``).
        n_requests: exactly this many requests (overrides ``workload.requests``; traces that are
            too short are cycled, see ``repeat``).
        rate_rps: target mean arrival rate (replaces a generator's rate, rescales a trace).
        duration_s: keep only arrivals ``< duration_s`` (overrides ``workload.duration_s``).
        source: the scenario's name, prefixed to spec error messages.

    Returns:
        Requests sorted by arrival time with dense ``rid`` 0..N-1.

    Raises:
        WorkloadError: naming ``source: workload.field`` or ``trace_path:line``.
    """
    f = Fields(spec, "workload", source)
    kind = f.choice("kind", KINDS)
    n = _override_int(f, "requests", n_requests, "n_requests")
    rate = _override_pos(f, "rate_rps", rate_rps, "rate_rps") if kind != "synthetic" else _check_pos(
        f, rate_rps, "rate_rps")
    duration = _override_pos(f, "duration_s", duration_s, "duration_s")
    cols = _BUILDERS[kind](f, rng, _as_path(data_dir), n, rate, duration)
    f.done()
    return to_requests(cols)


def to_requests(cols: Columns) -> list[Request]:
    """`Request` objects in arrival order (stable for ties) with dense ``rid``."""
    cols = replay.sort_stable(cols)
    n = len(cols)
    arrival = cols.arrival_s.tolist()
    ins = cols.input_tokens.tolist()
    outs = cols.output_tokens.tolist()
    hashes = cols.hash_ids if cols.hash_ids is not None else [None] * n
    sessions = cols.session_id.tolist() if cols.session_id is not None else [-1] * n
    if cols.parent is None:
        return [Request(i, arrival[i], ins[i], outs[i], hashes[i], sessions[i]) for i in range(n)]
    turns = cols.turn.tolist() if cols.turn is not None else [0] * n
    parents = cols.parent.tolist()
    think = cols.think_s.tolist() if cols.think_s is not None else [math.nan] * n
    return [Request(i, arrival[i], ins[i], outs[i], hashes[i], sessions[i], turns[i], parents[i], think[i])
            for i in range(n)]


# --------------------------------------------------------------------------------------------
# kinds
# --------------------------------------------------------------------------------------------

def _synthetic(f: Fields, rng: np.random.Generator, data_dir: Path | None, n: int | None,
               rate: float | None, duration: float | None) -> Columns:
    if n is None and duration is None:
        raise f.error("requests", "required for synthetic workloads (or set duration_s)")
    # independent sub-streams: changing the arrival process keeps the lengths, and vice versa
    arr_rng, in_rng, out_rng, pfx_rng, think_rng = rng.spawn(5)
    arrival = draw_arrivals(f.sub("arrival", required=rate is None), arr_rng, n=n, duration_s=duration,
                            rate_rps=rate)
    count = int(arrival.size)
    in_spec = f.sub("input_tokens", required=True)
    max_in = in_spec.mapping.get("max")
    new_tokens = draw_lengths(in_spec, in_rng, count, data_dir=data_dir)
    outputs = draw_lengths(f.sub("output_tokens", required=True), out_rng, count, data_dir=data_dir)
    if not f.has("prefix"):
        return Columns(arrival, new_tokens, outputs)
    default_cap = int(max_in) if isinstance(max_in, int) and max_in > 0 else DEFAULT_MAX_CONTEXT
    pf = f.sub("prefix")
    prefix = PrefixSpec.parse(pf, default_cap)
    s = build_sessions(prefix, new_tokens, outputs, pfx_rng)
    think = None
    if prefix.loop == "closed":
        arrival, think = closed_loop_arrivals(arrival, s.parent, draw_think_times(pf, think_rng, count))
    return Columns(arrival, s.input_tokens, outputs, s.hash_ids, s.session_id, s.turn, s.parent, think)


def _trace(reader: Callable[[Fields], Callable[[Path], Columns]], default_jitter: str | float):
    """A trace-replay builder; ``reader(f)`` checks its own options and returns ``path -> Columns``."""

    def build(f: Fields, rng: np.random.Generator, data_dir: Path | None, n: int | None,
              rate: float | None, duration: float | None) -> Columns:
        # check the whole spec before touching any file
        path_str = f.string("path", required=True)
        assert path_str is not None
        jitter = _jitter(f, default_jitter)
        time_scale = f.number("time_scale", 1.0, min=0.0, strict_min=True)
        repeat = f.boolean("repeat", True)
        out_spec = f.sub("output_tokens") if f.has("output_tokens") else None
        read = reader(f)
        f.done()
        path = resolve_data_path(path_str, data_dir, "workload.path", f.source)
        cols = replay.sort_stable(read(path))
        if jitter == "auto":
            jitter = replay.auto_slot(cols.arrival_s)
        jitter_rng, out_rng = rng.spawn(2)
        cols = replay.sort_stable(replay.jitter_in_slots(cols, float(jitter), jitter_rng))
        if time_scale != 1.0:
            cols.arrival_s = cols.arrival_s * time_scale
        if rate is not None:
            cols = replay.rescale_rate(cols, rate)
        cols = replay.fit_length(cols, n=n, duration_s=duration, repeat=repeat,
                                 where=f"{f.source}: workload", path=str(path))
        if out_spec is not None:
            cols.output_tokens = draw_lengths(out_spec, out_rng, len(cols), data_dir=data_dir)
        if cols.hash_ids is not None:  # multi-turn traces: the previous turn of each request
            cols.parent = infer_parents(cols.hash_ids, cols.input_tokens.tolist())
            cols.turn = turns_of(cols.parent)
        return cols
    return build


def _jitter(f: Fields, default: str | float) -> str | float:
    value = f.raw("jitter_s", default)
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise f.error("jitter_s", f"expected a number >= 0 or 'auto', got {value!r}")
    return float(value)


def _mooncake_reader(f: Fields) -> Callable[[Path], Columns]:
    return read_mooncake


def _azure_reader(f: Fields) -> Callable[[Path], Columns]:
    return read_azure


def _csv_reader(f: Fields) -> Callable[[Path], Columns]:
    cols = f.sub("columns")
    names = {k: cols.string(k) for k in ("arrival", "input", "output")}
    cols.done()
    unit = f.choice("time_unit", tuple(TIME_UNITS), default="s")
    return lambda path: read_generic_csv(path, arrival=names["arrival"], input=names["input"],
                                         output=names["output"], time_unit=unit)


def _servegen(f: Fields, rng: np.random.Generator, data_dir: Path | None, n: int | None,
              rate: float | None, duration: float | None) -> Columns:
    from prfaas_gym.workload.servegen import build_servegen

    return build_servegen(f, rng, data_dir, n, rate, duration)


_BUILDERS: dict[str, Callable[..., Columns]] = {
    "synthetic": _synthetic,
    "mooncake": _trace(_mooncake_reader, "auto"),
    "azure": _trace(_azure_reader, 0.0),
    "csv": _trace(_csv_reader, 0.0),
    "servegen": _servegen,
}


# --------------------------------------------------------------------------------------------
# overrides
# --------------------------------------------------------------------------------------------

def _as_path(data_dir: Path | str | None) -> Path | None:
    return None if data_dir is None else Path(data_dir)


def _override_int(f: Fields, key: str, value: int | None, arg: str) -> int | None:
    spec_value = f.integer(key, None, min=1)
    if spec_value is not None and spec_value > MAX_REQUESTS:
        raise f.error(key, f"{spec_value:,} requests exceeds the limit {MAX_REQUESTS:,}")
    if value is None:
        return spec_value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise WorkloadError(f"{arg}: expected an integer >= 1, got {value!r}")
    if value > MAX_REQUESTS:
        raise WorkloadError(f"{arg}: {int(value):,} requests exceeds the limit {MAX_REQUESTS:,}")
    return int(value)


def _override_pos(f: Fields, key: str, value: float | None, arg: str) -> float | None:
    spec_value = f.number(key, None, min=0.0, strict_min=True)
    return spec_value if value is None else _check_pos(f, value, arg)


def _check_pos(f: Fields, value: float | None, arg: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value <= 0:
        raise WorkloadError(f"{arg}: expected a number > 0, got {value!r}")
    return float(value)
