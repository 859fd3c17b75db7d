"""Synthetic generators: arrival processes, length distributions, truncation, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from prfaas_gym.workload import Request, build_workload, workload_stats

LEN = {"dist": "constant", "value": 100}


def _synth(arrival: dict | None = None, n: int = 20_000, seed: int = 0, **kw) -> list[Request]:
    spec = {"kind": "synthetic", "requests": n, "arrival": arrival or {"process": "poisson", "rate_rps": 5.0},
            "input_tokens": kw.pop("input_tokens", LEN), "output_tokens": kw.pop("output_tokens", LEN)}
    spec.update(kw.pop("extra", {}))
    return build_workload(spec, rng=np.random.default_rng(seed), data_dir=None, **kw)


def _iat(reqs: list[Request]) -> np.ndarray:
    t = np.array([r.arrival_s for r in reqs])
    return np.diff(np.concatenate(([0.0], t)))


@pytest.mark.parametrize("arrival", [
    {"process": "poisson", "rate_rps": 5.0},
    {"process": "gamma", "rate_rps": 5.0, "cv": 3.0},
    {"process": "gamma", "rate_rps": 5.0, "cv": 0.5},
    {"process": "bursty", "rate_rps": 5.0, "burst_fraction": 0.1, "burst_multiplier": 8, "mean_burst_s": 2},
    {"process": "bursty", "rate_rps": 5.0, "burst_fraction": 0.25, "burst_multiplier": 4,
     "mean_burst_s": 2},  # on/off
    {"process": "diurnal", "rate_rps": 5.0, "period_s": 600, "amplitude": 0.8},
    {"process": "uniform", "rate_rps": 5.0},
])
def test_mean_rate(arrival: dict) -> None:
    reqs = _synth(arrival, n=50_000)
    assert len(reqs) == 50_000
    assert workload_stats(reqs)["rate_rps"] == pytest.approx(5.0, rel=0.06)
    assert all(a.arrival_s <= b.arrival_s for a, b in zip(reqs, reqs[1:]))
    assert [r.rid for r in reqs] == list(range(len(reqs)))


def test_iat_cv() -> None:
    def cv(x: np.ndarray) -> float:
        return float(x.std() / x.mean())

    assert cv(_iat(_synth({"process": "poisson", "rate_rps": 5.0}))) == pytest.approx(1.0, abs=0.05)
    assert cv(_iat(_synth({"process": "gamma", "rate_rps": 5.0, "cv": 2.5}, n=100_000))) == pytest.approx(2.5, rel=0.1)
    assert cv(_iat(_synth({"process": "uniform", "rate_rps": 5.0}))) == pytest.approx(0.0, abs=1e-6)
    bursty = _synth({"process": "bursty", "rate_rps": 5.0, "burst_fraction": 0.1, "burst_multiplier": 8})
    assert cv(_iat(bursty)) > 1.3


def test_uniform_spacing() -> None:
    reqs = _synth({"process": "uniform", "rate_rps": 4.0}, n=5)
    assert [r.arrival_s for r in reqs] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25])


def test_onoff_has_silent_periods() -> None:
    reqs = _synth({"process": "bursty", "rate_rps": 2.0, "burst_fraction": 0.2, "burst_multiplier": 5,
                   "mean_burst_s": 10})
    assert _iat(reqs).max() > 20  # calm periods (mean 40 s) carry no arrivals at all


def test_diurnal_follows_the_sine() -> None:
    reqs = _synth({"process": "diurnal", "rate_rps": 10.0, "period_s": 1000, "amplitude": 0.9}, n=100_000)
    phase = np.array([r.arrival_s for r in reqs]) % 1000
    rising = np.count_nonzero(phase < 500)  # sin > 0 half
    falling = np.count_nonzero(phase >= 500)
    expected = (1 + 0.9 * 2 / np.pi) / (1 - 0.9 * 2 / np.pi)
    assert rising / falling == pytest.approx(expected, rel=0.05)


def test_rate_override_replaces_generator_rate() -> None:
    reqs = _synth({"process": "gamma", "rate_rps": 1.0, "cv": 2.0}, rate_rps=20.0)
    assert workload_stats(reqs)["rate_rps"] == pytest.approx(20.0, rel=0.06)


def test_rate_override_keeps_lengths() -> None:
    ln = {"dist": "lognormal", "mu": 8, "sigma": 1}
    a = _synth(input_tokens=ln, n=500, rate_rps=1.0)
    b = _synth(input_tokens=ln, n=500, rate_rps=9.0)
    assert [r.input_tokens for r in a] == [r.input_tokens for r in b]
    assert [r.arrival_s for r in a] != [r.arrival_s for r in b]


def test_duration_only() -> None:
    reqs = _synth(n=None, duration_s=2000.0)  # type: ignore[arg-type]
    assert reqs[-1].arrival_s < 2000.0
    assert len(reqs) == pytest.approx(10_000, rel=0.05)
    reqs = _synth(n=100, duration_s=10.0)
    assert len(reqs) < 100 and reqs[-1].arrival_s < 10.0


def test_exact_count() -> None:
    for n in (1, 2, 17, 1000):
        assert len(_synth(n=n)) == n


def test_determinism() -> None:
    spec_kw = dict(arrival={"process": "bursty", "rate_rps": 3.0},
                   input_tokens={"dist": "lognormal", "mu": 9.9, "sigma": 1.0, "min": 128, "max": 131072},
                   extra={"prefix": {"sessions": 10, "turns_mean": 3, "shared_system_tokens": 1024}})
    a = _synth(n=2000, seed=7, **dict(spec_kw))
    b = _synth(n=2000, seed=7, **dict(spec_kw))
    c = _synth(n=2000, seed=8, **dict(spec_kw))
    key = lambda rs: [(repr(r.arrival_s), r.input_tokens, r.output_tokens, r.hash_ids, r.session_id,  # noqa: E731
                       r.turn, r.parent_rid, repr(r.think_s)) for r in rs]
    assert key(a) == key(b)
    assert key(a) != key(c)


# ---------------------------------------------------------------------------------------------
# lengths
# ---------------------------------------------------------------------------------------------

def _inputs(dist: dict, n: int = 50_000, seed: int = 0) -> np.ndarray:
    return np.array([r.input_tokens for r in _synth(n=n, seed=seed, input_tokens=dist)])


def test_constant_and_uniform() -> None:
    assert set(_inputs({"dist": "constant", "value": 1024}).tolist()) == {1024}
    u = _inputs({"dist": "uniform", "low": 10, "high": 20})
    assert u.min() == 10 and u.max() == 20 and u.mean() == pytest.approx(15, abs=0.1)


def test_lognormal_mean_and_median() -> None:
    x = _inputs({"dist": "lognormal", "mu": 7.0, "sigma": 0.5})
    assert np.median(x) == pytest.approx(np.exp(7.0), rel=0.03)
    assert x.mean() == pytest.approx(np.exp(7.0 + 0.125), rel=0.03)


def test_lognormal_truncation_resample_and_clip() -> None:
    bounds = {"min": 128, "max": 131072}
    r = _inputs({"dist": "lognormal", "mu": 9.9, "sigma": 2.0, **bounds})
    c = _inputs({"dist": "lognormal", "mu": 9.9, "sigma": 2.0, "truncate": "clip", **bounds})
    for x in (r, c):
        assert x.min() >= 128 and x.max() <= 131072
    # clipping piles mass on the bounds, resampling does not
    assert np.count_nonzero(c == 131072) > 1000
    assert np.count_nonzero(r == 131072) < 20


def test_pareto_skew() -> None:
    x = _inputs({"dist": "pareto", "alpha": 1.5, "scale": 256, "max": 1_000_000})
    assert x.min() >= 256
    assert np.median(x) == pytest.approx(256 * 2 ** (1 / 1.5), rel=0.05)
    assert x.mean() > 1.5 * np.median(x)


def test_empirical_values_and_weights() -> None:
    x = _inputs({"dist": "empirical", "values": [100, 1000], "weights": [3, 1]})
    assert set(x.tolist()) == {100, 1000}
    assert np.mean(x == 100) == pytest.approx(0.75, abs=0.01)


def test_empirical_from_trace_column(fixtures) -> None:
    spec = {"kind": "synthetic", "requests": 1000, "arrival": {"rate_rps": 1.0},
            "input_tokens": {"dist": "empirical", "path": "azure_tiny.csv", "column": "ContextTokens"},
            "output_tokens": {"dist": "empirical", "path": "mooncake_tiny.jsonl", "column": "output_length"}}
    reqs = build_workload(spec, rng=np.random.default_rng(0), data_dir=fixtures)
    assert {r.input_tokens for r in reqs} == {374, 396, 879, 12}
    assert {r.output_tokens for r in reqs} == {10, 5, 7, 20, 1, 3}


def test_no_prefix_means_no_hash_ids() -> None:
    reqs = _synth(n=10)
    assert all(r.hash_ids is None and r.session_id == -1 for r in reqs)


def test_stats_keys_and_values() -> None:
    from prfaas_gym.workload import workload_stats

    reqs = _synth({"process": "uniform", "rate_rps": 2.0}, n=5, input_tokens={"dist": "constant", "value": 7})
    s = workload_stats(reqs)
    assert s["count"] == 5 and s["rate_rps"] == pytest.approx(2.0) and s["duration_s"] == pytest.approx(2.0)
    assert s["input_mean"] == s["input_p50"] == s["input_p90"] == s["input_p99"] == 7.0
    assert set(workload_stats([])) == set(s)


def test_empty_workload_when_duration_is_tiny() -> None:
    assert _synth(n=None, duration_s=1e-6) == []  # type: ignore[arg-type]
