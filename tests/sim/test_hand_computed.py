"""One request at a time through idle clusters: every timestamp computed by hand."""

from __future__ import annotations

import math

import pytest

from prfaas_gym.sim import RouteDecision, Simulator, ThresholdRouter
from prfaas_gym.workload import Request


PREFILL_C0, PREFILL_C1, STEP_S = 0.01, 1e-4, 0.02
KV_PER_TOKEN = 131072.0  # llama3-8b, bf16
LAYERS = 32
RDMA = 3200e9 / 8  # h100-sxm profile: 8 x 400 Gbps NICs per node


def prefill_s(new: int) -> float:
    return PREFILL_C0 + PREFILL_C1 * new


def test_one_request_idle_pd_cluster(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster()])
    req = Request(0, 1.0, 1000, 11)
    sim = Simulator(sc, requests=[req])
    sim.run()
    assert req.prefill_start_s == pytest.approx(1.0)
    assert req.prefill_end_s == pytest.approx(1.0 + prefill_s(1000))
    assert req.ttft_s == pytest.approx(prefill_s(1000))
    # intra-DC: the KV streams over RDMA during prefill; the last layer leaves after it
    nbytes = KV_PER_TOKEN * 1000
    transfer = max(nbytes / LAYERS / RDMA, nbytes / RDMA - prefill_s(1000)) + sc.intra_dc_latency_s
    assert req.transfer_end_s == pytest.approx(req.prefill_end_s + transfer)
    # 10 decode steps (the first token came with prefill)
    assert req.finish_s == pytest.approx(req.transfer_end_s + 10 * STEP_S)
    assert req.tpot_s == pytest.approx((req.finish_s - req.prefill_end_s) / 10)


def test_one_request_cross_dc_transfer(make_scenario, tiny):
    # 8 Gbps = 1 GB/s; 1000 tokens x 131072 B = 131 MB -> 0.131 s, longer than the 0.11 s prefill
    sc = make_scenario([tiny.prfaas_cluster(), tiny.pd_cluster()], [tiny.link()])
    req = Request(0, 0.0, 1000, 2)
    sim = Simulator(sc, router=ThresholdRouter(0), requests=[req])
    sim.run()
    assert req.prefill_cluster == "prfaas" and req.decode_cluster == "pd"
    nbytes = KV_PER_TOKEN * 1000
    rate = 1e9
    fluid_end = nbytes / rate
    assert fluid_end > prefill_s(1000)
    # the stream started with prefill and outlasts it (prefill end + last layer < fluid end)
    assert prefill_s(1000) + nbytes / LAYERS / rate < fluid_end
    expected = fluid_end + 0.002 / 2
    assert req.transfer_end_s == pytest.approx(expected)
    assert req.finish_s == pytest.approx(expected + STEP_S)
    assert sim.links[0].bytes_sent == pytest.approx(nbytes)


def test_two_flows_share_a_link_fairly(make_scenario, tiny):
    sc = make_scenario([tiny.prfaas_cluster(instances=2), tiny.pd_cluster()], [tiny.link()])
    reqs = [Request(0, 0.0, 1000, 2), Request(1, 0.0, 1000, 2)]
    sim = Simulator(sc, router=ThresholdRouter(0), requests=reqs)
    sim.run()
    nbytes = KV_PER_TOKEN * 1000
    # both flows start together and each gets half of 1 GB/s
    both_done = 2 * nbytes / 1e9
    for r in reqs:
        assert r.prefill_start_s == 0.0
        assert r.transfer_end_s == pytest.approx(both_done + 0.001)


def test_per_flow_cap_limits_a_lone_flow(make_scenario, tiny):
    # 2 connections x 0.2 Gbps = 0.4 Gbps = 50 MB/s though the link has 1 GB/s
    sc = make_scenario([tiny.prfaas_cluster(), tiny.pd_cluster()], [tiny.link(tcp_connections=2, per_connection_gbps=0.2)])
    req = Request(0, 0.0, 1000, 2)
    Simulator(sc, router=ThresholdRouter(0), requests=[req]).run()
    nbytes = KV_PER_TOKEN * 1000
    assert req.transfer_end_s == pytest.approx(nbytes / 50e6 + 0.001)


def test_prefix_hit_shortens_prefill(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=10)])
    first = Request(0, 0.0, 2048, 2, hash_ids=(1, 2, 3, 4))
    second = Request(1, 10.0, 2560, 2, hash_ids=(1, 2, 3, 4, 5))
    Simulator(sc, requests=[first, second]).run()
    assert first.cached_tokens == 0
    assert second.cached_tokens == 2048
    assert second.ttft_s == pytest.approx(prefill_s(2560 - 2048))
    assert first.ttft_s == pytest.approx(prefill_s(2048))


def test_full_hit_keeps_one_token_to_compute(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=10)])
    a = Request(0, 0.0, 1024, 2, hash_ids=(7, 8))
    b = Request(1, 10.0, 1024, 2, hash_ids=(7, 8))
    Simulator(sc, requests=[a, b]).run()
    assert b.cached_tokens == 1023
    assert b.ttft_s == pytest.approx(prefill_s(1))


@pytest.mark.parametrize("model, expected_cached", [("kimi-linear-48b", 1024), ("llama3-8b", 1536)])
def test_hybrid_hit_needs_exact_length_state(make_scenario, tiny, model, expected_cached):
    # the first prompt has 2 full blocks + a partial third: its state snapshot sits at 1024
    # tokens, so a hybrid model can reuse only 1024 of the 1536 matching block tokens
    sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=100, gpus_per_instance=2)], model=model)
    a = Request(0, 0.0, 1400, 2, hash_ids=(1, 2, 3))
    b = Request(1, 10.0, 2048, 2, hash_ids=(1, 2, 3, 4))
    Simulator(sc, requests=[a, b]).run()
    assert b.cached_tokens == expected_cached


def test_lru_eviction_under_capacity_is_tail_first(make_scenario, tiny):
    # room for exactly 4 blocks of llama3-8b (512 x 131072 B = 67.1 MB each)
    block = 512 * KV_PER_TOKEN
    sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=4 * block / 1e9)])
    a = Request(0, 0.0, 1024, 2, hash_ids=(1, 2))
    b = Request(1, 10.0, 1536, 2, hash_ids=(3, 4, 5))  # evicts a's tail, block 2 (vLLM free order)
    c = Request(2, 20.0, 1024, 2, hash_ids=(1, 2))
    sim = Simulator(sc, requests=[a, b, c])
    sim.run()
    assert c.cached_tokens == 512  # a's head block 1 survived
    assert sim.clusters[0].cache.evicted_blocks >= 1
    assert sim.clusters[0].cache.used_bytes <= 4 * block + 1e-6


def test_decode_time_does_not_depend_on_batch_events(make_scenario, tiny):
    # two requests decoding together finish after exactly their own step counts
    sc = make_scenario([tiny.pd_cluster()])
    a = Request(0, 0.0, 100, 101)
    b = Request(1, 0.5, 100, 51)
    Simulator(sc, requests=[a, b]).run()
    assert a.finish_s - a.decode_start_s == pytest.approx(100 * STEP_S)
    assert b.finish_s - b.decode_start_s == pytest.approx(50 * STEP_S)


def test_decode_memory_queues_when_full(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(decode={"max_batch": 1})])
    a = Request(0, 0.0, 100, 11)
    b = Request(1, 0.0, 100, 11)
    Simulator(sc, requests=[a, b]).run()
    assert b.decode_start_s == pytest.approx(a.finish_s)


def test_policy_reject_is_counted(make_scenario, tiny):
    class RejectAll:
        def route(self, req, view):
            return RouteDecision(reject=True)

    sc = make_scenario([tiny.pd_cluster()])
    sim = Simulator(sc, router=RejectAll(), requests=[Request(0, 0.0, 10, 2)])
    s = sim.run()
    assert s["rejected"] == 1 and s["completed"] == 0
    assert math.isnan(sim.requests[0].finish_s)


def test_invalid_decision_falls_back_to_threshold_rule(make_scenario, tiny):
    class Nonsense:
        def route(self, req, view):
            return RouteDecision(prefill_cluster=99)

    sc = make_scenario([tiny.pd_cluster()])
    s = Simulator(sc, router=Nonsense(), requests=[Request(0, 0.0, 10, 2)]).run()
    assert s["completed"] == 1


def test_fast_link_transfer_ends_after_last_layer(make_scenario, tiny):
    # 800 Gbps = 100 GB/s: the stream keeps up with prefill; the last layer's KV (1/32 of
    # 131 MB) leaves at prefill end and takes 41 us more
    sc = make_scenario([tiny.prfaas_cluster(), tiny.pd_cluster()], [tiny.link(bandwidth_gbps=800, per_connection_gbps=1000)])
    req = Request(0, 0.0, 1000, 2)
    Simulator(sc, router=ThresholdRouter(0), requests=[req]).run()
    nbytes = KV_PER_TOKEN * 1000
    assert req.transfer_end_s == pytest.approx(prefill_s(1000) + nbytes / LAYERS / 100e9 + 0.001)


def test_decode_failure_reroutes_and_completes(make_scenario, tiny):
    # the only decode instance fails mid-decode and recovers 1 s later: the request is
    # prefilled again and decodes after recovery; nothing is lost
    sc = make_scenario([tiny.pd_cluster()], faults=[{"at_s": 0.5, "duration_s": 1.0, "cluster": "pd", "instance": 1}])
    req = Request(0, 0.0, 1000, 101)  # decodes from ~0.11 s to ~2.11 s
    sim = Simulator(sc, requests=[req])
    s = sim.run()
    assert s["completed"] == 1 and req.retries == 1
    assert req.prefill_start_s == pytest.approx(0.5)  # prefill restarted at the failure
    # the KV transfer waits for the decode side to reserve memory: it starts at the recovery
    # (SGLang pre-allocates before the transfer), and the KV stays on the prefill side meanwhile
    start = 1.5 + KV_PER_TOKEN * 1000 / RDMA + sc.intra_dc_latency_s
    assert req.decode_start_s == pytest.approx(start)
    assert req.finish_s == pytest.approx(start + 100 * STEP_S)


def test_prefill_failure_reroutes_queued_requests(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(instances=3, prefill_instances=2)],
                       faults=[{"at_s": 0.05, "duration_s": 10.0, "cluster": "pd", "instance": 0}])
    reqs = [Request(i, 0.0, 1000, 2) for i in range(4)]
    sim = Simulator(sc, requests=reqs)
    s = sim.run()
    assert s["completed"] == 4
    assert sum(r.retries for r in reqs) >= 1
    assert all(r.prefill_end_s > 0.05 or r.retries == 0 for r in reqs)


def test_gauges_and_utilisation(make_scenario, tiny):
    from prfaas_gym.metrics import gauge_arrays

    sc = make_scenario([tiny.pd_cluster()])
    # one request decoding 100 steps of 20 ms from ~0.11 s: batch 1 of max 256
    req = Request(0, 0.0, 1000, 101)
    sim = Simulator(sc, requests=[req], gauge_interval_s=0.5)
    s = sim.run()
    g = gauge_arrays(sim)
    assert list(g["time_s"][:3]) == [0.0, 0.5, 1.0]
    # KV in use = the current context (admission by context, no output length): the prompt
    # plus one token per decode step so far
    steps = (0.5 - req.decode_start_s) / STEP_S
    assert g["decode_batch"][1] == 1 and g["kv_bytes_in_use"][1] == pytest.approx(KV_PER_TOKEN * (1000 + steps))
    # prefill busy 0.11 s of the ~2.11 s the prefill instance existed
    assert s["prefill_utilisation"] == pytest.approx(prefill_s(1000) / s["sim_time_s"], rel=1e-6)
    assert s["decode_batch_utilisation"] == pytest.approx(2.0 / s["sim_time_s"] / 256, rel=1e-6)


def test_run_until_infinity_keeps_the_makespan(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster()])
    req = Request(0, 0.0, 1000, 11)
    sim = Simulator(sc, requests=[req], external_routing=True)
    assert sim.next_decision() is req
    ended = []
    sim.on_request_end.append(ended.append)
    sim.apply(RouteDecision(prefill_cluster=0))
    assert sim.run_until(float("inf")) is None
    assert sim.done and ended == [req]
    assert sim.now_s == pytest.approx(req.finish_s)
    assert sim.summary()["sim_time_s"] == pytest.approx(req.finish_s)


def test_unreachable_prefill_cluster_falls_back(make_scenario, tiny):
    # two regional PD clusters share a PrfaaS cluster but have no link between them: east's
    # prefill instances are no valid choice for a request homed (and decoded) in the west
    sc = make_scenario([tiny.prfaas_cluster(), tiny.pd_cluster(name="east", datacenter="dc-east", traffic_weight=0),
                        tiny.pd_cluster(name="west", datacenter="dc-west")],
                       [tiny.link(between=["dc-remote", "dc-east"], name="e"),
                        tiny.link(between=["dc-remote", "dc-west"], name="w")])
    req = Request(0, 0.0, 100, 2)

    class East:
        def route(self, req, view):
            return RouteDecision(prefill_cluster=1)

    sim = Simulator(sc, router=East(), requests=[req])
    assert sim.home_cluster(req) == 2 and not sim.connected(1, 2) and sim.connected(0, 2)
    assert sim.run()["completed"] == 1 and req.prefill_cluster == "west"


def _sample_sent(sim, channel, times):
    from prfaas_gym.sim.kernel import PRIO_ENVIRONMENT, schedule_at
    seen = {}
    for t in times:
        schedule_at(sim.env, t, PRIO_ENVIRONMENT, lambda ev, t=t: seen.setdefault(t, channel.bytes_sent))
    return seen


def test_kv_on_the_link_never_exceeds_kv_produced(make_scenario, tiny):
    # a 131K and a 32K prompt prefill side by side on two PrfaaS instances and share a
    # 40 Gbps (5 GB/s) link. Each produces its KV at ~1.31 GB/s (prefill 10 ms + 0.1 ms per
    # token, 131072 B per token): together 2.6 GB/s < 5, so each flow sends exactly what
    # its prefill has produced, never more (the old model sent 2.5 GB/s each from t=0)
    sc = make_scenario([tiny.prfaas_cluster(instances=2), tiny.pd_cluster()],
                       [tiny.link(bandwidth_gbps=40)])
    long, short = Request(0, 0.0, 131072, 2), Request(1, 0.0, 32768, 2)
    sim = Simulator(sc, router=ThresholdRouter(0), requests=[long, short])
    ch = sim.links[0].forward
    times = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 13.0]
    seen = _sample_sent(sim, ch, times)
    sim.run()
    b0, b1 = KV_PER_TOKEN * 131072, KV_PER_TOKEN * 32768
    p0, p1 = prefill_s(131072), prefill_s(32768)
    r0, r1 = b0 / p0, b1 / p1
    for t in times:
        produced = r0 * min(t, p0) + r1 * min(t, p1)
        assert seen[t] == pytest.approx(produced, rel=1e-9)
    # each flow's last byte leaves at its prefill end; the last layer follows at the rate
    # a new flow would get then (the 131K flow still holds r0 of the 32K flow's end)
    assert short.transfer_end_s == pytest.approx(p1 + b1 / LAYERS / (5e9 - r0) + 0.001)
    assert long.transfer_end_s == pytest.approx(p0 + b0 / LAYERS / 5e9 + 0.001)


def test_kv_flows_fall_behind_production_on_a_busy_link_and_catch_up(make_scenario, tiny):
    # the same prompts on 16 Gbps (2 GB/s): each flow gets 1 GB/s < its production rate and
    # falls behind; the 32K flow ends at 4.29 GB / 1 GB/s; the 131K flow then gets 2 GB/s,
    # catches up with its prefill and ends at prefill end + last layer at 2 GB/s
    sc = make_scenario([tiny.prfaas_cluster(instances=2), tiny.pd_cluster()],
                       [tiny.link(bandwidth_gbps=16)])
    long, short = Request(0, 0.0, 131072, 2), Request(1, 0.0, 32768, 2)
    sim = Simulator(sc, router=ThresholdRouter(0), requests=[long, short])
    ch = sim.links[0].forward
    b0, b1 = KV_PER_TOKEN * 131072, KV_PER_TOKEN * 32768
    p0 = prefill_s(131072)
    r0 = b0 / p0
    t1 = b1 / 1e9
    caught = t1 + (r0 - 1e9) * t1 / (2e9 - r0)
    seen = _sample_sent(sim, ch, [t1 + 1.0, caught + 1.0])
    sim.run()
    assert short.transfer_end_s == pytest.approx(t1 + 0.001)
    assert seen[t1 + 1.0] == pytest.approx(b1 + 1e9 * t1 + 2e9 * 1.0, rel=1e-9)  # catching up
    assert seen[caught + 1.0] == pytest.approx(b1 + r0 * (caught + 1.0), rel=1e-9)  # kept pace
    assert long.transfer_end_s == pytest.approx(p0 + b0 / LAYERS / 2e9 + 0.001)


def test_client_ttft_comes_from_the_decode_side(make_scenario, tiny):
    # PD disaggregation: the client's first token is streamed by the decode server once the
    # KV has arrived and the request joined a batch; TTFT at prefill end stays a field
    sc = make_scenario([tiny.prfaas_cluster(), tiny.pd_cluster()], [tiny.link()])
    req = Request(0, 0.5, 1000, 2)
    Simulator(sc, router=ThresholdRouter(0), requests=[req]).run()
    assert req.ttft_s == pytest.approx(prefill_s(1000))
    assert req.ttft_client_s == pytest.approx(KV_PER_TOKEN * 1000 / 1e9 + 0.001)
    assert req.ttft_client_s == pytest.approx(req.decode_start_s - req.arrival_s)
    assert req.ttft_client_s > req.ttft_s


def test_preempted_request_completes_with_its_tokens_conserved(make_scenario, tiny):
    # one decode instance with room for 3,500 tokens of KV. A and B (1,000-token prompts,
    # 1,000 decode steps of 20 ms each) both fit when they join (prompt + 512 tokens of growth
    # room each), but their contexts grow by 2 tokens a step: when the next step would not
    # fit, the newest (B) is preempted by recompute (vLLM running.pop()). B keeps the tokens
    # it generated, waits until A ends, recomputes its context (a prefill of prompt +
    # generated tokens on the decode instance) and finishes the rest
    sc = make_scenario([tiny.pd_cluster()])
    a, b = Request(0, 0.0, 1000, 1001), Request(1, 0.0, 1000, 1001)
    sim = Simulator(sc, requests=[a, b])
    dec = sim.clusters[0].instances[1]
    dec.mem_capacity_bytes = 3500 * KV_PER_TOKEN
    sim.clusters[0].decode_key_changed(dec)
    s = sim.run()
    assert s["completed"] == 2 and s["preemptions"] == 1
    assert (a.preemptions, b.preemptions) == (0, 1)
    s_a = (b.decode_start_s - a.decode_start_s) / STEP_S  # A's tokens when B joins
    g = (3500 * (1 - 1e-7) - 2 - (2000 + s_a)) / 2  # B's tokens when the next step won't fit
    assert a.finish_s == pytest.approx(a.decode_start_s + 1000 * STEP_S)
    assert b.finish_s == pytest.approx(a.finish_s + prefill_s(1000 + g) + (1000 - g) * STEP_S)
    # tokens conserved: 1,000 decode steps each, whatever the preemption
    assert dec.tokens_generated == pytest.approx(2000)
    # the client saw B's first token when it first joined, not after the recompute
    assert b.ttft_client_s == pytest.approx(b.decode_start_s - b.arrival_s)
    assert b.decode_start_s < a.finish_s
