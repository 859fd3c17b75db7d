"""The Dynamo adapter against the real ai-dynamo-runtime (skipped without it)."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("dynamo.llm")
pytest.importorskip("starlette")

from prfaas_gym.export.server import Service  # noqa: E402
from prfaas_gym.live import parse_topology  # noqa: E402
from prfaas_gym.live.dynamo import DynamoRouter, install_pool_strategy  # noqa: E402
from prfaas_gym.live.gateway import Gateway  # noqa: E402
from prfaas_gym.live.replay import replay  # noqa: E402
from prfaas_gym.live.stub_engine import StubWorld  # noqa: E402

from tests.live.test_gateway import TIME_SCALE, _check_landing, trace  # noqa: E402,F401


def test_dynamo_books_the_policys_choice_and_frees_it(bundle, stub_doc, trace):  # noqa: F811
    reqs, tokens = trace
    topo = parse_topology({**stub_doc, "decision_timeout_ms": 5000, "max_snapshot_age_s": 60}, bundle)
    world = StubWorld(topo, time_scale=TIME_SCALE)
    stubs = world.serve_all()
    calls = [0]

    def policy(snap, req):  # the bundle, dead after half the trace's decisions
        calls[0] += 1
        if calls[0] > len(reqs) // 2:
            raise RuntimeError("policy process gone")
        return bundle.decide(snap, req)

    router = DynamoRouter(topo, bundle, policy=policy)
    gw = Gateway(router, scrape_interval_s=0.05)
    svc = Service(gw.app(), "127.0.0.1", 0).start_in_thread()
    import httpx

    assert httpx.get(f"http://127.0.0.1:{svc.port}/health", timeout=30).json()["workers_up"] == len(topo.workers)

    class Stack:  # what _check_landing reads
        pass

    stack = Stack()
    stack.gw, stack.router, stack.world = gw, router, world
    stack.served = lambda: {rid: ph for rid, ph in _served(world).items()}
    try:
        results = asyncio.run(replay(f"http://127.0.0.1:{svc.port}", reqs, tokens, time_scale=TIME_SCALE,
                                     max_tokens_cap=128))
        _check_landing(stack, results)
        assert router.fallbacks["error"] >= 1 and router.decisions > router.fallbacks["error"]
        # fallbacks were Dynamo's choice: in the home cluster's prefill group
        for rid, d in gw.decision_log:
            if d.fallback:
                assert d.prefill.cluster == topo.home and d.prefill.role == "prefill"
        assert not router.dynamo_errors, router.dynamo_errors
        assert router.active_requests() == 0  # every reservation freed in Dynamo
        records = router.service.list_workers(model_name=router.model_name)
        assert {r["worker_id"] for r in records} == set(router.by_id)
        assert all(r["topology_domains"]["datacenter"] for r in records)
    finally:
        svc.stop()
        stubs.stop()
        router.service.shutdown()


def _served(world):
    out = {}
    for name, e in world.engines.items():
        for rid, phase in e.served:
            out.setdefault(rid, []).append((phase, name))
    return out


def test_learned_pool_choice_in_dynamos_global_router_config(bundle, stub_doc, tmp_path):
    from dynamo.global_router.pool_selection import load_config

    from prfaas_gym.live import EngineMetrics, LiveRouter

    cfg = {"num_prefill_pools": 2, "num_decode_pools": 1,
           "prefill_pool_dynamo_namespaces": ["ns-prfaas", "ns-pd"], "decode_pool_dynamo_namespaces": ["ns-pd"],
           "prefill_pool_selection_strategy": {"ttft_min_ms": 0, "ttft_max_ms": 10000, "ttft_resolution": 2,
                                               "isl_min": 0, "isl_max": 100000, "isl_resolution": 2,
                                               "prefill_pool_mapping": [[1, 1], [1, 1]]},
           "decode_pool_selection_strategy": {"itl_min_ms": 0, "itl_max_ms": 100, "itl_resolution": 1,
                                              "context_length_min": 0, "context_length_max": 100000,
                                              "context_length_resolution": 1, "decode_pool_mapping": [[0]]}}
    path = tmp_path / "global_router.json"
    path.write_text(json.dumps(cfg))
    config = load_config(path)  # Dynamo's own loader and validation
    topo = parse_topology(stub_doc, bundle)
    router = LiveRouter(topo, bundle)
    for w in topo.workers:
        router.state.observe(w.name, EngineMetrics(0.0, 0.0, 0.0, 1e6, router.clock()))
    strategy = install_pool_strategy(config, router, ["prfaas", "pd"])
    assert config.prefill_pool_selection_strategy is strategy
    for isl in (500, 4000, 30000, 90000):
        d = router.decide(isl)
        want = 1 if d.fallback or d.reject else ["prfaas", "pd"].index(d.decision.prefill_cluster)
        assert config.prefill_pool_selection_strategy.select_pool(isl=isl, ttft_target_ms=2000, priority=None) == want
    router.policy = lambda s, q: 1 / 0  # the policy dies: Dynamo's configured grid answers (pool 1)
    assert strategy.select_pool(isl=30000) == 1 and strategy.fallbacks["error"] == 1
    with pytest.raises(ValueError, match="2 prefill pools"):
        install_pool_strategy(load_config(path), router, ["pd"])
