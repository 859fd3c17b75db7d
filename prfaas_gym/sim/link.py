"""Cross-datacenter links: full duplex, max-min fair sharing, KV flows limited by production.

A :class:`Link` joins two datacenters and has one :class:`Channel` per direction, each with the
link's capacity (Ethernet and cloud VPC links are full duplex, and egress is metered per
direction). Fluctuation, failure and a policy cap act on both directions.

Within a channel, flows share bandwidth max-min fairly, each flow capped by the per-flow
ceiling (TCP connections x per-connection throughput, the latter limited by loss through the
Mathis formula). A KV flow may in addition be limited by *production*: layer-wise streaming
(Mooncake, the PrfaaS paper's pipelined TCP, vLLM's layer-wise connectors) can send a layer only
after prefill has computed it, so a flow's bytes sent never exceed ``ready + rate x elapsed``
(the bytes already in a cache pool plus what the prefill has produced so far, at the prefill's
average rate) until its production ends. This is an exact fluid model, event-driven:

- a flow is *shared* (it has produced bytes waiting, or no production limit): every shared
  flow gets the same rate ``f`` (the water level), so they keep one cumulative service
  counter ``S(t)``; a shared flow ends when ``S`` reaches its finish level (a heap: O(log n));
- a flow is *capped* when it has sent everything produced and produces slower than ``f``: it
  then sends at its production rate ``r`` and never falls behind.

The water level solves ``n_shared x f + sum(capped r) = bandwidth`` (``f`` at most the per-flow
ceiling); a capped flow whose ``r`` exceeds the level becomes shared (a max-heap of capped
rates, so each such change is O(log n)). A shared flow that produces slower than ``f`` catches
up with its production at a computable time (an event). A capped flow sends its last byte the
instant its production ends. Events per flow: start, at most a few catch-ups, end.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable

import simpy

from prfaas_gym.sim.kernel import PRIO_COMPLETION, schedule

MSS_BYTES = 1460.0
MATHIS_C = math.sqrt(1.5)

SHARED = 0
CAPPED = 1
DONE = 2


def per_flow_cap_bytes_s(
    tcp_connections: int, per_connection_bytes_s: float, rtt_s: float, loss: float
) -> float:
    """Ceiling for one transfer: connections x min(per-connection ceiling, Mathis loss limit)."""
    per_conn = per_connection_bytes_s
    if loss > 0.0 and rtt_s > 0.0:
        per_conn = min(per_conn, MSS_BYTES * MATHIS_C / (rtt_s * math.sqrt(loss)))
    return tcp_connections * per_conn


class Flow:
    """One transfer on a channel (a handle: pass it to ``end_production`` or ``cancel``).

    Bytes sent are ``sent0 + (S - s0)`` while shared and ``produced(t)`` while capped.
    """

    __slots__ = ("token", "size", "seq", "state", "ver", "sent0", "s0", "ready", "rate", "t0", "producing")

    def __init__(self, token: object, size: float, seq: int, ready: float | None, rate: float, t0: float) -> None:
        self.token = token
        self.size = size
        self.seq = seq
        self.state = SHARED
        self.ver = 0  # bumped on every state change: heap entries of older versions are stale
        self.sent0 = 0.0
        self.s0 = 0.0
        self.producing = ready is not None and ready < size
        self.ready = ready if self.producing else size  # bytes produced at t0
        self.rate = rate if self.producing else 0.0  # production rate (bytes/s) from t0 on
        self.t0 = t0

    def produced(self, now: float) -> float:
        """Bytes available to send at ``now``."""
        if not self.producing:
            return self.size
        p = self.ready + self.rate * (now - self.t0)
        return p if p < self.size else self.size


class Channel:
    """One direction of a :class:`Link` (``src`` datacenter to ``dst``): its own flows,
    its own capacity and its own egress counters. Rates and capacities come from the link."""

    def __init__(self, link: "Link", src: str, dst: str) -> None:
        self.link = link
        self.env = link.env
        self.src, self.dst = src, dst
        self.name = f"{link.name}:{src}->{dst}"
        self._heap: list[tuple[float, int, int, Flow]] = []  # (finish level, seq, ver, flow)
        self._n_shared = 0
        self._producing: dict[int, Flow] = {}  # shared flows still being produced
        self._capped: dict[int, Flow] = {}
        self._capped_heap: list[tuple[float, int, int, Flow]] = []  # (-rate, seq, ver, flow)
        self._capped_rate = 0.0
        self._service = 0.0  # bytes delivered to each shared flow since creation
        self._level = 0.0  # rate of each shared flow now
        self._last_s = 0.0
        self._version = 0
        self._seq = 0
        self._bytes_sent = 0.0  # up to _last_s
        # (time, aggregate rate) at each change; metrics integrate this step function
        self.rate_log_t: list[float] = [0.0]
        self.rate_log_bytes_s: list[float] = [0.0]

    # -- queries (the same as Link's, for this direction) ------------------------------
    @property
    def up(self) -> bool:
        """Whether the link is up."""
        return self.link.up

    @property
    def rtt_s(self) -> float:
        """Round-trip time of the link."""
        return self.link.rtt_s

    @property
    def nominal_bytes_s(self) -> float:
        """Nominal capacity of this direction (the link's bandwidth)."""
        return self.link.nominal_bytes_s

    @property
    def effective_bytes_s(self) -> float:
        """Bandwidth this direction may use now."""
        return self.link.effective_bytes_s

    @property
    def flow_cap_bytes_s(self) -> float:
        """Per-flow ceiling."""
        return self.link.flow_cap_bytes_s

    @property
    def active_flows(self) -> int:
        """Flows in flight now."""
        return self._n_shared + len(self._capped)

    @property
    def throughput_bytes_s(self) -> float:
        """Aggregate rate of all flows now."""
        return self._level * self._n_shared + self._capped_rate

    @property
    def bytes_sent(self) -> float:
        """Bytes sent in this direction so far (exact at the current time)."""
        return self._bytes_sent + self.throughput_bytes_s * (self.env._now - self._last_s)

    @property
    def utilisation(self) -> float:
        """Aggregate rate over nominal bandwidth (0..1)."""
        nominal = self.link.nominal_bytes_s
        return self.throughput_bytes_s / nominal if nominal > 0 else 0.0

    def per_flow_rate_if_added(self) -> float:
        """Rate a new backlogged flow would get now (max-min fair share)."""
        eff, cap = self.link._eff, self.link.flow_cap_bytes_s
        n = self._n_shared + 1
        f = (eff - self._capped_rate) / n
        if not self._capped or max(-self._capped_heap[0][0], 0.0) <= f:
            # fast path: the heap top may be stale but is then an upper bound of the rates
            return min(cap, max(f, 0.0))
        budget = eff
        rates = sorted((fl.rate for fl in self._capped.values()), reverse=True)
        rest = sum(rates)
        for r in rates:  # water-filling: demote the largest rates while they exceed the level
            f = (budget - rest) / n
            if r <= f:
                break
            n += 1
            rest -= r
        else:
            f = budget / n
        return min(cap, max(f, 0.0))

    # -- mutation ----------------------------------------------------------------------
    def start_flow(self, nbytes: float, token: object, *, ready_bytes: float | None = None,
                   produce_bytes_s: float = 0.0) -> Flow:
        """Start sending ``nbytes`` now; ``on_done(token)`` runs when the last byte is through.

        Without ``ready_bytes`` all bytes exist now. Otherwise only ``ready_bytes`` exist now
        and more are produced at ``produce_bytes_s`` (change it with ``set_production``); the
        flow never sends bytes not yet produced. Call ``end_production`` when production ends
        (a flow that has caught up with it then ends at once).
        """
        self._advance()
        nbytes = max(nbytes, 0.0)
        self._seq += 1
        ready = None if ready_bytes is None or produce_bytes_s == math.inf else max(ready_bytes, 0.0)
        flow = Flow(token, nbytes, self._seq, ready, max(produce_bytes_s, 0.0), self.env._now)
        self._to_shared(flow, 0.0)
        self._reschedule()
        return flow

    def set_production(self, flow: Flow, bytes_s: float) -> None:
        """From now on ``flow``'s bytes are produced at ``bytes_s`` (0: production paused,
        as between two chunks of a chunked prefill)."""
        if flow.state == DONE or not flow.producing:
            return
        if bytes_s == math.inf:
            self.end_production(flow)
            return
        self._advance()
        now = self.env._now
        bytes_s = max(bytes_s, 0.0)
        flow.ready = flow.produced(now)
        flow.t0 = now
        if flow.state == CAPPED:
            self._capped_rate += bytes_s - flow.rate
            flow.ver += 1
            heapq.heappush(self._capped_heap, (-bytes_s, flow.seq, flow.ver, flow))
        flow.rate = bytes_s
        self._reschedule()

    def end_production(self, flow: Flow) -> None:
        """All of ``flow``'s bytes exist now (its prefill ended)."""
        if flow.state == DONE or not flow.producing:
            return
        self._advance()
        flow.producing = False
        if flow.state == CAPPED:
            self._drop_capped(flow)
            self._finish(flow)
            self._reschedule()
            self.link._on_done(flow.token)
            return
        del self._producing[flow.seq]
        self._reschedule()

    def cancel(self, flow: Flow) -> None:
        """Abort ``flow`` (its request was re-routed); ``on_done`` is not called."""
        if flow.state == DONE:
            return
        self._advance()
        if flow.state == CAPPED:
            self._drop_capped(flow)
        else:
            self._n_shared -= 1
            self._producing.pop(flow.seq, None)
        self._finish(flow)
        self._reschedule()

    def abort_flows(self) -> list[object]:
        """Drop every flow now (their bytes never arrive); returns their tokens."""
        self._advance()
        flows = [f for _, _, ver, f in self._heap if ver == f.ver] + list(self._capped.values())
        for flow in flows:
            self._finish(flow)
        self._heap.clear()
        self._n_shared = 0
        self._producing.clear()
        self._capped.clear()
        self._capped_heap.clear()
        self._capped_rate = 0.0
        self._reschedule()
        return [f.token for f in flows]

    # -- internals ---------------------------------------------------------------------
    def _advance(self) -> None:
        now = self.env._now
        dt = now - self._last_s
        if dt > 0.0:
            if self._level > 0.0:
                self._service += self._level * dt
            self._bytes_sent += (self._level * self._n_shared + self._capped_rate) * dt
        self._last_s = now

    def _to_shared(self, flow: Flow, sent: float) -> None:
        flow.state = SHARED
        flow.ver += 1
        flow.sent0 = sent
        flow.s0 = self._service
        self._n_shared += 1
        heapq.heappush(self._heap, (self._service + (flow.size - sent), flow.seq, flow.ver, flow))
        if flow.producing:
            self._producing[flow.seq] = flow

    def _to_capped(self, flow: Flow) -> None:
        self._n_shared -= 1
        del self._producing[flow.seq]
        flow.state = CAPPED
        flow.ver += 1
        self._capped[flow.seq] = flow
        self._capped_rate += flow.rate
        heapq.heappush(self._capped_heap, (-flow.rate, flow.seq, flow.ver, flow))

    def _drop_capped(self, flow: Flow) -> None:
        del self._capped[flow.seq]
        self._capped_rate -= flow.rate
        if not self._capped:
            self._capped_rate = 0.0  # clear float drift
            self._capped_heap.clear()

    def _finish(self, flow: Flow) -> None:
        flow.state = DONE
        flow.ver += 1
        if not self._n_shared and not self._capped:
            self._heap.clear()

    def _fair_level(self) -> float:
        """Water-filling: demote capped flows that produce faster than the level."""
        link = self.link
        eff, cap = link._eff, link.flow_cap_bytes_s
        heap = self._capped_heap
        now = self.env._now
        while True:
            if self._n_shared:
                f = (eff - self._capped_rate) / self._n_shared
                if f > cap:
                    f = cap
            else:
                f = cap if self._capped_rate <= eff * (1.0 + 1e-12) else -1.0
            while heap and heap[0][2] != heap[0][3].ver:
                heapq.heappop(heap)
            if not heap or -heap[0][0] <= f:
                return f if f > 0.0 else 0.0
            _, _, _, flow = heapq.heappop(heap)
            self._drop_capped(flow)
            self._to_shared(flow, flow.produced(now))

    def _reschedule(self) -> None:
        now = self.env._now
        f = self._fair_level()
        # shared flows that have caught up with a production slower than the level: capped
        next_t = math.inf
        if self._producing:
            promoted = True
            while promoted:
                promoted = False
                next_t = math.inf
                s = self._service
                for flow in list(self._producing.values()):
                    if flow.rate >= f:
                        continue
                    backlog = flow.produced(now) - (flow.sent0 + s - flow.s0)
                    dt = backlog / (f - flow.rate)
                    if dt <= 1e-9 or backlog <= 1e-9 * flow.size:
                        self._to_capped(flow)
                        promoted = True
                    elif now + dt < next_t:
                        next_t = now + dt
                if promoted:  # the level rose: recompute
                    f = self._fair_level()
        self._level = f
        self._version += 1
        agg = f * self._n_shared + self._capped_rate
        if self.rate_log_t[-1] == now:
            self.rate_log_bytes_s[-1] = agg
        else:
            self.rate_log_t.append(now)
            self.rate_log_bytes_s.append(agg)
        heap = self._heap
        while heap and heap[0][2] != heap[0][3].ver:
            heapq.heappop(heap)
        if heap and f > 0.0:
            t = now + (heap[0][0] - self._service) / f
            if t < next_t:
                next_t = t
        if next_t < math.inf:
            schedule(self.env, next_t - now, PRIO_COMPLETION, self._on_event, self._version)

    def _on_event(self, event: simpy.events.Event) -> None:
        if event._value != self._version:
            return  # superseded by a later change
        self._advance()
        done = []
        heap = self._heap
        # a tiny tolerance absorbs float error in the service counter
        limit = self._service * (1.0 + 1e-12) + 1e-6
        while heap and heap[0][0] <= limit:
            _, _, ver, flow = heapq.heappop(heap)
            if ver != flow.ver:
                continue
            if flow.producing:  # caught up exactly as it would have ended: capped
                self._to_capped(flow)
                continue
            self._n_shared -= 1
            self._finish(flow)
            done.append(flow.token)
        self._reschedule()
        on_done = self.link._on_done
        for token in done:
            on_done(token)


class Link:
    """A full-duplex inter-datacenter link between datacenters ``a`` and ``b``.

    ``channel(src, dst)`` is one direction; both directions have the link's bandwidth. Flows
    are opaque tokens; ``on_done(token)`` runs when a flow's last byte arrives (the caller adds
    propagation latency and pipelining rules itself).
    """

    def __init__(
        self,
        env: simpy.Environment,
        name: str,
        a: str,
        b: str,
        bandwidth_bytes_s: float,
        rtt_s: float,
        flow_cap_bytes_s: float,
        on_done: Callable[[object], None],
    ) -> None:
        self.env = env
        self.name = name
        self.a, self.b = a, b
        self.nominal_bytes_s = bandwidth_bytes_s  # per direction
        self.available_bytes_s = bandwidth_bytes_s  # after fluctuation / failure
        self.cap_bytes_s = math.inf  # policy-imposed egress cap (bandwidth-aware scheduling)
        self.rtt_s = rtt_s
        self.flow_cap_bytes_s = flow_cap_bytes_s
        self.up = True
        self._eff = bandwidth_bytes_s  # effective_bytes_s, kept current by _change
        self.down_epoch = 0  # counts failures (a recovery timer checks it is still the same one)
        self._on_done = on_done
        self.forward = Channel(self, a, b)
        self.reverse = Channel(self, b, a)
        self.channels = (self.forward, self.reverse)

    def channel(self, src: str, dst: str) -> Channel:
        """The direction from datacenter ``src`` to ``dst``."""
        if (src, dst) == (self.a, self.b):
            return self.forward
        if (src, dst) == (self.b, self.a):
            return self.reverse
        raise KeyError(f"link {self.name!r} does not join {src!r} and {dst!r}")

    # -- queries (both directions) -----------------------------------------------------
    @property
    def active_flows(self) -> int:
        """Flows in flight now, both directions."""
        return self.forward.active_flows + self.reverse.active_flows

    @property
    def effective_bytes_s(self) -> float:
        """Bandwidth each direction may use now: available, capped by policy, zero when down."""
        return self._eff

    @property
    def throughput_bytes_s(self) -> float:
        """Aggregate rate of all flows now, both directions."""
        return self.forward.throughput_bytes_s + self.reverse.throughput_bytes_s

    @property
    def utilisation(self) -> float:
        """The busier direction's aggregate rate over nominal bandwidth (0..1)."""
        return max(self.forward.utilisation, self.reverse.utilisation)

    @property
    def bytes_sent(self) -> float:
        """Bytes sent so far, both directions."""
        return self.forward.bytes_sent + self.reverse.bytes_sent

    def per_flow_rate_if_added(self) -> float:
        """Rate a new flow would get now in the forward direction (``a`` to ``b``)."""
        return self.forward.per_flow_rate_if_added()

    # -- mutation ----------------------------------------------------------------------
    def start_flow(self, nbytes: float, token: object, **kw) -> Flow:
        """Start a flow in the forward direction (``a`` to ``b``); see ``Channel.start_flow``."""
        return self.forward.start_flow(nbytes, token, **kw)

    def abort_flows(self) -> list[object]:
        """Drop every flow in both directions now (their bytes never arrive); returns their tokens."""
        return self.forward.abort_flows() + self.reverse.abort_flows()

    def _change(self, attr: str, value) -> None:
        for ch in self.channels:
            ch._advance()
        setattr(self, attr, value)
        self._eff = min(self.available_bytes_s, self.cap_bytes_s) if self.up else 0.0
        for ch in self.channels:
            ch._reschedule()

    def set_available(self, bytes_s: float) -> None:
        """Change the bandwidth the network gives this link (fluctuation trace)."""
        self._change("available_bytes_s", max(bytes_s, 0.0))

    def set_cap(self, bytes_s: float) -> None:
        """Impose (or lift, with ``inf``) a policy cap on the link's egress (each direction)."""
        self._change("cap_bytes_s", bytes_s if bytes_s > 0 else 0.0)

    def set_up(self, up: bool) -> None:
        """Fail or recover the link; flows stall while it is down and resume after."""
        self._change("up", up)
