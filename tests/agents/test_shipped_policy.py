"""The shipped ``trained:routing-bursty`` policy loads, routes inside the plain simulator,
and makes the same decisions there as through ``prfaas/Routing-v1``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from prfaas_gym.policies.trained import TRAINED_DIR, list_trained

NAME = "routing-bursty"
pytestmark = pytest.mark.skipif(NAME not in list_trained(), reason="policy not shipped yet")


def test_files_are_small_and_recorded():
    d = TRAINED_DIR / NAME
    assert sum(f.stat().st_size for f in d.iterdir()) < 2_000_000
    meta = json.loads((d / "metadata.json").read_text())
    for key in ("command", "wall_time_s", "git_commit", "train_seeds", "slot_labels", "env_kwargs"):
        assert key in meta, key


def test_make_router_routes_in_the_plain_simulator():
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies import make_router
    from prfaas_gym.scenario import load_scenario
    from prfaas_gym.sim.router import RouteDecision

    sc = load_scenario("bursty_fluctuating")
    router = make_router(f"trained:{NAME}", sc)
    sim = build_simulator(sc, router, None, seed=1000, n_requests=150)
    summary = sim.run()
    assert summary["completed"] + summary["rejected"] == 150
    assert summary["goodput_rps"] > 0
    assert isinstance(router._decisions[0], RouteDecision)


def test_router_matches_the_env_rollout():
    """Same seed: env + policy and simulator + LearnedRouter give identical summaries."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import load_router
    from prfaas_gym.training.envs import make_env

    router = load_router(f"trained:{NAME}")
    meta = json.loads((TRAINED_DIR / NAME / "metadata.json").read_text())
    kw = {k: v for k, v in meta["env_kwargs"].items() if k not in ("scenario", "n_requests")}
    assert kw["oracle_features"] and kw["invalid_action"] == "fallback"  # the v0 settings it was trained with
    env = make_env("prfaas/Routing-v1", scenario="bursty_fluctuating", n_requests=120, **kw)
    obs, info = env.reset(seed=1001)
    while True:
        a = router.act(obs, np.asarray(info["action_mask"]))
        obs, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    sim = build_simulator(env.unwrapped.scenario, router, None, seed=1001, n_requests=120)
    plain = sim.run()
    for k in ("completed", "rejected", "goodput_rps", "ttft_p90_s"):
        assert plain[k] == pytest.approx(info["summary"][k]), k


def test_compare_cli_accepts_trained_spec():
    out = subprocess.run(
        [sys.executable, "-m", "prfaas_gym.cli", "compare", "bursty_fluctuating", "--policies",
         f"trained:{NAME},least-loaded", "--seeds", "1", "--seed-offset", "1000", "--requests", "100", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert f"trained:{NAME}" in doc["results"]


def test_router_evaluated_with_stale_noisy_snapshots():
    """#13 item 4: a trained router can be evaluated on stale, noisy metrics in simulation."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import load_router

    router = load_router(f"trained:{NAME}", snapshot_staleness_s=0.5, snapshot_noise=0.2, seed=3)
    assert router.oracle_output_len and router.snapshot_staleness_s == 0.5
    sim = build_simulator("bursty_fluctuating", router, None, seed=1002, n_requests=120)
    s = sim.run()
    assert s["completed"] + s["rejected"] == 120
    with pytest.raises(ValueError, match="unknown parameter"):
        load_router(f"trained:{NAME}", staleness=1.0)


def test_router_survives_a_link_outage():
    """#16 item 4: a link outage made a pull slot's ttft inf/inf = NaN and crashed the router."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.policies.trained import load_router
    from prfaas_gym.scenario import load_scenario

    sc = load_scenario("bursty_fluctuating", {"faults": [{"link": "vpc", "at_s": 5.0, "duration_s": 30.0}]})
    router = load_router(f"trained:{NAME}")
    seen = []
    real_observe = router.observe

    def observe(req, sim):
        obs, mask = real_observe(req, sim)
        seen.append(bool(np.isfinite(obs).all()))
        return obs, mask

    router.observe = observe
    s = build_simulator(sc, router, None, seed=1003, n_requests=150).run()
    assert s["completed"] + s["rejected"] == 150
    assert seen and all(seen)
