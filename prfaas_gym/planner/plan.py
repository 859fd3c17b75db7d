"""The ``Plan`` record: one deployment's planned configuration and its predicted performance."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

DEPLOYMENTS: tuple[str, ...] = ("prfaas_pd", "homogeneous", "naive_heterogeneous")

JSON_KEYS: tuple[str, ...] = (
    "deployment",
    "threshold_tokens",
    "n_prfaas",
    "n_p",
    "n_d",
    "throughput_rps",
    "stage_throughput_rps",
    "offload_fraction",
    "egress_gbps",
    "ttft_mean_s",
    "ttft_p90_s",
)
"""Keys of ``Plan.to_dict()`` / ``plan --json``, in order."""


def _num(v: float) -> float | None:
    """A JSON-safe number: non-finite values become ``None`` (JSON null)."""
    return float(v) if math.isfinite(v) else None


@dataclass(frozen=True)
class Plan:
    """A planned deployment (PAPER.md Eqs. 3-8) and its predicted steady-state performance.

    Attributes:
        deployment: ``prfaas_pd`` | ``homogeneous`` | ``naive_heterogeneous``.
        threshold_tokens: routing threshold t (requests with uncached length > t go to
            PrfaaS); ``None`` when the deployment does no length routing.
        n_prfaas, n_p, n_d: PrfaaS prefill, PD prefill and PD decode instances.
        throughput_rps: Lambda_max (Eq. 6), requests/s.
        stage_throughput_rps: ``{"prfaas", "pd_prefill", "pd_decode"}`` = Th_prfaas (Eq. 3),
            Th_pdp (Eq. 4), Th_pdd (Eq. 5); nan for a stage that receives no requests.
        offload_fraction: p = P(L > t).
        egress_gbps: PrfaaS egress at Lambda_max: p * Lambda_max * E[S_kv(L) | L > t],
            decimal Gbps.
        ttft_mean_s, ttft_p90_s: service-time TTFT (prefill time on the hardware each request
            is routed to, no queueing or transfer) over the length distribution.
        convention: ``representative`` or ``expectation`` (see ``planner.model``).
        l_long_tokens, l_short_tokens: E[L | L > t], E[L | L <= t] (nan for an empty side).
        bottleneck: the binding term of Eq. 6: ``prfaas``, ``pd_prefill`` or ``pd_decode``.
    """

    deployment: str
    threshold_tokens: float | None
    n_prfaas: int
    n_p: int
    n_d: int
    throughput_rps: float
    stage_throughput_rps: dict[str, float]
    offload_fraction: float
    egress_gbps: float
    ttft_mean_s: float
    ttft_p90_s: float
    convention: str = "representative"
    l_long_tokens: float = math.nan
    l_short_tokens: float = math.nan
    bottleneck: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``prfaas-gym plan --json``: exactly the keys in ``JSON_KEYS``."""
        t = self.threshold_tokens
        if t is not None:
            t = int(t) if float(t).is_integer() else _num(t)
        return {
            "deployment": self.deployment,
            "threshold_tokens": t,
            "n_prfaas": int(self.n_prfaas),
            "n_p": int(self.n_p),
            "n_d": int(self.n_d),
            "throughput_rps": _num(self.throughput_rps),
            "stage_throughput_rps": {
                k: _num(self.stage_throughput_rps[k]) for k in ("prfaas", "pd_prefill", "pd_decode")
            },
            "offload_fraction": _num(self.offload_fraction),
            "egress_gbps": _num(self.egress_gbps),
            "ttft_mean_s": _num(self.ttft_mean_s),
            "ttft_p90_s": _num(self.ttft_p90_s),
        }

    def to_json(self, indent: int | None = None) -> str:
        """``to_dict()`` serialised as strict JSON (no NaN)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A short human-readable rendering (the plain ``plan`` output)."""
        s = self.stage_throughput_rps
        t = "none (no length routing)" if self.threshold_tokens is None else f"{self.threshold_tokens:g} tokens"
        return "\n".join(
            [
                f"deployment        {self.deployment} ({self.convention} convention)",
                f"threshold         {t}",
                f"instances         PrfaaS {self.n_prfaas}, PD prefill {self.n_p}, PD decode {self.n_d}",
                f"throughput        {self.throughput_rps:.4g} req/s (bottleneck: {self.bottleneck})",
                f"stage capacity    PrfaaS {s['prfaas']:.4g}, PD-P {s['pd_prefill']:.4g}, "
                f"PD-D {s['pd_decode']:.4g} req/s",
                f"offload fraction  {self.offload_fraction:.4f}",
                f"egress            {self.egress_gbps:.4g} Gbps",
                f"TTFT (service)    mean {self.ttft_mean_s:.4g} s, p90 {self.ttft_p90_s:.4g} s",
            ]
        )
