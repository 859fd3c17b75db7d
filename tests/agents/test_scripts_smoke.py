"""Every training script runs end to end on a tiny budget (CI smoke runs on a tiny budget; speed lives in benchmarks/)."""

from __future__ import annotations

import json

import pytest

from tests.agents.conftest import load_script

SCRIPTS = ["train_routing", "train_threshold", "train_provisioning", "train_dual"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_training_script_smoke(script, tmp_path):
    mod = load_script(script)
    meta = mod.main(["--smoke", "--run-dir", str(tmp_path), "--run-name", "smoke",
                     "--export-dir", str(tmp_path / "export")])
    run = tmp_path / "smoke"
    for f in ("model.zip", "vecnormalize.pkl", "metadata.json"):
        assert (run / "final" / f).is_file(), f
        assert (tmp_path / "export" / f).is_file(), f
    assert any((run / "tb").iterdir())  # TensorBoard logs
    if script == "train_routing":  # the documented bc/actor_nll tag is written (#12)
        assert list((run / "tb" / "bc").glob("events.out.tfevents.*"))
    assert any((run / "checkpoints").glob("*.zip"))
    saved = json.loads((run / "final" / "metadata.json").read_text())
    assert saved["train_seeds"] == [0, 99]
    assert saved["held_out_test_seeds"][0] == 1000
    assert saved["timesteps"] >= 256 and meta["eval_history"]
    assert "goodput_vs_best_heuristic" in meta["eval_history"][-1]


def test_sac_threshold_smoke(tmp_path):
    mod = load_script("train_threshold")
    meta = mod.main(["--smoke", "--algo", "sac", "--run-dir", str(tmp_path), "--vec-env", "dummy"])
    assert meta["algo"] == "sac"
