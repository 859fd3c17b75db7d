"""Tuned baselines: the search uses validation seeds only, never picks a worse-than-default
configuration on them, and the shipped tuned-knobs file covers every task and builds."""

from __future__ import annotations

import json
import math

import pytest

from prfaas_gym.benchmark import leaderboard as lb
from prfaas_gym.benchmark import tuning
from prfaas_gym.benchmark.tasks import all_test_seeds, get_task, list_tasks
from prfaas_gym.cli import main
from prfaas_gym.policies import make_provisioner, make_router
from prfaas_gym.scenario import load_scenario

TASK = "prfaas/paper-steady-v1"


def test_search_uses_validation_seeds_and_never_loses_to_the_default(monkeypatch):
    seen = []
    real = lb.evaluate_cell

    def spy(task_id, policy, seed, **kw):
        seen.append(seed)
        return real(task_id, policy, seed, **kw)

    monkeypatch.setattr(lb, "evaluate_cell", spy)
    entry = tuning.tune_task(TASK, ["prfaas-threshold", "round-robin"], budget=4, screen_seeds=1,
                             finalists=2, n_requests=60)
    val = set(get_task(TASK).seeds.validation)
    assert seen and set(seen) <= val and not set(seen) & all_test_seeds()
    thr = entry["policies"]["prfaas-threshold"]
    assert thr["searched"] == 3
    assert thr["validation"]["mean"] >= thr["default_validation"]["mean"]
    if thr["knobs"]:  # a moved knob is a grid point of the documented space
        base = load_scenario(get_task(TASK).scenario).default_threshold_tokens
        assert thr["knobs"]["threshold_tokens"] in {round(f * base) for f in tuning.THRESHOLD_FACTORS}
    assert entry["policies"]["round-robin"] == {**entry["policies"]["round-robin"], "knobs": {}, "searched": 0}
    assert entry["best_heuristic"] == max(entry["policies"], key=lambda p: entry["policies"][p]["validation"]["mean"])


def test_cli_writes_the_file_the_leaderboard_reads(tmp_path, capsys, monkeypatch):
    out = tmp_path / "tuned.json"
    monkeypatch.setattr(tuning, "TUNED_FILE", out)
    monkeypatch.setattr(lb, "code_commit", lambda: "abc123")
    args = ["benchmark", "tune", "--tasks", TASK, "--policies", "prfaas-threshold,local-only",
            "--budget", "3", "--screen-seeds", "1", "--finalists", "1", "--json"]
    real = tuning.tune_task
    monkeypatch.setattr(tuning, "tune_task", lambda *a, **kw: real(*a, **kw, n_requests=40))
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    doc = json.loads(out.read_text())
    assert doc["tasks"][TASK]["policies"] == printed["tasks"][TASK]["policies"]
    assert doc["tasks"][TASK]["commit"] == "abc123" and doc["search"]["budget"] == 3
    # the leaderboard runs the heuristic with the tuned knobs (from the same file)
    knobs = {"threshold_tokens": 1234}
    doc["tasks"][TASK]["policies"]["prfaas-threshold"]["knobs"] = knobs
    out.write_text(json.dumps(doc))
    assert tuning.tuned_knobs(TASK, "prfaas-threshold") == knobs
    router, prov = tuning.tuned_policy(TASK, "prfaas-threshold")
    assert router == {"name": "prfaas-threshold", **knobs} and prov is None
    got = []
    monkeypatch.setattr(lb, "evaluate_cell", lambda t, p, s, **kw: got.append((p, kw["knobs"])) or
                        {"slo_attainment": 1.0})
    monkeypatch.setattr(lb, "bound_cell", lambda *a, **kw: {"attainment_max": 1.0})
    res = lb.run_benchmark([TASK], ["prfaas-threshold", "local-only"], out_dir=tmp_path / "lb", test_seeds=1)
    assert ("prfaas-threshold", knobs) in got and ("local-only", {}) in got
    assert res["tasks"][TASK]["knobs"]["prfaas-threshold"] == knobs
    got.clear()
    lb.run_benchmark([TASK], ["prfaas-threshold"], out_dir=tmp_path / "lb2", test_seeds=1, tuned=False)
    assert got == [("prfaas-threshold", {})]


def test_bad_tune_input_is_one_line(capsys):
    assert main(["benchmark", "tune", "--tasks", TASK, "--policies", "trained:routing-paper"]) == 2
    assert "not a registered heuristic" in capsys.readouterr().err


def test_shipped_tuned_knobs_cover_every_task_and_build():
    doc = tuning.load_tuned()
    for task in list_tasks():
        entry = doc["tasks"].get(task.id)
        assert entry is not None, f"{task.id}: not tuned (prfaas-gym benchmark tune --tasks {task.id})"
        assert entry["validation_seeds"] == list(task.seeds.validation)
        assert set(entry["policies"]) == set(lb.heuristics_for(task))
        assert entry["best_heuristic"] in entry["policies"]
        sc = load_scenario(task.scenario)
        for policy, e in entry["policies"].items():
            assert set(e["knobs"]) <= set(tuning.search_space(tuning.tunable_part(policy) or "", sc))
            router, prov = tuning.policy_specs(policy, e["knobs"])
            make_router(router, sc)
            make_provisioner(prov, sc)
            assert e["validation"]["mean"] >= e["default_validation"]["mean"]


def test_decode_knobs_only_where_decode_can_move():
    three = load_scenario("three_region")
    one = load_scenario("paper/prfaas_pd")
    assert "decode_placement" in tuning.search_space("mooncake-conductor", three)
    assert "decode_placement" not in tuning.search_space("mooncake-conductor", one)
    assert tuning.search_space("least-loaded", one) == {}
    assert tuning._candidates("least-loaded", one, 10, __import__("random").Random(0)) == [{}]
    assert tuning.policy_specs("prfaas-adaptive", {"bandwidth_headroom": "inf"})[0]["bandwidth_headroom"] == math.inf
    assert tuning.policy_specs("prfaas-threshold+paper-imbalance", {"margin": 0.1}) == (
        "prfaas-threshold", {"name": "paper-imbalance", "margin": 0.1})
    with pytest.raises(ValueError, match="no tuned knobs"):
        tuning.best_tuned_heuristic("prfaas/nope-v1")
