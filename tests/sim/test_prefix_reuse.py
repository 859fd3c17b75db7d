"""Schedule-time prefix reuse, chunked prefill, tail-first eviction, hybrid snapshots and
output caching, worked out by hand on tiny scenarios (prefill 10 ms + 0.1 ms per token)."""

from __future__ import annotations

import pytest

from prfaas_gym.sim import RouteDecision, Simulator
from prfaas_gym.workload import Request

C0, C1 = 0.01, 1e-4


def prefill_s(*chunks: int) -> float:
    """One prefill step over chunks of new tokens (the tiny polynomial has no quadratic term)."""
    return C0 + C1 * sum(chunks)


class Recorder:
    """Routes everything to the PD cluster's instance 0 and records the router's cache view."""

    def __init__(self, instance: int | dict = 0) -> None:
        self.instance = instance
        self.seen: dict[int, tuple[int, int]] = {}

    def route(self, req, view):
        self.seen[req.rid] = (view.cached_tokens(0, req), view.cached_tokens(0, req, in_flight=True))
        inst = self.instance if isinstance(self.instance, int) else self.instance[req.rid]
        return RouteDecision(prefill_cluster=0, prefill_instance=inst)


def test_routed_while_parent_prefills_reuses_it_once_it_starts(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=100)])
    parent = Request(0, 0.0, 4096, 2, hash_ids=tuple(range(1, 9)))
    child = Request(1, 0.1, 5120, 2, hash_ids=tuple(range(1, 11)))
    router = Recorder()
    Simulator(sc, router=router, requests=[parent, child]).run()
    # routed at 0.1 s while the parent prefills (0 .. 0.4196 s): nothing cached yet, but the
    # router can see the parent's blocks in flight
    assert router.seen[1] == (0, 4096)
    # the child leaves the queue when the parent's prefill ends and reuses its 8 blocks
    assert parent.prefill_end_s == pytest.approx(prefill_s(4096))
    assert child.prefill_start_s == pytest.approx(parent.prefill_end_s)
    assert child.cached_tokens == 4096
    assert child.prefill_end_s == pytest.approx(child.prefill_start_s + prefill_s(1024))


def test_hit_lost_to_eviction_before_schedule_is_recomputed(make_scenario, tiny):
    # room for 8 blocks: the child is routed with 4 blocks cached, but two 4-block prompts
    # prefilled on the other instance evict them before the child leaves its queue
    block = 512 * 131072.0
    sc = make_scenario([tiny.pd_cluster(instances=3, prefill_instances=2, prefix_cache_gb=8 * block / 1e9)])
    seed = Request(0, 0.0, 2048, 2, hash_ids=(1, 2, 3, 4))
    busy = Request(1, 1.0, 20000, 2)  # holds instance 0 for 2 s
    child = Request(2, 1.1, 2560, 2, hash_ids=(1, 2, 3, 4, 5))
    other1 = Request(3, 1.2, 2048, 2, hash_ids=(11, 12, 13, 14))
    other2 = Request(4, 1.5, 2048, 2, hash_ids=(21, 22, 23, 24))
    router = Recorder({0: 1, 1: 0, 2: 0, 3: 1, 4: 1})
    Simulator(sc, router=router, requests=[seed, busy, child, other1, other2]).run()
    assert router.seen[2][0] == 2048  # the routing-time estimate
    assert child.prefill_start_s == pytest.approx(busy.prefill_end_s)
    assert child.cached_tokens == 0
    assert child.prefill_end_s == pytest.approx(child.prefill_start_s + prefill_s(2560))


def test_chunked_prefill_fills_the_budget(make_scenario, tiny):
    # budget 2048 tokens per step, chunked: a 4096-token prompt takes two full steps, and the
    # prompt queued behind it starts when the budget has room
    sc = make_scenario([tiny.pd_cluster(prefill={"max_batch": 4, "max_batch_tokens": 2048, "chunked": True})])
    long = Request(0, 0.0, 4096, 2)
    short = Request(1, 0.0, 1000, 2)
    Simulator(sc, requests=[long, short]).run()
    assert long.prefill_end_s == pytest.approx(2 * prefill_s(2048))
    assert short.prefill_start_s == pytest.approx(long.prefill_end_s)
    assert short.prefill_end_s == pytest.approx(2 * prefill_s(2048) + prefill_s(1000))


def test_chunk_of_an_inflight_prompt_is_reused_on_another_instance(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(instances=3, prefill_instances=2, prefix_cache_gb=100,
                                        prefill={"max_batch": 4, "max_batch_tokens": 2048, "chunked": True})])
    long = Request(0, 0.0, 4096, 2, hash_ids=tuple(range(1, 9)))
    busy = Request(1, 0.005, 2048, 2)  # instance 1 busy until 0.2198 s > first chunk end 0.2148 s
    other = Request(2, 0.01, 3072, 2, hash_ids=(1, 2, 3, 4, 5, 77))
    Simulator(sc, router=Recorder({0: 0, 1: 1, 2: 1}), requests=[long, busy, other]).run()
    assert other.prefill_start_s == pytest.approx(0.005 + prefill_s(2048))
    assert other.prefill_start_s > prefill_s(2048)  # after long's first chunk, before its end
    assert other.prefill_start_s < long.prefill_end_s
    assert other.cached_tokens == 2048  # the first chunk's 4 blocks
    assert other.prefill_end_s == pytest.approx(other.prefill_start_s + prefill_s(1024))


def test_per_request_chunk_cap_lets_short_prompts_through(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(prefill={"max_batch": 4, "max_batch_tokens": 2048, "chunked": True,
                                                 "long_prefill_tokens": 512})])
    long = Request(0, 0.0, 3000, 2)
    short = Request(1, 0.0, 500, 2)
    Simulator(sc, requests=[long, short]).run()
    # long starts alone on arrival (512 tokens, its cap); step 2 takes long's next 512 and all
    # of short; then long alone, 512 per step (3000 = 5 x 512 + 440)
    assert short.prefill_end_s == pytest.approx(prefill_s(512) + prefill_s(512, 500))
    assert long.prefill_end_s == pytest.approx(prefill_s(512) + prefill_s(512, 500) + 3 * prefill_s(512)
                                               + prefill_s(440))


def test_unchunked_batch_under_a_token_budget(make_scenario, tiny):
    sc = make_scenario([tiny.pd_cluster(prefill={"max_batch": 4, "max_batch_tokens": 2048})])
    a, b, c = Request(0, 0.0, 3000, 2), Request(1, 0.0, 1500, 2), Request(2, 0.0, 500, 2)
    Simulator(sc, requests=[a, b, c]).run()
    # a exceeds the budget and runs alone; b and c share the next step
    assert a.prefill_end_s == pytest.approx(prefill_s(3000))
    assert b.prefill_end_s == c.prefill_end_s == pytest.approx(prefill_s(3000) + prefill_s(1500, 500))


def test_hybrid_snapshot_interval(make_scenario, tiny):
    # kimi-linear-48b is hybrid: a hit must end at a stored state snapshot
    def run(interval: int) -> tuple[int, float]:
        sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=100, gpus_per_instance=2,
                                            prefix_cache={"snapshot_interval_blocks": interval})],
                           model="kimi-linear-48b")
        a = Request(0, 0.0, 1400, 2, hash_ids=(1, 2, 3))
        b = Request(1, 10.0, 2048, 2, hash_ids=(1, 7, 8, 9))
        sim = Simulator(sc, requests=[a, b])
        sim.run()
        return b.cached_tokens, sim.clusters[0].cache.used_bytes

    cached0, used0 = run(0)
    cached1, used1 = run(1)
    assert cached0 == 0      # a's only snapshot sits after block 2
    assert cached1 == 512    # with one per block, the shared first block is usable
    from prfaas_gym.profiles import get_model
    state = get_model("kimi-linear-48b").state_bytes_per_request
    # snapshots in the pool: a after blocks 1 and 2, b after blocks 1, 7, 8, 9 (~1 shared) = 5,
    # against one per prompt (2) without the grid; each counts its full state size
    assert used1 - used0 == pytest.approx(3 * state)


def test_generated_tokens_cached_at_finish(make_scenario, tiny):
    def run(cache_output: bool) -> int:
        sc = make_scenario([tiny.pd_cluster(prefix_cache_gb=100, prefix_cache={"cache_output": cache_output})])
        turn1 = Request(0, 0.0, 1024, 1100, hash_ids=(1, 2), session_id=5)
        # next turn: turn1's prompt + its 1100 output tokens + 300 new ones (4 full blocks + 1)
        turn2 = Request(1, 100.0, 2424, 2, hash_ids=(1, 2, 3, 4, 77), session_id=5)
        Simulator(sc, requests=[turn1, turn2]).run()
        assert turn1.finish_s < turn2.arrival_s
        return turn2.cached_tokens

    assert run(False) == 1024
    assert run(True) == 2048  # (1024 + 1100) // 512 = 4 blocks of prompt + output


def test_predicted_wait_keeps_unstarted_chunks(make_scenario, tiny):
    # a 6000-token prompt in 2048-token chunks: after its first chunk starts, the instance's
    # predicted wait still holds the two thirds of its estimate not yet started
    sc = make_scenario([tiny.pd_cluster(prefill={"max_batch": 4, "max_batch_tokens": 2048, "chunked": True})])
    long = Request(0, 0.0, 6000, 2)
    sim = Simulator(sc, requests=[long])
    sim.run_until(0.001)
    inst = sim.clusters[0].instances[0]
    estimate = prefill_s(6000)
    assert inst.queued_work_s == pytest.approx(estimate * (6000 - 2048) / 6000)
    assert inst.predicted_wait_s(0.001) == pytest.approx(prefill_s(2048) - 0.001 + inst.queued_work_s)
    sim.run()
    assert inst.queued_work_s == 0.0
