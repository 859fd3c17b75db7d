"""``prfaas-adaptive``: the paper's bandwidth- and queue-aware threshold scheduler.

Three mechanisms on top of the static length rule (PAPER.md, Routing):

1. **Re-optimised threshold.** Every ``reoptimise_every`` requests, ``t`` is re-chosen on the
   window of recent post-prefix-match lengths so that Eq. 6 (without the decode term) is
   maximised: ``max_t min(Th_prfaas / p, Th_pdp / (1 - p))``, with ``Th_prfaas`` limited by
   the link's *current* effective bandwidth (Eq. 3) and prefill times from the clusters' own
   step-time models (representative lengths, the planner's default convention).
2. **Bandwidth budget.** A PrfaaS instance prefilling a request of length ``l`` emits KV at
   ``Phi_kv(l) = S_kv(l) / T_prefill(l)`` (Eq. 1), so the link carries at most
   ``k_max = headroom x B_effective / Phi_kv`` concurrent offloaded prefills without
   queueing KV. When the KV streams on the link (prefilling or still draining) plus the
   queued PrfaaS jobs would exceed ``k_max`` the request stays local (``t`` is effectively infinite for it): this is what
   keeps egress under the link when its bandwidth dips.
3. **Short-timescale pressure.** ``t`` is raised when PrfaaS egress nears the link ceiling
   (utilisation of the effective bandwidth above ``egress_high``) or the PrfaaS prefill queue
   is longer than the local one by more than ``queue_slack_s``; lowered (down to
   ``min_factor``) when the local PD-P queue is the long one and the link is not busy.
4. **Cache placement.** When bandwidth is scarce each cluster is judged on its own cache;
   when abundant (egress utilisation below ``abundant_below``) the longest prefix anywhere
   counts and is pulled to the prefill cluster (``RouteDecision.pull_from``).
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np

from prfaas_gym.policies.base import PolicyBase
from prfaas_gym.policies.threshold import resolve_threshold
from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class AdaptiveRouter(PolicyBase):
    """The paper's global scheduler (see the module docstring).

    Args:
        threshold_tokens: starting threshold (tokens); re-optimised as lengths arrive.
        window: recent post-prefix-match lengths kept for re-optimisation.
        reoptimise_every: requests between re-optimisations (0: never).
        egress_high: egress/effective-bandwidth ratio above which ``t`` is raised.
        abundant_below: egress/effective-bandwidth ratio under which bandwidth counts as
            abundant (global-best prefix with pulls).
        max_factor, min_factor: bounds of the multiplicative pressure on ``t``.
        queue_slack_s: tolerated excess of PrfaaS predicted wait over local PD-P wait.
        bandwidth_headroom: fraction of the effective link bandwidth offloads may plan on
            (``inf``: no bandwidth budget).
    """

    name = "prfaas-adaptive"

    def __init__(
        self,
        threshold_tokens: float = 19_400,
        *,
        window: int = 512,
        reoptimise_every: int = 32,
        egress_high: float = 0.8,
        abundant_below: float = 0.5,
        max_factor: float = 8.0,
        min_factor: float = 0.5,
        queue_slack_s: float = 2.0,
        bandwidth_headroom: float = 1.0,
    ) -> None:
        if threshold_tokens < 0:
            raise ValueError("threshold_tokens: must be >= 0")
        if not 0 < egress_high <= 1:
            raise ValueError("egress_high: must be in (0, 1]")
        if window < 8:
            raise ValueError("window: must be >= 8")
        self.base_threshold_tokens = float(threshold_tokens)
        self.threshold_tokens = float(threshold_tokens)
        self.window = int(window)
        self.reoptimise_every = int(reoptimise_every)
        self.egress_high = float(egress_high)
        self.abundant_below = float(abundant_below)
        self.max_factor = float(max_factor)
        self.min_factor = float(min_factor)
        self.queue_slack_s = float(queue_slack_s)
        if not bandwidth_headroom > 0:
            raise ValueError("bandwidth_headroom: must be > 0")
        self.bandwidth_headroom = float(bandwidth_headroom)
        self._lengths: deque[int] = deque(maxlen=self.window)
        self._seen = 0
        self.last_factor = 1.0
        self.last_mode = "scarce"

    @classmethod
    def from_scenario(cls, scenario: Any, threshold_tokens: Any = None, **params: Any) -> "AdaptiveRouter":
        """Factory: starting threshold from the scenario (or ``"plan"``: the planner's)."""
        return cls(resolve_threshold(scenario, threshold_tokens), **params)

    # ------------------------------------------------------------------ signals
    @staticmethod
    def _egress_pressure(view: "Simulator", home: int, prfaas: int) -> float:
        link = view.link_between(prfaas, home)
        if link is None:
            return 0.0
        eff = link.effective_bytes_s
        if eff <= 0:
            return math.inf
        return link.throughput_bytes_s / eff

    def _pressure_factor(self, view: "Simulator", home: int, prfaas: int, egress: float) -> float:
        factor = 1.0
        if egress > self.egress_high:
            # linear ramp from 1 at the watermark to max_factor at saturation
            span = max(1.0 - self.egress_high, 1e-6)
            factor *= 1.0 + (self.max_factor - 1.0) * min((egress - self.egress_high) / span, 1.0)
        wait_pf = view.clusters[prfaas].min_prefill_wait_s()
        wait_pd = view.clusters[home].min_prefill_wait_s()
        excess = wait_pf - wait_pd
        if excess > self.queue_slack_s:
            factor *= min(1.0 + (excess - self.queue_slack_s) / max(self.queue_slack_s, 1e-6), self.max_factor)
        elif -excess > self.queue_slack_s and egress < self.egress_high:
            factor *= max(self.min_factor, 1.0 - (-excess - self.queue_slack_s) / (4 * self.queue_slack_s))
        return min(max(factor, self.min_factor), self.max_factor)

    def over_budget(self, req: "Request", view: "Simulator", home: int, prfaas: int, cached: int) -> bool:
        """Whether one more offload would push PrfaaS egress past the bandwidth budget."""
        if math.isinf(self.bandwidth_headroom):
            return False
        link = view.link_between(prfaas, home)
        if link is None:
            return False
        pf = view.clusters[prfaas]
        new = max(req.input_tokens - cached, 1)
        phi = (view.kv_bytes_per_token * req.input_tokens + view.state_bytes) / pf.stm.prefill_s([(new, cached)])
        k_max = self.bandwidth_headroom * link.effective_bytes_s / phi
        # KV streams on the link now (prefilling, or draining after prefill) plus the queued
        # PrfaaS jobs that will stream next, plus this one
        queued = sum(len(i.queue) for i in pf.instances)
        return link.active_flows + queued + 1 > k_max

    # ------------------------------------------------------------------ re-optimisation
    def reoptimise(self, view: "Simulator", home: int, prfaas: int) -> float:
        """Re-choose ``t`` on the window of recent lengths (Eq. 7 balance, bandwidth-capped)."""
        if len(self._lengths) < 16:
            return self.threshold_tokens
        x = np.sort(np.asarray(self._lengths, dtype=float))
        cands = np.unique(np.concatenate([[0.0], x]))
        n = x.size
        csum = np.concatenate([[0.0], np.cumsum(x)])
        k = np.searchsorted(x, cands, side="right")  # x[:k] <= t
        n_short, n_long = k, n - k
        pf, pd = view.clusters[prfaas], view.clusters[home]
        n_pf = max(len(pf.prefill_instances), 0)
        n_pd = max(len(pd.prefill_instances), 0)
        link = view.link_between(prfaas, home)
        bw = link.effective_bytes_s if link is not None else math.inf
        best_t, best_val = self.threshold_tokens, -1.0
        kv_tok, state = view.kv_bytes_per_token, view.state_bytes
        for t, ns, nl in zip(cands.tolist(), n_short.tolist(), n_long.tolist()):
            p = nl / n
            if nl:
                l_long = (csum[n] - csum[n - nl]) / nl
                th_pf = n_pf / pf.stm.prefill_s([(int(l_long), 0)]) if n_pf else 0.0
                th_pf = min(th_pf, bw / (kv_tok * l_long + state))
                v_long = th_pf / p
            else:
                v_long = math.inf
            if ns:
                l_short = csum[ns] / ns
                th_pd = n_pd / pd.stm.prefill_s([(int(l_short), 0)]) if n_pd else 0.0
                v_short = th_pd / (1 - p)
            else:
                v_short = math.inf
            val = min(v_long, v_short)
            if val > best_val * (1 + 1e-9):
                best_t, best_val = t, val
        self.threshold_tokens = float(best_t)
        return self.threshold_tokens

    # ------------------------------------------------------------------ routing
    def route(self, req: "Request", view: "Simulator") -> RouteDecision:
        home = view.home_cluster(req)
        prfaas_all = [c for c in view.prfaas_clusters if view.clusters[c].has_prefill_capacity]
        if not prfaas_all:
            return RouteDecision(prefill_cluster=home)
        prfaas = max(prfaas_all, key=lambda c: (view.cached_tokens(c, req), -c))
        l_pd = view.cached_tokens(home, req)
        l_pf = view.cached_tokens(prfaas, req)
        self._lengths.append(req.input_tokens - max(l_pd, l_pf))
        self._seen += 1
        if self.reoptimise_every and self._seen % self.reoptimise_every == 0:
            self.reoptimise(view, home, prfaas)
        if not view.clusters[home].has_prefill_capacity:
            return RouteDecision(prefill_cluster=prfaas)

        egress = self._egress_pressure(view, home, prfaas)
        factor = self._pressure_factor(view, home, prfaas, egress)
        t = self.threshold_tokens * factor
        if math.isinf(egress):
            t = math.inf  # link down: nothing can be shipped
        self.last_factor = factor
        abundant = egress < self.abundant_below
        self.last_mode = "abundant" if abundant else "scarce"
        total = req.input_tokens
        if abundant:
            if total - max(l_pd, l_pf) <= t:
                pull = prfaas if l_pf > l_pd else None
                return RouteDecision(prefill_cluster=home, pull_from=pull)
            if not self.over_budget(req, view, home, prfaas, max(l_pd, l_pf)):
                return RouteDecision(prefill_cluster=prfaas, pull_from=home if l_pd > l_pf else None)
            return RouteDecision(prefill_cluster=home, pull_from=prfaas if l_pf > l_pd else None)
        if total - l_pd <= t or self.over_budget(req, view, home, prfaas, l_pf):
            return RouteDecision(prefill_cluster=home)
        return RouteDecision(prefill_cluster=prfaas)
