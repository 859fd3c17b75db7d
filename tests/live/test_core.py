"""prfaas_gym.live core: topology validation, metric parsing, ledger, snapshot, decide()."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given, settings, strategies as st

from prfaas_gym.live import EngineMetrics, LiveRouter, TopologyError, parse_engine_metrics, parse_topology
from prfaas_gym.live.ledger import Ledger, PrefixIndex, block_hashes
from prfaas_gym.export.service import parse_route_body

VLLM_PAGE = """# HELP vllm:num_requests_waiting Number of requests waiting.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="1",model_name="m"} 1.0
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 5.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.75
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",engine="0",num_gpu_blocks="1000"} 1.0
"""
SGLANG_PAGE = """# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="m"} 2.0
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="m"} 7.0
# TYPE sglang:token_usage gauge
sglang:token_usage{model_name="m"} 0.5
# TYPE sglang:max_total_num_tokens gauge
sglang:max_total_num_tokens{model_name="m"} 161721.0
"""


def test_vllm_and_sglang_metric_names():
    pytest.importorskip("prometheus_client")
    m = parse_engine_metrics(VLLM_PAGE, "vllm", 1.0)
    assert (m.waiting, m.running, m.kv_usage, m.kv_capacity_tokens, m.time_s) == (4.0, 5.0, 0.5, 16000.0, 1.0)
    s = parse_engine_metrics(SGLANG_PAGE, "sglang")
    assert (s.waiting, s.running, s.kv_usage, s.kv_capacity_tokens) == (2.0, 7.0, 0.5, 161721.0)
    with pytest.raises(ValueError, match="vllm:num_requests_waiting"):
        parse_engine_metrics(SGLANG_PAGE, "vllm")
    old = VLLM_PAGE.replace("kv_cache_usage_perc", "gpu_cache_usage_perc")  # pre-v0.10 name
    assert parse_engine_metrics(old).kv_usage == 0.5


def test_ledger_predicted_wait_by_hand():
    led = Ledger(["a"], 1)
    led.start_prefill(1, "a", 1.0, now=0.0)
    led.start_prefill(2, "a", 2.0, now=0.0)
    assert led.wait_s("a", 0.0) == 3.0 and led.wait_s("a", 0.5) == 2.5
    led.end_prefill(1, "a", now=1.5)  # ran 0.5 s late: the rest is re-timed from now
    assert led.wait_s("a", 1.5) == 2.0
    led.end_prefill(2, "a", now=3.0)
    assert led.wait_s("a", 3.0) == 0.0 and led.prefills("a") == 0
    led.start_transfer(9, 0)
    led.start_transfer(9, 0)  # idempotent
    assert led.link_flows == [1]
    led.end_transfer(9)
    led.end_transfer(9)
    assert led.link_flows == [0] and led.in_flight() == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=0, max_size=64), st.lists(st.integers(0, 3), min_size=0, max_size=64))
def test_block_hashes_match_exactly_on_shared_full_blocks(a, b):
    ha, hb = block_hashes(a, 4), block_hashes(b, 4)
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    shared = sum(1 for x, y in zip(ha, hb) if x == y)
    assert shared == common // 4
    idx = PrefixIndex(1000)
    idx.insert(ha)
    assert idx.match(hb) == common // 4


def test_prefix_index_is_lru_bounded():
    idx = PrefixIndex(3)
    idx.insert([1, 2, 3])
    assert idx.match([1]) == 1  # refreshes 1
    idx.insert([4])
    assert len(idx) == 3 and idx.match([2]) == 0 and idx.match([1]) == 1


def _doc(n_pd: int = 8, **extra):
    doc = {"clusters": {"prfaas": {"workers": [{"url": f"http://127.0.0.1:{9100 + i}"} for i in range(2)]},
                        "pd": {"workers": [{"url": f"http://127.0.0.1:{9200 + i}",
                                            "role": "prefill" if i < 3 else "decode"} for i in range(n_pd)]}}}
    doc.update(extra)
    return doc


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["clusters"].pop("prfaas"), "clusters.prfaas.workers"),
    (lambda d: d["clusters"]["pd"]["workers"].pop(), "clusters.pd.workers"),
    (lambda d: d["clusters"].__setitem__("eu", {"workers": []}), "clusters.eu"),
    (lambda d: d["clusters"]["pd"]["workers"][1].__setitem__("url", "ftp://x"), "clusters.pd.workers[1].url"),
    (lambda d: d["clusters"]["pd"]["workers"][1].__setitem__("url", "http://127.0.0.1:9100"), "already prfaas/0"),
    (lambda d: d["clusters"]["prfaas"]["workers"][0].__setitem__("role", "decode"), "prefill-only"),
    (lambda d: d["clusters"]["pd"]["workers"][5].__setitem__("role", "both"), "workers[5].role"),
    (lambda d: [w.__setitem__("role", "prefill") for w in d["clusters"]["pd"]["workers"]], "decode worker"),
    (lambda d: d.__setitem__("home", "prfaas"), "home"),
    (lambda d: d.__setitem__("max_snapshot_age_s", -1), "max_snapshot_age_s"),
    (lambda d: d.__setitem__("metrics", "tgi"), "metrics"),
    (lambda d: d.__setitem__("scenario", "paper/prfaas_pd"), "scenario"),
    (lambda d: d.__setitem__("color", 1), "color"),
])
def test_topology_errors_name_the_field(bundle, mutate, field):
    doc = copy.deepcopy(_doc())
    mutate(doc)
    with pytest.raises(TopologyError, match=f"live.yaml: .*{field}".replace("[", r"\[").replace("]", r"\]")):
        parse_topology(doc, bundle, "live.yaml")


def _idle_router(bundle, **kw):
    topo = parse_topology(_doc(), bundle)
    clock = [100.0]
    r = LiveRouter(topo, bundle, clock=lambda: clock[0], **kw)
    for w in topo.workers:
        r.state.observe(w.name, EngineMetrics(0.0, 0.0, 0.0, 1e6, 100.0))
    return r, clock


def test_idle_snapshot_and_features_equal_the_simulators(bundle):
    """On idle clusters the live records are the simulator's (the bundle's example body)."""
    r, _ = _idle_router(bundle)
    body = bundle.manifest["example_route_body"]
    sim_snap, sim_req = parse_route_body(bundle, body)
    snap = r.state.snapshot()
    for f in sim_snap._fields:
        if f != "time_s":
            assert list(getattr(snap, f)) if isinstance(getattr(snap, f), list) else getattr(snap, f) == \
                (list(getattr(sim_snap, f)) if isinstance(getattr(sim_snap, f), list) else getattr(sim_snap, f)), f
    req = r.state.request(sim_req.input_tokens, [])
    assert list(req.cached_tokens) == list(sim_req.cached_tokens)
    assert req.slot_service_s == pytest.approx(list(sim_req.slot_service_s), rel=1e-12)
    d = r.decide(sim_req.input_tokens)
    assert d.fallback is None and d.decision == bundle.decide(sim_snap, sim_req)


def test_decide_books_and_frees(bundle):
    r, clock = _idle_router(bundle)
    toks = list(range(4096))
    d = r.decide(toks)
    r.prefill_sent("x", d)
    assert r.state.ledger.wait_s(d.prefill.name, clock[0]) == pytest.approx(d.service_s)
    r.prefill_done("x", d, r.hashes(toks))
    cross = d.prefill.datacenter != d.decode.datacenter
    assert r.state.ledger.link_flows == [1 if cross else 0]
    assert r.state.cached_tokens(4096, r.hashes(toks))[d.prefill.cluster] == 4095  # capped at input - 1
    r.decode_started("x", d, r.hashes(toks))
    r.finished("x", d)
    assert r.state.ledger.in_flight() == 0


def test_fail_open_on_error_stale_and_timeout(bundle):
    def broken(snap, req):
        raise RuntimeError("policy died")

    r, clock = _idle_router(bundle, policy=broken)
    d = r.decide(1000)
    assert d.fallback == "error" and not d.reject and d.prefill is not None and "policy died" in r.last_error
    r2, clock2 = _idle_router(bundle)
    clock2[0] += r2.topology.max_snapshot_age_s + 1
    assert r2.decide(1000).fallback == "stale"

    def slow(snap, req):
        import time
        time.sleep(r3.topology.decision_timeout_s * 1.5)
        return bundle.decide(snap, req)

    r3, _ = _idle_router(bundle, policy=slow)
    assert r3.decide(1000).fallback == "timeout"
    assert r.fallbacks["error"] == 1 and r2.fallbacks["stale"] == 1 and r3.fallbacks["timeout"] == 1


def test_own_choice_prefers_the_least_wait(bundle):
    r, clock = _idle_router(bundle, policy=lambda s, q: 1 / 0)
    # load every prefill worker but pd/1 heavily: the router's own rule picks pd/1
    for w in r.state.workers:
        if w.role == "prefill" and w.name != "pd/1":
            r.state.ledger.start_prefill(("busy", w.name), w.name, 1000.0, clock[0])
    d = r.decide(500)
    assert d.prefill.name == "pd/1" and d.fallback == "error"


def test_closed_worker_is_a_masked_slot(bundle):
    r, _ = _idle_router(bundle)
    r.state.observe("pd/0", None)  # its scrape failed
    snap = r.state.snapshot()
    assert snap.slot_open[bundle.slot_labels.index("pd/0")] == 0.0
    assert math.isinf(snap.slot_wait_s[bundle.slot_labels.index("pd/0")])
    for n in (500, 2000, 8000, 30000):
        d = r.decide(n)
        assert d.reject or d.prefill.name != "pd/0"
