"""Routing and provisioning policies, built by name.

>>> from prfaas_gym.policies import make_router, ROUTERS
>>> router = make_router("prfaas-adaptive", scenario)          # doctest: +SKIP

Specs accepted by :func:`make_router`: ``None`` (the scenario's ``router:`` mapping), a
registered name, a mapping ``{"name": ..., **params}``, a Router object, or a learned policy
(``trained:NAME`` or a path to a saved model). See ``docs/policies.md``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from prfaas_gym.policies.base import PolicyBase
from prfaas_gym.policies.registry import PROVISIONERS, ROUTERS
from prfaas_gym.policies.threshold import PrfaasThresholdRouter

__all__ = [
    "PROVISIONERS", "ROUTERS", "PolicyBase", "PrfaasThresholdRouter",
    "make_provisioner", "make_router", "parse_spec",
]


def parse_spec(spec: Any, default: Mapping[str, Any] | None, kind: str) -> tuple[str | None, dict[str, Any]]:
    """``(name, params)`` from a name, a mapping with ``name``, or ``None`` (use ``default``)."""
    if spec is None:
        spec = dict(default or {})
        if not spec:
            return None, {}
    if isinstance(spec, str):
        return spec.strip(), {}
    if isinstance(spec, Mapping):
        params = dict(spec)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ValueError(f"{kind} spec: a mapping needs a string 'name', got {spec!r}")
        return name.strip(), params
    raise ValueError(f"{kind} spec: expected a name or a mapping, got {type(spec).__name__}")


def _is_learned(name: str) -> bool:
    from pathlib import Path

    return name.startswith("trained:") or name.endswith(".zip") or "/" in name or Path(name).exists()


def make_router(spec: Any, scenario: Any, *, seed: int = 0, trust_pickle: bool = False) -> Any:
    """Build a router. ``spec``: ``None`` (scenario's ``router:``; if it has none, the
    paper's threshold rule), a name in :data:`ROUTERS`, a mapping ``{"name", **params}``, an
    object with ``route``, or ``trained:NAME`` / a saved-model path.

    ``trust_pickle``: a saved-model path given here (not one named by the scenario file) may
    be SB3's pickle-based ``model.zip``, which runs code from the file when loaded. A policy
    named in a scenario file is always loaded from the safe format only.

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad parameters.
    """
    if spec is not None and hasattr(spec, "route"):
        return spec
    if spec is None:  # the scenario's own router: errors name its file and field
        with _naming_scenario(scenario, "router"):
            return _make_router(None, scenario, seed=seed, trust_pickle=False)
    return _make_router(spec, scenario, seed=seed, trust_pickle=trust_pickle)


@contextmanager
def _naming_scenario(scenario: Any, field: str) -> Iterator[None]:
    """Prefix a ``ValueError`` with the scenario file and ``field`` (it came from the file)."""
    try:
        yield
    except ValueError as exc:
        source = getattr(scenario, "source", None)
        if not source or str(exc).startswith(str(source)):
            raise
        msg = f"{source}: {field}: {exc}"
        try:
            named = type(exc)(msg)  # keep the type (e.g. PickleRefused) when it takes a message
        except TypeError:
            named = ValueError(msg)
        raise named from None


def _make_router(spec: Any, scenario: Any, *, seed: int, trust_pickle: bool) -> Any:
    from_scenario = spec is None
    name, params = parse_spec(spec, getattr(scenario, "router", None), "router")
    if name is None:
        name = "prfaas-threshold"
    if name in ROUTERS:
        try:
            return ROUTERS[name](scenario, **params)
        except TypeError as exc:
            raise ValueError(f"router {name!r}: bad parameters {sorted(params)}: {exc}") from None
    if from_scenario:
        name = _relative_to_scenario(name, scenario)
    if _is_learned(name):
        from prfaas_gym.policies.learned import load_learned_router

        return load_learned_router(name, scenario, seed=seed, trust_pickle=trust_pickle and not from_scenario,
                                   **params)
    raise ValueError(
        f"unknown router {name!r}; known: {', '.join(ROUTERS)} (or trained:NAME, or a saved-model path)"
    )


def _relative_to_scenario(name: str, scenario: Any) -> str:
    """A policy path written in a scenario file, resolved against that file's directory (not the
    working directory), as a trace path is against the data directory."""
    from pathlib import Path

    source = getattr(scenario, "source", None)
    if name.startswith("trained:") or Path(name).is_absolute() or not source or not Path(source).is_file():
        return name
    candidate = Path(source).resolve().parent / Path(name).expanduser()
    return str(candidate) if "/" in name or name.endswith(".zip") or candidate.exists() else name


def make_provisioner(spec: Any, scenario: Any) -> Any:
    """Build a provisioner, or ``None`` for the static split. ``spec``: ``None`` (the
    scenario's ``provisioner:`` mapping, else static), a name in :data:`PROVISIONERS`, a
    mapping ``{"name", **params}``, an object with ``provision``, or ``trained:NAME`` / a policy
    directory of a ``prfaas/Provisioning-v1`` policy (safe format only; docs/learned_agents.md).

    Raises:
        ValueError: unknown name (the message lists the known ones) or bad parameters.
    """
    if spec is not None and hasattr(spec, "provision"):
        return spec
    if spec is None:
        with _naming_scenario(scenario, "provisioner"):
            return _make_provisioner(None, scenario)
    return _make_provisioner(spec, scenario)


def _make_provisioner(spec: Any, scenario: Any) -> Any:
    name, params = parse_spec(spec, getattr(scenario, "provisioner", None), "provisioner")
    if name is None:
        return None
    if spec is None and name not in PROVISIONERS:
        name = _relative_to_scenario(name, scenario)
    if name not in PROVISIONERS and _is_learned(name):
        from prfaas_gym.policies.trained import load_provisioner

        return load_provisioner(name, scenario, **params)
    if name not in PROVISIONERS:
        raise ValueError(f"unknown provisioner {name!r}; known: {', '.join(PROVISIONERS)} (or trained:NAME)")
    try:
        return PROVISIONERS[name](scenario, **params)
    except TypeError as exc:
        raise ValueError(f"provisioner {name!r}: bad parameters {sorted(params)}: {exc}") from None
