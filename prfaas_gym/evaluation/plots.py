"""Plotting helpers for policy comparisons (matplotlib, imported lazily by callers).

Every function takes an optional ``ax`` and returns the axes it drew on, so notebooks
stay one call per figure.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 3.5))[1]


def results_table(doc: Mapping, metrics: Sequence[str] | None = None) -> list[dict]:
    """Rows ``{"policy", metric: "mean [lo, hi]"...}`` from a ``compare --json`` document
    (a ``pandas.DataFrame(rows)`` away from a table)."""
    rows = []
    for p, res in doc["results"].items():
        names = metrics or list(res)
        row = {"policy": p}
        for m in names:
            lo, hi = res[m]["ci95"]
            mean = res[m]["mean"]
            row[m] = "nan" if mean is None else (f"{mean:.4g}" if lo is None else f"{mean:.4g} [{lo:.3g}, {hi:.3g}]")
        rows.append(row)
    return rows


def ttft_cdf(sims_by_policy: Mapping[str, Sequence[Any]], ax: Any = None, slo_s: float | None = None) -> Any:
    """Empirical CDF of TTFT per policy (completed requests of all given runs pooled)."""
    ax = _axes(ax)
    for p, sims in sims_by_policy.items():
        x = np.sort(np.concatenate([
            np.array([r.ttft_s for r in s.requests if not r.rejected and np.isfinite(r.ttft_s)])
            for s in sims
        ]))
        if x.size:
            ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=p)
    if slo_s is not None:
        ax.axvline(slo_s, color="k", ls="--", lw=0.8, label="TTFT SLO")
    ax.set_xscale("log")
    ax.set_xlabel("TTFT (s)")
    ax.set_ylabel("fraction of requests")
    ax.legend(fontsize=7)
    return ax


def load_curves(sweep: Mapping, metric: str = "goodput_rps", ax: Any = None) -> Any:
    """``metric`` vs offered load per policy, with 95% CI bands, from :func:`load_sweep`."""
    ax = _axes(ax)
    for p, curves in sweep["curves"].items():
        pts = curves[metric]
        r = np.array([pt["rate_rps"] for pt in pts])
        m = np.array([np.nan if pt["mean"] is None else pt["mean"] for pt in pts], float)
        lo = np.array([np.nan if pt["ci95"][0] is None else pt["ci95"][0] for pt in pts], float)
        hi = np.array([np.nan if pt["ci95"][1] is None else pt["ci95"][1] for pt in pts], float)
        ax.plot(r, m, marker="o", label=p)
        ax.fill_between(r, lo, hi, alpha=0.2)
    ax.set_xlabel("offered load (req/s)")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return ax


def egress_over_time(sims_by_policy: Mapping[str, Any], ax: Any = None, bin_s: float = 5.0,
                     capacity_gbps: float | None = None) -> Any:
    """Cross-DC egress (Gbps, ``prfaas_gym.metrics.egress_series``) over time per policy."""
    from prfaas_gym.metrics import egress_series

    ax = _axes(ax)
    for p, sim in sims_by_policy.items():
        t, g = egress_series(sim, bin_s=bin_s)
        ax.plot(t, g, label=p, lw=0.9)
    if capacity_gbps is not None:
        ax.axhline(capacity_gbps, color="k", ls="--", lw=0.8, label="link nominal")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("egress (Gbps)")
    ax.legend(fontsize=7)
    return ax


def prefill_split_over_time(sims_by_policy: Mapping[str, Any], ax: Any = None) -> Any:
    """PD prefill instances over time (``sim.prefill_counts_log``) per policy/provisioner."""
    ax = _axes(ax)
    for p, sim in sims_by_policy.items():
        for c in sim.pd_clusters:
            pts = [(t, n) for t, k, n in sim.prefill_counts_log if k == c]
            pts.append((sim.now_s, pts[-1][1]))
            t, n = zip(*pts)
            label = p if len(sim.pd_clusters) == 1 else f"{p} / {sim.clusters[c].name}"
            ax.step(t, n, where="post", label=label)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("PD prefill instances")
    ax.legend(fontsize=7)
    return ax


def bound_bars(doc: Mapping, ax: Any = None) -> Any:
    """Per seed, the goodput upper bound and each measured policy's goodput, from a
    ``prfaas-gym bound --json`` document (``policies`` measured with ``--policies``)."""
    ax = _axes(ax)
    rows = doc["rows"]
    policies = [k.split(":goodput_rps")[0] for k in rows[0] if k.endswith(":goodput_rps")]
    x = np.arange(len(rows))
    width = 0.8 / (1 + len(policies))
    ax.bar(x, [r["goodput_rps_max"] for r in rows], width, color="0.8", edgecolor="0.4", label="upper bound (fluid LP)")
    for k, p in enumerate(policies, start=1):
        ax.bar(x + k * width, [r[f"{p}:goodput_rps"] for r in rows], width, label=p)
    ax.set_xticks(x + width * len(policies) / 2, [str(r["seed"]) for r in rows], fontsize=7)
    ax.set_xlabel("seed")
    ax.set_ylabel("goodput (req/s)")
    ax.legend(fontsize=7)
    return ax
