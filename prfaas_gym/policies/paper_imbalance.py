"""``paper-imbalance``: the paper's long-timescale test, Th_prfaas + Th_pdp vs Th_pdd (Eq. 8)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prfaas_gym.policies.provisioning import IntervalProvisioner, estimate_stages

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator


class PaperImbalanceProvisioner(IntervalProvisioner):
    """Every ``interval_s``, for each PD cluster, estimate the prefill capacity
    ``Th_prfaas + Th_pdp`` and decode capacity ``Th_pdd`` from the last ``window_s`` of
    observed lengths (Eqs. 3-5). When one side is clearly the bottleneck (capacity ratio
    beyond ``1 + margin``) *and* it is loaded (observed arrival rate above
    ``load_fraction`` of its capacity, or its queue is building), move one instance to it.

    Args:
        interval_s: seconds between decisions.
        window_s: observation window for rates and lengths.
        margin: how far apart the two capacities must be (0.25: 25 %).
        load_fraction: minimum utilisation of the bottleneck side before acting.
    """

    name = "paper-imbalance"

    def __init__(self, interval_s: float = 120.0, *, window_s: float = 300.0,
                 margin: float = 0.25, load_fraction: float = 0.7) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s: must be > 0")
        if margin < 0:
            raise ValueError("margin: must be >= 0")
        self.interval_s = float(interval_s)
        self.window_s = float(window_s)
        self.margin = float(margin)
        self.load_fraction = float(load_fraction)

    def provision(self, view: "Simulator") -> dict[int, int] | None:
        targets: dict[int, int] = {}
        for c in view.pd_clusters:
            est = estimate_stages(view, c, self.window_s)
            cur = view.clusters[c].prefill_count()
            pre, dec = est.prefill_rps, est.th_pdd_rps
            lam = est.arrival_rps
            if pre * (1 + self.margin) < dec and (lam > self.load_fraction * pre or est.prefill_wait_s > 5.0):
                targets[c] = cur + 1  # prefill-bound
            elif dec * (1 + self.margin) < pre and (lam > self.load_fraction * dec or est.decode_waiting > 0):
                targets[c] = cur - 1  # decode-bound
        return targets or None
