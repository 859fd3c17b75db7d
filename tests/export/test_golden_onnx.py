"""Portability (issue 14 item 4): ``golden.json`` written by export, an independent numpy
re-implementation checked against it, and ``router.onnx`` built without torch, run with
onnx's reference evaluator, against the bundle."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sb3_contrib")

from prfaas_gym.export import RouterBundle, export_router_bundle  # noqa: E402
from prfaas_gym.export.golden import GOLDEN, check_golden, golden_case  # noqa: E402
from prfaas_gym.export.service import decide_json  # noqa: E402


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = export_router_bundle("trained:routing-bursty", tmp_path_factory.mktemp("g") / "b")
    return d, RouterBundle.load(d), json.loads((d / GOLDEN).read_text())


def test_golden_has_about_fifty_reproducible_cases(exported):
    d, bundle, doc = exported
    assert doc["format"] == "prfaas-router-golden/1" and len(doc["cases"]) == 50
    assert doc["feature_names"] == bundle.feature_names and doc["actions"] == bundle.slot_labels
    assert len({json.dumps(c["body"], sort_keys=True) for c in doc["cases"]}) == 50
    assert any(not all(c["mask"]) for c in doc["cases"]) and len({c["action"] for c in doc["cases"]}) >= 2
    assert check_golden(lambda body: golden_case(bundle, body), doc) == []
    for c in doc["cases"]:
        assert decide_json(bundle, c["body"]) == c["answer"]


def test_an_independent_implementation_agrees_and_a_wrong_one_is_caught(exported):
    d, bundle, doc = exported
    man = json.loads((d / "router.json").read_text())
    z = np.load(d / "weights.npz")
    n = len(z.files) // 2
    mean, var = np.array(man["normalization"]["mean"]), np.array(man["normalization"]["var"])
    clip, eps = man["normalization"]["clip_obs"], man["normalization"]["epsilon"]

    def mine(case_obs, mask):
        x = np.clip((np.array(case_obs) - mean) / np.sqrt(var + eps), -clip, clip).astype(np.float32)
        for i in range(n):
            x = z[f"W{i}"].astype(np.float32) @ x + z[f"b{i}"].astype(np.float32)
            if i < n - 1:
                x = np.tanh(x) if man["activation"] == "tanh" else np.maximum(x, 0)
        return x, int(np.argmax(np.where(mask, x, -np.inf)))

    by_body = {json.dumps(c["body"], sort_keys=True): c for c in doc["cases"]}

    def decide(body):
        case = by_body[json.dumps(body, sort_keys=True)]
        logits, action = mine(case["observation"], np.array(case["mask"]))
        return {"logits": logits, "action": action}

    assert check_golden(decide, doc) == []

    def off_by_one_feature(body):
        case = by_body[json.dumps(body, sort_keys=True)]
        obs = list(case["observation"])
        obs[-2] += 0.25  # a wrong encoding of the input length
        return {"observation": obs, "action": case["action"]}

    assert len(check_golden(off_by_one_feature, doc)) == 50


def test_onnx_is_built_without_torch_and_matches_the_bundle(exported, tmp_path):
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    d, bundle, doc = exported
    out = tmp_path / "router.onnx"
    code = ("import sys; sys.modules['torch'] = None; sys.modules['stable_baselines3'] = None\n"
            "from prfaas_gym.export import RouterBundle\n"
            "from prfaas_gym.export.onnx_export import write_onnx\n"
            f"write_onnx(RouterBundle.load({str(d)!r}), {str(out)!r})\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    ev = ReferenceEvaluator(str(out))
    obs = np.array([c["observation"] for c in doc["cases"]])
    mask = np.array([c["mask"] for c in doc["cases"]])
    logits, action = ev.run(None, {"observation": obs, "mask": mask})
    np.testing.assert_allclose(logits, np.array([c["logits"] for c in doc["cases"]]), rtol=1e-5, atol=1e-5)
    assert action.tolist() == [c["action"] for c in doc["cases"]]
    rng = np.random.default_rng(0)  # and off the golden states: random observations and masks
    n_obs, n_act = len(bundle.feature_names), len(bundle.slots)
    obs = rng.random((300, n_obs)) * 3
    mask = rng.random((300, n_act)) < 0.6
    mask[np.arange(300), rng.integers(n_act, size=300)] = True
    logits, action = ev.run(None, {"observation": obs, "mask": mask})
    want = [bundle.act(o, m) for o, m in zip(obs, mask)]
    assert action.tolist() == want
    np.testing.assert_allclose(logits, np.stack([bundle.logits(o) for o in obs]), rtol=1e-5, atol=1e-5)


def test_cli_export_onnx(tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnx")
    from prfaas_gym.cli import main

    assert main(["export", "trained:routing-paper", "--out", str(tmp_path / "b"), "--onnx"]) == 0
    assert {p.name for p in (tmp_path / "b").iterdir()} == {"router.json", "weights.npz", "golden.json", "router.onnx"}
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "onnx", None)  # the extra missing: one line, nothing written
    assert main(["export", "trained:routing-paper", "--out", str(tmp_path / "c"), "--onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnx" in err[0] and not (tmp_path / "c").exists()
