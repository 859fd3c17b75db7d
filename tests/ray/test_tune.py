"""``prfaas-gym tune``: a small ASHA sweep writes every trial and the best settings under an
absolute directory; bad sweep files are one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml

from prfaas_gym.cli import main
from prfaas_gym.tune import load_sweep_spec

SWEEP = {
    "base": {"smoke": True, "vec_env": "dummy", "n_envs": 1, "total_timesteps": 512, "eval_freq": 128,
             "checkpoint_freq": 0},
    "search": {"learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}, "ent_coef": {"choice": [0.0, 0.01]}},
    "num_samples": 3, "metric": "goodput_vs_best_heuristic", "mode": "max",
    "asha": {"grace_period": 1, "reduction_factor": 2}, "max_concurrent_trials": 2,
}


def test_tune_sweep_writes_best(local_ray, tmp_path, monkeypatch, capsys):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(SWEEP))
    monkeypatch.chdir(tmp_path)
    assert main(["tune", str(sweep), "--out", "results", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    out = tmp_path / "results"
    assert (out / "best.json").is_file() and (out / "best.yaml").is_file()
    assert len(doc["trials"]) == 3 and all(t["error"] is None for t in doc["trials"])
    best = doc["best"]
    assert set(best["config"]) == {"learning_rate", "ent_coef"}
    # the best trial by its best evaluation (not only its last one)
    assert best[doc["metric"]] == max(t[doc["metric"]] for t in doc["trials"])
    assert all(1 <= t["evaluations"] <= 6 for t in doc["trials"])
    # the trial's training run is under the absolute results directory
    run = out / "runs" / best["trial_id"]
    assert run.is_absolute() and (run / "final" / "model.zip").is_file()
    saved = yaml.safe_load((out / "best.yaml").read_text())
    assert saved["learning_rate"] == best["config"]["learning_rate"] and saved["smoke"] is True


@pytest.mark.parametrize("patch, msg", [
    ({"search": {}}, "search: give at least one"),
    ({"search": {"lr": {"choice": [1]}}}, "search.lr: unknown setting"),
    ({"search": {"ent_coef": {"normal": [0, 1]}}}, "search.ent_coef: expected one of"),
    ({"bogus": 1}, "unknown key 'bogus'"),
    ({"mode": "up"}, "mode: expected max or min"),
])
def test_bad_sweep_files(tmp_path, patch, msg):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({**SWEEP, **patch}))
    with pytest.raises(ValueError, match=msg):
        load_sweep_spec(p)
