"""Frozen, validated scenario objects (SI units inside; YAML units converted by the loader)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prfaas_gym.profiles import HardwareProfile, LinkProfile, ModelProfile


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster: ``instances`` replicas of ``gpus_per_instance`` GPUs in one datacenter.

    ``kind`` is ``"prefill_only"`` (a PrfaaS cluster) or ``"pd"`` (a local PD cluster whose
    first ``prefill_instances`` instances start in the prefill role, the rest in decode).

    Prefill steps batch queued prompts under ``max_batch_tokens`` and ``max_prefill_batch``;
    with ``chunked_prefill`` a prompt is split across steps to fill the budget, each chunk at
    most ``long_prefill_tokens`` (0: no cap), as vLLM's ``long_prefill_token_threshold``.
    Prefix-cache options: ``snapshot_interval_blocks`` (hybrid models: a state snapshot
    every N blocks as well as at the prompt's end, 0: only at the end) and ``cache_output``
    (store prompt + generated tokens when a request finishes decoding).
    """

    name: str
    datacenter: str
    kind: str
    hardware: HardwareProfile
    gpus_per_instance: int
    instances: int
    prefill_instances: int
    step_time: dict[str, Any]
    max_batch_tokens: int
    max_prefill_batch: int
    max_queue_requests: int
    decode_max_batch: int
    kv_reserve_fraction: float
    prefix_cache_bytes: float
    traffic_weight: float
    chunked_prefill: bool = False
    long_prefill_tokens: int = 0
    snapshot_interval_blocks: int = 0
    cache_output: bool = False

    @property
    def gpus(self) -> int:
        """GPUs in the cluster."""
        return self.instances * self.gpus_per_instance


@dataclass(frozen=True)
class FluctuationSpec:
    """Random bandwidth fluctuation of a link: every ``interval_s`` a new level is drawn."""

    interval_s: float
    sigma: float
    dip_probability: float
    dip_fraction: float
    max_fraction: float


@dataclass(frozen=True)
class LinkSpec:
    """An inter-datacenter link between datacenters ``a`` and ``b`` with its network profile
    (bandwidth, RTT, connections, loss, optional bandwidth time series) and random fluctuation."""

    a: str
    b: str
    profile: LinkProfile
    fluctuation: FluctuationSpec | None

    @property
    def name(self) -> str:
        """The link's name (its profile's)."""
        return self.profile.name


@dataclass(frozen=True)
class FaultSpec:
    """A failure at ``at_s``: of instance ``instance`` of ``cluster``, or of ``link``."""

    at_s: float
    duration_s: float | None
    cluster: str | None = None
    instance: int = 0
    link: str | None = None


@dataclass(frozen=True)
class Scenario:
    """Everything needed to build a simulator, validated.

    ``warmup_s`` / ``cooldown_s`` bound the goodput measurement window (arrivals after the
    warm-up and before the arrival horizon minus the cool-down; ``docs/metrics.md``).
    """

    name: str
    description: str
    source: str
    model: ModelProfile
    clusters: tuple[ClusterSpec, ...]
    links: tuple[LinkSpec, ...]
    workload: dict[str, Any]
    requests: int | None
    duration_s: float | None
    seed: int
    ttft_slo_s: float
    tpot_slo_s: float
    switch_delay_s: float
    intra_dc_latency_s: float
    transfer_timeout_s: float = 5.0  # a transfer on a failed link is abandoned after this
    router: dict[str, Any] = field(default_factory=dict)
    provisioner: dict[str, Any] = field(default_factory=dict)
    faults: tuple[FaultSpec, ...] = ()
    env: dict[str, Any] = field(default_factory=dict)
    warmup_s: float = 0.0
    cooldown_s: float = 0.0

    @property
    def default_threshold_tokens(self) -> float:
        """The routing threshold the scenario names (the paper's optimum by default)."""
        return float(self.router.get("threshold_tokens", 19_400))

    @property
    def total_gpus(self) -> int:
        """GPUs over all clusters."""
        return sum(c.gpus for c in self.clusters)

    def cluster(self, name: str) -> ClusterSpec:
        """The cluster called ``name``."""
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)
