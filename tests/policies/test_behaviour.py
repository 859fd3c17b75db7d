"""Expected behaviour over paired seeds (issue 6), with tolerances.

The Mooncake test needs the trace (``$PRFAAS_DATA_DIR`` or ../shared/data); skipped without.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from prfaas_gym.api import build_simulator
from prfaas_gym.evaluation import BandwidthRecorder, compare_policies, load_sweep, max_sustained_rate
from prfaas_gym.scenario import load_scenario


def _data_dir() -> Path | None:
    for d in (os.environ.get("PRFAAS_DATA_DIR"), "/work/shared/data",
              str(Path(__file__).resolve().parents[3] / "shared" / "data")):
        if d and (Path(d) / "mooncake" / "conversation_trace.jsonl").exists():
            return Path(d)
    return None


@pytest.mark.skipif(_data_dir() is None, reason="Mooncake trace not available")
def test_mooncake_adaptive_goodput_and_conductor_ttft():
    comp = compare_policies("mooncake_conversation",
                            ["prfaas-adaptive", "local-only", "naive-heterogeneous",
                             "mooncake-conductor", "round-robin"],
                            seeds=3, n_requests=1000, data_dir=_data_dir())
    g = {p: np.array(comp.values(p, "goodput_rps")) for p in comp.policies}
    # paired: on every seed, and by a clear margin on average
    assert (g["prfaas-adaptive"] > 1.2 * g["local-only"]).all()
    assert (g["prfaas-adaptive"] > 1.2 * g["naive-heterogeneous"]).all()
    t = {p: np.array(comp.values(p, "ttft_p90_s")) for p in comp.policies}
    assert (t["mooncake-conductor"] < 0.8 * t["round-robin"]).all()


def test_paper_threshold_sustains_more_load_than_naive():
    res = load_sweep("paper/prfaas_pd", ["prfaas-threshold", "naive-heterogeneous"],
                     [2.0, 2.5, 3.0, 3.5], seeds=2, n_requests=1200)
    thr = max_sustained_rate(res["curves"]["prfaas-threshold"]["slo_attainment"], 0.9)
    naive = max_sustained_rate(res["curves"]["naive-heterogeneous"]["slo_attainment"], 0.9)
    assert thr > naive
    # and at the highest rate, more goodput
    gt = res["curves"]["prfaas-threshold"]["goodput_rps"][-1]["mean"]
    gn = res["curves"]["naive-heterogeneous"]["goodput_rps"][-1]["mean"]
    assert gt > 1.2 * gn


def test_bursty_adaptive_keeps_egress_under_link_in_dips():
    # open-loop turns keep the link loaded during dips; with causal sessions (the default) the
    # load self-limits and neither policy saturates the link in more than ~1% of dip time
    sc = load_scenario("bursty_fluctuating", {"workload.prefix.loop": "open"})
    sat = {"prfaas-threshold": [], "prfaas-adaptive": []}
    for seed in range(3):
        for pol in sat:
            sim = build_simulator(sc, pol, seed=seed, n_requests=2000)
            rec = BandwidthRecorder(sim)
            sim.run()
            rep = rec.dip_report(0)
            assert rep["dip_s"] > 0
            sat[pol].append(rep["saturated_fraction"])
    a, t = np.array(sat["prfaas-adaptive"]), np.array(sat["prfaas-threshold"])
    assert a.mean() < 0.7 * t.mean()
    assert (a <= t + 0.02).all()
