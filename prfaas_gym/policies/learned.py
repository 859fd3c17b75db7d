"""Loading learned policies (``trained:NAME`` or a saved-model path) as routers.

The learned agents (training scripts, shipped checkpoints, the SB3 model -> Router wrapper)
come from the learned-agents work. Until that lands this module only explains so.
"""

from __future__ import annotations

from typing import Any


def load_learned_router(spec: str, scenario: Any, *, seed: int = 0, **params: Any) -> Any:
    """A Router wrapping a trained policy. ``spec``: ``trained:NAME`` or a path to a model.

    Delegates to ``prfaas_gym.agents.load_router`` (the learned-agents package) when present.
    """
    try:
        from prfaas_gym.agents import load_router  # type: ignore[import-not-found]
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("prfaas_gym"):
            raise ValueError(
                f"router {spec!r}: learned policies are not available in this build yet "
                "(prfaas_gym.agents is missing); use a heuristic name"
            ) from None
        raise
    return load_router(spec, scenario, seed=seed, **params)
