"""Trace loaders: Mooncake JSONL, Azure CSV, generic CSV, ServeGen, on fixtures and real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from prfaas_gym.workload import BLOCK_TOKENS, WorkloadError, build_workload, workload_stats


def _build(spec: dict, data_dir: Path, seed: int = 0, **kw):
    return build_workload(spec, rng=np.random.default_rng(seed), data_dir=data_dir, **kw)


def test_mooncake_fixture_hash_ids_and_ms(fixtures: Path) -> None:
    reqs = _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": 0}, fixtures)
    assert [r.rid for r in reqs] == list(range(6))
    assert [r.arrival_s for r in reqs] == [0.0, 0.0, 0.0, 3.0, 3.0, 6.0]  # ms -> s
    assert reqs[0].hash_ids == (0, 1, 2)
    assert reqs[5].hash_ids == (0, 1, 3, 4, 6, 7)
    assert [r.input_tokens for r in reqs] == [1100, 512, 1600, 2048, 100, 2600]
    assert [r.output_tokens for r in reqs] == [10, 5, 7, 20, 1, 3]
    for r in reqs:
        assert isinstance(r.hash_ids, tuple)
        assert len(r.hash_ids) == math.ceil(r.input_tokens / BLOCK_TOKENS)
        assert r.session_id == -1


@pytest.mark.parametrize("jitter", [3.0, "auto"])
def test_mooncake_jitter_stays_inside_slot_and_keeps_order(fixtures: Path, jitter) -> None:
    for seed in range(20):
        reqs = _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": jitter}, fixtures, seed)
        slots = [0.0, 0.0, 0.0, 3.0, 3.0, 6.0]
        inputs = [1100, 512, 1600, 2048, 100, 2600]
        assert [r.input_tokens for r in reqs] == inputs  # trace order kept within a slot
        for r, slot in zip(reqs, slots):
            assert slot <= r.arrival_s < slot + 3.0
        assert all(a.arrival_s <= b.arrival_s for a, b in zip(reqs, reqs[1:]))


def test_mooncake_jitter_depends_on_seed_only(fixtures: Path) -> None:
    spec = {"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": 3.0}
    a = [r.arrival_s for r in _build(spec, fixtures, 1)]
    b = [r.arrival_s for r in _build(spec, fixtures, 1)]
    c = [r.arrival_s for r in _build(spec, fixtures, 2)]
    assert a == b and a != c


def test_azure_fixture(fixtures: Path) -> None:
    reqs = _build({"kind": "azure", "path": "azure_tiny.csv"}, fixtures)
    assert [r.input_tokens for r in reqs] == [374, 396, 879, 12]
    assert [r.output_tokens for r in reqs] == [44, 109, 3, 1]
    assert reqs[0].arrival_s == 0.0
    assert reqs[1].arrival_s == pytest.approx(4.3145790)
    assert reqs[3].arrival_s == pytest.approx(60.0)
    assert all(r.hash_ids is None for r in reqs)


def test_generic_csv_autodetects_vidur_columns(fixtures: Path) -> None:
    reqs = _build({"kind": "csv", "path": "vidur_tiny.csv"}, fixtures)
    assert [r.arrival_s for r in reqs] == [0.0, 0.5, 2.0]  # shifted to start at 0
    assert [(r.input_tokens, r.output_tokens) for r in reqs] == [(100, 20), (2000, 1), (512, 300)]


def test_generic_csv_named_columns_and_units(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("t_ms,p,d\n1000,5,6\n1500,7,8\n")
    spec = {"kind": "csv", "path": "t.csv", "time_unit": "ms", "columns": {"arrival": "t_ms", "input": "p",
                                                                           "output": "d"}}
    reqs = _build(spec, tmp_path)
    assert [r.arrival_s for r in reqs] == [0.0, 0.5]
    assert [(r.input_tokens, r.output_tokens) for r in reqs] == [(5, 6), (7, 8)]


def test_trace_rate_rescale(fixtures: Path) -> None:
    reqs = _build({"kind": "csv", "path": "vidur_tiny.csv", "rate_rps": 2.0}, fixtures)
    assert workload_stats(reqs)["rate_rps"] == pytest.approx(2.0)
    reqs = _build({"kind": "csv", "path": "vidur_tiny.csv"}, fixtures, rate_rps=0.5)
    assert reqs[-1].arrival_s == pytest.approx(4.0)


def test_trace_time_scale(fixtures: Path) -> None:
    reqs = _build({"kind": "csv", "path": "vidur_tiny.csv", "time_scale": 2.0}, fixtures)
    assert [r.arrival_s for r in reqs] == [0.0, 1.0, 4.0]


def test_trace_cycling_offsets_hash_ids_and_times(fixtures: Path) -> None:
    reqs = _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": 0}, fixtures, n_requests=14)
    assert len(reqs) == 14 and [r.rid for r in reqs] == list(range(14))
    # period = span + mean gap = 6 + 6/5
    assert reqs[6].arrival_s == pytest.approx(7.2)
    assert reqs[12].arrival_s == pytest.approx(14.4)
    first = {h for r in reqs[:6] for h in r.hash_ids}
    second = {h for r in reqs[6:12] for h in r.hash_ids}
    assert not first & second  # cycled copies never share cache blocks
    assert reqs[6].hash_ids == tuple(h + 8 for h in reqs[0].hash_ids)
    assert [r.input_tokens for r in reqs[6:12]] == [r.input_tokens for r in reqs[:6]]


def test_trace_cycling_can_be_refused(fixtures: Path) -> None:
    with pytest.raises(WorkloadError, match=r"workload.requests: the trace .*mooncake_tiny.jsonl has only 6"):
        _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "repeat": False}, fixtures, n_requests=7)


def test_trace_truncation_and_duration(fixtures: Path) -> None:
    reqs = _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": 0}, fixtures, n_requests=4)
    assert [r.input_tokens for r in reqs] == [1100, 512, 1600, 2048]
    reqs = _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": 0}, fixtures, duration_s=3.0)
    assert len(reqs) == 3
    # a duration longer than the trace cycles it (when repeat is on, the default)
    reqs = _build({"kind": "mooncake", "path": "mooncake_tiny.jsonl", "jitter_s": 0}, fixtures, duration_s=20.0)
    assert len(reqs) == 17 and reqs[-1].arrival_s < 20.0


def test_trace_output_override(fixtures: Path) -> None:
    spec = {"kind": "azure", "path": "azure_tiny.csv", "output_tokens": {"dist": "constant", "value": 64}}
    assert {r.output_tokens for r in _build(spec, fixtures)} == {64}


def test_servegen_fixture(fixtures: Path) -> None:
    spec = {"kind": "servegen", "path": "servegen_tiny"}
    reqs = _build(spec, fixtures, duration_s=1800.0)
    t = np.array([r.arrival_s for r in reqs])
    assert not np.any((t >= 600) & (t < 1200))  # idle window
    first = [r for r in reqs if r.arrival_s < 600]
    third = [r for r in reqs if r.arrival_s >= 1200]
    assert len(first) == pytest.approx(1200, rel=0.15)
    assert len(third) == pytest.approx(2400, rel=0.3)
    assert {r.input_tokens for r in first} == {100, 300} and {r.output_tokens for r in first} == {10}
    assert {r.input_tokens for r in third} == {1000} and {r.output_tokens for r in third} <= {20, 40}
    assert len(_build(spec, fixtures, n_requests=10_000)) == 10_000  # wraps around


# ---------------------------------------------------------------------------------------------
# real traces (../shared/data beside the checkout)
# ---------------------------------------------------------------------------------------------

def test_real_mooncake_conversation(shared_data: Path) -> None:
    import time

    t0 = time.perf_counter()
    reqs = _build({"kind": "mooncake", "path": "mooncake/conversation_trace.jsonl"}, shared_data)
    elapsed = time.perf_counter() - t0
    assert len(reqs) == 12031
    s = workload_stats(reqs)
    assert s["rate_rps"] == pytest.approx(3.40, abs=0.02)
    assert s["input_mean"] == pytest.approx(12035, abs=1)
    assert s["block_reuse"] == pytest.approx(0.3664, abs=1e-3)
    # auto jitter spreads the ~3 s slots: far fewer ties than the raw 1,180 timestamps
    assert len({r.arrival_s for r in reqs}) == 12031
    assert elapsed < 5.0  # ~0.4 s on a laptop; generous for CI


def test_real_mooncake_synthetic_and_azure(shared_data: Path) -> None:
    syn = _build({"kind": "mooncake", "path": "mooncake/synthetic_trace.jsonl"}, shared_data)
    assert len(syn) == 3993
    assert workload_stats(syn)["rate_rps"] == pytest.approx(3.907, abs=0.01)
    for name, rows, rate in (("conv", 19366, 5.53), ("code", 8819, 2.567)):
        reqs = _build({"kind": "azure", "path": f"azure_llm_2023/AzureLLMInferenceTrace_{name}.csv"}, shared_data)
        assert len(reqs) == rows
        assert workload_stats(reqs)["rate_rps"] == pytest.approx(rate, rel=0.01)


def test_real_servegen(shared_data: Path) -> None:
    reqs = _build({"kind": "servegen", "path": "servegen/reason/deepseek-r1/chunk-35"}, shared_data,
                  duration_s=600.0)
    assert workload_stats(reqs)["rate_rps"] == pytest.approx(8.34, rel=0.1)  # the first window's rate
