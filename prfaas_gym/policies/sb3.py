"""The SB3 ``predict`` adapter: a router answering for a Gymnasium env's pending request.

Limits: the env (or each sub-env of a ``DummyVecEnv``) must live in this process and expose
its simulator and ``decision_to_action``; ``SubprocVecEnv`` cannot work (the router would
need the simulator in another process). The observation passed to ``predict`` is ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def unwrap_envs(env: Any) -> list[Any]:
    """The unwrapped Gymnasium env(s) behind ``env`` (a single env or a ``DummyVecEnv``)."""
    if hasattr(env, "envs"):  # DummyVecEnv
        return [e.unwrapped for e in env.envs]
    if hasattr(env, "remotes"):
        raise ValueError("SubprocVecEnv is not supported: the router needs the simulator in-process")
    return [env.unwrapped if hasattr(env, "unwrapped") else env]


def _sim_of(env: Any) -> Any:
    if not hasattr(env, "decision_to_action"):
        raise ValueError(f"{type(env).__name__}: no decision_to_action(); heuristics predict only on routing envs")
    return getattr(env, "sim", None)


def action_for(router: Any, env: Any) -> Any:
    """The env action equal to ``router``'s decision on the env's pending request."""
    sim = _sim_of(env)
    req = getattr(env, "pending_request", None)
    if req is None:
        req = sim.pending_request if sim is not None else None
    if req is None:
        return 0  # episode over: SB3 still asks once; any valid action does
    decision = router.route(req, sim)
    return env.decision_to_action(decision)


def predict_with_router(router: Any, observation: Any, state: Any = None) -> tuple[Any, Any]:
    """SB3 ``predict`` for a bound router: one action, or a batch for a ``DummyVecEnv``."""
    envs = getattr(router, "_bound_envs", None)
    if not envs:
        raise ValueError(
            f"{getattr(router, 'name', type(router).__name__)}.predict: bind the policy to its env "
            "first (policy.bind(env)); a heuristic reads the simulator, not the observation"
        )
    actions = [action_for(router, e) for e in envs]
    if len(envs) == 1 and not _is_batched(observation, envs[0]):
        return actions[0], state
    return np.stack([np.asarray(a) for a in actions]), state


def _is_batched(observation: Any, env: Any) -> bool:
    space = getattr(env, "observation_space", None)
    if space is None or observation is None:
        return False
    try:
        return not space.contains(observation)
    except Exception:  # pragma: no cover - exotic spaces
        return False
