"""Helpers shared by CLI subcommands: data directory, JSON output, progress bars, tables."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

from prfaas_gym.scenario import DEFAULT_SCENARIO

DATA_DIR_ENV = "PRFAAS_DATA_DIR"


def add_data_dir_argument(p) -> None:
    """``--data-dir``: where scenario trace paths are resolved (default: $PRFAAS_DATA_DIR)."""
    p.add_argument("--data-dir", default=None,
                   help=f"directory trace paths are relative to (default: ${DATA_DIR_ENV})")


def resolve_data_dir(arg: str | None) -> Path | None:
    """The data directory from the flag, else the environment variable, else ``None``."""
    value = arg or os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    path = Path(value)
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {value}: no such directory")
    return path


def add_seeded_runs_arguments(p) -> None:
    """The scenario and the runs over seeds: ``SCENARIO --seeds --seed-offset --requests
    --duration-s`` (``compare``, ``sweep``, ``bound``; checked by :func:`check_run_args`)."""
    p.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                   help=f"scenario name or YAML path (default: {DEFAULT_SCENARIO})")
    p.add_argument("--seeds", type=int, default=3, help="number of paired seeds (default 3)")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--requests", type=int, default=None, help="requests per run")
    p.add_argument("--duration-s", type=float, default=None, help="arrivals stop after this simulated time")


def add_trust_pickle_argument(p) -> None:
    """``--trust-pickle``: allow SB3's pickle-based ``model.zip`` for a policy given on the
    command line (loading one runs code from the file; docs/security.md)."""
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow a pickle-based SB3 model.zip for a policy path given here (it can run "
                        "code: only for files you made); never applies to a scenario's router")


def check_run_args(args: Any) -> None:
    """Refuse non-positive ``--seeds``, ``--requests`` and ``--rate`` (those the command has)."""
    if args.seeds < 1:
        raise ValueError("--seeds: must be >= 1")
    if getattr(args, "seed_offset", 0) < 0:
        raise ValueError(f"--seed-offset: must be >= 0, got {args.seed_offset}")
    if getattr(args, "out", None):
        from pathlib import Path

        from prfaas_gym.atomic import check_destination

        check_destination(Path(args.out), None, "--out")
    if getattr(args, "requests", None) is not None and args.requests < 1:
        raise ValueError("--requests: must be >= 1")
    if getattr(args, "rate", None) is not None and not args.rate > 0:
        raise ValueError("--rate: must be > 0")


def jsonable(value: Any) -> Any:
    """NaN/inf become null so the output is strict JSON; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dump_json(obj: Any) -> str:
    """Deterministic strict JSON (insertion order kept; floats as repr)."""
    return json.dumps(jsonable(obj), allow_nan=False)


def progress_bar(total: int, desc: str, unit: str = "req") -> tuple[Callable[[int, int], None] | None,
                                                                  Callable[[], None]]:
    """A tqdm progress callback on an interactive stderr, else ``None``; plus a closer."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)

    def update(done: int, total_now: int) -> None:
        if total_now != bar.total:  # callers that learn the total as they go
            bar.total = total_now
        bar.update(done - bar.n)

    return update, bar.close


def format_table(rows: list[tuple[str, str]], title: str | None = None) -> str:
    """Two aligned columns under an optional title."""
    width = max((len(k) for k, _ in rows), default=0)
    lines = [title, "-" * len(title)] if title else []
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def fmt(value: Any) -> str:
    """Human formatting of one metric value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
        return f"{value:.3e}"
    return str(value)
