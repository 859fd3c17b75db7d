"""``pipeline.train(on_eval=...)``: every validation evaluation reaches the driver, and
returning ``False`` stops training early (what Tune's ASHA relies on)."""

from __future__ import annotations

from prfaas_gym.training.config import TrainSettings
from prfaas_gym.training.pipeline import train


def _smoke(tmp_path, **kw) -> TrainSettings:
    s = TrainSettings(run_dir=str(tmp_path), run_name="cb", vec_env="dummy", checkpoint_freq=0, **kw)
    s.apply_smoke()
    s.checkpoint_freq = 0
    s.eval_freq = 64
    return s


def test_on_eval_sees_every_evaluation(tmp_path):
    rows = []
    meta = train(_smoke(tmp_path), on_eval=rows.append)
    assert [r["timesteps"] for r in rows] == [r["timesteps"] for r in meta["eval_history"]]
    assert len(rows) >= 3 and rows[0]["timesteps"] == 0  # at the start, every 64 steps, at the end
    assert all("goodput_rps" in r and "goodput_vs_best_heuristic" in r for r in rows)
    assert meta["stopped_early"] is False


def test_on_eval_false_stops_training(tmp_path):
    rows = []

    def stop_after_two(row):
        rows.append(row)
        return len(rows) < 2

    meta = train(_smoke(tmp_path), on_eval=stop_after_two)
    assert meta["stopped_early"] is True and len(rows) == 2
    assert meta["timesteps"] < 256  # stopped before the budget
    assert (tmp_path / "cb" / "final" / "model.zip").is_file()
