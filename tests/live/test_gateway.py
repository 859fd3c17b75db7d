"""End to end on CPU: stub engines behind the gateway; a load generator replays a trace."""

from __future__ import annotations

import asyncio
import math

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("prometheus_client")

from prfaas_gym.export.server import Service
from prfaas_gym.live import LiveRouter, RemotePolicy, parse_topology
from prfaas_gym.live.gateway import Gateway
from prfaas_gym.live.replay import replay, trace_tokens
from prfaas_gym.live.stub_engine import StubWorld

TIME_SCALE = 0.004


@pytest.fixture(scope="module")
def trace(bundle):
    """60 requests of the bundle's scenario with the arrival times the simulator realised."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.export import BundleRouter

    sim = build_simulator(bundle.manifest["source"]["env_kwargs"]["scenario"], BundleRouter(bundle), n_requests=60)
    sim.run()
    reqs = sorted(sim.arrived, key=lambda r: r.arrival_s)
    return reqs, trace_tokens(reqs)


class Stack:
    def __init__(self, bundle, doc, policy=None):
        # generous limits: these tests check where requests land, not timing on a busy machine
        self.topo = parse_topology({**doc, "decision_timeout_ms": 5000, "max_snapshot_age_s": 60}, bundle)
        self.world = StubWorld(self.topo, time_scale=TIME_SCALE)
        self.stubs = self.world.serve_all()
        self.router = LiveRouter(self.topo, bundle, policy=policy)
        self.gw = Gateway(self.router, scrape_interval_s=0.05)
        self.svc = Service(self.gw.app(), "127.0.0.1", 0).start_in_thread()
        self.url = f"http://127.0.0.1:{self.svc.port}"
        assert httpx.get(self.url + "/health", timeout=30).json()["status"] == "ok"  # scraping started

    def close(self):
        self.svc.stop()
        self.stubs.stop()

    def served(self):
        out = {}
        for name, e in self.world.engines.items():
            for rid, phase in e.served:
                out.setdefault(rid, []).append((phase, name))
        return out


def _check_landing(stack, results):
    """Every request landed where its decision said, and nowhere else; nothing stays booked."""
    decisions = dict(stack.gw.decision_log)
    served = stack.served()
    for res in results:
        rid = f"r{res.rid}"
        d = decisions[rid]
        if d.reject:
            assert res.status == 429 and rid not in served
            continue
        assert res.status == 200, res
        assert sorted(served[rid]) == [("decode", d.decode.name), ("prefill", d.prefill.name)]
        assert (res.slot, res.prefill, res.decode) == (d.decision.slot, d.prefill.name, d.decode.name)
        assert math.isfinite(res.ttft_s) and res.ttft_s <= res.latency_s
    assert stack.router.state.ledger.in_flight() == 0
    assert stack.router.state.ledger.link_flows == [0] * len(stack.router.state.links)


def test_trace_lands_where_decided(bundle, stub_doc, trace):
    reqs, tokens = trace
    stack = Stack(bundle, stub_doc)
    try:
        results = asyncio.run(replay(stack.url, reqs, tokens, time_scale=TIME_SCALE, max_tokens_cap=256))
        assert len(results) == len(reqs)
        _check_landing(stack, results)
        assert stack.router.decisions == len(reqs) and not stack.router.fallbacks
        with httpx.Client(timeout=30) as c:
            page = c.get(stack.url + "/metrics").text
            assert "prfaas_gateway_decision_seconds_bucket" in page and "prfaas_gateway_decisions_total" in page
            health = c.get(stack.url + "/health").json()
            assert health["status"] == "ok" and health["workers_up"] == len(stack.topo.workers)
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi " * 3000}], "max_tokens": 8}
            r = c.post(stack.url + "/v1/chat/completions", json=chat)
            assert r.status_code == 200 and r.json()["object"] == "chat.completion"
            assert r.headers["x-prfaas-decode"].startswith(bundle.clusters[stack.topo.home])
            with c.stream("POST", stack.url + "/v1/chat/completions", json={**chat, "stream": True}) as s:
                lines = [l for l in s.iter_lines() if l]
            assert lines[-1] == "data: [DONE]" and len(lines) >= 2
            assert c.post(stack.url + "/v1/completions", content=b"{nope").status_code == 400
            assert c.post(stack.url + "/v1/completions", json={"model": "m"}).status_code == 400
    finally:
        stack.close()


def test_rejects_return_429(bundle, stub_doc, trace):
    reqs, tokens = trace

    def reject_long(snap, req):  # the bundle's policy, refusing prompts over 8K tokens
        d = bundle.decide(snap, req)
        if req.input_tokens > 8000:
            from prfaas_gym.export.bundle import Decision
            return Decision(len(bundle.slots) - 1, "reject", True, None, None, None)
        return d

    stack = Stack(bundle, stub_doc, policy=reject_long)
    try:
        results = asyncio.run(replay(stack.url, reqs[:30], tokens[:30], time_scale=TIME_SCALE, max_tokens_cap=64))
        assert any(r.status == 429 for r in results) and any(r.status == 200 for r in results)
        assert all((r.status == 429) == (reqs[i].input_tokens > 8000) for i, r in enumerate(results))
        _check_landing(stack, results)
        assert "prfaas_gateway_rejected_total" in httpx.get(stack.url + "/metrics").text
    finally:
        stack.close()


def test_killing_the_policy_falls_back_and_loses_nothing(bundle, bundle_dir, stub_doc, trace):
    """The policy runs out of process (`prfaas-gym serve`); it is killed (SIGKILL) mid-run."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    import prfaas_gym

    reqs, tokens = trace
    env = dict(os.environ, PYTHONPATH=str(Path(prfaas_gym.__file__).resolve().parent.parent))
    proc = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", "serve", str(bundle_dir), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    m = re.search(r"http://[0-9.]+:(\d+)/route", proc.stdout.readline())
    assert m, "prfaas-gym serve did not start"
    remote = RemotePolicy(f"http://127.0.0.1:{m.group(1)}", timeout_s=4.0)
    calls = [0]

    def policy(snap, req):  # the remote policy; its process is killed at half the decisions
        calls[0] += 1
        if calls[0] == len(reqs) // 2:
            proc.kill()
            proc.wait()
        return remote(snap, req)

    stack = Stack(bundle, stub_doc, policy=policy)
    try:
        results = asyncio.run(replay(stack.url, reqs, tokens, time_scale=TIME_SCALE, max_tokens_cap=128))
        assert len(results) == len(reqs) and all(r.status in (200, 429) for r in results)
        _check_landing(stack, results)
        assert stack.router.fallbacks["error"] >= 1
        policy_made = stack.router.decisions - sum(stack.router.fallbacks.values())
        assert policy_made == len(reqs) // 2 - 1, (stack.router.fallbacks, stack.router.last_error)
        assert 'prfaas_gateway_fallbacks_total{reason="error"}' in httpx.get(stack.url + "/metrics").text
    finally:
        stack.close()
        remote.close()
        proc.kill()


def test_sim_to_live_check_runs(bundle_dir):
    """The sim-to-live check end to end, small: stubs in a child process, every request
    answered, agreement and TTFT reported for each side."""
    from prfaas_gym.live.twin import sim_to_live
    from tests.live.conftest import free_port_block

    out = sim_to_live(bundle_dir, n_requests=15, time_scale=0.01, base_port=free_port_block(12))
    assert out["requests"] >= 15 and out["failed_live"] == 0
    assert 0.0 <= out["agreement"] <= 1.0
    assert sum(n for _, n in out["agreement_by_sim_slot"].values()) == out["requests"]
    assert out["ttft_sim_s"]["p50"] > 0 and out["ttft_live_s"]["p50"] > 0
