"""The link on its own: full duplex, max-min fair shares, production-limited KV flows.

Every expected time below is worked out by hand from the rates in the comments.
"""

from __future__ import annotations

import pytest

from prfaas_gym.sim.kernel import SimEnvironment
from prfaas_gym.sim.link import Link

GB = 1e9


def make_link(bandwidth=1 * GB, flow_cap=100 * GB):
    env = SimEnvironment()
    ended: dict[object, float] = {}
    link = Link(env, "l", "x", "y", bandwidth, 0.002, flow_cap, lambda tok: ended.setdefault(tok, env.now))
    return env, link, ended


def test_forward_and_reverse_flows_each_get_the_full_capacity():
    # 1 GB/s per direction: 2 GB forward and 1 GB reverse run side by side, untouched by each other
    env, link, ended = make_link()
    link.channel("x", "y").start_flow(2 * GB, "fwd")
    link.channel("y", "x").start_flow(1 * GB, "rev")
    env.run()
    assert ended["fwd"] == pytest.approx(2.0)
    assert ended["rev"] == pytest.approx(1.0)
    assert link.forward.bytes_sent == pytest.approx(2 * GB)
    assert link.reverse.bytes_sent == pytest.approx(1 * GB)
    assert link.bytes_sent == pytest.approx(3 * GB)


def test_same_direction_flows_share():
    # two 1 GB flows in one direction: 0.5 GB/s each, both end at 2 s
    env, link, ended = make_link()
    link.forward.start_flow(1 * GB, "a")
    link.forward.start_flow(1 * GB, "b")
    env.run()
    assert ended == {"a": pytest.approx(2.0), "b": pytest.approx(2.0)}


def test_fluctuation_and_cap_act_on_both_directions():
    env, link, ended = make_link()
    link.set_cap(0.5 * GB)
    link.forward.start_flow(1 * GB, "fwd")
    link.reverse.start_flow(1 * GB, "rev")
    env.run()
    assert ended == {"fwd": pytest.approx(2.0), "rev": pytest.approx(2.0)}


def at(env, t, fn):
    """Run ``fn()`` at simulated time ``t``."""
    from prfaas_gym.sim.kernel import PRIO_COMPLETION, schedule_at
    schedule_at(env, t, PRIO_COMPLETION, lambda ev: fn())


def test_a_flow_never_sends_more_than_produced():
    # A: 1 GB produced at 0.25 GB/s over 4 s, capped at that rate; B (2 GB, all ready) gets
    # the remaining 0.75 GB/s and ends at 2/0.75 s; A ends the instant its production ends
    env, link, ended = make_link()
    ch = link.forward
    a = ch.start_flow(1 * GB, "a", ready_bytes=0.0, produce_bytes_s=0.25 * GB)
    ch.start_flow(2 * GB, "b")
    seen = []
    at(env, 1.0, lambda: seen.append(ch.bytes_sent))
    at(env, 4.0, lambda: ch.end_production(a))
    env.run()
    assert seen == [pytest.approx(1.0 * GB)]
    assert ended["b"] == pytest.approx(2 / 0.75)
    assert ended["a"] == pytest.approx(4.0)
    assert ch.bytes_sent == pytest.approx(3 * GB)


def test_pool_bytes_go_at_once_then_the_flow_catches_up_with_production():
    # A: 0.2 GB in a pool, then 0.1 GB/s; B: 1.5 GB ready. Both get 0.5 GB/s until A's
    # backlog 0.2 + 0.1t - 0.5t reaches 0 at t = 0.5 s; A then sends at 0.1 GB/s, B at 0.9:
    # B's 1.25 GB left take 1.25/0.9 s more. A's production ends at 8 s with 1 GB produced.
    env, link, ended = make_link()
    ch = link.forward
    a = ch.start_flow(1 * GB, "a", ready_bytes=0.2 * GB, produce_bytes_s=0.1 * GB)
    ch.start_flow(1.5 * GB, "b")
    rates = []
    at(env, 0.25, lambda: rates.append(ch.throughput_bytes_s))
    at(env, 1.0, lambda: rates.append(ch.throughput_bytes_s))
    at(env, 8.0, lambda: ch.end_production(a))
    env.run()
    assert ended["b"] == pytest.approx(0.5 + 1.25 / 0.9)
    assert ended["a"] == pytest.approx(8.0)
    assert rates == [pytest.approx(1 * GB), pytest.approx(1 * GB)]


def test_water_filling_demotes_flows_that_produce_faster_than_the_fair_share():
    # A and B each produce 2 GB at 0.4 GB/s (capped, 0.8 of 1 GB/s). At t=1 C (1 GB,
    # ready) joins: 0.4 > the level, so all three share 1/3 GB/s; C ends at 1 + 3 = 4 s.
    # A and B (1.4 GB sent, 1.6 produced) then get 0.5 GB/s each and catch up on their
    # backlog 0.2 GB at 0.1 GB/s, i.e. not before 6 s, but production ends at 5 s: the
    # 0.1 GB left go at 0.5 GB/s, so both end at 5.2 s.
    env, link, ended = make_link()
    ch = link.forward
    a = ch.start_flow(2 * GB, "a", ready_bytes=0.0, produce_bytes_s=0.4 * GB)
    b = ch.start_flow(2 * GB, "b", ready_bytes=0.0, produce_bytes_s=0.4 * GB)
    at(env, 1.0, lambda: ch.start_flow(1 * GB, "c"))
    at(env, 5.0, lambda: (ch.end_production(a), ch.end_production(b)))
    env.run()
    assert ended["c"] == pytest.approx(4.0)
    assert ended["a"] == pytest.approx(5.2) and ended["b"] == pytest.approx(5.2)


def test_paused_production_and_a_link_outage():
    # 1 GB at 0.5 GB/s for 1 s, paused 1 s (between chunks), 0.5 GB/s again; the link is
    # down from 2.5 to 3 s (0.25 GB produced meanwhile, sent at 1 GB/s after: caught up at
    # 3.25 s). Production ends at 3 s + 0.5/0.5 = 4 s, and so does the flow.
    env, link, ended = make_link()
    ch = link.forward
    f = ch.start_flow(1 * GB, "f", ready_bytes=0.0, produce_bytes_s=0.5 * GB)
    seen = []
    at(env, 1.0, lambda: ch.set_production(f, 0.0))
    at(env, 1.5, lambda: seen.append(ch.bytes_sent))
    at(env, 2.0, lambda: ch.set_production(f, 0.5 * GB))
    at(env, 2.5, lambda: link.set_up(False))
    at(env, 3.0, lambda: link.set_up(True))
    at(env, 3.1, lambda: seen.append(ch.bytes_sent))
    at(env, 4.0, lambda: ch.end_production(f))
    env.run()
    assert seen == [pytest.approx(0.5 * GB), pytest.approx(0.75 * GB + 0.1 * GB)]
    assert ended["f"] == pytest.approx(4.0)


def test_cancelled_flow_frees_its_share():
    env, link, ended = make_link()
    ch = link.forward
    a = ch.start_flow(1 * GB, "a", ready_bytes=0.0, produce_bytes_s=0.1 * GB)
    ch.start_flow(1 * GB, "b")
    at(env, 1.0, lambda: ch.cancel(a))
    env.run()
    # B: 0.9 GB/s for 1 s, then 1 GB/s for the last 0.1 GB
    assert ended == {"b": pytest.approx(1.1)}
    assert ch.active_flows == 0
