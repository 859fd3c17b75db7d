"""The live topology: which real workers stand behind a bundle's clusters and slots.

A topology file (YAML, read with :mod:`prfaas_gym.safe_yaml`; it never runs code) names, for
every cluster of the bundle, the OpenAI-compatible endpoints of its engines and their role::

    scenario: envs/bursty_fluctuating.yaml   # optional: default the bundle's own scenario
    home: pd                                 # the decode cluster this gateway serves
    metrics: vllm                            # engine metric names: vllm | sglang
    max_snapshot_age_s: 2.0                  # older snapshot -> the router's own choice
    prefix_block_tokens: 512                 # router-side prefix index granularity
    clusters:
      prfaas:
        workers:
          - {url: "http://10.0.0.1:8000", role: prefill}
      pd:
        workers:                             # in the bundle's instance order: pd/0, pd/1, ...
          - {url: "http://10.1.0.1:8000", role: prefill}
          - {url: "http://10.1.0.2:8000", role: decode}

It is checked against the bundle (:func:`load_topology`): every bundle cluster is present
and no other; a cluster whose slots are per instance (``pd/0`` ...) lists exactly that many
workers, in that order (a decode-role worker is a closed slot, as a decode-role instance is
in the simulator); every decode cluster has a decode worker; a prefill-only cluster has no
decode worker. The scenario supplies what the router models itself: the calibrated step-time
model of each cluster, KV bytes per token, datacenters, queue limits and link capacities.
Errors name the file and the field (``live.yaml: clusters.pd.workers[3].url: ...``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prfaas_gym.env.snapshot import SLOT_INSTANCE, SLOT_REJECT

if TYPE_CHECKING:
    from prfaas_gym.export.bundle import RouterBundle
    from prfaas_gym.sim.simulator import Simulator

PREFILL, DECODE = "prefill", "decode"
METRIC_FLAVOURS = ("vllm", "sglang")
_URL = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?(/[A-Za-z0-9._~\-/]*)?$")
_TOP_KEYS = {"scenario", "home", "metrics", "max_snapshot_age_s", "prefix_block_tokens", "clusters",
             "decision_timeout_ms", "model"}


class TopologyError(ValueError):
    """A topology file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Worker:
    """One engine endpoint.

    Attributes:
        name: ``"<cluster>/<i>"``, its position in the topology.
        url: base URL of its OpenAI-compatible server (``/v1/completions``, ``/metrics``).
        role: ``"prefill"`` or ``"decode"``.
        cluster: index of its cluster in the bundle's order.
        index: position within its cluster's list.
        datacenter: its cluster's datacenter (from the scenario).
    """

    name: str
    url: str
    role: str
    cluster: int
    index: int
    datacenter: str


@dataclass(frozen=True)
class Topology:
    """A validated topology (see the module docstring)."""

    source: str
    clusters: tuple[str, ...]
    workers: tuple[Worker, ...]
    home: int
    metrics: str
    max_snapshot_age_s: float
    prefix_block_tokens: int
    decision_timeout_s: float
    model: str | None
    scenario: Any  # prfaas_gym.scenario.Scenario

    def cluster_workers(self, cluster: int, role: str | None = None) -> list[Worker]:
        """The workers of a cluster (of one role when ``role`` is given), in file order."""
        return [w for w in self.workers if w.cluster == cluster and (role is None or w.role == role)]


def _fail(source: str, field: str, msg: str) -> TopologyError:
    return TopologyError(f"{source}: {field}: {msg}")


def _number(doc: dict, key: str, source: str, default: float, lo: float, hi: float) -> float:
    v = doc.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise _fail(source, key, f"expected a number in [{lo}, {hi}], got {v!r}")
    return float(v)


def parse_topology(doc: Any, bundle: "RouterBundle", source: str = "<topology>",
                   base_dir: Path | None = None) -> Topology:
    """Validate a parsed topology document against ``bundle`` (module docstring)."""
    from prfaas_gym.scenario import ScenarioError, load_scenario

    if not isinstance(doc, dict):
        raise TopologyError(f"{source}: expected a mapping with 'clusters'")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise _fail(source, unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    sc_name = doc.get("scenario", bundle.manifest.get("source", {}).get("env_kwargs", {}).get("scenario")
                      or bundle.manifest.get("scenario"))
    if not isinstance(sc_name, str):
        raise _fail(source, "scenario", "expected a scenario name or path")
    if base_dir is not None and (base_dir / sc_name).is_file():
        sc_name = str(base_dir / sc_name)  # relative to the topology file, not the cwd
    try:
        scenario = load_scenario(sc_name)
    except (ScenarioError, FileNotFoundError, ValueError) as exc:
        raise _fail(source, "scenario", str(exc).splitlines()[0]) from None
    sc_clusters = [c.name for c in scenario.clusters]
    if sc_clusters != bundle.clusters:
        raise _fail(source, "scenario", f"clusters {sc_clusters} differ from the bundle's {bundle.clusters}")
    labels = _slot_labels(scenario, bundle)
    if labels != bundle.slot_labels:
        raise _fail(source, "scenario", f"{scenario.name} lays out slots {labels}, the bundle has {bundle.slot_labels}")
    dc = {c.name: c.datacenter for c in scenario.clusters}

    clusters = doc.get("clusters")
    if not isinstance(clusters, dict):
        raise _fail(source, "clusters", "expected a mapping from cluster name to {workers: [...]}")
    for name in clusters:
        if name not in bundle.clusters:
            raise _fail(source, f"clusters.{name}", f"not a cluster of the bundle (clusters: {', '.join(bundle.clusters)})")
    per_instance = {s.cluster: 0 for s in bundle.slots if s.kind == SLOT_INSTANCE}
    for s in bundle.slots:
        if s.kind == SLOT_INSTANCE:
            per_instance[s.cluster] += 1
    decoders = set(bundle.manifest.get("decode_clusters") or [])
    prefill_only = {c.name for c in scenario.clusters if c.kind == "prefill_only"}
    workers: list[Worker] = []
    seen_urls: dict[str, str] = {}
    for ci, cname in enumerate(bundle.clusters):
        field = f"clusters.{cname}"
        entry = clusters.get(cname)
        if not isinstance(entry, dict) or not isinstance(entry.get("workers"), list) or not entry["workers"]:
            raise _fail(source, f"{field}.workers", "missing: every bundle cluster needs a non-empty worker list")
        ws = entry["workers"]
        if ci in per_instance and len(ws) != per_instance[ci]:
            raise _fail(source, f"{field}.workers", f"the bundle has {per_instance[ci]} instance slots "
                        f"({cname}/0..{cname}/{per_instance[ci] - 1}); list exactly that many workers, in order")
        for i, w in enumerate(ws):
            wf = f"{field}.workers[{i}]"
            if not isinstance(w, dict) or set(w) - {"url", "role"}:
                raise _fail(source, wf, "expected {url: ..., role: prefill|decode}")
            url, role = w.get("url"), w.get("role", PREFILL)
            if not isinstance(url, str) or not _URL.match(url):
                raise _fail(source, f"{wf}.url", f"expected an http(s)://host:port URL, got {url!r}")
            if role not in (PREFILL, DECODE):
                raise _fail(source, f"{wf}.role", f"expected prefill or decode, got {role!r}")
            if role == DECODE and cname in prefill_only:
                raise _fail(source, f"{wf}.role", f"{cname} is a prefill-only cluster")
            url = url.rstrip("/")
            if url in seen_urls:
                raise _fail(source, f"{wf}.url", f"{url} is already {seen_urls[url]}")
            seen_urls[url] = f"{cname}/{i}"
            workers.append(Worker(f"{cname}/{i}", url, role, ci, i, dc[cname]))
        if cname in decoders and not any(w.cluster == ci and w.role == DECODE for w in workers):
            raise _fail(source, f"{field}.workers", "a decode cluster needs at least one decode worker")
        if not any(w.cluster == ci and w.role == PREFILL for w in workers) and any(
                s.cluster == ci and s.kind != SLOT_REJECT for s in bundle.slots):
            raise _fail(source, f"{field}.workers", "needs at least one prefill worker (the bundle routes prefills there)")

    home = doc.get("home", sorted(decoders)[0] if decoders else None)
    if home not in decoders:
        raise _fail(source, "home", f"expected a decode cluster ({', '.join(sorted(decoders))}), got {home!r}")
    flavour = doc.get("metrics", "vllm")
    if flavour not in METRIC_FLAVOURS:
        raise _fail(source, "metrics", f"expected one of {', '.join(METRIC_FLAVOURS)}, got {flavour!r}")
    model = doc.get("model")
    if model is not None and not isinstance(model, str):
        raise _fail(source, "model", f"expected a model name, got {model!r}")
    block = _number(doc, "prefix_block_tokens", source, 512, 1, 1 << 20)
    if block != int(block):
        raise _fail(source, "prefix_block_tokens", f"expected an integer, got {block!r}")
    return Topology(
        source=source, clusters=tuple(bundle.clusters), workers=tuple(workers),
        home=bundle.clusters.index(home), metrics=flavour,
        max_snapshot_age_s=_number(doc, "max_snapshot_age_s", source, 2.0, 0.0, 3600.0),
        prefix_block_tokens=int(block),
        decision_timeout_s=_number(doc, "decision_timeout_ms", source, 50.0, 0.01, 60_000.0) / 1000.0,
        model=model, scenario=scenario,
    )


def _slot_labels(scenario: Any, bundle: "RouterBundle") -> list[str]:
    from prfaas_gym.api import build_simulator
    from prfaas_gym.env.snapshot import build_slots

    kw = (bundle.manifest.get("source") or {}).get("env_kwargs") or {}
    sim = build_simulator(scenario, n_requests=1)
    return [s.label for s in build_slots(sim, int(kw.get("max_instance_slots", 16)), bool(kw.get("pull_slots", True)))]


def load_topology(path: str | Path, bundle: "RouterBundle") -> Topology:
    """Read and validate a topology file against ``bundle``; :class:`TopologyError` otherwise."""
    from prfaas_gym.safe_yaml import read_yaml_file

    p = Path(path)
    if not p.is_file():
        raise TopologyError(f"{p}: no such topology file")
    return parse_topology(read_yaml_file(p), bundle, str(p), base_dir=p.parent)


def calibration_simulator(topology: Topology) -> "Simulator":
    """An idle simulator of the topology's scenario: the router's calibrated models (step
    time per cluster, KV bytes per token, links) without re-implementing them."""
    from prfaas_gym.api import build_simulator

    return build_simulator(topology.scenario, n_requests=1)
