"""Rewards: what happened since the last step (:class:`Outcome`) -> named parts -> scalar.

Every env pays, at each step, for the requests that *ended* since the previous step
(completed or rejected; nothing else is final), plus the dollars spent meanwhile. The scalar
reward is the sum of the parts, which are returned in ``info["reward_parts"]``.

=========  =============================================================================
variant    parts (summed)
=========  =============================================================================
goodput    ``good`` = completions meeting both TTFT and TPOT SLOs
slo        ``good`` (+1 each) and ``miss`` = -(completions missing an SLO + rejections)
latency    ``latency`` = -sum over completions of (TTFT / TTFT SLO + TPOT / TPOT SLO), and
           ``reject`` = -``reject_penalty`` (default 4) per rejection
cost       ``good`` and ``cost`` = -(GPU dollars + egress dollars) / ``usd_per_request``
           (a good completion is worth ``usd_per_request`` dollars, default 0.05; egress
           is priced at ``egress_usd_per_gb``, default 0.02 $/GB): goodput per dollar as a
           difference so it is additive over steps.
=========  =============================================================================

Routing adds a per-decision shaping part to every variant, to ease credit assignment for
the delayed completion rewards: ``shaping`` = -``shaping_weight`` x min(predicted TTFT of
the chosen slot / TTFT SLO, 4) (0 for reject; default weight 0.1; 0 disables it).

With ``invalid_action="penalize"`` every invalid action adds ``invalid`` =
-``invalid_action_penalty`` (default 1) to the step's reward.

``credit="integrated"`` (latency reward only) pays the latency part as time passes instead
of when a request ends (:class:`LatencyIntegrator`): while a request waits for its first
token it accrues -dt / TTFT SLO, while it decodes -dt / ((output - 1) x TPOT SLO); over a
completed request's life the two sum to exactly the end-credited -(TTFT/SLO + TPOT/SLO).
A rejected request pays the rejection penalty when it ends and accrues nothing in the step
its rejection is seen (a router's rejection happens on arrival, so nothing is lost there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

REWARD_VARIANTS = ("goodput", "slo", "latency", "cost")
CREDIT_MODES = ("end", "integrated")


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """Reward settings (scenario ``env:`` keys of the same names, overridable by kwargs)."""

    variant: str = "goodput"
    reject_penalty: float = 4.0
    usd_per_request: float = 0.05
    egress_usd_per_gb: float = 0.02
    shaping_weight: float = 0.1
    invalid_penalty: float = 0.0  # per invalid action (``invalid_action="penalize"`` only)
    credit: str = "end"

    def __post_init__(self) -> None:
        if self.variant not in REWARD_VARIANTS:
            raise ValueError(f"reward: unknown variant {self.variant!r} (known: {', '.join(REWARD_VARIANTS)})")
        if self.credit not in CREDIT_MODES:
            raise ValueError(f"credit: unknown mode {self.credit!r} (known: {', '.join(CREDIT_MODES)})")
        if self.credit == "integrated" and self.variant != "latency":
            raise ValueError(f"credit: 'integrated' applies to the latency reward, not {self.variant!r}")
        if self.usd_per_request <= 0:
            raise ValueError("reward: usd_per_request must be > 0")


@dataclass(slots=True)
class Outcome:
    """What happened since the last step."""

    good: int = 0
    missed: int = 0
    rejected: int = 0
    latency: float = 0.0  # sum of TTFT/TTFT SLO + TPOT/TPOT SLO over completions
    usd: float = 0.0  # GPU + egress dollars
    pred_ttft_ratio: float = 0.0  # routing: predicted TTFT of the chosen slot / TTFT SLO
    invalid: int = 0  # invalid actions this step


def tally(ended: Sequence, start: int, ttft_slo_s: float, tpot_slo_s: float, out: Outcome,
          latency: bool = True) -> int:
    """Add requests ``ended[start:]`` to ``out`` (their latency terms too when ``latency``);
    return the new start index."""
    n = len(ended)
    good = missed = rej = 0
    lat = 0.0
    for i in range(start, n):
        r = ended[i]
        if r.rejected:
            rej += 1
            continue
        ttft = r.prefill_end_s - r.arrival_s
        k = r.output_tokens - 1
        tpot = (r.finish_s - r.prefill_end_s) / k if k > 0 else 0.0
        lat += ttft / ttft_slo_s + tpot / tpot_slo_s
        if ttft <= ttft_slo_s and tpot <= tpot_slo_s:
            good += 1
        else:
            missed += 1
    out.good += good
    out.missed += missed
    out.rejected += rej
    if latency:
        out.latency += lat
    return n


class LatencyIntegrator:
    """The latency reward's terms accrued over time (``credit="integrated"``, see the module
    docstring). O(requests in the system) per call; only built when asked for."""

    def __init__(self, requests: Sequence, ttft_slo_s: float, tpot_slo_s: float) -> None:
        self.requests = requests
        self.inv_ttft = 1.0 / ttft_slo_s
        self.inv_tpot = 1.0 / tpot_slo_s
        self.next = 0  # first request not yet arrived
        self.open: list = []  # arrived, not yet finished or rejected
        self.last = 0.0

    def accrue(self, now: float) -> float:
        """Sum of TTFT/SLO and TPOT/SLO accrued by every request in ``(last, now]``."""
        reqs, k, n = self.requests, self.next, len(self.requests)
        while k < n and reqs[k].arrival_s <= now:
            self.open.append(reqs[k])
            k += 1
        self.next = k
        last, total, keep = self.last, 0.0, []
        for r in self.open:
            if r.rejected:
                continue
            a = r.arrival_s if r.arrival_s > last else last
            pe = r.prefill_end_s  # NaN until the first token: every comparison is False
            e1 = pe if pe <= now else now
            if e1 > a:
                total += (e1 - a) * self.inv_ttft
            if pe <= now and r.output_tokens > 1:
                s2 = pe if pe > last else last
                f = r.finish_s
                e2 = f if f <= now else now
                if e2 > s2:
                    total += (e2 - s2) * self.inv_tpot / (r.output_tokens - 1)
            if not r.finish_s <= now:
                keep.append(r)
        self.open = keep
        self.last = now
        return total


def _goodput(o: Outcome, c: RewardConfig) -> dict[str, float]:
    return {"good": float(o.good)}


def _slo(o: Outcome, c: RewardConfig) -> dict[str, float]:
    return {"good": float(o.good), "miss": -float(o.missed + o.rejected)}


def _latency(o: Outcome, c: RewardConfig) -> dict[str, float]:
    return {"latency": -o.latency, "reject": -c.reject_penalty * o.rejected}


def _cost(o: Outcome, c: RewardConfig) -> dict[str, float]:
    return {"good": float(o.good), "cost": -o.usd / c.usd_per_request}


REWARD_FNS: dict[str, Callable[[Outcome, RewardConfig], dict[str, float]]] = {
    "goodput": _goodput,
    "slo": _slo,
    "latency": _latency,
    "cost": _cost,
}


def reward_parts(o: Outcome, cfg: RewardConfig, shaping: bool = False) -> dict[str, float]:
    """The named reward parts of ``o`` under ``cfg`` (add ``shaping`` for routing)."""
    parts = REWARD_FNS[cfg.variant](o, cfg)
    if cfg.invalid_penalty:
        parts["invalid"] = -cfg.invalid_penalty * o.invalid
    if shaping and cfg.shaping_weight:
        r = o.pred_ttft_ratio
        parts["shaping"] = -cfg.shaping_weight * (r if r < 4.0 else 4.0)
    return parts
