"""Figures of the KV-streaming / full-duplex / KV-memory table in docs/simulation.md, on this checkout.

Bursty (seeds 0-2, 2,000 requests, means over the seeds), per policy: egress p99 per direction
(PrfaaS -> PD / PD -> PrfaaS, Gbps, 1 s bins) / transfer lag p90 (transfer end - prefill end,
offloaded requests, s) / goodput (req/s) / TTFT p90 at prefill end vs client-visible (s) /
preemptions. Then the dense long-context check (threshold routing, seed 0, 600 requests):
goodput, TTFT p90 prefill end / client, TPOT p90, peak / mean decode KV use, preemptions and the
largest decode backlog (gauges every second).

    python benchmarks/kv_semantics.py [--seeds 0 1 2] [--requests 2000]
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np

from prfaas_gym.metrics import egress_by_direction, gauge_arrays
from prfaas_gym.policies import make_provisioner, make_router
from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim import Simulator

POLICIES = ("prfaas-threshold", "prfaas-adaptive", "mooncake-conductor")


def _run(scenario: str, policy: str, seed: int, n: int, gauge_s: float | None = None):
    sc = load_scenario(scenario)
    sim = Simulator(sc, make_router(policy, sc, seed=seed), make_provisioner(None, sc), seed=seed,
                    n_requests=n, gauge_interval_s=gauge_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = sim.run()
    return sim, s


def bursty_row(policy: str, seeds: list[int], n: int) -> str:
    """One cell of the bursty table: means over ``seeds``."""
    fwd, rev, lag, good, ttft, client, pre = [], [], [], [], [], [], []
    for seed in seeds:
        sim, s = _run("bursty_fluctuating", policy, seed, n)
        prfaas = {sim.clusters[c].datacenter for c in sim.prfaas_clusters}
        f = r = 0.0
        for name, d in egress_by_direction(sim).items():
            src = name.split(":", 1)[1].split("->")[0]
            if src in prfaas:
                f = max(f, d["gbps_p99"])
            else:
                r = max(r, d["gbps_p99"])
        fwd.append(f)
        rev.append(r)
        lags = [q.transfer_end_s - q.prefill_end_s for q in sim.requests
                if q.prefill_cluster != q.decode_cluster and not math.isnan(q.transfer_end_s)]
        lag.append(float(np.percentile(lags, 90)) if lags else 0.0)
        good.append(s["goodput_rps"])
        ttft.append(s["ttft_p90_s"])
        client.append(s["ttft_client_p90_s"])
        pre.append(s["preemptions"])
    m = lambda xs: float(np.mean(xs))  # noqa: E731
    return (f"{m(fwd):.1f} / {m(rev):.1f} / {m(lag):.2f} / {m(good):.3f} / {m(ttft):.1f} vs "
            f"{m(client):.1f} / {m(pre):.0f}")


def dense_row(n: int) -> str:
    """The dense long-context row (threshold routing, seed 0)."""
    sim, s = _run("dense_long_context", "prfaas-threshold", 0, n, gauge_s=1.0)
    g = gauge_arrays(sim)
    decode = np.array([sim.clusters[int(c)].kind == "pd" for c in g["cluster"]], dtype=bool)
    cap = {c.index: sum(i.mem_capacity_bytes for i in c.instances if i.role == "decode") for c in sim.clusters}
    use = np.array([kv / cap[int(c)] if cap[int(c)] > 0 else 0.0
                    for kv, c in zip(g["kv_bytes_in_use"], g["cluster"])])[decode]
    backlog = g["decode_queue"][decode]
    return (f"{s['goodput_rps']:.3f} | {s['ttft_p90_s']:.1f} / {s['ttft_client_p90_s']:.1f} s | "
            f"{1e3 * s['tpot_p90_s']:.0f} ms | {100 * use.max():.1f}% / {100 * use.mean():.1f}% | "
            f"{s['preemptions']} | {int(backlog.max()) if backlog.size else 0}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--dense-requests", type=int, default=600)
    args = ap.parse_args()
    cells = [bursty_row(p, args.seeds, args.requests) for p in POLICIES]
    print("| bursty, seeds " + "-".join(map(str, (args.seeds[0], args.seeds[-1]))) + " | "
          + " | ".join(POLICIES) + " |")
    print("|---|" + "---|" * len(POLICIES))
    print("| this checkout | " + " | ".join(cells) + " |")
    print()
    print("| dense_long_context | goodput | TTFT p90 prefill end / client | TPOT p90 "
          "| peak / mean decode KV use | preemptions | max decode backlog |")
    print("|---|---|---|---|---|---|---|")
    print("| this checkout | " + dense_row(args.dense_requests) + " |")


if __name__ == "__main__":
    main()
