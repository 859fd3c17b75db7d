"""Trace-file readers: Mooncake JSONL, Azure LLM 2023 CSV and generic (Vidur/Splitwise) CSV.

Readers return raw `Columns` with arrival times in seconds relative to the first row (the
earliest arrival is ``t = 0``) and refuse bad rows with ``path:line: what is wrong``.
Replay options (jitter, scaling, cycling) live in `prfaas_gym.workload.replay`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from prfaas_gym.workload.columns import Columns
from prfaas_gym.workload.errors import MAX_REQUESTS, WorkloadError
from prfaas_gym.workload.request import BLOCK_TOKENS

DATA_DIR_ENV = "PRFAAS_DATA_DIR"
"""Environment variable consulted when no data directory is passed."""

TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
"""Known ``time_unit`` values of generic CSV traces (factor to seconds)."""

CSV_ARRIVAL_COLUMNS = ("arrived_at", "arrival_time", "arrival_timestamp", "arrival_s", "timestamp")
CSV_INPUT_COLUMNS = ("num_prefill_tokens", "prompt_size", "input_tokens", "input_length", "prompt_tokens")
CSV_OUTPUT_COLUMNS = ("num_decode_tokens", "token_size", "output_tokens", "output_length", "completion_tokens")
"""Column names tried, in order, when a generic CSV spec does not name its columns."""

MAX_TRACE_BYTES = 1 << 30
"""Largest trace file read (1 GiB, about 10M rows): traces are untrusted input (docs/security.md),
checked before reading; the row count is also capped at ``MAX_REQUESTS`` while reading."""


def resolve_data_path(path: str, data_dir: Path | str | None, where: str, source: str) -> Path:
    """Resolve a trace path: absolute as is, else relative to ``data_dir`` or ``$PRFAAS_DATA_DIR``."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        base = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
        if base is None:
            raise WorkloadError(
                f"{source}: {where}: '{path}' is relative to the data directory, which is not set; "
                f"pass --data-dir DIR (data_dir=...) or set {DATA_DIR_ENV}")
        p = Path(base).expanduser() / p
    if not p.is_file():
        raise WorkloadError(f"{source}: {where}: no such file: {p}")
    size = p.stat().st_size
    if size > MAX_TRACE_BYTES:
        raise WorkloadError(f"{source}: {where}: {p} has {size:,} bytes, over the limit {MAX_TRACE_BYTES:,}")
    return p


def _check_rows(path: Path, n: int) -> None:
    """Refuse a trace with more rows than one run may hold, while reading it."""
    if n > MAX_REQUESTS:
        raise WorkloadError(f"{path}:{n}: more than {MAX_REQUESTS:,} rows (the limit); cut the trace")


# --------------------------------------------------------------------------------------------
# Mooncake JSONL
# --------------------------------------------------------------------------------------------

def read_mooncake(path: Path) -> Columns:
    """Read a Mooncake FAST'25 JSONL trace.

    Each line: ``{"timestamp": ms, "input_length": int, "output_length": int, "hash_ids": [...]}``;
    other fields are ignored. ``len(hash_ids)`` must equal ``ceil(input_length / 512)``.
    """
    times: list[float] = []
    ins: list[int] = []
    outs: list[int] = []
    hashes: list[tuple[int, ...]] = []
    for where, row in _jsonl_rows(path):
        t = _field_number(row, "timestamp", where)
        n_in = _field_length(row, "input_length", where)
        n_out = _field_length(row, "output_length", where)
        ids = row.get("hash_ids")
        if ids is None:
            raise WorkloadError(f"{where}: missing field 'hash_ids'")
        if not isinstance(ids, list) or not all(type(h) is int and h >= 0 for h in ids):
            raise WorkloadError(f"{where}: 'hash_ids' must be a list of non-negative integers")
        want = -(-n_in // BLOCK_TOKENS)
        if len(ids) != want:
            raise WorkloadError(
                f"{where}: {len(ids)} hash_ids for input_length {n_in}; expected "
                f"ceil({n_in}/{BLOCK_TOKENS}) = {want}")
        times.append(t * 1e-3)
        ins.append(n_in)
        outs.append(n_out)
        hashes.append(tuple(ids))
    if not times:
        raise WorkloadError(f"{path}: empty trace")
    arrival = np.asarray(times, dtype=np.float64)
    return Columns(arrival - arrival.min(), np.asarray(ins, np.int64), np.asarray(outs, np.int64), hashes)


def _field_number(row: dict, key: str, where: str) -> float:
    if key not in row:
        raise WorkloadError(f"{where}: missing field '{key}'")
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise WorkloadError(f"{where}: '{key}' must be a number, got {value!r}")
    if value < 0:
        raise WorkloadError(f"{where}: '{key}' must be >= 0, got {value!r}")
    return float(value)


def _field_length(row: dict, key: str, where: str) -> int:
    if key not in row:
        raise WorkloadError(f"{where}: missing field '{key}'")
    return _length(row[key], key, where)


def _length(value: object, key: str, where: str) -> int:
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise WorkloadError(f"{where}: '{key}' must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value != int(value):
        raise WorkloadError(f"{where}: '{key}' must be an integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise WorkloadError(f"{where}: '{key}' must be >= 1, got {value}")
    return value


# --------------------------------------------------------------------------------------------
# CSV (Azure LLM 2023 and generic)
# --------------------------------------------------------------------------------------------

def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise WorkloadError(f"{path}:1: empty file (expected a header row)")
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) > MAX_REQUESTS:
                _check_rows(path, len(rows) + 1)
    return [h.strip() for h in header], rows


def _column_index(path: Path, header: list[str], name: str) -> int:
    try:
        return header.index(name)
    except ValueError:
        raise WorkloadError(f"{path}:1: missing column '{name}' (columns: {', '.join(header)})") from None


def _lengths_from(path: Path, rows: list[list[str]], idx: int, name: str, width: int) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        where = f"{path}:{i + 2}"
        if len(row) != width:
            raise WorkloadError(f"{where}: expected {width} fields, got {len(row)}")
        out[i] = _length(row[idx].strip(), name, where)
    return out


def read_azure(path: Path) -> Columns:
    """Read an Azure LLM inference trace (``TIMESTAMP,ContextTokens,GeneratedTokens``).

    ``TIMESTAMP`` strings (``YYYY-MM-DD HH:MM:SS.fffffff``) become seconds after the earliest row.
    """
    header, rows = _read_csv(path)
    if not rows:
        raise WorkloadError(f"{path}: empty trace")
    width = len(header)
    i_t = _column_index(path, header, "TIMESTAMP")
    i_in = _column_index(path, header, "ContextTokens")
    i_out = _column_index(path, header, "GeneratedTokens")
    ins = _lengths_from(path, rows, i_in, "ContextTokens", width)
    outs = _lengths_from(path, rows, i_out, "GeneratedTokens", width)
    stamps = [row[i_t].strip() for row in rows]
    try:
        ns = np.array(stamps, dtype="datetime64[ns]").astype(np.int64)
    except ValueError:
        for i, s in enumerate(stamps):
            try:
                np.datetime64(s, "ns")
            except ValueError:
                raise WorkloadError(
                    f"{path}:{i + 2}: TIMESTAMP {s!r} is not 'YYYY-MM-DD HH:MM:SS.fffffff'") from None
        raise  # pragma: no cover - the loop above always finds the bad row
    arrival = (ns - ns.min()).astype(np.float64) * 1e-9
    return Columns(arrival, ins, outs)


def read_generic_csv(path: Path, *, arrival: str | None, input: str | None, output: str | None,
                     time_unit: str) -> Columns:
    """Read a Vidur/Splitwise-style CSV with numeric arrival-time and length columns.

    Column names default to the first match in ``CSV_*_COLUMNS``; times are in ``time_unit``.
    """
    header, rows = _read_csv(path)
    if not rows:
        raise WorkloadError(f"{path}: empty trace")
    width = len(header)
    names = []
    for given, candidates, what in ((arrival, CSV_ARRIVAL_COLUMNS, "arrival"),
                                    (input, CSV_INPUT_COLUMNS, "input"),
                                    (output, CSV_OUTPUT_COLUMNS, "output")):
        if given is None:
            found = [c for c in candidates if c in header]
            if not found:
                raise WorkloadError(
                    f"{path}:1: no {what} column (tried {', '.join(candidates)}; columns: "
                    f"{', '.join(header)}); name it in workload.columns.{what}")
            given = found[0]
        names.append(given)
    i_t, i_in, i_out = (_column_index(path, header, n) for n in names)
    ins = _lengths_from(path, rows, i_in, names[1], width)
    outs = _lengths_from(path, rows, i_out, names[2], width)
    times = np.empty(len(rows), dtype=np.float64)
    for i, row in enumerate(rows):
        try:
            t = float(row[i_t])
        except ValueError:
            raise WorkloadError(f"{path}:{i + 2}: '{names[0]}' must be a number, got {row[i_t]!r}") from None
        if not math.isfinite(t) or t < 0:
            raise WorkloadError(f"{path}:{i + 2}: '{names[0]}' must be a finite number >= 0, got {row[i_t]!r}")
        times[i] = t
    times *= TIME_UNITS[time_unit]
    return Columns(times - times.min(), ins, outs)


def _jsonl_rows(path: Path):
    """Yield ``("file:line", object)`` for each non-blank line; malformed lines raise."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if lineno > MAX_REQUESTS:
                _check_rows(path, lineno)
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise WorkloadError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(row, dict):
                raise WorkloadError(f"{where}: expected a JSON object, got {type(row).__name__}")
            yield where, row


def read_column(path: Path, column: str) -> np.ndarray:
    """All values of one numeric column (CSV) or field (JSONL) of a trace, as int64 lengths."""
    if path.suffix == ".jsonl":
        values = [_field_length(row, column, where) for where, row in _jsonl_rows(path)]
        if not values:
            raise WorkloadError(f"{path}: empty trace")
        return np.asarray(values, dtype=np.int64)
    header, rows = _read_csv(path)
    if not rows:
        raise WorkloadError(f"{path}: empty trace")
    return _lengths_from(path, rows, _column_index(path, header, column), column, len(header))
