"""Tests for the step-time back-ends, calibration round trip and accuracy on the shared H100 file."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from prfaas_gym.perf import PerfInputError, RooflineModel, build_step_time_model
from prfaas_gym.perf.calibrate import calibrate, phase_errors, predict_ms
from prfaas_gym.perf.cases import StepCase, read_cases
from prfaas_gym.profiles import get_hardware, get_model

SHARED = Path(os.environ.get("PRFAAS_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
CALIB = SHARED / "calibration" / "h100-sxm_llama3-8b_steps.csv"
T5 = {1024: 0.44, 8192: 0.72, 32768: 1.84, 131072: 7.40}


def _table():
    return build_step_time_model({"backend": "table", "table": "paper-h200-table5"},
                                 get_model("prfaas-1t-hybrid"), get_hardware("h200-sxm"), 8)


def test_table_returns_table_points() -> None:
    stm = _table()
    for n, t in T5.items():
        assert stm.prefill_s([(n, 0)]) == pytest.approx(t)
    assert stm.prefill_s([(4608, 0)]) == pytest.approx((0.44 + 0.72) / 2)  # linear midpoint
    assert stm.prefill_s([(262144, 0)]) > 7.40  # end-segment extrapolation
    assert stm.decode_s(20, 20 * 30000) == pytest.approx(0.025)


def test_table_batch_and_prefix_rules() -> None:
    stm = _table()
    one = stm.prefill_s([(8192, 0)])
    two = stm.prefill_s([(8192, 0), (8192, 0)])
    assert one < two < 2 * one
    hit = stm.prefill_s([(1024, 31744)])
    assert stm.prefill_s([(1024, 0)]) <= hit < stm.prefill_s([(32768, 0)])


def test_polynomial_h20_curve() -> None:
    stm = build_step_time_model({"backend": "polynomial", "prefill_s": [0.4691, 1.3004e-4, 2.940e-10],
                                 "decode_step_s": 0.025}, get_model("prfaas-1t-hybrid"), get_hardware("h20"), 8)
    l = 32768
    assert stm.prefill_s([(l, 0)]) == pytest.approx(0.4691 + 1.3004e-4 * l + 2.940e-10 * l * l)
    assert stm.prefill_s([(l, 0), (l, 0)]) == pytest.approx(2 * stm.prefill_s([(l, 0)]) - 0.4691)
    assert stm.decode_s(20, 1000) == 0.025


@pytest.mark.parametrize("model,hw,gpus", [("llama3-8b", "h100-sxm", 1), ("llama3-70b", "h100-sxm", 4),
                                           ("deepseek-v3", "h200-sxm", 8), ("prfaas-1t-hybrid", "h20", 8),
                                           ("kimi-linear-48b", "h100-sxm", 1)])
def test_roofline_monotone(model: str, hw: str, gpus: int) -> None:
    stm = build_step_time_model(None, get_model(model), get_hardware(hw), gpus)
    prev = 0.0
    for n in (1, 16, 128, 512, 2048, 8192, 32768):
        t = stm.prefill_s([(n, 0)])
        assert t > prev
        prev = t
    for b in (1, 2):
        assert stm.prefill_s([(1024, 0)] * (b + 1)) > stm.prefill_s([(1024, 0)] * b)
    assert stm.prefill_s([(1024, 8192)]) > stm.prefill_s([(1024, 0)])
    prev = 0.0
    for b in (1, 2, 8, 32, 128, 256):
        t = stm.decode_s(b, b * 2048)
        assert t > prev
        prev = t
    prev = 0.0
    for c in (0, 512, 4096, 32768, 262144):
        t = stm.decode_s(8, c)
        assert t >= prev
        prev = t


@pytest.mark.parametrize("model,gpus", [("llama3-8b", 1), ("llama3-3b", 1), ("llama3-70b", 8), ("deepseek-v3", 8)])
def test_roofline_respects_ceilings(model: str, gpus: int) -> None:
    hw = get_hardware("h100-sxm")
    rm = RooflineModel(get_model(model), hw, gpus)
    peak = hw.peak_flops_for(rm.model.weight_bytes_per_param)
    for seqs in ([(1, 0)], [(128, 0)], [(4096, 0)], [(1024, 0)] * 8, [(512, 16384)]):
        w = rm.work(seqs)
        t = rm.prefill_s(seqs)
        assert t >= w.flops / peak
        assert t >= w.bytes / hw.hbm_bandwidth_bytes_s
    for b, c in ((1, 512), (64, 64 * 2048), (256, 256 * 512)):
        w = rm.work(batch=b, context_tokens=c)
        t = rm.decode_s(b, c)
        assert t >= w.flops / peak
        assert t >= w.bytes / hw.hbm_bandwidth_bytes_s


def test_memoised_calls_are_deterministic() -> None:
    stm = build_step_time_model(None, get_model("llama3-8b"), get_hardware("h100-sxm"), 1)
    a = stm.prefill_s([(1000, 24), (17, 0)])
    assert stm.prefill_s(((1000, 24), (17, 0))) == a
    assert stm.prefill_s([[1000, 24], [17, 0]]) == a


def test_calibration_round_trip_recovers_terms() -> None:
    hw = get_hardware("h100-sxm")
    true = dataclasses.replace(hw.efficiency, attention_efficiency=0.45, memory_efficiency=0.8,
                               elementwise_factor=2.0, step_overhead_s=2e-3, layer_overhead_s=3e-5,
                               decode_layer_overhead_s=1e-5)
    truth_hw = dataclasses.replace(hw, efficiency=true)
    cases = []
    for model in ("llama3-8b", "llama3-3b"):
        for n in (128, 512, 2048, 8192, 32768):
            cases.append(StepCase(model, "prefill", 1, n, n))
        for b in (1, 16, 64, 256):
            for c in (512, 8192):
                cases.append(StepCase(model, "decode", b, b, c))
    meas = predict_ms(cases, get_model, truth_hw)
    cases = [dataclasses.replace(c, measured_ms=m) for c, m in zip(cases, meas)]
    res = calibrate(cases, get_model, hw)
    for name in ("attention_efficiency", "memory_efficiency", "elementwise_factor", "step_overhead_s"):
        assert getattr(res.efficiency, name) == pytest.approx(getattr(true, name), rel=0.05), name
    assert all(e.mape_pct < 0.5 for e in res.errors)


@pytest.mark.skipif(not CALIB.exists(), reason="../shared calibration data absent")
def test_mape_on_shared_h100_file() -> None:
    cases = read_cases(CALIB, need_measured=True)
    errs = phase_errors(cases, predict_ms(cases, get_model, get_hardware("h100-sxm")))
    assert {e.phase for e in errs} == {"prefill", "decode"}
    for e in errs:
        assert e.mape_pct <= 5.0, e


def test_bad_spec() -> None:
    m, hw = get_model("llama3-8b"), get_hardware("h100-sxm")
    with pytest.raises(PerfInputError, match="step_time.backend"):
        build_step_time_model({"backend": "magic"}, m, hw, 1)
    with pytest.raises(PerfInputError, match="step_time.table"):
        build_step_time_model({"backend": "table", "table": "nope"}, m, hw, 1)
    with pytest.raises(PerfInputError, match="step_time.prefill_s"):
        build_step_time_model({"backend": "polynomial", "prefill_s": [1], "decode_step_s": 0.1}, m, hw, 1)
    with pytest.raises(PerfInputError, match="step_time.bogus"):
        build_step_time_model({"backend": "roofline", "bogus": 1}, m, hw, 1)


DATA = SHARED / "data"


def test_host_floor_and_small_kernel_floor() -> None:
    hw = get_hardware("h100-sxm")
    e = hw.efficiency
    for name in ("llama3-3b", "llama3-8b"):
        rm = RooflineModel(get_model(name), hw, 1, engine="eager")
        layers = rm.model.num_layers
        # eager prefill never beats issuing every layer's kernels from the host
        assert rm.prefill_s([(16, 0)]) >= e.step_overhead_s + layers * e.layer_overhead_s
        # a decode step pays at least one small-kernel floor per layer
        assert rm.decode_s(1, 1) >= e.step_overhead_s + layers * e.decode_layer_overhead_s
    # the floor is per layer: fewer layers, lower floor
    small = RooflineModel(get_model("llama3-3b"), hw, 1, engine="eager").prefill_s([(1, 0)])
    big = RooflineModel(get_model("llama3-8b"), hw, 1, engine="eager").prefill_s([(1, 0)])
    assert small < big


@pytest.mark.skipif(not CALIB.exists(), reason="../shared calibration data absent")
def test_shipped_terms_are_the_calibration_fixed_point() -> None:
    hw = get_hardware("h100-sxm")
    res = calibrate(read_cases(CALIB, need_measured=True), get_model, hw)
    for name in ("attention_efficiency", "memory_efficiency", "elementwise_factor", "layer_overhead_s",
                 "decode_layer_overhead_s"):
        assert getattr(res.efficiency, name) == pytest.approx(getattr(hw.efficiency, name), rel=0.01), name
    # the element-wise byte count is physical: the fitted multiplier is ~1
    assert 0.8 <= res.efficiency.elementwise_factor <= 1.25


@pytest.mark.skipif(not (CALIB.exists() and (DATA / "aiconfigurator/h100_sxm/gemm").exists()),
                    reason="../shared data absent")
def test_heldout_kernel_table_transfer() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from perf_heldout import load_tables, transfer_pairs

    import numpy as np

    rows = transfer_pairs(load_tables(DATA), read_cases(CALIB, need_measured=True))
    for name, phase, pred, pseudo in rows:
        e = np.abs(np.asarray(pred) / np.asarray(pseudo) - 1.0) * 100
        assert e.mean() <= 5.0, (name, phase, e.mean())
        if "70b" not in name:
            assert e.max() <= 10.0, (name, phase, e.max())
