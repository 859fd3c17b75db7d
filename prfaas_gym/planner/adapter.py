"""``plan_scenario``: build ``PlannerInputs`` from a loaded ``Scenario`` and plan it.

Mapping from the scenario (``prfaas_gym.scenario.Scenario``) to the analytical model:

* PrfaaS = the ``prefill_only`` cluster (at most one), PD = the ``pd`` cluster (exactly one).
* ``T_prefill(l)`` = ``stm.prefill_s([(l, 0)])`` of each cluster's step-time model (a single
  request, no cached prefix; lengths rounded to whole tokens), ``S_kv(l)`` = ``model.kv_bytes(l)``.
* ``B_out`` = total bandwidth of the link between the two clusters' datacenters (the
  per-connection ceiling caps one flow, not the link); unlimited when they share a datacenter.
* ``BS_max`` = the PD cluster's ``decode_max_batch``; ``T_decode`` = the PD step-time model's
  decode step at ``BS_max`` and the mean context (``decode="step_time"``, the default: what
  the simulator will do), or the scenario's TPOT SLO taken as the step time
  (``decode="slo"``: the paper's convention when the SLO is what limits the batch).
* Lengths: a synthetic log-normal input-length spec without prefixes becomes deterministic
  quantile samples (``lognormal_lengths``); any other workload is drawn once with the
  scenario seed (a dedicated sub-stream) and, when requests carry prefix hash ids, reduced to
  post-prefix-match lengths against an unbounded cache of all earlier requests (an upper
  bound on reuse), then binned by ``empirical_lengths``.
* Deployment (unless given): no PrfaaS cluster -> ``homogeneous``; a PrfaaS cluster and a PD
  cluster starting with no prefill instances, or a router named ``naive-heterogeneous``/``all_prfaas``
  -> ``naive_heterogeneous``; otherwise ``prfaas_pd``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .inputs import PlannerInputs, empirical_lengths, lognormal_lengths
from .model import Convention
from .plan import DEPLOYMENTS, Plan
from .search import plan_homogeneous, plan_naive_heterogeneous, plan_prfaas_pd

PLANNER_STREAM = 7_700
"""``spawn_key`` of the RNG sub-stream used to draw planner length samples."""

NAIVE_ROUTERS = ("naive", "naive_heterogeneous", "all_prfaas", "always_prfaas")
"""Router names (``-`` read as ``_``) that mark the naive heterogeneous deployment."""

StepTimeFactory = Callable[[Any, Any], Any]
"""``(scenario, cluster) -> step-time model`` with ``prefill_s`` and ``decode_s``."""


def _default_stm(scenario: Any, cluster: Any) -> Any:
    from prfaas_gym.perf import build_step_time_model  # lazy: keeps the planner import-light

    return build_step_time_model(cluster.step_time, scenario.model, cluster.hardware,
                                 cluster.gpus_per_instance)


def _split_clusters(scenario: Any) -> tuple[Any | None, Any]:
    prfaas = [c for c in scenario.clusters if c.kind == "prefill_only"]
    pd = [c for c in scenario.clusters if c.kind == "pd"]
    if len(prfaas) > 1:
        raise ValueError(f"{scenario.source}: clusters: the planner supports at most one "
                         f"prefill_only cluster, got {len(prfaas)}")
    if len(pd) != 1:
        raise ValueError(f"{scenario.source}: clusters: the planner needs exactly one pd "
                         f"cluster, got {len(pd)}")
    return (prfaas[0] if prfaas else None), pd[0]


def infer_deployment(scenario: Any) -> str:
    """``prfaas_pd`` | ``homogeneous`` | ``naive_heterogeneous`` for a scenario (see module doc)."""
    prfaas, pd = _split_clusters(scenario)
    if prfaas is None:
        return "homogeneous"
    router = str((scenario.router or {}).get("policy", (scenario.router or {}).get("name", "")))
    if pd.prefill_instances == 0 or router.lower().replace("-", "_") in NAIVE_ROUTERS:
        return "naive_heterogeneous"
    return "prfaas_pd"


def _link_bandwidth(scenario: Any, a: str, b: str) -> float:
    if a == b:
        return math.inf
    for link in scenario.links:
        if {link.a, link.b} == {a, b}:
            return float(link.profile.bandwidth_bytes_s)
    raise ValueError(f"{scenario.source}: links: no link between datacenters {a!r} and {b!r}")


def uncached_lengths(input_tokens: Sequence[int], hash_ids: Sequence[Sequence[int] | None],
                     block_tokens: int = 512) -> np.ndarray:
    """Post-prefix-match lengths against an unbounded cache of all earlier requests.

    A request reuses its longest leading run of block hash ids seen before (in order); at
    least one token is always prefilled.
    """
    seen: set[int] = set()
    out = np.empty(len(input_tokens), dtype=float)
    for k, (n, ids) in enumerate(zip(input_tokens, hash_ids)):
        hit = 0
        if ids:
            for h in ids:
                if h not in seen:
                    break
                hit += 1
            seen.update(ids)
        out[k] = max(1, n - min(hit * block_tokens, n))
    return out


def _lengths(scenario: Any, n_samples: int, data_dir: Path | str | None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """(length samples, weights, mean output tokens) for the scenario's workload."""
    wl = dict(scenario.workload)
    inp, outp = wl.get("input_tokens") or {}, wl.get("output_tokens") or {}
    if (wl.get("kind") == "synthetic" and "prefix" not in wl and inp.get("dist") == "lognormal"
            and outp.get("dist") == "constant"):
        mode = "clip" if inp.get("truncate") == "clip" else "truncate"
        x = lognormal_lengths(float(inp["mu"]), float(inp["sigma"]), float(inp.get("min", 1)),
                              float(inp.get("max", 1e12)), n_samples, mode)
        return x, None, float(outp["value"])
    from prfaas_gym.workload import build_workload  # lazy

    rng = np.random.default_rng(np.random.SeedSequence(scenario.seed, spawn_key=(PLANNER_STREAM,)))
    n = n_samples if wl.get("kind") == "synthetic" else None
    reqs = build_workload(wl, rng=rng, data_dir=data_dir, n_requests=n, source=scenario.source)
    if not reqs:
        raise ValueError(f"{scenario.source}: workload: produced no requests to plan with")
    lengths = uncached_lengths([r.input_tokens for r in reqs], [r.hash_ids for r in reqs])
    x, w = empirical_lengths(lengths, bins=n_samples)
    return x, w, float(np.mean([r.output_tokens for r in reqs]))


def planner_inputs_from_scenario(
    scenario: Any,
    *,
    n_samples: int = 4096,
    data_dir: Path | str | None = None,
    decode: str = "step_time",
    step_time_factory: StepTimeFactory | None = None,
) -> PlannerInputs:
    """``PlannerInputs`` for a loaded scenario (mapping in the module docstring)."""
    if decode not in ("slo", "step_time"):
        raise ValueError(f"decode: must be 'slo' or 'step_time', got {decode!r}")
    factory = step_time_factory or _default_stm
    prfaas, pd = _split_clusters(scenario)
    x, w, l_out = _lengths(scenario, n_samples, data_dir)
    pd_stm = factory(scenario, pd)

    def prefill_fn(stm: Any) -> Callable[[float], float]:
        return lambda l: float(stm.prefill_s([(max(1, int(round(l))), 0)]))

    pd_fn = prefill_fn(pd_stm)
    prfaas_fn = prefill_fn(factory(scenario, prfaas)) if prfaas is not None else pd_fn
    t_decode = float(scenario.tpot_slo_s)
    if decode == "step_time":
        mean_ctx = float(np.average(x, weights=w)) + l_out / 2
        t_decode = float(pd_stm.decode_s(pd.decode_max_batch, int(pd.decode_max_batch * mean_ctx)))
    return PlannerInputs(
        prfaas_prefill_s=prfaas_fn,
        pd_prefill_s=pd_fn,
        kv_bytes=lambda l: float(scenario.model.kv_bytes(l)),
        n_prfaas=prfaas.instances if prfaas is not None else 0,
        n_pd_total=pd.instances,
        b_out_bytes_s=(_link_bandwidth(scenario, prfaas.datacenter, pd.datacenter)
                       if prfaas is not None else math.inf),
        bs_max=pd.decode_max_batch,
        t_decode_s=t_decode,
        l_out_tokens=l_out,
        lengths_tokens=x,
        length_weights=w,
        prfaas_gpus_per_instance=prfaas.gpus_per_instance if prfaas is not None else pd.gpus_per_instance,
        pd_gpus_per_instance=pd.gpus_per_instance,
    )


def plan_scenario(
    scenario: Any,
    *,
    deployment: str | None = None,
    convention: Convention = "representative",
    thresholds: np.ndarray | None = None,
    n_samples: int = 4096,
    data_dir: Path | str | None = None,
    decode: str = "step_time",
    step_time_factory: StepTimeFactory | None = None,
) -> Plan:
    """Plan a loaded scenario's deployment (``deployment=None``: ``infer_deployment``)."""
    dep = deployment or infer_deployment(scenario)
    if dep not in DEPLOYMENTS:
        raise ValueError(f"deployment: must be one of {DEPLOYMENTS}, got {dep!r}")
    inputs = planner_inputs_from_scenario(scenario, n_samples=n_samples, data_dir=data_dir,
                                          decode=decode, step_time_factory=step_time_factory)
    if dep == "homogeneous":
        return plan_homogeneous(inputs, convention=convention)
    if dep == "naive_heterogeneous":
        return plan_naive_heterogeneous(inputs, convention=convention)
    return plan_prfaas_pd(inputs, thresholds, convention=convention)
