"""Decode steps follow the step-time model: TPOT grows with the batch (and context) as it says,
and the 1T-hybrid scenarios ship the roofline fit anchored at the paper's 25 ms at batch 20."""

from __future__ import annotations

import pytest

from prfaas_gym.perf import build_step_time_model
from prfaas_gym.perf.roofline import RooflineModel
from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim import Simulator
from prfaas_gym.workload import Request

STEP_S, PER_SEQ_S, PER_TOKEN_S = 0.01, 0.002, 1e-6


def _run(make_scenario, tiny, n: int, out: int = 11, inp: int = 1000) -> list[Request]:
    poly = {"backend": "polynomial", "prefill_s": [0.01, 1e-4, 0.0], "decode_step_s": STEP_S,
            "decode_s_per_seq": PER_SEQ_S, "decode_s_per_context_token": PER_TOKEN_S}
    # a one-token request holds the prefill instance while the n prompts queue behind it; they
    # then share one prefill batch, so their KV reaches the one decode instance together
    sc = make_scenario([tiny.pd_cluster(step_time=poly, prefill={"max_batch": 8, "max_batch_tokens": 65536},
                                        decode={"max_batch": 8})])
    reqs = [Request(0, 0.0, 2000, 1)] + [Request(i + 1, 0.001, inp, out) for i in range(n)]
    Simulator(sc, requests=reqs).run()
    return reqs[1:]


@pytest.mark.parametrize("batch", [1, 4, 8])
def test_tpot_grows_with_batch_as_the_model_says(make_scenario, tiny, batch):
    reqs = _run(make_scenario, tiny, batch)
    assert len({r.decode_start_s for r in reqs}) == 1  # they decode as one batch
    # 10 steps; context per step = batch x (1000 prompt + tokens so far), ~1005.5 on average
    step = STEP_S + PER_SEQ_S * batch + PER_TOKEN_S * batch * 1005.5
    for r in reqs:
        assert r.finish_s - r.decode_start_s == pytest.approx(10 * step, rel=2e-3)


def test_tpot_ordering_across_batches(make_scenario, tiny):
    decode = {b: _run(make_scenario, tiny, b)[0] for b in (1, 4, 8)}
    spans = [decode[b].finish_s - decode[b].decode_start_s for b in (1, 4, 8)]
    assert spans[0] < spans[1] < spans[2]


@pytest.mark.parametrize("name", ["bursty_fluctuating", "scale_10k_gpu"])
def test_one_t_hybrid_decode_is_the_anchored_roofline_fit(name):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from fit_decode_step import fit

    sc = load_scenario(name)
    pd = next(c for c in sc.clusters if c.kind == "pd")
    stm = build_step_time_model(pd.step_time, sc.model, pd.hardware, pd.gpus_per_instance)
    # the shipped coefficients are today's fit (benchmarks/fit_decode_step.py), to 3 digits
    f = fit()
    for key in ("decode_step_s", "decode_s_per_seq", "decode_s_per_context_token"):
        assert pd.step_time[key] == pytest.approx(f[key], rel=6e-3), key
    # the paper's anchor: 25 ms for a full batch of 20 at ~27.5K tokens each
    assert stm.decode_s(20, 20 * 27_500) == pytest.approx(0.025, rel=0.01)
    # the roofline's shape: one scale factor (the anchor) maps it onto the shipped step, to the
    # accuracy of the linear fit
    roof = RooflineModel(sc.model, pd.hardware, pd.gpus_per_instance)
    ratios = [stm.decode_s(b, b * ctx) / roof.decode_s(b, b * ctx) for b in (1, 5, 10, 20) for ctx in (2048, 32768)]
    err = f["fit_max_rel_err"] + 0.005  # the shipped 3-digit rounding
    assert f["fit_max_rel_err"] < 0.06
    assert max(ratios) / min(ratios) < (1 + err) / (1 - err)
    assert stm.decode_s(1, 2048) < 0.65 * stm.decode_s(20, 20 * 27_500)


def test_paper_scenarios_keep_the_constant_step():
    sc = load_scenario("paper/prfaas_pd")
    pd = next(c for c in sc.clusters if c.kind == "pd")
    stm = build_step_time_model(pd.step_time, sc.model, pd.hardware, pd.gpus_per_instance)
    assert stm.decode_s(1, 1000) == stm.decode_s(20, 500_000) == 0.025
