"""Settings: YAML overrides, CLI flags, smoke budget and seed-range checks."""

from __future__ import annotations

import pytest

from prfaas_gym.training.config import TrainSettings, parse_settings


def test_yaml_then_flags_then_smoke(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("total_timesteps: 5000\nnet_arch: [32, 32]\nlearning_rate: 0.001\n")
    s = parse_settings(TrainSettings, ["--config", str(cfg), "--learning-rate", "0.002"])
    assert s.total_timesteps == 5000 and s.net_arch == [32, 32] and s.learning_rate == 0.002
    s = parse_settings(TrainSettings, ["--smoke", "--total-timesteps", "300"])
    assert s.smoke and s.total_timesteps == 300 and s.n_steps == 64


def test_unknown_yaml_key_is_refused(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("total_timestep: 5\n")
    with pytest.raises(SystemExit, match="total_timestep"):
        parse_settings(TrainSettings, ["--config", str(cfg)])


def test_overlapping_seed_ranges_are_refused():
    with pytest.raises(ValueError, match="overlap"):
        parse_settings(TrainSettings, ["--test-seed-offset", "50"])
