"""Metric definitions on hand-built request records (docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prfaas_gym.metrics import measurement_window, slo_metrics
from prfaas_gym.planner.capacity import Criterion, judge_attainment

NAN = math.nan
TTFT_SLO, TPOT_SLO = 2.0, 0.1


def records(rows):
    """rows: (arrival, first token, finish, output tokens, rejected) -> column arrays."""
    cols = list(zip(*rows))
    return (np.array(cols[0], float), np.array(cols[1], float), np.array(cols[2], float),
            np.array(cols[3], float), np.array(cols[4], bool))


def metrics(rows, window=None, **kw):
    a, f, e, o, r = records(rows)
    win = window if window is not None else measurement_window(a, **kw)
    return slo_metrics(a, f, e, o, r, ttft_slo_s=TTFT_SLO, tpot_slo_s=TPOT_SLO, window=win)


# four served requests: TTFT 1, 1, 3 (miss), 1; TPOT 0.05, 0.2 (miss), 0.05, - (one token)
SERVED = [
    (0.0, 1.0, 1.5, 11, False),
    (1.0, 2.0, 4.0, 11, False),
    (2.0, 5.0, 5.5, 11, False),
    (3.0, 4.0, 4.0, 1, False),
]


def test_attainment_counts_both_slos_and_single_token_outputs():
    m = metrics(SERVED)
    assert m["requests"] == 4 and m["completed"] == 4 and m["rejected"] == 0
    assert m["slo_attainment"] == pytest.approx(2 / 4)  # rids 0 and 3
    assert m["ttft_p50_s"] == pytest.approx(1.0)
    assert m["tpot_mean_s"] == pytest.approx((0.05 + 0.2 + 0.05) / 3)


def test_a_rejected_request_lowers_attainment_and_the_all_percentiles():
    base = metrics(SERVED)
    rej = metrics(SERVED + [(3.5, NAN, NAN, 11, True)])
    assert rej["slo_attainment"] == pytest.approx(2 / 5)
    assert base["slo_attainment"] == pytest.approx(2 / 4)
    # completed-only percentiles do not see the rejection ...
    assert rej["ttft_p90_s"] == base["ttft_p90_s"]
    assert rej["tpot_p50_s"] == base["tpot_p50_s"]
    # ... the rejected-as-infinite ones do: TTFT [1, 1, 1, 3, inf], p90 falls between 3 and inf
    assert rej["ttft_p50_all_s"] == pytest.approx(1.0)
    assert rej["ttft_p90_all_s"] == math.inf
    assert base["ttft_p90_all_s"] == pytest.approx(base["ttft_p90_s"])
    # TPOT over multi-token requests: [0.05, 0.05, 0.2, inf]: p50 = 0.125, p99 = inf
    assert rej["tpot_p50_all_s"] == pytest.approx(0.125)
    assert rej["tpot_p99_all_s"] == math.inf


def test_unfinished_counts_as_a_miss_and_as_infinite():
    m = metrics(SERVED + [(3.5, 4.0, NAN, 11, False)])
    assert m["completed"] == 4 and m["rejected"] == 0
    assert m["slo_attainment"] == pytest.approx(2 / 5)
    assert m["ttft_p99_all_s"] == math.inf


def test_goodput_window_ignores_warmup_and_drain():
    # arrivals 0..9 s; window [2, 9 - 2] = [2, 7]: rids 2..7 measured. Good: every request
    # except rid 4 (TTFT miss) and rid 0 (TTFT miss, but in the warm-up).
    rows = []
    for i in range(10):
        ttft = 3.0 if i in (0, 4) else 0.5
        rows.append((float(i), i + ttft, i + ttft + 0.5, 6, False))
    m = metrics(rows, warmup_s=2.0, cooldown_s=2.0)
    assert (m["window_start_s"], m["window_end_s"], m["window_requests"]) == (2.0, 7.0, 6)
    assert m["goodput_rps"] == pytest.approx(5 / 5.0)
    assert m["throughput_rps"] == pytest.approx(6 / 5.0)
    assert m["slo_attainment_window"] == pytest.approx(5 / 6)
    assert m["slo_attainment"] == pytest.approx(8 / 10)
    # a long drain (the last request finishes at 1000 s) changes nothing: the window is fixed
    slow = rows[:-1] + [(9.0, 9.5, 1000.0, 6, False)]
    assert metrics(slow, warmup_s=2.0, cooldown_s=2.0)["goodput_rps"] == m["goodput_rps"]


def test_rejecting_does_not_shorten_the_goodput_denominator():
    # a policy that rejects the late, slow requests keeps the same window (arrival-defined)
    served = [(float(i), i + 0.5, i + 1.0, 6, False) for i in range(10)]
    rejecting = served[:8] + [(8.0, NAN, NAN, 6, True), (9.0, NAN, NAN, 6, True)]
    a, b = metrics(served), metrics(rejecting)
    assert a["window_end_s"] == b["window_end_s"] == 9.0
    assert b["goodput_rps"] == pytest.approx(8 / 9)
    assert a["goodput_rps"] == pytest.approx(10 / 9)


def test_empty_window_gives_nan_rates():
    m = metrics(SERVED, window=(3.0, 3.0))
    assert math.isnan(m["goodput_rps"]) and math.isnan(m["throughput_rps"])
    assert m["window_requests"] == 1


def test_capacity_goodput_criterion_is_attainment_over_all_arrivals():
    crit = Criterion(slo_attainment=0.9)
    ok = judge_attainment({"slo_attainment": 0.92, "completed": 90, "requests": 100}, crit)
    bad = judge_attainment({"slo_attainment": 0.85, "completed": 100, "requests": 100}, crit)
    assert ok.sustained and not bad.sustained
    assert "90%" in crit.describe()
    with pytest.raises(ValueError, match="slo_attainment"):
        Criterion(slo_attainment=1.5)
