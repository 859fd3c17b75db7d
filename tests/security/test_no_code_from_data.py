"""No code from data: a malicious SB3 ``model.zip`` is refused in every entry point.

The payload is a pickle whose ``__reduce__`` opens a marker file for writing; SB3's loader
would run it (``cloudpickle.loads`` on the ``":serialized:"`` entries of ``model.zip``).
"""

from __future__ import annotations

import base64
import json
import pickle
import zipfile
from pathlib import Path

import pytest

from prfaas_gym.cli import main
from prfaas_gym.policies.trained import TRAINED_DIR, PickleRefused, list_trained

BASE = Path(__file__).resolve().parents[2] / "envs" / "paper" / "prfaas_pd.yaml"


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture()
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """``(policy_dir, marker)``: a routing-policy directory whose model.zip writes ``marker``."""
    d, marker = tmp_path / "evil", tmp_path / "PWNED"
    d.mkdir()
    blob = base64.b64encode(pickle.dumps(_Payload(marker), protocol=4)).decode()
    data = {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": blob}}
    with zipfile.ZipFile(d / "model.zip", "w") as z:
        z.writestr("data", json.dumps(data))
        z.writestr("_stable_baselines3_version", "2.9.2")
    meta = json.loads((TRAINED_DIR / "routing-paper" / "metadata.json").read_text())
    (d / "metadata.json").write_text(json.dumps({**meta, "algo": "ppo"}))
    return d, marker


def _one_line_refusal(capsys, rc: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "pickle" in err[0] and "Traceback" not in err[0]
    return err[0]


def _scenario_naming(tmp_path: Path, policy: Path) -> Path:
    lines = BASE.read_text().splitlines()
    n = sum(1 for i, line in enumerate(lines) if line.startswith("router:"))
    assert n == 1
    text = "\n".join(f"router: {{name: {policy}}}" if line.startswith("router:") else line for line in lines)
    p = tmp_path / "shared_scenario.yaml"
    p.write_text(text + "\n")
    return p


def test_the_payload_is_live_when_trusted(evil):
    """Control: the same file does run code through SB3 (so the refusals below mean something)."""
    pytest.importorskip("stable_baselines3")
    from prfaas_gym.policies.trained import load_model

    d, marker = evil
    with pytest.raises(Exception):
        load_model(d / "model.zip", "ppo")
    assert marker.exists()


@pytest.mark.parametrize("argv", [
    ["simulate", "paper/prfaas_pd", "--requests", "20", "--policy", "{d}"],
    ["simulate", "paper/prfaas_pd", "--requests", "20", "--policy", "{d}/model.zip"],
    ["compare", "paper/prfaas_pd", "--requests", "20", "--seeds", "1", "--policies", "prfaas-threshold,{d}"],
    ["compare", "paper/prfaas_pd", "--requests", "20", "--seeds", "1", "--policies", "{d}", "--rates", "1,2"],
    ["export", "{d}", "--out", "{tmp}/bundle"],
    ["simulate", "{scenario}", "--requests", "20"],
    ["simulate", "{scenario}", "--requests", "20", "--trust-pickle"],  # never from a scenario file
    ["capacity", "{scenario}", "--requests", "40"],
    ["bound", "paper/prfaas_pd", "--requests", "20", "--seeds", "1", "--policies", "{d}"],
])
def test_cli_entry_points_refuse(evil, tmp_path, capsys, argv):
    d, marker = evil
    scenario = _scenario_naming(tmp_path, d)
    args = [a.format(d=d, tmp=tmp_path, scenario=scenario) for a in argv]
    msg = _one_line_refusal(capsys, main(args))
    assert "model.zip" in msg
    assert not marker.exists()
    assert not (tmp_path / "bundle").exists()


def test_api_entry_points_refuse(evil, tmp_path):
    from prfaas_gym.api import build_simulator
    from prfaas_gym.export import export_router_bundle
    from prfaas_gym.policies import make_router
    from prfaas_gym.scenario import load_scenario

    d, marker = evil
    sc = load_scenario("paper/prfaas_pd")
    for call in (lambda: make_router(str(d), sc), lambda: build_simulator(sc, str(d / "model.zip")),
                 lambda: export_router_bundle(str(d), tmp_path / "b"),
                 # a scenario's own router is never trusted, even when the caller trusts pickles
                 lambda: build_simulator(load_scenario(_scenario_naming(tmp_path, d)), trust_pickle=True)):
        with pytest.raises(PickleRefused):
            call()
    assert not marker.exists()


def test_env_kwargs_never_load_a_policy(evil, tmp_path):
    from prfaas_gym.training.envs import make_env

    d, marker = evil
    scenario = _scenario_naming(tmp_path, d)
    for env_id in ("prfaas/Routing-v1", "prfaas/Threshold-v1"):
        env = make_env(env_id, scenario=str(scenario), n_requests=20)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        env.close()
    assert not marker.exists()


def test_shipped_policies_hold_no_pickles():
    names = list_trained()
    assert names
    for name in names:
        files = {p.name for p in (TRAINED_DIR / name).iterdir()}
        assert {"policy.safetensors", "policy.json", "metadata.json"} <= files, name
        assert not {f for f in files if f.endswith((".zip", ".pkl", ".pt", ".pth"))}, name


@pytest.mark.parametrize("name", list_trained())
def test_shipped_policies_reproduce_their_recorded_outputs(name):
    pytest.importorskip("stable_baselines3")
    from prfaas_gym.policies.trained.safe_format import load_policy

    load_policy(TRAINED_DIR / name, verify=True)
