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
