"""ServeGen (Alibaba Bailian) per-client workload models -> requests.

A client is two files sharing a prefix (``path: servegen/language/m-large/chunk-61``):

* ``<path>-trace.csv`` (no header): one row per window, ``window_start_s, rate_rps, cv, pattern,
  shape, scale`` with ``pattern`` ``Gamma``, ``Weibull`` or empty (idle window).
* ``<path>-dataset.json``: ``{window_start_s: {field: "<python dict literal {value: prob}>"}}``,
  length PMFs per (6-hour) window.

As in ServeGen's generator, inter-arrival times in a window are drawn from
``Gamma(shape, scale)`` or ``Weibull(shape, scale)`` and rescaled so that the window's mean rate
is ``rate_rps``. Input/output lengths are drawn from the PMFs of the dataset window containing
the arrival. Multimodal clients without ``input_tokens`` use the sum of ``text_tokens``,
``image_tokens``, ``audio_tokens`` and ``video_tokens``. Generation starts at the window holding
``start_s`` (default 0) and wraps around at the end of the file.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np

from prfaas_gym.workload.columns import Columns
from prfaas_gym.workload.errors import WorkloadError
from prfaas_gym.workload.spec import Fields
from prfaas_gym.workload.traces import resolve_data_path

_MODALITIES = ("text_tokens", "image_tokens", "audio_tokens", "video_tokens")


def read_windows(path: Path) -> np.ndarray:
    """Rows ``(start_s, rate_rps, kind, shape, scale)`` with kind 0 idle, 1 Gamma, 2 Weibull."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            where = f"{path}:{lineno}"
            if len(parts) != 6:
                raise WorkloadError(f"{where}: expected 6 fields "
                                    f"(start_s, rate, cv, pattern, shape, scale), got {len(parts)}")
            try:
                start, rate, _cv, shape, scale = (float(parts[i]) for i in (0, 1, 2, 4, 5))
            except ValueError:
                raise WorkloadError(f"{where}: non-numeric field in {line.strip()!r}") from None
            kind = {"": 0, "Gamma": 1, "Weibull": 2}.get(parts[3])
            if kind is None:
                raise WorkloadError(f"{where}: unknown pattern {parts[3]!r} (known: Gamma, Weibull, empty)")
            if rate < 0 or (kind and rate > 0 and (shape <= 0 or scale <= 0)):
                raise WorkloadError(f"{where}: rate must be >= 0 and shape, scale > 0")
            if rate == 0:
                kind = 0
            rows.append((start, rate, kind, shape, scale))
    if not rows:
        raise WorkloadError(f"{path}: empty trace")
    arr = np.asarray(rows, dtype=np.float64)
    if np.any(np.diff(arr[:, 0]) <= 0):
        raise WorkloadError(f"{path}: window starts must increase")
    return arr


class _Pmfs:
    """Lazily parsed per-window PMFs of a ServeGen dataset JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise WorkloadError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
        if not isinstance(raw, dict) or not raw:
            raise WorkloadError(f"{path}: expected a non-empty object of windows")
        try:
            self.starts = np.array(sorted(float(k) for k in raw))
        except ValueError:
            raise WorkloadError(f"{path}: window keys must be numbers (seconds)") from None
        self.raw = {float(k): v for k, v in raw.items()}
        self.cache: dict[tuple[float, str], tuple[np.ndarray, np.ndarray] | None] = {}

    def pmf(self, start: float, field: str) -> tuple[np.ndarray, np.ndarray] | None:
        key = (start, field)
        if key not in self.cache:
            text = self.raw[start].get(field) if isinstance(self.raw[start], dict) else None
            if text is None:
                self.cache[key] = None
            else:
                try:
                    d = ast.literal_eval(text) if isinstance(text, str) else text
                    values = np.fromiter((float(k) for k in d), dtype=np.float64)
                    probs = np.fromiter((float(v) for v in d.values()), dtype=np.float64)
                except (ValueError, SyntaxError, TypeError, AttributeError):
                    raise WorkloadError(f"{self.path}: window {start:g} field '{field}': "
                                        "not a {value: probability} dict") from None
                if values.size == 0 or np.any(probs < 0) or probs.sum() <= 0:
                    raise WorkloadError(f"{self.path}: window {start:g} field '{field}': empty or negative PMF")
                self.cache[key] = (values, probs / probs.sum())
        return self.cache[key]


def build_servegen(f: Fields, rng: np.random.Generator, data_dir: Path | None, n: int | None,
                   rate: float | None, duration: float | None) -> Columns:
    """The ``kind: servegen`` builder (see the module docstring)."""
    prefix = f.string("path", required=True)
    assert prefix is not None
    start_s = f.number("start_s", 0.0, min=0.0)
    assert start_s is not None
    f.done()
    trace = resolve_data_path(prefix + "-trace.csv", data_dir, "workload.path", f.source)
    dataset = resolve_data_path(prefix + "-dataset.json", data_dir, "workload.path", f.source)
    if n is None and duration is None:
        raise f.error("requests", "required for servegen workloads (or set duration_s)")
    windows = read_windows(trace)
    starts = windows[:, 0]
    width = float(np.median(np.diff(starts))) if starts.size > 1 else 600.0
    ends = np.append(starts[1:], starts[-1] + width)
    span = float(ends[-1] - starts[0])
    mean = float(np.sum(windows[:, 1] * (ends - starts)) / span)
    if mean <= 0:
        raise WorkloadError(f"{trace}: every window is idle")
    factor = 1.0 if rate is None else rate / mean
    arr_rng, len_rng = rng.spawn(2)

    # arrivals, window by window from the one holding start_s, wrapping around
    first = max(int(np.searchsorted(starts, start_s, side="right")) - 1, 0)
    parts: list[np.ndarray] = []
    total, w, offset = 0, first, 0.0
    t0 = float(starts[first])
    while True:
        lo = offset + starts[w] - t0
        hi = offset + ends[w] - t0
        if duration is not None and lo >= duration:
            break
        r = windows[w, 1] * factor
        kind = int(windows[w, 2])
        if kind and r > 0:
            parts.append(lo + _window_arrivals(arr_rng, r, kind, windows[w, 3], windows[w, 4], hi - lo))
            total += parts[-1].size
        if n is not None and total >= n:
            break
        w += 1
        if w == starts.size:
            w, offset = 0, offset + span
    arrival = np.concatenate(parts) if parts else np.empty(0)
    if n is not None:
        arrival = arrival[:n]
    if duration is not None:
        arrival = arrival[arrival < duration]

    pmfs = _Pmfs(dataset)
    # dataset window of each arrival (absolute trace time, wrapped into the dataset's span)
    abs_t = t0 + arrival
    ds_span = pmfs.starts[-1] - pmfs.starts[0] + (np.median(np.diff(pmfs.starts)) if pmfs.starts.size > 1
                                                    else span)
    rel = np.mod(abs_t - pmfs.starts[0], ds_span)
    which = np.clip(np.searchsorted(pmfs.starts - pmfs.starts[0], rel, side="right") - 1, 0, None)
    ins = np.zeros(arrival.size)
    outs = np.zeros(arrival.size)
    for k in np.unique(which).tolist():
        rows = np.flatnonzero(which == k)
        start = float(pmfs.starts[k])
        inp = pmfs.pmf(start, "input_tokens")
        fields = ["input_tokens"] if inp is not None else [m for m in _MODALITIES if pmfs.pmf(start, m)]
        if not fields:
            raise WorkloadError(f"{dataset}: window {start:g} has no input_tokens (or *_tokens) PMF")
        for field in fields:
            values, probs = pmfs.pmf(start, field)  # type: ignore[misc]
            ins[rows] += len_rng.choice(values, size=rows.size, p=probs)
        out = pmfs.pmf(start, "output_tokens")
        if out is None:
            raise WorkloadError(f"{dataset}: window {start:g} has no output_tokens PMF")
        outs[rows] = len_rng.choice(out[0], size=rows.size, p=out[1])
    return Columns(arrival, np.maximum(np.rint(ins), 1).astype(np.int64),
                   np.maximum(np.rint(outs), 1).astype(np.int64))


def _window_arrivals(rng: np.random.Generator, rate: float, kind: int, shape: float, scale: float,
                     width: float) -> np.ndarray:
    if kind == 1:
        raw_mean = shape * scale
        draw = lambda m: rng.gamma(shape, scale, m)  # noqa: E731
    else:
        raw_mean = scale * math.gamma(1.0 + 1.0 / shape)
        draw = lambda m: scale * rng.weibull(shape, m)  # noqa: E731
    stretch = (1.0 / rate) / raw_mean
    out: list[np.ndarray] = []
    t = 0.0
    while t < width:
        expected = rate * (width - t)
        m = int(expected + 5.0 * math.sqrt(expected) + 16)
        times = t + np.cumsum(draw(m) * stretch)
        out.append(times)
        t = float(times[-1])
    times = np.concatenate(out)
    return times[times < width]
