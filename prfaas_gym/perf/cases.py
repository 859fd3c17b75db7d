"""Step cases in the calibration-CSV format: ``model,phase,batch,tokens,context[,gpus][,ms_median]``.

Meaning (as ../shared/calibration/README.md): ``prefill`` = one forward pass over ``batch``
prompts of ``tokens`` tokens each, no cached prefix; ``decode`` = one step in which ``batch``
sequences, each holding ``context`` tokens of KV, produce one token.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .base import PerfInputError

REQUIRED = ("phase", "batch", "tokens", "context")
MEASURED = ("ms_median", "ms")
GPU_COLUMNS = ("gpus", "gpus_per_instance", "tp", "tensor_parallel")


@dataclass(frozen=True, slots=True)
class StepCase:
    """One step to predict (and optionally its measured time)."""

    model: str
    phase: str
    batch: int
    tokens: int
    context: int
    gpus: int = 1
    measured_ms: float | None = None
    line: int = 0
    row: dict[str, str] = field(default_factory=dict, compare=False)


def _int(value: str, col: str, where: str, minimum: int) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise PerfInputError(f"{where}: column {col!r}: not a number: {value!r}") from None
    if not math.isfinite(f) or f != int(f) or f < minimum:
        raise PerfInputError(f"{where}: column {col!r}: expected an integer >= {minimum}, got {value!r}")
    return int(f)


def read_cases(path: str | Path, *, model: str | None = None, need_measured: bool = False,
               stream: TextIO | None = None) -> list[StepCase]:
    """Parse a cases CSV; errors are :class:`PerfInputError` ``file:line: message``."""
    name = str(path)
    try:
        fh = stream if stream is not None else open(path, newline="")
    except OSError as exc:
        raise PerfInputError(f"{name}:0: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in cols]
        if model is None and "model" not in cols:
            missing.insert(0, "model")
        if missing:
            raise PerfInputError(f"{name}:1: missing column(s) {', '.join(missing)} (have: {', '.join(cols) or 'none'})")
        meas_col = next((c for c in MEASURED if c in cols), None)
        if need_measured and meas_col is None:
            raise PerfInputError(f"{name}:1: missing measurement column ms_median (or ms)")
        gpu_col = next((c for c in GPU_COLUMNS if c in cols), None)
        out = []
        for i, row in enumerate(reader, start=2):
            where = f"{name}:{i}"
            if None in row or any(v is None for v in row.values()):
                raise PerfInputError(f"{where}: wrong number of cells")
            phase = row["phase"].strip()
            if phase not in ("prefill", "decode"):
                raise PerfInputError(f"{where}: column 'phase': expected prefill or decode, got {phase!r}")
            measured = None
            if meas_col is not None and need_measured:
                try:
                    measured = float(row[meas_col])
                except ValueError:
                    raise PerfInputError(f"{where}: column {meas_col!r}: not a number: {row[meas_col]!r}") from None
                if not (math.isfinite(measured) and measured > 0):
                    raise PerfInputError(f"{where}: column {meas_col!r}: must be positive, got {row[meas_col]!r}")
            out.append(StepCase(
                model=model or row["model"].strip(),
                phase=phase,
                batch=_int(row["batch"], "batch", where, 1),
                tokens=_int(row["tokens"], "tokens", where, 1),
                context=_int(row["context"], "context", where, 0),
                gpus=_int(row[gpu_col], gpu_col, where, 1) if gpu_col else 1,
                measured_ms=measured,
                line=i,
                row=dict(row),
            ))
        if not out:
            raise PerfInputError(f"{name}:1: no data rows")
        return out


def case_seconds(stm: object, case: StepCase) -> float:
    """Predicted seconds of ``case`` on a step-time model."""
    if case.phase == "prefill":
        return stm.prefill_s(((case.tokens, 0),) * case.batch)  # type: ignore[attr-defined]
    return stm.decode_s(case.batch, case.batch * case.context)  # type: ignore[attr-defined]
