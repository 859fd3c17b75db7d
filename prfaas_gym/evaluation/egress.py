"""Cross-DC egress against the bandwidth actually available, for bandwidth-dip analysis.

The simulator logs each link's aggregate rate but not its available bandwidth; a
:class:`BandwidthRecorder` attached before the run records every change of availability
(fluctuation, schedule, failure) so that egress can be judged against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class BandwidthRecorder:
    """Records ``(time, available bytes/s)`` of each link of ``sim`` (attach before ``run``).

    It wraps the links' ``set_available`` method on the instance (no simulator change); the
    wrapped call is forwarded unchanged, so results do not depend on recording.
    """

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.log: list[list[tuple[float, float]]] = []
        for k, link in enumerate(sim.links):
            self.log.append([(0.0, link.available_bytes_s)])
            inner = link.set_available

            def record(bytes_s: float, _inner=inner, _k=k, _link=link) -> None:
                _inner(bytes_s)
                self.log[_k].append((float(_link.env.now), float(_link.available_bytes_s)))

            link.set_available = record  # type: ignore[method-assign]

    def series(self, link: int, bin_s: float = 1.0, end_s: float | None = None,
               direction: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(bin starts, egress Gbps, available Gbps)`` of one direction of one link in
        ``bin_s`` bins (bin means of the step functions). Links are full duplex: each
        direction has the available bandwidth; ``direction`` 0 is the link's ``between[0]``
        to ``between[1]`` (the KV direction of the shipped scenarios), 1 the reverse."""
        ch = self.sim.links[link].channels[direction]
        end = float(end_s if end_s is not None else self.sim.now_s)
        edges = np.arange(0.0, end + bin_s, bin_s)
        eg = _bin_step(np.asarray(ch.rate_log_t), np.asarray(ch.rate_log_bytes_s), edges)
        t_av = np.asarray([t for t, _ in self.log[link]])
        v_av = np.asarray([v for _, v in self.log[link]])
        av = _bin_step(t_av, v_av, edges)
        return edges[:-1], eg * 8 / 1e9, av * 8 / 1e9

    def dip_report(self, link: int = 0, *, dip_below: float = 0.5, saturated: float = 0.95,
                   bin_s: float = 1.0) -> dict:
        """How the link fared while available bandwidth was under ``dip_below`` x nominal.

        Returns ``{"dip_s", "saturated_s", "saturated_fraction", "egress_over_available"}``:
        seconds in dips, seconds of those in which egress ran at >= ``saturated`` x the
        available bandwidth (offered KV exceeded capacity, transfers queued), their ratio,
        and mean egress / available during dips.
        """
        t, eg, av = self.series(link, bin_s)
        nominal = self.sim.links[link].nominal_bytes_s * 8 / 1e9
        dips = av < dip_below * nominal
        sat = dips & (eg >= saturated * av)
        n = int(dips.sum())
        return {
            "dip_s": n * bin_s,
            "saturated_s": int(sat.sum()) * bin_s,
            "saturated_fraction": float(sat.sum() / n) if n else 0.0,
            "egress_over_available": float((eg[dips] / np.maximum(av[dips], 1e-9)).mean()) if n else 0.0,
        }


def _bin_step(t: np.ndarray, v: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin means of the right-continuous step function ``v`` changing at times ``t``."""
    if edges.size < 2:
        return np.zeros(0)
    # integral of the step function at each edge
    t = np.asarray(t, float)
    v = np.asarray(v, float)
    cum_t = np.concatenate([t, [np.inf]])
    seg_int = np.concatenate([[0.0], np.cumsum(v * np.diff(np.minimum(cum_t, max(edges[-1], t[-1]))))])

    def integral(x: np.ndarray) -> np.ndarray:
        k = np.searchsorted(t, x, side="right") - 1
        k = np.clip(k, 0, t.size - 1)
        base = seg_int[k]
        return base + v[k] * (x - t[k])

    vals = integral(edges)
    return np.diff(vals) / np.diff(edges)
