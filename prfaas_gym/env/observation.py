"""Observation encoders: frozen snapshots -> normalised ``float32`` vectors in ``[0, 1]``.

These are the public, documented functions the exported router reuses unchanged: they take
only :class:`~prfaas_gym.env.snapshot.ClusterSnapshot`, :class:`RequestFeatures` and
:class:`WindowStats` (plain numbers), never a simulator.

Unbounded quantities are squashed with ``x / (x + scale)`` (0 at 0, 0.5 at ``scale``, -> 1),
token counts with ``log2(1 + n) / 17`` clipped to 1 (17 = log2 of 128K tokens). ``inf``
waits (no prefill instance) and ``inf`` service times (a prefix pull over a link that is
down) encode as 1. No NaN or inf ever leaves an encoder: a non-finite input that slips
through the per-feature rules (NaN from a live metrics feed, say) is caught by one sum
check and mapped to 1 (NaN, +inf) or 0 (-inf), so every entry is finite and in [0, 1].

Routing observation (``encode_routing_obs``), S slots (reject excluded), C clusters, L links:

=======================  =====  =========================================  ===========  ======
feature                  count  meaning                                    unit         bounds
=======================  =====  =========================================  ===========  ======
``slot_open[s]``         S      slot accepts a request now                 0/1          [0, 1]
``slot_queue[s]``        S      q / (q + 4), q = requests queued+running    requests     [0, 1]
``slot_wait[s]``         S      w / (w + TTFT SLO), predicted queue wait   s            [0, 1]
``slot_ttft[s]``         S      t / (t + TTFT SLO), t = wait + service     s            [0, 1]
``cached_frac[c]``       C      usable cached prefix / prompt length       fraction     [0, 1]
``uncached_len[c]``      C      log2(1 + uncached tokens) / 17             tokens       [0, 1]
``prefill_frac[c]``      C      instances up in prefill role / instances   fraction     [0, 1]
``decode_mem[c]``        C      decode KV memory used / capacity           fraction     [0, 1]
``decode_batch[c]``      C      decoding sequences / decode slots          fraction     [0, 1]
``decode_queue[c]``      C      q / (q + 8), requests awaiting decode      requests     [0, 1]
``link_bw[l]``           L      usable bandwidth / nominal                 fraction     [0, 1]
``link_util[l]``         L      aggregate rate / nominal                   fraction     [0, 1]
``link_flows[l]``        L      f / (f + 8), concurrent transfers          flows        [0, 1]
``input_len``            1      log2(1 + prompt tokens) / 17               tokens       [0, 1]
``output_len``           1      log2(1 + output tokens) / 17 (0: unknown;  tokens       [0, 1]
                                the env's default, see oracle_features)
=======================  =====  =========================================  ===========  ======

Control observation (``encode_control_obs``, Threshold/Provisioning/DualTimescale): the same
``slot_open``, ``slot_queue``, ``slot_wait`` (3S), ``prefill_frac``, ``decode_mem``,
``decode_batch``, ``decode_queue`` (4C), the link block (3L), then 6 window features
(:class:`WindowStats`): ``arrival_rate`` r / (r + ref rate), ``mean_input_len`` (log2 tokens / 17),
``long_frac`` (arrivals with uncached length above the threshold), ``good_frac`` (ended
requests meeting both SLOs), ``reject_frac`` (ended requests rejected), ``threshold``
(current threshold / max threshold).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from prfaas_gym.env.snapshot import ClusterSnapshot, RequestFeatures

LOG_TOKENS_MAX = 17.0
QUEUE_SCALE = 4.0
DECODE_QUEUE_SCALE = 8.0
FLOW_SCALE = 8.0
WINDOW_FEATURES = ("arrival_rate", "mean_input_len", "long_frac", "good_frac", "reject_frac", "threshold")

_log2 = math.log2
_INF = math.inf
_add = operator.add


def _tok(n: float) -> float:
    v = _log2(1.0 + n) / LOG_TOKENS_MAX if n > 0 else 0.0
    return v if v < 1.0 else 1.0


def _frac(x: float) -> float:
    return x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0)  # NaN -> 0


def _finish(out: list[float]) -> np.ndarray:
    """``out`` as ``float32``; non-finite entries mapped into [0, 1] (NaN/+inf -> 1, -inf -> 0).

    The check is one float sum (NaN or inf anywhere makes ``s - s`` NaN), so the common,
    finite case costs well under a microsecond."""
    arr = np.array(out, dtype=np.float32)
    s = sum(out)
    if s - s != 0.0:
        arr = np.clip(np.nan_to_num(arr, nan=1.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return arr


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What happened during the last control interval (for the control envs).

    Attributes:
        arrival_rps: arrivals per second in the window.
        ref_rps: the rate that encodes as 0.5 (the scenario's nominal rate).
        mean_input_tokens: mean prompt length of the window's arrivals (0 if none).
        long_frac: fraction of arrivals whose uncached length exceeded the threshold.
        good_frac: fraction of requests that ended in the window and met both SLOs.
        reject_frac: fraction of requests that ended in the window by rejection.
        threshold_frac: current routing threshold / the env's maximum threshold.
    """

    arrival_rps: float
    ref_rps: float
    mean_input_tokens: float
    long_frac: float
    good_frac: float
    reject_frac: float
    threshold_frac: float


def routing_obs_size(n_slots: int, n_clusters: int, n_links: int) -> int:
    """Length of the routing observation (``n_slots`` excludes reject)."""
    return 4 * n_slots + 6 * n_clusters + 3 * n_links + 2


def control_obs_size(n_slots: int, n_clusters: int, n_links: int) -> int:
    """Length of the control observation."""
    return 3 * n_slots + 4 * n_clusters + 3 * n_links + len(WINDOW_FEATURES)


def routing_feature_names(slot_labels: list[str], cluster_names: list[str], link_names: list[str]) -> list[str]:
    """Names of the routing observation's entries, in order."""
    names = [f"{f}[{s}]" for f in ("slot_open", "slot_queue", "slot_wait", "slot_ttft") for s in slot_labels]
    names += [f"{f}[{c}]" for f in ("cached_frac", "uncached_len", "prefill_frac", "decode_mem",
                                     "decode_batch", "decode_queue") for c in cluster_names]
    names += [f"{f}[{l}]" for f in ("link_bw", "link_util", "link_flows") for l in link_names]
    return names + ["input_len", "output_len"]


def control_feature_names(slot_labels: list[str], cluster_names: list[str], link_names: list[str]) -> list[str]:
    """Names of the control observation's entries, in order."""
    names = [f"{f}[{s}]" for f in ("slot_open", "slot_queue", "slot_wait") for s in slot_labels]
    names += [f"{f}[{c}]" for f in ("prefill_frac", "decode_mem", "decode_batch", "decode_queue")
              for c in cluster_names]
    names += [f"{f}[{l}]" for f in ("link_bw", "link_util", "link_flows") for l in link_names]
    return names + list(WINDOW_FEATURES)


def _common(snap: ClusterSnapshot, ttft_slo: float) -> list[float]:
    """slot_open + slot_queue + slot_wait."""
    out = list(snap.slot_open)
    out += [x / (x + QUEUE_SCALE) for x in snap.slot_queue]
    out += [(x / (x + ttft_slo) if x > 0.0 else 0.0) if x != _INF else 1.0 for x in snap.slot_wait_s]
    return out


def _decode_links(snap: ClusterSnapshot, out: list[float]) -> None:
    """prefill_frac, decode_mem, decode_batch, decode_queue, then the link block."""
    # plain loops, not comprehensions: these sequences hold one or two entries, and a
    # comprehension's setup (a new function frame on Python < 3.12) costs more than its work
    out += snap.cluster_prefill_frac
    # clip as ``x if 0 < x < 1 else ...``: a NaN fails both comparisons and becomes 0
    for x in snap.cluster_decode_mem_frac:
        out.append(x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    for x in snap.cluster_decode_batch_frac:
        out.append(x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    for q in snap.cluster_decode_queue:
        out.append(q / (q + DECODE_QUEUE_SCALE))
    for x in snap.link_bw_frac:
        out.append(x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    for x in snap.link_util:
        out.append(x if 0.0 < x < 1.0 else (1.0 if x >= 1.0 else 0.0))
    for f in snap.link_flows:
        out.append(f / (f + FLOW_SCALE))


def encode_routing_obs(snap: ClusterSnapshot, req: RequestFeatures) -> np.ndarray:
    """Encode the routing observation (layout and bounds in the module docstring)."""
    # runs once per env step: one output list filled in place with plain loops (see
    # _decode_links), the per-slot wait and ttft features in one pass
    slo = snap.ttft_slo_s
    out = list(snap.slot_open)
    for x in snap.slot_queue:
        out.append(x / (x + QUEUE_SCALE))
    ttft: list[float] = []
    for x, sv in zip(snap.slot_wait_s, req.slot_service_s):
        if not x < _INF:  # no instance (inf) or a NaN feed: the worst wait
            out.append(1.0)
            ttft.append(1.0)
        else:
            if x < 0.0:
                x = 0.0
            out.append(x / (x + slo))
            t = x + sv
            # an infinite service time (a pull over a link that is down) is the worst ttft;
            # inf / (inf + slo) would be NaN (#16)
            ttft.append((t / (t + slo) if t > 0.0 else 0.0) if t < _INF else 1.0)
    out += ttft
    inp = req.input_tokens
    cached = req.cached_tokens
    if inp > 0:
        inv = 1.0 / inp
        for c in cached:
            out.append(c * inv if c < inp else 1.0)
    else:
        out += [0.0] * len(cached)
    for c in cached:
        out.append(_tok(inp - c))
    _decode_links(snap, out)
    out.append(_tok(inp))
    out.append(_tok(req.output_tokens))
    return _finish(out)


def encode_control_obs(snap: ClusterSnapshot, win: WindowStats) -> np.ndarray:
    """Encode the control observation (layout and bounds in the module docstring)."""
    out = _common(snap, snap.ttft_slo_s)
    _decode_links(snap, out)
    r = win.arrival_rps
    out += [
        r / (r + win.ref_rps) if r > 0 else 0.0,
        _tok(win.mean_input_tokens),
        _frac(win.long_frac),
        _frac(win.good_frac),
        _frac(win.reject_frac),
        _frac(win.threshold_frac),
    ]
    return _finish(out)
