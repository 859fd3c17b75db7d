"""`prfaas-gym benchmark run` on a tiny task: the JSON shape, the paired statistics, outputs
on disk, and resuming from the cache."""

from __future__ import annotations

import json
import math

import pytest

from prfaas_gym.benchmark import get_task
from prfaas_gym.benchmark import leaderboard as lb
from prfaas_gym.cli import main

TASK = "prfaas/paper-steady-v1"
POLICIES = "prfaas-threshold,least-loaded,local-only"
TINY = ["--tasks", TASK, "--policies", POLICIES, "--test-seeds", "2", "--requests", "60"]


@pytest.fixture
def clean_commit(monkeypatch):
    monkeypatch.setattr(lb, "code_commit", lambda: "abc123")


def test_a_new_commit_recomputes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lb, "code_commit", lambda: "one")
    args = ["benchmark", "run", "--tasks", TASK, "--policies", "prfaas-threshold", "--test-seeds", "1",
            "--requests", "40", "--out", str(tmp_path)]
    assert main(args) == 0
    monkeypatch.setattr(lb, "code_commit", lambda: "two")
    assert main(args) == 0
    assert len((tmp_path / "journal" / "journal.jsonl").read_text().splitlines()) == 4


def test_run_json_shape_and_statistics(tmp_path, capsys, clean_commit):
    out = tmp_path / "res"
    doc_md = tmp_path / "benchmark.md"
    assert main(["benchmark", "run", *TINY, "--out", str(out), "--doc", str(doc_md), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"tasks"}
    table = doc["tasks"][TASK]
    assert set(table) == {"metric", "bound", "best_heuristic", "results",
                          "bound_over_best_heuristic", "knobs", "tuned"}  # the keys, then ours
    assert table["tuned"] is True and set(table["knobs"]) == set(POLICIES.split(","))
    assert table["metric"] == "slo_attainment"
    assert set(table["bound"]) == {"mean", "ci95"}
    assert set(table["results"]) == set(POLICIES.split(","))
    for p, e in table["results"].items():
        assert set(e) == {"mean", "ci95", "ratio_to_best_heuristic", "fraction_of_bound"}
        assert set(e["ratio_to_best_heuristic"]) == {"mean", "ci95"}
        assert 0.0 <= e["mean"] <= table["bound"]["mean"] + 1e-9  # no policy beats the bound
    best = table["best_heuristic"]
    assert table["results"][best]["mean"] == max(e["mean"] for e in table["results"].values())
    assert table["results"][best]["ratio_to_best_heuristic"]["mean"] == pytest.approx(1.0)

    # the paired ratio is the mean of per-seed ratios, recomputed from the per-seed rows
    runs = json.loads((out / "prfaas_paper-steady-v1" / "leaderboard.json").read_text())["runs"]
    per = runs["policies"]
    for p in per:
        ratios = [a["slo_attainment"] / b["slo_attainment"] for a, b in zip(per[p], per[best])]
        assert table["results"][p]["ratio_to_best_heuristic"]["mean"] == pytest.approx(sum(ratios) / len(ratios))
        fr = [a["slo_attainment"] / b["attainment_max"] for a, b in zip(per[p], runs["bounds"])]
        assert table["results"][p]["fraction_of_bound"] == pytest.approx(sum(fr) / len(fr))
    assert runs["seeds"] == list(get_task(TASK).seeds.test[:2])
    head = [b["attainment_max"] / a["slo_attainment"] for a, b in zip(per[best], runs["bounds"])]
    assert table["bound_over_best_heuristic"]["mean"] == pytest.approx(sum(head) / len(head))
    for name in ("leaderboard.md", "leaderboard.json", "runs.csv"):
        assert (out / "prfaas_paper-steady-v1" / name).is_file()
    text = doc_md.read_text()
    assert "abc123" in text and "smoke settings" in text and f"`{TASK}`" in text


def test_interrupted_run_resumes_from_cached_cells(tmp_path, capsys, clean_commit, monkeypatch):
    out = tmp_path / "res"
    calls = []
    interrupt = [True]
    real = lb.evaluate_cell

    def counting(*a, **kw):
        calls.append(a)
        if interrupt[0] and len(calls) == 3:
            raise KeyboardInterrupt  # interrupted after two finished cells
        return real(*a, **kw)

    monkeypatch.setattr(lb, "evaluate_cell", counting)
    assert main(["benchmark", "run", *TINY, "--out", str(out)]) == 130
    journal = (out / "journal" / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 3  # seed 0's bound and its first two policy runs
    calls.clear()
    interrupt[0] = False
    assert main(["benchmark", "run", *TINY, "--out", str(out), "--json"]) == 0
    n_policy_cells = 2 * len(POLICIES.split(","))
    assert len(calls) == n_policy_cells - 2  # only the missing cells ran
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    calls.clear()
    assert main(["benchmark", "run", *TINY, "--out", str(out), "--json"]) == 0
    assert calls == []  # everything cached
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == first


def test_bad_input_is_one_line(capsys, tmp_path, monkeypatch):
    assert main(["benchmark", "run", "--tasks", "prfaas/nope-v1", "--out", str(tmp_path)]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main(["benchmark", "run", "--tasks", TASK, "--policies", "no-such-router", "--out", str(tmp_path)]) == 2
    assert "no-such-router" in capsys.readouterr().err
    # a trace task with no data directory (conftest sets one when ../shared sits beside us)
    monkeypatch.delenv("PRFAAS_DATA_DIR", raising=False)
    assert main(["benchmark", "run", "--tasks", "prfaas/mooncake-v1", "--out", str(tmp_path)]) == 2
    assert "data directory" in capsys.readouterr().err


def test_policies_for_tasks():
    routing = lb.policies_for(get_task("prfaas/bursty-v1"))
    assert "mooncake-conductor" in routing and "trained:routing-bursty" in routing
    assert "trained:routing-paper" not in routing
    prov = lb.heuristics_for(get_task("prfaas/diurnal-v1"))
    assert prov == ["prfaas-threshold+static", "prfaas-threshold+paper-imbalance", "prfaas-threshold+queue-autoscaler"]


def test_table_ratio_handles_a_zero_best_seed():
    t = get_task(TASK)
    runs = {"a": [{"slo_attainment": 0.5}, {"slo_attainment": 0.0}],
            "b": [{"slo_attainment": 0.4}, {"slo_attainment": 0.2}]}
    bounds = [{"attainment_max": 1.0}, {"attainment_max": 0.5}]
    table = lb.task_table(t, runs, bounds)
    assert table["best_heuristic"] == "b"
    assert table["results"]["a"]["ratio_to_best_heuristic"]["mean"] == pytest.approx((0.5 / 0.4 + 0.0) / 2)
    assert table["results"]["b"]["fraction_of_bound"] == pytest.approx((0.4 + 0.4) / 2)
    assert not math.isnan(table["bound"]["mean"])
