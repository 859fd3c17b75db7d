"""Loading learned policies (``trained:NAME`` or a saved-model path) as routers.

The loader itself lives with the shipped policies in :mod:`prfaas_gym.policies.trained`
(learned-agents work); this module is the one place ``make_router`` calls it.
"""

from __future__ import annotations

from typing import Any


def load_learned_router(spec: str, scenario: Any, *, seed: int = 0, trust_pickle: bool = False,
                        **params: Any) -> Any:
    """A Router wrapping a trained policy. ``spec``: ``trained:NAME`` or a path to a policy
    directory (or a file in it). Raises ``ValueError`` when unknown or unavailable, or when
    only a pickle-based file exists and ``trust_pickle`` is false."""
    try:
        from prfaas_gym.policies.trained import load_router
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("prfaas_gym"):
            raise ValueError(
                f"router {spec!r}: learned policies are not available in this build "
                "(prfaas_gym.policies.trained is missing); use a heuristic name"
            ) from None
        raise
    return load_router(spec, scenario, seed=seed, trust_pickle=trust_pickle, **params)
