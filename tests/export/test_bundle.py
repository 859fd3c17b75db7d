"""Router bundles: exports route exactly like the trained policy; the service and CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from prfaas_gym.cli import main
from prfaas_gym.export import BundleRouter, RouterBundle, export_router_bundle
from prfaas_gym.export.service import decide_json, make_app, parse_route_body

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

SHIPPED = {"routing-bursty": "bursty_fluctuating", "routing-paper": "paper/prfaas_pd"}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {name: RouterBundle.load(export_router_bundle(f"trained:{name}", root / name)) for name in SHIPPED}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_bundle_routes_like_the_trained_policy_in_simulation(bundles, name):
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import load_router

    scenario = SHIPPED[name]
    trained = build_simulator(scenario, load_router(f"trained:{name}"), seed=11, n_requests=300).run()
    exported = build_simulator(scenario, BundleRouter(bundles[name]), seed=11, n_requests=300).run()
    trained.pop("wall_time_s", None), exported.pop("wall_time_s", None)
    assert json.dumps(exported, sort_keys=True) == json.dumps(trained, sort_keys=True)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_numpy_actor_matches_sb3_predict(bundles, name):
    from prfaas_gym.policies.trained import load_router

    router = load_router(f"trained:{name}")
    b = bundles[name]
    rng = np.random.default_rng(0)
    n_obs, n_act = len(b.feature_names), len(b.slots)
    for _ in range(300):
        obs = rng.random(n_obs).astype(np.float32)
        mask = rng.random(n_act) < 0.6
        mask[rng.integers(n_act)] = True
        assert b.act(obs, mask) == router.act(obs, mask)


def test_example_body_decision(bundles):
    b = bundles["routing-bursty"]
    d = decide_json(b, b.manifest["example_route_body"])
    assert d == {"action": 0, "slot": "prfaas", "reject": False, "prefill_cluster": "prfaas",
                 "prefill_instance": None, "pull_from": None}


def test_bad_bodies_name_the_field(bundles):
    b = bundles["routing-bursty"]
    body = json.loads(json.dumps(b.manifest["example_route_body"]))
    body["snapshot"]["slot_queue"] = [0, 0]
    with pytest.raises(ValueError, match=r"snapshot.slot_queue: expected 11 values for this bundle, got 2"):
        parse_route_body(b, body)
    body = json.loads(json.dumps(b.manifest["example_route_body"]))
    body["request"]["home_cluster"] = "elsewhere"
    with pytest.raises(ValueError, match=r"request.home_cluster: unknown cluster 'elsewhere'"):
        parse_route_body(b, body)
    body["request"]["home_cluster"] = "pd"
    body["snapshot"]["link_util"] = [-1.0]
    with pytest.raises(ValueError, match=r"snapshot.link_util\[0\]"):
        parse_route_body(b, body)
    with pytest.raises(ValueError, match="request: missing"):
        parse_route_body(b, {"snapshot": body["snapshot"]})


def test_load_refuses_what_is_not_a_bundle(tmp_path, bundles):
    with pytest.raises(FileNotFoundError, match="not a router bundle"):
        RouterBundle.load(tmp_path)
    manifest = dict(bundles["routing-paper"].manifest, format="something/9")
    with pytest.raises(ValueError, match="format"):
        RouterBundle(manifest, [], source="x")


def _request(url: str, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_service_round_trip(bundles):
    pytest.importorskip("uvicorn")
    from prfaas_gym.export.server import Service

    b = bundles["routing-bursty"]
    with Service(make_app(b), port=0) as svc:
        base = f"http://127.0.0.1:{svc.port}"
        assert _request(base + "/health") == (200, {"status": "ok"})
        status, info = _request(base + "/")
        assert status == 200 and info["slots"] == b.slot_labels
        body = info["example_route_body"]
        status, decision = _request(base + "/route", json.dumps(body).encode())
        assert status == 200 and decision == decide_json(b, body)
        status, err = _request(base + "/route", b"{not json")
        assert status == 400 and err["error"].startswith("body: line 1 column 2: not JSON")
        body["request"].pop("slot_service_s")
        status, err = _request(base + "/route", json.dumps(body).encode())
        assert status == 400 and err["error"].startswith("request.slot_service_s")
        assert _request(base + "/nowhere")[0] == 404


def test_cli_export_and_route(tmp_path, capsys, bundles):
    out = tmp_path / "bundle"
    assert main(["export", "trained:routing-paper", "--out", str(out)]) == 0
    assert "routing-paper" in capsys.readouterr().out
    body = tmp_path / "body.json"
    body.write_text(json.dumps(RouterBundle.load(out).manifest["example_route_body"]))
    assert main(["route", str(out), "--input", str(body)]) == 0
    assert json.loads(capsys.readouterr().out)["reject"] is False
    body.write_text('{"snapshot": {},\n oops}')
    assert main(["route", str(out), "--input", str(body)]) == 2
    assert f"{body}: line 2" in capsys.readouterr().err


def test_cli_export_bad_input_writes_nothing(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["export", "trained:nope", "--out", str(out)]) == 2
    assert "unknown trained policy 'nope'" in capsys.readouterr().err
    assert main(["export", "trained:routing-bursty", "--out", str(out), "--scenario", "paper/prfaas_pd"]) == 2
    assert "slots" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_serving_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys, prfaas_gym.export.service, prfaas_gym.export.bundle; "
            "print('torch' in sys.modules or 'stable_baselines3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_serve_refuses_a_busy_port(tmp_path, capsys):
    import socket

    out = export_router_bundle("trained:routing-paper", tmp_path / "b")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", str(out), "--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err
