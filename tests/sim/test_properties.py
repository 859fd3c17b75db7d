"""Invariants over random small scenarios (hypothesis): nothing lost, tokens conserved,
memory and link capacity respected, time monotone."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.sim.tiny_scenarios import link, pd_cluster, prfaas_cluster, scenario_dict

from prfaas_gym.scenario import parse_scenario
from prfaas_gym.sim import Simulator, ThresholdRouter
from prfaas_gym.sim.instance import Instance
from prfaas_gym.sim.router import RouteDecision




class RandomRouter:
    """Routes uniformly at random over clusters, sometimes with pulls or rejects."""

    def route(self, req, view):
        rng = view.policy_rng
        c = int(rng.integers(len(view.clusters)))
        pull = int(rng.integers(len(view.clusters))) if rng.random() < 0.3 else None
        return RouteDecision(prefill_cluster=c, pull_from=pull, reject=bool(rng.random() < 0.05))


@st.composite
def scenarios(draw):
    with_prfaas = draw(st.booleans())
    cache_gb = draw(st.sampled_from([0, 0.5, 50]))
    prefill = {"max_batch": draw(st.integers(1, 4)), "max_batch_tokens": draw(st.sampled_from([512, 4096, 65536]))}
    if draw(st.booleans()):  # chunked prefill, sometimes with a per-request chunk cap
        prefill.update(chunked=True, long_prefill_tokens=draw(st.sampled_from([0, 256, 1000])))
    cache_opts = {"snapshot_interval_blocks": draw(st.sampled_from([0, 1, 2])), "cache_output": draw(st.booleans())}
    # a small decode memory (llama3-8b on one H100 keeps ~4 GB of KV at 0.75 reserved) makes
    # growing contexts preempt each other
    reserve = draw(st.sampled_from([0.1, 0.75]))
    pd = pd_cluster(
        instances=draw(st.integers(2, 4)), prefill_instances=1, prefill=prefill,
        decode={"max_batch": draw(st.integers(1, 8)), "kv_reserve_fraction": reserve},
        prefix_cache_gb=cache_gb, prefix_cache=cache_opts,
    )
    pd["prefill_instances"] = draw(st.integers(1, pd["instances"] - 1))
    clusters = [pd]
    links = []
    if with_prfaas:
        clusters.insert(0, prfaas_cluster(instances=draw(st.integers(1, 3)), prefix_cache_gb=cache_gb,
                                          prefill=dict(prefill), prefix_cache=cache_opts))
        fl = {"interval_s": 0.5, "sigma": 0.3, "dip_probability": 0.3, "dip_fraction": 0.1} if draw(st.booleans()) else None
        l = link(bandwidth_gbps=draw(st.sampled_from([0.5, 8.0, 100.0])), tcp_connections=draw(st.integers(1, 8)),
                 per_connection_gbps=draw(st.sampled_from([0.1, 1.0, 10.0])))
        if fl:
            l["fluctuation"] = fl
        links.append(l)
    workload = {
        "kind": "synthetic", "requests": draw(st.integers(1, 40)),
        "arrival": {"process": draw(st.sampled_from(["poisson", "bursty", "uniform"])), "rate_rps": draw(st.sampled_from([0.5, 5.0, 50.0]))},
        "input_tokens": {"dist": "uniform", "low": 1, "high": draw(st.sampled_from([600, 5000]))},
        "output_tokens": {"dist": "uniform", "low": 1, "high": draw(st.sampled_from([2, 300]))},
    }
    if cache_gb:
        workload["prefix"] = {
            "sessions": draw(st.integers(1, 5)), "turns_mean": 2.0, "shared_system_tokens": 512,
            "loop": draw(st.sampled_from(["closed", "closed", "open"])),
            "think_time_s": {"dist": "lognormal", "mu": draw(st.sampled_from([-3.0, 0.0, 2.0])), "sigma": 1.0},
            "on_reject": draw(st.sampled_from([{}, {"action": "retry", "max_retries": 2, "backoff_s": 0.5}])),
        }
    faults = []
    if draw(st.booleans()):
        faults.append({"at_s": draw(st.floats(0.0, 5.0)), "duration_s": draw(st.floats(0.1, 3.0)),
                       "cluster": "pd", "instance": draw(st.integers(0, 1))})
    if with_prfaas and draw(st.booleans()):
        faults.append({"at_s": draw(st.floats(0.0, 5.0)), "duration_s": 1.0, "link": "vpc"})
    model = draw(st.sampled_from(["llama3-8b", "kimi-linear-48b"]))
    d = scenario_dict(clusters, links, model=model, workload=workload, faults=faults)
    if model == "kimi-linear-48b":
        for c in d["clusters"]:
            c["gpus_per_instance"] = 2
            c.get("decode", {})["kv_reserve_fraction"] = 0.1
    return parse_scenario(d, "random.yaml"), draw(st.integers(0, 2**16)), draw(st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants(case):
    sc, seed, random_routing = case
    router = RandomRouter() if random_routing else ThresholdRouter(500)
    sim = Simulator(sc, router=router, seed=seed)

    # instrument: memory and batch limits checked at every admission, time at every event
    violations: list[str] = []
    admit = Instance.admit

    def check_memory(inst, where):
        if inst.mem_used_bytes > inst.mem_capacity_bytes * (1 + 1e-9):
            violations.append(f"memory at {where}")

    def checked_admit(self, job):
        admit(self, job)
        check_memory(self, "admission")
        if len(self.members) > self.cluster.decode_max_batch:
            violations.append("batch")

    # decode KV memory is at its peak when a decode event fires (contexts grew until then,
    # preemption frees some next) and just after a reservation for a transfer
    preempt, reserve, take_hold = Instance._preempt_if_full, Instance.reserve, Instance.take_hold

    def checked_preempt(self):
        check_memory(self, "decode event")
        preempt(self)

    def checked_reserve(self, job):
        reserve(self, job)
        check_memory(self, "reservation")

    def checked_take_hold(self, job):
        held = self.held_bytes
        take_hold(self, job)
        if held > 0 and self.held_bytes > self.mem_capacity_bytes * (1 + 1e-9):
            violations.append("prefill-side KV hold")

    Instance.admit = checked_admit
    Instance._preempt_if_full = checked_preempt
    Instance.reserve = checked_reserve
    Instance.take_hold = checked_take_hold
    # prefill steps: budget, batch size and chunk cap respected; chunks add up per request
    start_batch = Instance._start_batch
    computed: dict[int, int] = {}

    def checked_start_batch(self):
        start_batch(self)
        c = self.cluster
        chunks = [j.chunk_tokens for j in self.batch] or [1]  # empty: held back by KV held
        if len(chunks) > c.max_prefill_batch or min(chunks) <= 0:
            violations.append("prefill batch")
        if (len(chunks) > 1 or c.chunked_prefill) and sum(chunks) > c.max_batch_tokens:
            violations.append("token budget")
        if c.long_prefill_tokens and max(chunks) > c.long_prefill_tokens:
            violations.append("chunk cap")
        for j in self.batch:
            computed[j.req.rid] = computed.get(j.req.rid, 0) + j.chunk_tokens

    Instance._start_batch = checked_start_batch
    times: list[float] = []
    step = sim.env.step

    def timed_step():
        step()
        times.append(sim.env.now)

    sim.env.step = timed_step
    try:
        summary = sim.run()
    finally:
        Instance.admit = admit
        Instance._start_batch = start_batch
        Instance._preempt_if_full, Instance.reserve, Instance.take_hold = preempt, reserve, take_hold
    assert not violations

    n = len(sim.requests)
    # nothing lost (turns of abandoned conversations end rejected, without arriving)
    assert summary["completed"] + summary["rejected"] == n
    assert sim.in_flight == 0 and sim.arrivals_left == 0 and sim.done
    assert len(sim.arrived) == sum(1 for r in sim.requests if r.reject_reason != "abandoned")
    # causality: a closed-loop turn arrives its think time after its parent completed
    for r in sim.requests:
        if r.reject_reason == "abandoned":
            assert math.isnan(r.arrival_s)
            continue
        assert math.isfinite(r.arrival_s)
        if r.parent_rid >= 0 and math.isfinite(r.think_s) and r.attempt == 0:
            parent = sim.requests[r.parent_rid]
            assert not parent.rejected and parent.turn == r.turn - 1
            assert r.arrival_s == parent.finish_s + r.think_s
        if r.attempt:
            first = [q for q in sim.requests if (q.session_id, q.turn, q.attempt) == (r.session_id, r.turn, r.attempt - 1)]
            assert len(first) == 1 and first[0].rejected and first[0].arrival_s < r.arrival_s
    # time monotone
    assert all(a <= b for a, b in zip(times, times[1:]))
    for r in sim.requests:
        if r.rejected:
            assert math.isnan(r.finish_s) or r.retries > 0
            continue
        # a completed request's timeline is ordered
        assert r.arrival_s <= r.prefill_start_s <= r.prefill_end_s <= r.transfer_end_s
        assert r.transfer_end_s <= r.decode_start_s <= r.finish_s
        assert 0 <= r.cached_tokens < r.input_tokens
    # token conservation, also under preemption (a preempted request keeps what it generated):
    # decode steps generated = output tokens after the first
    done = [r for r in sim.requests if not r.rejected]
    generated = sum(i.tokens_generated for c in sim.clusters for i in c.instances)
    lost_to_faults = sum(1 for r in sim.requests if r.retries)
    if not lost_to_faults:
        assert math.isclose(generated, sum(r.output_tokens - 1 for r in done), rel_tol=1e-6, abs_tol=1e-3)
    # link capacity never exceeded
    for lk in sim.links:
        for ch in lk.channels:  # full duplex: each direction within the link's capacity
            assert max(ch.rate_log_bytes_s) <= lk.nominal_bytes_s * (1 + 1e-9)
    # prefill computed exactly the uncached part of each prompt (once, when never re-routed)
    for r in sim.requests:
        if not r.rejected and not r.retries:
            assert computed[r.rid] == r.input_tokens - r.cached_tokens
    # caches within capacity; nothing left registered as in flight
    for c in sim.clusters:
        if c.cache is not None:
            assert c.cache.used_bytes <= c.cache.capacity_bytes * (1 + 1e-9)
            assert c.cache.pending_keys == 0
        for inst in c.instances:
            assert not inst.running and not inst.queue
