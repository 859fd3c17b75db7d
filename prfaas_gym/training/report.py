"""Held-out comparison of a learned policy against heuristics, with paired 95% intervals.

Routing policies run through the plain simulator exactly like heuristics
(``compare_policies`` with a ``trained:NAME`` spec), so every policy sees the same
workload per seed. Per seed we also form the ratio learned / heuristic, and report the
Student-t interval of its mean (paired), next to each policy's own mean and interval.
"""

from __future__ import annotations

from typing import Any, Sequence

from prfaas_gym.evaluation.stats import mean_ci

METRICS = ("goodput_rps", "ttft_p90_s", "slo_attainment", "rejected", "egress_gbps_mean", "throughput_rps")


def held_out_report(scenario: str, learned: str, heuristics: Sequence[str], *, seeds: int, seed_offset: int,
                    n_requests: int | None = None, rate_rps: float | None = None,
                    metric: str = "goodput_rps") -> dict[str, Any]:
    """``{"results": {policy: {metric: {mean, ci95}}}, "ratios": {heuristic: {mean, ci95}}, ...}``."""
    from prfaas_gym.evaluation.compare import compare_policies

    policies = [learned, *heuristics]
    comp = compare_policies(scenario, policies, seeds=seeds, seed_offset=seed_offset,
                            n_requests=n_requests, rate_rps=rate_rps)
    results = {p: {m: mean_ci(comp.values(p, m)) for m in METRICS} for p in policies}
    mine = comp.values(learned, metric)
    ratios = {}
    for h in heuristics:
        theirs = comp.values(h, metric)
        ratios[h] = mean_ci([a / b for a, b in zip(mine, theirs) if b > 0])
        ratios[h]["ratio_of_means"] = (sum(mine) / len(mine)) / (sum(theirs) / len(theirs))
    best = max(heuristics, key=lambda h: results[h][metric]["mean"]) if heuristics else None
    return {"scenario": comp.scenario, "learned": learned, "metric": metric, "seeds": comp.seeds,
            "n_requests": n_requests, "rate_rps": rate_rps, "results": results, "ratios": ratios,
            "best_heuristic": best, "per_seed": {p: comp.values(p, metric) for p in policies}}


def markdown_table(report: dict[str, Any]) -> str:
    """The comparison as a Markdown table (mean [95% CI] per metric; paired ratio)."""
    m = report["metric"]
    lines = [f"| policy | {m} | ratio learned/policy (paired) | TTFT p90 (s) | SLO attainment | rejected | egress (Gbps) |",
             "|---|---|---|---|---|---|---|"]

    def fmt(d: dict, nd: int = 3) -> str:
        lo, hi = d["ci95"]
        return f"{d['mean']:.{nd}f} [{lo:.{nd}f}, {hi:.{nd}f}]"

    for p, res in report["results"].items():
        ratio = fmt(report["ratios"][p]) if p in report["ratios"] else "-"
        lines.append(f"| {p} | {fmt(res[m])} | {ratio} | {fmt(res['ttft_p90_s'], 1)} | "
                     f"{fmt(res['slo_attainment'])} | {res['rejected']['mean']:.1f} | "
                     f"{res['egress_gbps_mean']['mean']:.2f} |")
    return "\n".join(lines)
