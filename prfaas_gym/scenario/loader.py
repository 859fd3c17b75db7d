"""Load a scenario YAML into a validated :class:`Scenario`.

A scenario is named by a path (``envs/x.yaml``) or by a built-in name (``paper/prfaas_pd``),
looked up in the repository's ``envs/`` folder and, after a plain ``pip install``, in the
copy of that folder shipped as package data. Every error is one line naming the file and the
dotted field; nothing is half-built.
"""

from __future__ import annotations

import copy
import importlib.resources
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping


from prfaas_gym.profiles import LinkProfile, ProfileError, get_hardware, get_model
from prfaas_gym.safe_yaml import MAX_YAML_BYTES, YamlInputError, load_yaml
from prfaas_gym.scenario.errors import ScenarioError
from prfaas_gym.scenario.spec import ClusterSpec, FaultSpec, FluctuationSpec, LinkSpec, Scenario
from prfaas_gym.workload.errors import MAX_REQUESTS

MAX_INSTANCES = 100_000  # instances over all clusters (the 10k-GPU scenario has 1,250)

DEFAULT_SCENARIO = "paper/prfaas_pd"
GBPS = 1e9 / 8  # bytes/s in one decimal gigabit/s
GB = 1e9

_TOP_KEYS = {
    "name", "description", "model", "seed", "slo", "run", "roles", "network", "clusters",
    "links", "router", "provisioner", "faults", "workload", "env",
}
_CLUSTER_KEYS = {
    "name", "datacenter", "kind", "hardware", "gpus_per_instance", "instances",
    "prefill_instances", "step_time", "prefill", "decode", "prefix_cache_gb", "prefix_cache",
    "traffic_weight",
}
_LINK_KEYS = {
    "name", "between", "bandwidth_gbps", "rtt_ms", "tcp_connections", "per_connection_gbps",
    "loss", "bandwidth_trace", "fluctuation",
}


def _repo_envs_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "envs"


def list_builtin_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package (``paper/prfaas_pd``, ...)."""
    root = _repo_envs_dir()
    if root.is_dir():
        return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    base = importlib.resources.files("prfaas_gym.builtin_envs")
    names = []
    for entry in base.iterdir():
        if entry.name.endswith(".yaml"):
            names.append(entry.name[:-5])
        elif entry.is_dir():
            names += [f"{entry.name}/{e.name[:-5]}" for e in entry.iterdir() if e.name.endswith(".yaml")]
    return sorted(names)


def _read_source(name_or_path: str | Path) -> tuple[str, str]:
    """Return (text, source label) for a path or a built-in name."""
    p = Path(name_or_path)
    if p.is_dir():
        raise ScenarioError(f"{p}: is a directory, not a scenario file")
    if p.suffix in (".yaml", ".yml") and p.exists():
        try:
            return _decode(p.read_bytes(), str(p)), str(p)
        except OSError as exc:
            raise ScenarioError(f"{p}: cannot read ({exc.strerror or exc})") from None
    name = str(name_or_path).removesuffix(".yaml").removeprefix("envs/")
    candidate = _repo_envs_dir() / f"{name}.yaml"
    if candidate.is_file():
        return candidate.read_text(), f"envs/{name}.yaml"
    try:
        res = importlib.resources.files("prfaas_gym.builtin_envs").joinpath(f"{name}.yaml")
        if res.is_file():
            return res.read_text(), f"envs/{name}.yaml"
    except ModuleNotFoundError:
        pass
    if p.suffix in (".yaml", ".yml"):
        raise ScenarioError(f"{p}: no such file")
    known = ", ".join(list_builtin_scenarios())
    raise ScenarioError(f"unknown scenario {str(name_or_path)!r} (known: {known}; or give a path to a .yaml file)")


def load_scenario(
    name_or_path: str | Path = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None
) -> Scenario:
    """Load and validate a scenario; ``overrides`` maps dotted keys (``router.threshold_tokens``,
    ``clusters[1].prefill_instances``) to values applied before validation."""
    text, source = _read_source(name_or_path)
    try:
        raw = load_yaml(text, source)  # size, depth, alias-expansion and duplicate-key limits
    except YamlInputError as exc:
        raise ScenarioError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of keys")
    raw = copy.deepcopy(raw)
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, source)
    return parse_scenario(raw, source)


def _decode(data: bytes, source: str) -> str:
    if len(data) > MAX_YAML_BYTES:
        raise ScenarioError(f"{source}: {len(data):,} bytes exceeds the limit {MAX_YAML_BYTES:,}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{source}: not UTF-8 text (byte {exc.start})") from None


def _set_dotted(raw: dict, key: str, value: Any, source: str) -> None:
    parts: list[str | int] = []
    for piece in key.split("."):
        while "[" in piece:
            head, rest = piece.split("[", 1)
            if head:
                parts.append(head)
            idx, sep, piece = rest.partition("]")
            if not sep or not idx.strip().isdigit():
                raise ScenarioError(f"{source}: override {key!r}: expected NAME[INDEX] with an integer index")
            parts.append(int(idx))
        if piece:
            parts.append(piece)
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        try:
            if isinstance(part, int):
                node = node[part]
            else:
                node = node.setdefault(part, {})
        except (IndexError, KeyError, TypeError, AttributeError):
            raise ScenarioError(f"{source}: override {key!r}: no such field") from None
    try:
        node[parts[-1]] = value
    except (IndexError, TypeError):
        raise ScenarioError(f"{source}: override {key!r}: no such field") from None


class _Fields:
    """Typed reads from one mapping with errors naming ``source: path.field``."""

    def __init__(self, data: Any, where: str, source: str, allowed: set[str]) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            self.fail("", f"expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - allowed)
        if unknown:
            self.fail(unknown[0], f"unknown key (allowed: {', '.join(sorted(allowed))})")
        self.data = data

    def fail(self, key: str, msg: str):
        path = f"{self.where}.{key}" if self.where and key else (self.where or key)
        raise ScenarioError(f"{self.source}: {path}: {msg}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def number(self, key: str, default: float | None = None, *, positive: bool = False,
               minimum: float | None = None, required: bool = False) -> float:
        if key not in self.data or self.data[key] is None:
            if required or default is None:
                self.fail(key, "required")
            return float(default)
        v = self.data[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            self.fail(key, f"expected a finite number, got {v!r}")
        if positive and not v > 0:
            self.fail(key, f"must be positive, got {v}")
        if minimum is not None and v < minimum:
            self.fail(key, f"must be >= {minimum}, got {v}")
        return float(v)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0, required: bool = False) -> int:
        v = self.number(key, default, minimum=minimum, required=required)
        if v != int(v):
            self.fail(key, f"expected an integer, got {v}")
        return int(v)

    def boolean(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            self.fail(key, f"expected true or false, got {v!r}")
        return v

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] | None = None) -> str:
        v = self.data.get(key, default)
        if v is None:
            self.fail(key, "required")
        if not isinstance(v, str):
            self.fail(key, f"expected a string, got {v!r}")
        if choices and v not in choices:
            self.fail(key, f"unknown {v!r} (known: {', '.join(choices)})")
        return v


def parse_scenario(raw: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario mapping (as read from YAML) into a :class:`Scenario`."""
    top = _Fields(raw, "", source, _TOP_KEYS)
    model = _parse_model(top, source)

    slo = _Fields(raw.get("slo", {}), "slo", source, {"ttft_s", "tpot_s"})
    run = _Fields(raw.get("run", {}), "run", source, {"requests", "duration_s", "warmup_s", "cooldown_s"})
    roles = _Fields(raw.get("roles", {}), "roles", source, {"switch_delay_s"})
    network = _Fields(raw.get("network", {}), "network", source, {"intra_dc_latency_us", "transfer_timeout_s"})

    clusters_raw = raw.get("clusters")
    if not isinstance(clusters_raw, list) or not clusters_raw:
        top.fail("clusters", "a non-empty list of clusters is required")
    clusters = tuple(_parse_cluster(c, i, source, model) for i, c in enumerate(clusters_raw))
    if sum(c.instances for c in clusters) > MAX_INSTANCES:
        top.fail("clusters", f"{sum(c.instances for c in clusters):,} instances in all exceed the limit {MAX_INSTANCES:,}")
    names = [c.name for c in clusters]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise ScenarioError(f"{source}: clusters[{i}].name: duplicate cluster name {n!r}")
    if not any(c.kind == "pd" for c in clusters):
        top.fail("clusters", "no decode capacity: at least one cluster of kind 'pd' is required")
    if not sum(c.traffic_weight for c in clusters if c.kind == "pd") > 0:
        top.fail("clusters", "traffic_weight: at least one 'pd' cluster must receive traffic (weight > 0)")

    links_raw = raw.get("links", []) or []
    if not isinstance(links_raw, list):
        top.fail("links", "expected a list")
    dcs = {c.datacenter for c in clusters}
    links = tuple(_parse_link(l, i, source, dcs) for i, l in enumerate(links_raw))
    linked = {frozenset((l.a, l.b)) for l in links}
    for c in clusters:
        for d in clusters:
            if c.kind == "prefill_only" and d.kind == "pd" and c.datacenter != d.datacenter:
                if frozenset((c.datacenter, d.datacenter)) not in linked:
                    top.fail("links", f"no link between datacenters {c.datacenter!r} ({c.name}) and {d.datacenter!r} ({d.name})")

    faults = tuple(_parse_fault(f, i, source, clusters, links) for i, f in enumerate(raw.get("faults", []) or []))
    workload = raw.get("workload")
    if not isinstance(workload, dict):
        top.fail("workload", "a workload mapping is required")
    for key in ("router", "provisioner", "env"):
        if key in raw and not isinstance(raw[key], dict):
            top.fail(key, "expected a mapping")
    router_raw = raw.get("router") or {}
    router = _Fields(router_raw, "router", source, set(router_raw))
    if router.get("threshold_tokens") not in (None, "plan"):
        router.number("threshold_tokens", minimum=0)  # NaN offloaded everything (#16)
        if not math.isfinite(router.get("threshold_tokens")):
            router.fail("threshold_tokens", "must be finite")
    requests = run.get("requests")
    if requests is not None:
        requests = run.integer("requests", minimum=1)
        if requests > MAX_REQUESTS:
            run.fail("requests", f"{requests:,} exceeds the limit {MAX_REQUESTS:,}")
    duration = run.get("duration_s")
    if duration is not None:
        duration = run.number("duration_s", positive=True)
    warmup, cooldown = run.number("warmup_s", 0.0, minimum=0), run.number("cooldown_s", 0.0, minimum=0)
    if duration is not None and warmup + cooldown >= duration:
        run.fail("warmup_s", f"warm-up + cool-down ({warmup:g} + {cooldown:g} s) leave no measurement "
                             f"window in duration_s = {duration:g} s")
    return Scenario(
        name=top.string("name", Path(source).stem),
        description=str(raw.get("description", "")),
        source=source,
        model=model,
        clusters=clusters,
        links=links,
        workload=workload,
        requests=requests,
        duration_s=duration,
        warmup_s=warmup,
        cooldown_s=cooldown,
        seed=top.integer("seed", 0),
        ttft_slo_s=slo.number("ttft_s", 10.0, positive=True),
        tpot_slo_s=slo.number("tpot_s", 0.05, positive=True),
        switch_delay_s=roles.number("switch_delay_s", 30.0, minimum=0),
        intra_dc_latency_s=network.number("intra_dc_latency_us", 20.0, minimum=0) * 1e-6,
        transfer_timeout_s=network.number("transfer_timeout_s", 5.0, positive=True),
        router=dict(raw.get("router", {}) or {}),
        provisioner=dict(raw.get("provisioner", {}) or {}),
        faults=faults,
        env=dict(raw.get("env", {}) or {}),
    )


def _parse_model(top: _Fields, source: str):
    spec = top.get("model")
    if spec is None:
        top.fail("model", "required (a model profile name or {profile: NAME, weight_dtype: ...})")
    overrides: dict[str, Any] = {}
    if isinstance(spec, dict):
        f = _Fields(spec, "model", source, {"profile", "weight_dtype", "kv_dtype"})
        name = f.string("profile")
        overrides = {k: spec[k] for k in ("weight_dtype", "kv_dtype") if k in spec}
    elif isinstance(spec, str):
        name = spec
    else:
        top.fail("model", f"expected a profile name, got {spec!r}")
    try:
        model = get_model(name)
        return replace(model, **overrides) if overrides else model
    except (ProfileError, ValueError) as exc:
        raise ScenarioError(f"{source}: model: {exc}") from None


def _parse_cluster(raw: Any, i: int, source: str, model) -> ClusterSpec:
    f = _Fields(raw, f"clusters[{i}]", source, _CLUSTER_KEYS)
    kind = f.string("kind", "pd", ("pd", "prefill_only"))
    try:
        hw = get_hardware(f.string("hardware"))
    except (ProfileError, ValueError) as exc:
        f.fail("hardware", str(exc))
    gpus = f.integer("gpus_per_instance", 8, minimum=1)
    instances = f.integer("instances", required=True, minimum=1)
    if instances > MAX_INSTANCES:
        f.fail("instances", f"{instances:,} exceeds the limit {MAX_INSTANCES:,} per scenario")
    if kind == "pd":
        if "prefill_instances" not in raw:
            f.fail("prefill_instances", "required for a 'pd' cluster")
        n_prefill = f.integer("prefill_instances", minimum=0)
        if n_prefill >= instances:
            f.fail("prefill_instances", f"no decode capacity: {n_prefill} of {instances} instances prefill, none decode")
    else:
        if "prefill_instances" in raw and raw["prefill_instances"] != instances:
            f.fail("prefill_instances", "a prefill_only cluster prefills on all its instances")
        n_prefill = instances
    prefill = _Fields(raw.get("prefill", {}), f"clusters[{i}].prefill", source,
                      {"max_batch_tokens", "max_batch", "max_queue", "chunked", "long_prefill_tokens"})
    cache = _Fields(raw.get("prefix_cache", {}), f"clusters[{i}].prefix_cache", source,
                    {"snapshot_interval_blocks", "cache_output"})
    decode = _Fields(raw.get("decode", {}), f"clusters[{i}].decode", source,
                     {"max_batch", "kv_reserve_fraction"})
    step_time = raw.get("step_time", {"backend": "roofline"})
    if not isinstance(step_time, dict):
        f.fail("step_time", "expected a mapping such as {backend: roofline}")
    from prfaas_gym.perf import BACKENDS

    if step_time.get("backend", "roofline") not in BACKENDS:
        f.fail("step_time", f"unknown backend {step_time.get('backend')!r} (known: {', '.join(BACKENDS)})")
    reserve = decode.number("kv_reserve_fraction", 0.1, minimum=0)
    if reserve >= 1:
        decode.fail("kv_reserve_fraction", f"must be < 1, got {reserve}")
    spec = ClusterSpec(
        name=f.string("name"),
        datacenter=f.string("datacenter", "dc0"),
        kind=kind,
        hardware=hw,
        gpus_per_instance=gpus,
        instances=instances,
        prefill_instances=n_prefill,
        step_time=dict(step_time),
        max_batch_tokens=prefill.integer("max_batch_tokens", 16384, minimum=1),
        max_prefill_batch=prefill.integer("max_batch", 64, minimum=1),
        max_queue_requests=prefill.integer("max_queue", 100_000, minimum=1),
        decode_max_batch=decode.integer("max_batch", 256, minimum=1),
        kv_reserve_fraction=reserve,
        prefix_cache_bytes=f.number("prefix_cache_gb", 0.0, minimum=0) * GB,
        traffic_weight=f.number("traffic_weight", 1.0, minimum=0),
        chunked_prefill=prefill.boolean("chunked", False),
        long_prefill_tokens=prefill.integer("long_prefill_tokens", 0, minimum=0),
        snapshot_interval_blocks=cache.integer("snapshot_interval_blocks", 0, minimum=0),
        cache_output=cache.boolean("cache_output", False),
    )
    if spec.long_prefill_tokens and not spec.chunked_prefill:
        prefill.fail("long_prefill_tokens", "caps a request's chunk: needs chunked: true")
    if kind == "pd":
        capacity = hw.hbm_capacity_bytes * gpus * (1 - reserve) - model.weight_bytes
        if capacity <= 0:
            f.fail("gpus_per_instance", (
                f"no decode capacity: {model.name} weights ({model.weight_bytes / GB:.0f} GB) do not fit "
                f"in {gpus} x {hw.name} ({hw.hbm_capacity_bytes * gpus / GB:.0f} GB) after the KV reserve"))
    return spec


def _parse_link(raw: Any, i: int, source: str, dcs: set[str]) -> LinkSpec:
    f = _Fields(raw, f"links[{i}]", source, _LINK_KEYS)
    between = f.get("between")
    if not (isinstance(between, list) and len(between) == 2 and all(isinstance(x, str) for x in between)):
        f.fail("between", "expected two datacenter names, e.g. [dc-a, dc-b]")
    for d in between:
        if d not in dcs:
            f.fail("between", f"unknown datacenter {d!r} (clusters use: {', '.join(sorted(dcs))})")
    bw = f.number("bandwidth_gbps", required=True, positive=True)
    schedule: list[tuple[float, float]] = []
    trace = f.get("bandwidth_trace") or []
    if not isinstance(trace, list):
        f.fail("bandwidth_trace", "expected a list of [time_s, gbps] points")
    prev = -math.inf
    for k, point in enumerate(trace):
        if not (isinstance(point, list) and len(point) == 2 and all(isinstance(x, (int, float)) for x in point)):
            f.fail(f"bandwidth_trace[{k}]", f"expected [time_s, gbps], got {point!r}")
        t, g = point
        if t < 0 or t <= prev:
            f.fail(f"bandwidth_trace[{k}]", f"times must be >= 0 and increasing, got {t}")
        if g < 0:
            f.fail(f"bandwidth_trace[{k}]", f"bandwidth must be >= 0, got {g}")
        prev = t
        schedule.append((float(t), float(g) * GBPS))
    fluct = None
    if f.get("fluctuation") is not None:
        ff = _Fields(f.get("fluctuation"), f"links[{i}].fluctuation", source,
                     {"interval_s", "sigma", "dip_probability", "dip_fraction", "max_fraction"})
        fluct = FluctuationSpec(
            interval_s=ff.number("interval_s", 5.0, positive=True),
            sigma=ff.number("sigma", 0.1, minimum=0),
            dip_probability=ff.number("dip_probability", 0.0, minimum=0),
            dip_fraction=ff.number("dip_fraction", 0.3, minimum=0),
            max_fraction=ff.number("max_fraction", 1.0, positive=True),
        )
    profile = LinkProfile(
        name=f.string("name", f"{between[0]}-{between[1]}"),
        bandwidth_bytes_s=bw * GBPS,
        rtt_s=f.number("rtt_ms", 5.0, minimum=0) / 1e3,
        tcp_connections=f.integer("tcp_connections", 16, minimum=1),
        per_connection_bytes_s=f.number("per_connection_gbps", 10.0, positive=True) * GBPS,
        loss=f.number("loss", 0.0, minimum=0),
        bandwidth_series=tuple(schedule) or None,
    )
    return LinkSpec(a=between[0], b=between[1], profile=profile, fluctuation=fluct)


def _parse_fault(raw: Any, i: int, source: str, clusters, links) -> FaultSpec:
    f = _Fields(raw, f"faults[{i}]", source, {"at_s", "duration_s", "cluster", "instance", "link"})
    at = f.number("at_s", required=True, minimum=0)
    dur = f.get("duration_s")
    dur = None if dur is None else f.number("duration_s", positive=True)
    if f.get("link") is not None:
        name = f.string("link")
        if name not in [l.name for l in links]:
            f.fail("link", f"unknown link {name!r} (known: {', '.join(l.name for l in links)})")
        return FaultSpec(at_s=at, duration_s=dur, link=name)
    name = f.string("cluster")
    match = [c for c in clusters if c.name == name]
    if not match:
        f.fail("cluster", f"unknown cluster {name!r} (known: {', '.join(c.name for c in clusters)})")
    idx = f.integer("instance", 0)
    if idx >= match[0].instances:
        f.fail("instance", f"cluster {name!r} has {match[0].instances} instances")
    return FaultSpec(at_s=at, duration_s=dur, cluster=name, instance=idx)
