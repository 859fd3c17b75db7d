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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

REWARD_VARIANTS = ("goodput", "slo", "latency", "cost")


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """Reward settings (scenario ``env:`` keys of the same names, overridable by kwargs)."""

    variant: str = "goodput"
    reject_penalty: float = 4.0
    usd_per_request: float = 0.05
    egress_usd_per_gb: float = 0.02
    shaping_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.variant not in REWARD_VARIANTS:
            raise ValueError(f"reward: unknown variant {self.variant!r} (known: {', '.join(REWARD_VARIANTS)})")
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


def tally(ended: Sequence, start: int, ttft_slo_s: float, tpot_slo_s: float, out: Outcome) -> int:
    """Add requests ``ended[start:]`` to ``out``; return the new start index."""
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
    out.latency += lat
    return n


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
    if shaping and cfg.shaping_weight:
        r = o.pred_ttft_ratio
        parts["shaping"] = -cfg.shaping_weight * (r if r < 4.0 else 4.0)
    return parts
