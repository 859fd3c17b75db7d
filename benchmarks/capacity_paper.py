"""Planner vs simulated capacity on the three paper scenarios, and the Figure-5-style sweeps.

    python benchmarks/capacity_paper.py            # timing table: capacity of each paper scenario
    python benchmarks/capacity_paper.py --sweeps   # + threshold and P/D-split sweeps, PNGs in docs/img

Prints one JSON object (the numbers quoted in docs/planner_vs_simulation.md). Each capacity
is one ``find_capacity`` call at its defaults (10,000 requests per run, rel_tol 1 %), timed
wall-clock in this process (one core: the simulator is single-threaded).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prfaas_gym.planner import sweep_split, sweep_threshold
from prfaas_gym.planner.adapter import plan_scenario, planner_inputs_from_scenario
from prfaas_gym.planner.capacity import find_capacity
from prfaas_gym.scenario import load_scenario

PAPER = ("paper/prfaas_pd", "paper/homogeneous", "paper/naive_heterogeneous")


@dataclass
class Settings:
    """What the script runs."""

    sweeps: bool = False
    sweep_requests: int = 5000          # requests per run in the sweeps (cheap)
    sweep_rel_tol: float = 0.02
    thresholds: tuple[int, ...] = (2000, 5000, 10000, 19298, 30000, 50000, 90000)
    img_dir: Path = Path(__file__).resolve().parents[1] / "docs" / "img"


def drawn_lengths(scenario, n: int) -> np.ndarray:
    """The uncached input lengths the simulator draws for ``n`` requests (same seed)."""
    from prfaas_gym.api import build_simulator

    sim = build_simulator(scenario, None, n_requests=n, rate_rps=1.0)
    return np.array([r.input_tokens for r in sim.requests], dtype=float)


def paper_table() -> list[dict]:
    """Planner figures (both conventions, and at the drawn lengths) vs simulated capacity."""
    rows = []
    for name in PAPER:
        sc = load_scenario(name)
        t0 = time.perf_counter()
        res = find_capacity(sc)
        wall = time.perf_counter() - t0
        rep = plan_scenario(sc)
        exp = plan_scenario(sc, convention="expectation")
        inp = planner_inputs_from_scenario(sc)
        drawn = dataclasses.replace(inp, lengths_tokens=drawn_lengths(sc, res.n_requests), length_weights=None)
        dep = rep.deployment
        from prfaas_gym.planner import plan_homogeneous, plan_naive_heterogeneous, plan_prfaas_pd

        def plan_on(x, conv):
            if dep == "homogeneous":
                return plan_homogeneous(x, convention=conv)
            if dep == "naive_heterogeneous":
                return plan_naive_heterogeneous(x, convention=conv)
            return plan_prfaas_pd(x, np.array([rep.threshold_tokens]), np.array([rep.n_p]), convention=conv)

        s = res.summary
        rows.append({
            "scenario": name, "deployment": dep, "n_p": rep.n_p, "n_d": rep.n_d,
            "threshold_tokens": rep.threshold_tokens,
            "planner_rps": rep.throughput_rps, "planner_expectation_rps": exp.throughput_rps,
            "planner_drawn_rps": plan_on(drawn, "representative").throughput_rps,
            "planner_drawn_expectation_rps": plan_on(drawn, "expectation").throughput_rps,
            "drawn_mean_tokens": float(drawn.lengths_tokens.mean()),
            "capacity_rps": res.capacity_rps, "runs": len(res.trace), "wall_s": wall,
            "bottleneck": rep.bottleneck, "stages": rep.stage_throughput_rps,
            "at_capacity": {k: s[k] for k in ("throughput_rps", "ttft_mean_s", "ttft_p90_s", "ttft_p99_s",
                                              "tpot_p99_s", "slo_attainment", "offload_fraction",
                                              "egress_gbps_mean", "prefill_utilisation",
                                              "completion_ratio", "ttft_growth")},
            "planner_ttft_mean_s": rep.ttft_mean_s, "planner_egress_gbps": rep.egress_gbps,
            "planner_offload": rep.offload_fraction,
        })
    return rows


def sweeps(cfg: Settings) -> dict:
    """Simulated capacity at a handful of thresholds (N_p = 3) and of splits (t = plan's)."""
    sc = load_scenario("paper/prfaas_pd")
    inp = planner_inputs_from_scenario(sc)
    plan = plan_scenario(sc)
    kw = dict(n_requests=cfg.sweep_requests, rel_tol=cfg.sweep_rel_tol)
    thr_grid = np.unique(np.round(np.geomspace(1000, 131072, 120)))
    ts_rep = sweep_threshold(inp, n_p=plan.n_p, thresholds=thr_grid)
    ts_exp = sweep_threshold(inp, n_p=plan.n_p, thresholds=thr_grid, convention="expectation")
    thr_sim = []
    for t in cfg.thresholds:
        s = load_scenario("paper/prfaas_pd", {"router.threshold_tokens": t})
        r = find_capacity(s, start_rps=float(np.interp(t, thr_grid, ts_rep.throughput_rps)), **kw)
        thr_sim.append({"threshold_tokens": t, "capacity_rps": r.capacity_rps,
                        "offload_fraction": r.summary["offload_fraction"]})
    sp_rep = sweep_split(inp, threshold=plan.threshold_tokens)
    sp_exp = sweep_split(inp, threshold=plan.threshold_tokens, convention="expectation")
    split_sim = []
    for n_p, lam in zip(sp_rep.n_p, sp_rep.throughput_rps):
        s = load_scenario("paper/prfaas_pd", {"clusters[1].prefill_instances": int(n_p)})
        r = find_capacity(s, start_rps=float(lam), **kw)
        split_sim.append({"n_p": int(n_p), "capacity_rps": r.capacity_rps})
    out = {
        "threshold": {"n_p": plan.n_p, "grid": thr_grid.tolist(), "planner_rps": ts_rep.throughput_rps.tolist(),
                      "planner_expectation_rps": ts_exp.throughput_rps.tolist(),
                      "prfaas_bound_rps": ts_rep.prfaas_bound_rps.tolist(),
                      "pd_prefill_bound_rps": ts_rep.pd_prefill_bound_rps.tolist(),
                      "pd_decode_rps": ts_rep.pd_decode_rps, "simulated": thr_sim},
        "split": {"threshold_tokens": plan.threshold_tokens, "n_p": sp_rep.n_p.tolist(),
                  "planner_rps": sp_rep.throughput_rps.tolist(),
                  "planner_expectation_rps": sp_exp.throughput_rps.tolist(),
                  "prefill_bound_rps": sp_rep.prefill_bound_rps.tolist(),
                  "pd_decode_rps": sp_rep.pd_decode_rps.tolist(), "simulated": split_sim},
    }
    plot(out, cfg.img_dir)
    return out


def plot(data: dict, img_dir: Path) -> None:
    """Two PNGs: throughput vs threshold and vs N_p, planner curves and simulated points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    th = data["threshold"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    g = np.array(th["grid"]) / 1000
    ax.plot(g, th["planner_rps"], "k-", lw=2, label="planner Λmax (representative, Eq. 6)")
    ax.plot(g, th["planner_expectation_rps"], "k--", lw=1.2, label="planner Λmax (expectation)")
    ax.plot(g, th["prfaas_bound_rps"], color="tab:blue", lw=1, alpha=0.7, label="Th_prfaas / p")
    ax.plot(g, th["pd_prefill_bound_rps"], color="tab:orange", lw=1, alpha=0.7, label="Th_pdp / (1-p)")
    ax.axhline(th["pd_decode_rps"], color="tab:green", lw=1, alpha=0.7, label="Th_pdd")
    sx = [p["threshold_tokens"] / 1000 for p in th["simulated"]]
    sy = [p["capacity_rps"] for p in th["simulated"]]
    ax.plot(sx, sy, "o", color="tab:red", ms=7, label="simulated capacity")
    ax.set_xscale("log")
    ax.set_ylim(0, 5)
    ax.set_xlabel("routing threshold t (K tokens; l > t goes to PrfaaS)")
    ax.set_ylabel("arrival rate (req/s)")
    ax.set_title(f"PrfaaS-PD: throughput vs threshold (N_p/N_d = {th['n_p']}/{8 - th['n_p']})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(img_dir / "planner_vs_sim_threshold.png")
    plt.close(fig)

    sp = data["split"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    n = np.array(sp["n_p"])
    ax.plot(n, sp["planner_rps"], "k-o", lw=2, ms=4, label="planner Λmax (representative)")
    ax.plot(n, sp["planner_expectation_rps"], "k--", lw=1.2, label="planner Λmax (expectation)")
    ax.plot(n, sp["prefill_bound_rps"], color="tab:blue", lw=1, alpha=0.7, label="prefill bound min(Th_prfaas/p, Th_pdp/(1-p))")
    ax.plot(n, sp["pd_decode_rps"], color="tab:green", lw=1, alpha=0.7, label="Th_pdd")
    ax.plot([p["n_p"] for p in sp["simulated"]], [p["capacity_rps"] for p in sp["simulated"]],
            "o", color="tab:red", ms=7, label="simulated capacity")
    ax.set_ylim(0, 6)
    ax.set_xticks(n, [f"{a}/{8 - a}" for a in n])
    ax.set_xlabel("PD split N_p / N_d")
    ax.set_ylabel("arrival rate (req/s)")
    ax.set_title(f"PrfaaS-PD: throughput vs P/D split (t = {sp['threshold_tokens']:.0f} tokens)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(img_dir / "planner_vs_sim_split.png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", action="store_true", help="also run the sweeps and write the PNGs")
    cfg = Settings(sweeps=ap.parse_args().sweeps)
    out: dict = {"paper": paper_table()}
    if cfg.sweeps:
        t0 = time.perf_counter()
        out["sweeps"] = sweeps(cfg)
        out["sweeps_wall_s"] = time.perf_counter() - t0
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
