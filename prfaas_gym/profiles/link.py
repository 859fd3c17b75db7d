"""Network link profile (intra-DC RDMA or inter-DC Ethernet/VPC)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """A network link between two clusters (or the RDMA fabric inside one).

    Attributes:
        name: label used in messages.
        bandwidth_bytes_s: total link capacity, bytes/s.
        rtt_s: round-trip time, seconds.
        tcp_connections: parallel connections one flow opens (1 for RDMA).
        per_connection_bytes_s: ceiling of one connection, bytes/s (``inf``: no ceiling).
        loss: packet-loss probability in [0, 1).
        bandwidth_series: optional ``((t_s, bandwidth_bytes_s), ...)`` step function of the
            available bandwidth; times strictly increasing, starting at 0.
    """

    name: str
    bandwidth_bytes_s: float
    rtt_s: float = 0.0
    tcp_connections: int = 1
    per_connection_bytes_s: float = math.inf
    loss: float = 0.0
    bandwidth_series: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        where = f"link {self.name!r}"
        if not (self.bandwidth_bytes_s > 0 and math.isfinite(self.bandwidth_bytes_s)):
            raise ValueError(f"{where}: bandwidth_bytes_s must be positive and finite, got {self.bandwidth_bytes_s}")
        if not (self.rtt_s >= 0 and math.isfinite(self.rtt_s)):
            raise ValueError(f"{where}: rtt_s must be >= 0, got {self.rtt_s}")
        if int(self.tcp_connections) != self.tcp_connections or self.tcp_connections < 1:
            raise ValueError(f"{where}: tcp_connections must be an integer >= 1, got {self.tcp_connections}")
        if not self.per_connection_bytes_s > 0:
            raise ValueError(f"{where}: per_connection_bytes_s must be positive, got {self.per_connection_bytes_s}")
        if not 0.0 <= self.loss < 1.0:
            raise ValueError(f"{where}: loss must be in [0, 1), got {self.loss}")
        if self.bandwidth_series is not None:
            prev = -math.inf
            for i, (t, bw) in enumerate(self.bandwidth_series):
                if not t > prev:
                    raise ValueError(f"{where}: bandwidth_series[{i}] time {t} is not increasing")
                if not bw >= 0:
                    raise ValueError(f"{where}: bandwidth_series[{i}] bandwidth {bw} is negative")
                prev = t

    @property
    def flow_cap_bytes_s(self) -> float:
        """Most one flow can get: connections x per-connection ceiling, capped by the link."""
        return min(self.bandwidth_bytes_s, self.tcp_connections * self.per_connection_bytes_s)
