"""What the outside world does to a run: link bandwidth traces and random fluctuation, and
scheduled failures and recoveries of instances and links (the scenario's ``faults``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from prfaas_gym.sim.kernel import PRIO_ENVIRONMENT, schedule, schedule_at
from prfaas_gym.sim.streams import STREAM_BANDWIDTH, rng_stream

if TYPE_CHECKING:
    from prfaas_gym.scenario import FaultSpec, FluctuationSpec
    from prfaas_gym.sim.link import Link
    from prfaas_gym.sim.simulator import Simulator


class _LinkFluctuation:
    """Every ``interval_s`` a new bandwidth level: log-normal jitter around nominal, with
    occasional deep dips; its own random stream per link."""

    def __init__(self, sim: "Simulator", link: "Link", spec: "FluctuationSpec", k: int) -> None:
        self.sim, self.link, self.spec = sim, link, spec
        self.rng = rng_stream(sim.seed, STREAM_BANDWIDTH + 16 * (1 + k))

    def tick(self, event) -> None:
        if self.sim.done:
            return
        spec, rng = self.spec, self.rng
        level = float(np.exp(rng.normal(0.0, spec.sigma))) if spec.sigma > 0 else 1.0
        if spec.dip_probability > 0 and rng.random() < spec.dip_probability:
            level = spec.dip_fraction
        self.link.set_available(self.link.nominal_bytes_s * min(level, spec.max_fraction))
        schedule(self.sim.env, spec.interval_s, PRIO_ENVIRONMENT, self.tick)


class _Fault:
    """One scheduled failure (and recovery) of an instance or a link.

    Overlapping faults compose: ``active`` (shared by all faults of a run) counts the faults
    covering each target, and a target fails when the first one starts and comes back only
    when the last one ends (an instance or link is up when no fault covers it).
    """

    def __init__(self, sim: "Simulator", spec: "FaultSpec", active: dict[tuple, int]) -> None:
        self.sim, self.spec, self.active = sim, spec, active
        self.key = ("link", spec.link) if spec.link is not None else ("instance", spec.cluster, spec.instance)

    def start(self, event) -> None:
        n = self.active.get(self.key, 0)
        self.active[self.key] = n + 1
        if n == 0:
            self._apply(failed=True)

    def end(self, event) -> None:
        n = self.active[self.key] - 1
        self.active[self.key] = n
        if n == 0:
            self._apply(failed=False)

    def _apply(self, failed: bool) -> None:
        sim, spec = self.sim, self.spec
        if spec.link is not None:
            sim.set_link_up(next(l for l in sim.links if l.name == spec.link), not failed)
        elif failed:
            sim.fail_instance(sim.cluster_by_name[spec.cluster], spec.instance)
        else:
            sim.recover_instance(sim.cluster_by_name[spec.cluster], spec.instance)


def schedule_disturbances(sim: "Simulator") -> None:
    """Schedule the scenario's bandwidth traces, fluctuations and faults on ``sim``."""
    env = sim.env
    for k, (link, spec) in enumerate(zip(sim.links, sim.scenario.links)):
        for t_s, bytes_s in spec.profile.bandwidth_series or ():
            schedule_at(env, t_s, PRIO_ENVIRONMENT, _set_available, (link, bytes_s))
        if spec.fluctuation is not None:
            schedule(env, 0.0, PRIO_ENVIRONMENT, _LinkFluctuation(sim, link, spec.fluctuation, k).tick)
    active: dict[tuple, int] = {}
    for fault_spec in sim.scenario.faults:
        fault = _Fault(sim, fault_spec, active)
        schedule(env, fault_spec.at_s, PRIO_ENVIRONMENT, fault.start)
        if fault_spec.duration_s is not None:
            schedule(env, fault_spec.at_s + fault_spec.duration_s, PRIO_ENVIRONMENT, fault.end)


def _set_available(event) -> None:
    link, bytes_s = event._value
    link.set_available(bytes_s)
