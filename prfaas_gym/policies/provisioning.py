"""Shared estimates for provisioners: observed rates and stage throughputs (PAPER.md Eqs. 3-5)."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator


class IntervalProvisioner:
    """Base of provisioners that act every ``interval_s`` simulated seconds."""

    interval_s: float

    @classmethod
    def from_scenario(cls, scenario: Any, **params: Any):
        """Factory: ``interval_s`` defaults to the scenario's ``env.provision_interval_s``."""
        if "provision_interval_s" in scenario.env:
            params.setdefault("interval_s", scenario.env["provision_interval_s"])
        return cls(**params)


@dataclass(frozen=True)
class StageEstimate:
    """Observed demand and stage capacities of one PD cluster over a recent window.

    Attributes:
        arrival_rps: requests/s that arrived in the window for this cluster.
        th_prfaas_rps, th_pdp_rps, th_pdd_rps: Eqs. 3, 4, 5 with observed lengths.
        prefill_wait_s: predicted wait at the best local prefill instance now.
        decode_waiting: requests waiting for a decode slot now.
    """

    arrival_rps: float
    th_prfaas_rps: float
    th_pdp_rps: float
    th_pdd_rps: float
    prefill_wait_s: float
    decode_waiting: int

    @property
    def prefill_rps(self) -> float:
        """Th_prfaas + Th_pdp."""
        return self.th_prfaas_rps + self.th_pdp_rps


def recent_requests(view: "Simulator", window_s: float) -> list:
    """Requests that arrived in ``(now - window_s, now]`` and have been routed."""
    reqs = view.arrived  # in order of arrival (closed-loop turns arrive as service allows)
    now = view.now_s
    hi = bisect.bisect_right(reqs, now, key=lambda r: r.arrival_s)
    lo = bisect.bisect_right(reqs, now - window_s, key=lambda r: r.arrival_s)
    return [r for r in reqs[lo:hi] if r.prefill_cluster or r.rejected]


def estimate_stages(view: "Simulator", cluster: int, window_s: float) -> StageEstimate:
    """Eqs. 3-5 evaluated on what the cluster saw in the last ``window_s`` seconds."""
    pd = view.clusters[cluster]
    recent = [r for r in recent_requests(view, window_s) if view.home_cluster(r) == cluster]
    span = max(min(window_s, view.now_s), 1e-9)
    local = [r.input_tokens - r.cached_tokens for r in recent if r.prefill_cluster == pd.name]
    remote = [r for r in recent if r.prefill_cluster and r.prefill_cluster != pd.name]
    outs = [r.output_tokens for r in recent if not r.rejected]
    n_p = len(pd.prefill_instances)
    n_d = sum(1 for i in pd.instances if i.accepts_decode)
    l_short = sum(local) / len(local) if local else 2048.0
    th_pdp = n_p / pd.stm.prefill_s([(int(max(l_short, 1)), 0)]) if n_p else 0.0
    th_pf = 0.0
    if remote:
        l_long = sum(r.input_tokens - r.cached_tokens for r in remote) / len(remote)
        for c in view.prfaas_clusters:
            pc = view.clusters[c]
            n = len(pc.prefill_instances)
            if not n:
                continue
            th = n / pc.stm.prefill_s([(int(max(l_long, 1)), 0)])
            link = view.link_between(c, cluster)
            if link is not None:
                th = min(th, link.effective_bytes_s / (view.kv_bytes_per_token * l_long + view.state_bytes))
            th_pf += th
    l_out = sum(outs) / len(outs) if outs else 1024.0
    t_dec = pd.stm.decode_s(pd.decode_max_batch, int(pd.decode_max_batch * l_out))
    th_pdd = n_d * pd.decode_max_batch / (t_dec * l_out) if t_dec > 0 else math.inf
    return StageEstimate(
        arrival_rps=len(recent) / span,
        th_prfaas_rps=th_pf,
        th_pdp_rps=th_pdp,
        th_pdd_rps=th_pdd,
        prefill_wait_s=pd.min_prefill_wait_s(),
        decode_waiting=len(pd.decode_queue),
    )
