"""Decode placement across regions, on a hand-built view: home below the spill load, the
least-loaded connected region past it, router-side accounting until decode starts."""

from __future__ import annotations

import math
from types import SimpleNamespace as NS

import pytest

from prfaas_gym.api import build_simulator
from prfaas_gym.policies.decode_placement import DecodePlacement


def _cluster(batch: list[int], waiting: int = 0, max_batch: int = 10):
    insts = [NS(accepts_decode=True, batch_size=b) for b in batch]
    return NS(instances=insts, decode_queue=[None] * waiting, decode_max_batch=max_batch)


def _view(clusters, connected=lambda a, b: True):
    return NS(clusters=clusters, pd_clusters=[0, 1, 2], home_cluster=lambda r: 0, connected=connected)


def _req():
    return NS(decode_start_s=math.nan, rejected=False)


def test_home_until_the_spill_load_then_the_least_loaded_region():
    p = DecodePlacement("least-loaded", spill_at=1.0)
    # 20 slots per region; home 19 busy (0.95): stays home
    view = _view([_cluster([10, 9]), _cluster([5, 5]), _cluster([2, 1])])
    assert p.load(view, 0) == pytest.approx(0.95)
    assert p.choose(_req(), view, prefill_cluster=0) is None
    # home 18 decoding + 2 waiting = 1.0: goes to region 2 (3/20), the least loaded
    view = _view([_cluster([10, 8], waiting=2), _cluster([5, 5]), _cluster([2, 1])])
    assert p.choose(_req(), view, prefill_cluster=0) == 2
    # not to a region the prefill cluster cannot reach
    view2 = _view(view.clusters, connected=lambda a, b: b != 2)
    assert p.choose(_req(), view2, prefill_cluster=0) == 1
    assert DecodePlacement("home").choose(_req(), view, prefill_cluster=0) is None


def test_requests_sent_count_until_they_decode():
    p = DecodePlacement("least-loaded", spill_at=1.0)
    view = _view([_cluster([10, 10]), _cluster([0, 0]), _cluster([0, 1])])
    reqs = [_req() for _ in range(3)]
    for r in reqs:
        p.record(r, view, 1)
    assert p.load(view, 1) == pytest.approx(3 / 20)
    assert p.choose(_req(), view, 0) == 2  # region 2 (1/20) now below region 1 (3/20)
    reqs[0].decode_start_s = 5.0
    reqs[1].rejected = True
    assert p.load(view, 1) == pytest.approx(1 / 20)


def test_bad_knobs_refused():
    with pytest.raises(ValueError, match="decode_placement"):
        DecodePlacement("nearest")
    with pytest.raises(ValueError, match="decode_spill_at"):
        DecodePlacement("least-loaded", spill_at=0)


@pytest.mark.parametrize("router", ["mooncake-conductor", "least-loaded"])
def test_three_region_decode_spills_and_loses_nothing(router):
    sim = build_simulator("three_region", {"name": router, "decode_placement": "least-loaded",
                                           "decode_spill_at": 0.5}, seed=1, n_requests=300)
    s = sim.run()
    names = {c.index: c.name for c in sim.clusters}
    away = [r for r in sim.requests if r.decode_cluster and r.decode_cluster != names[sim.home_cluster(r)]]
    assert away  # some decode ran outside its home region
    assert all(not math.isnan(r.finish_s) or r.rejected for r in sim.requests)
    assert s["requests"] == 300
