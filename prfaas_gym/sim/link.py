"""Cross-datacenter links with fair bandwidth sharing.

All flows on a link share its available bandwidth equally, each capped by the per-flow
ceiling (TCP connections x per-connection throughput, the latter limited by loss through the
Mathis formula). Because every flow gets the same rate, the link keeps one cumulative
"service" counter S(t) = integral of the per-flow rate; a flow of ``b`` bytes that starts at
service level S0 ends when S reaches S0 + b. A heap keyed by that level makes a flow start or
end O(log n) instead of O(n), whatever the number of concurrent flows.
"""

from __future__ import annotations

import heapq
import math
from typing import Callable

import simpy

from prfaas_gym.sim.kernel import PRIO_COMPLETION, schedule

MSS_BYTES = 1460.0
MATHIS_C = math.sqrt(1.5)


def per_flow_cap_bytes_s(
    tcp_connections: int, per_connection_bytes_s: float, rtt_s: float, loss: float
) -> float:
    """Ceiling for one transfer: connections x min(per-connection ceiling, Mathis loss limit)."""
    per_conn = per_connection_bytes_s
    if loss > 0.0 and rtt_s > 0.0:
        per_conn = min(per_conn, MSS_BYTES * MATHIS_C / (rtt_s * math.sqrt(loss)))
    return tcp_connections * per_conn


class Link:
    """A shared inter-datacenter link between datacenters ``a`` and ``b``.

    Flows are opaque tokens; ``on_done(token)`` runs when a flow's last byte arrives (the
    caller adds propagation latency and pipelining rules itself).
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
        self.nominal_bytes_s = bandwidth_bytes_s
        self.available_bytes_s = bandwidth_bytes_s  # after fluctuation / failure
        self.cap_bytes_s = math.inf  # policy-imposed egress cap (bandwidth-aware scheduling)
        self.rtt_s = rtt_s
        self.flow_cap_bytes_s = flow_cap_bytes_s
        self.up = True
        self.down_epoch = 0  # counts failures (a recovery timer checks it is still the same one)
        self._on_done = on_done
        self._heap: list[tuple[float, int, object]] = []  # (service level at finish, seq, token)
        self._seq = 0
        self._service = 0.0  # bytes delivered to each flow since creation
        self._rate = 0.0  # per-flow rate now
        self._last_s = 0.0
        self._version = 0
        self.bytes_sent = 0.0
        # (time, aggregate rate) at each change; metrics integrate this step function
        self.rate_log_t: list[float] = [0.0]
        self.rate_log_bytes_s: list[float] = [0.0]

    # -- queries -----------------------------------------------------------------------
    @property
    def active_flows(self) -> int:
        """Flows in flight now."""
        return len(self._heap)

    @property
    def effective_bytes_s(self) -> float:
        """Bandwidth the flows may use now: available, capped by policy, zero when down."""
        if not self.up:
            return 0.0
        return min(self.available_bytes_s, self.cap_bytes_s)

    @property
    def throughput_bytes_s(self) -> float:
        """Aggregate rate of all flows now."""
        return self._rate * len(self._heap)

    @property
    def utilisation(self) -> float:
        """Aggregate rate over nominal bandwidth (0..1)."""
        return self.throughput_bytes_s / self.nominal_bytes_s if self.nominal_bytes_s > 0 else 0.0

    def per_flow_rate_if_added(self) -> float:
        """Rate a new flow would get now (for predicting transfer times)."""
        return min(self.flow_cap_bytes_s, self.effective_bytes_s / (len(self._heap) + 1))

    # -- mutation ----------------------------------------------------------------------
    def start_flow(self, nbytes: float, token: object) -> None:
        """Start sending ``nbytes`` now."""
        self._advance()
        self._seq += 1
        heapq.heappush(self._heap, (self._service + max(nbytes, 0.0), self._seq, token))
        self._reschedule()

    def set_available(self, bytes_s: float) -> None:
        """Change the bandwidth the network gives this link (fluctuation trace)."""
        self._advance()
        self.available_bytes_s = max(bytes_s, 0.0)
        self._reschedule()

    def set_cap(self, bytes_s: float) -> None:
        """Impose (or lift, with ``inf``) a policy cap on the link's egress."""
        self._advance()
        self.cap_bytes_s = bytes_s if bytes_s > 0 else 0.0
        self._reschedule()

    def set_up(self, up: bool) -> None:
        """Fail or recover the link; flows stall while it is down and resume after."""
        self._advance()
        self.up = up
        self._reschedule()

    def abort_flows(self) -> list[object]:
        """Drop every flow now (their bytes never arrive); returns their tokens."""
        self._advance()
        tokens = [t for _, _, t in self._heap]
        self._heap.clear()
        self._reschedule()
        return tokens

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._last_s
        if dt > 0.0 and self._rate > 0.0:
            self._service += self._rate * dt
            self.bytes_sent += self._rate * dt * len(self._heap)
        self._last_s = now

    def _reschedule(self) -> None:
        n = len(self._heap)
        self._rate = min(self.flow_cap_bytes_s, self.effective_bytes_s / n) if n else 0.0
        self._version += 1
        agg = self._rate * n
        now = self.env.now
        if self.rate_log_t[-1] == now:
            self.rate_log_bytes_s[-1] = agg
        else:
            self.rate_log_t.append(now)
            self.rate_log_bytes_s.append(agg)
        if n and self._rate > 0.0:
            delay = (self._heap[0][0] - self._service) / self._rate
            schedule(self.env, delay, PRIO_COMPLETION, self._on_next_done, self._version)

    def _on_next_done(self, event: simpy.events.Event) -> None:
        if event._value != self._version:
            return  # superseded by a later change
        self._advance()
        done = []
        # a tiny tolerance absorbs float error in the service counter
        limit = self._service * (1.0 + 1e-12) + 1e-6
        while self._heap and self._heap[0][0] <= limit:
            done.append(heapq.heappop(self._heap)[2])
        self._reschedule()
        for token in done:
            self._on_done(token)
