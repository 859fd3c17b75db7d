"""#12 item 6: runs never write into the shipped policies by accident; torch threads; one call
loads a saved policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prfaas_gym.policies.trained import TRAINED_DIR, list_trained
from prfaas_gym.training.config import TrainSettings, apply_overrides, check_export_target, parse_settings

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_configs_do_not_export():
    from tests.agents.conftest import load_script

    settings_cls = load_script("train_routing").RoutingSettings
    for cfg in (ROOT / "agents" / "configs").glob("routing_*.yaml"):
        s = parse_settings(settings_cls, ["--config", str(cfg), "--smoke"])
        assert s.export_dir is None, cfg
    prov_cls = load_script("train_provisioning").ProvisioningSettings
    s = parse_settings(prov_cls, ["--config", str(ROOT / "agents" / "configs" / "diurnal_provisioning.yaml"), "--smoke"])
    assert s.export_dir is None and s.bc_heuristic == "static"


def test_smoke_never_writes_into_the_package(tmp_path):
    target = str(TRAINED_DIR / "routing-bursty")
    with pytest.raises(SystemExit, match="smoke runs never export"):
        parse_settings(TrainSettings, ["--smoke", "--export-dir", target, "--export-shipped", "true"])
    with pytest.raises(SystemExit, match="--export-shipped"):
        parse_settings(TrainSettings, ["--export-dir", target])
    s = parse_settings(TrainSettings, ["--export-dir", target, "--export-shipped", "true"])
    check_export_target(s)  # explicit: allowed
    check_export_target(parse_settings(TrainSettings, ["--smoke", "--export-dir", str(tmp_path / "x")]))


def test_export_shipped_is_refused_from_yaml():
    with pytest.raises(ValueError, match="command line"):
        apply_overrides(TrainSettings(), {"export_shipped": True}, "cfg.yaml")


def test_torch_thread_helper():
    torch = pytest.importorskip("torch")
    from prfaas_gym.training import set_torch_threads

    before = torch.get_num_threads()
    prev = set_torch_threads(1)
    assert prev == before and torch.get_num_threads() == 1
    set_torch_threads(before)


@pytest.mark.skipif("routing-bursty" not in list_trained(), reason="policy not shipped")
def test_load_policy_in_one_call():
    pytest.importorskip("sb3_contrib")
    from prfaas_gym.training import load_policy

    policy = load_policy("trained:routing-bursty")
    env = policy.make_env(n_requests=20)
    obs, info = env.reset(seed=1000)
    a = policy.predict(obs, action_masks=np.asarray(info["action_mask"], dtype=bool))
    assert env.action_space.contains(int(a))
    assert policy.metadata["env_kwargs"]["oracle_features"] is True
    assert env.unwrapped.oracle_features is True  # rebuilt with the settings it was trained with
    same = load_policy(TRAINED_DIR / "routing-bursty")
    assert json.dumps(same.metadata, sort_keys=True) == json.dumps(policy.metadata, sort_keys=True)
