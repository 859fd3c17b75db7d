"""Shared pieces of every policy: the SB3 ``predict`` shape and small helpers.

A heuristic router decides on a :class:`~prfaas_gym.workload.request.Request` and the
simulator (``route(req, view)``). Stable-Baselines3 expects ``predict(obs, state,
episode_start, deterministic) -> (action, state)`` instead. :class:`PolicyBase` bridges the
two: bind the policy to a Gymnasium env (``policy.bind(env)``) and ``predict`` ignores the
observation, asks ``route`` about the env's pending request and maps the decision to the
env's action with ``env.decision_to_action``. See ``docs/policies.md`` for the limits (one
env, or a ``DummyVecEnv`` of envs in the same process; never a ``SubprocVecEnv``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


from prfaas_gym.sim.router import RouteDecision

if TYPE_CHECKING:
    from prfaas_gym.sim.simulator import Simulator
    from prfaas_gym.workload.request import Request


class PolicyBase:
    """Mixin giving a router SB3's ``predict`` on top of ``route``."""

    name: str = "policy"
    _bound_envs: list[Any] | None = None

    def route(self, req: "Request", view: "Simulator") -> RouteDecision:  # pragma: no cover
        raise NotImplementedError

    # ------------------------------------------------------------------ SB3 adapter
    def bind(self, env: Any) -> "PolicyBase":
        """Bind to a Gymnasium env or a ``DummyVecEnv`` so :meth:`predict` can read its
        simulator's pending request. Returns ``self``."""
        from prfaas_gym.policies.sb3 import unwrap_envs

        self._bound_envs = unwrap_envs(env)
        return self

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        """SB3's policy shape: the action for the bound env's pending request.

        The observation is not used (a heuristic reads the simulator directly); a batched
        observation (``DummyVecEnv``) yields one action per sub-env.
        """
        from prfaas_gym.policies.sb3 import predict_with_router

        return predict_with_router(self, observation, state)


def prefill_capable(view: "Simulator", clusters: list[int]) -> list[int]:
    """The clusters of ``clusters`` that accept prefill work now (order kept)."""
    return [c for c in clusters if view.clusters[c].has_prefill_capacity]


def candidate_prefill_clusters(view: "Simulator", req: "Request") -> list[int]:
    """Home PD cluster plus every PrfaaS cluster, those accepting prefill, ascending index."""
    home = view.home_cluster(req)
    cands = sorted({home, *view.prfaas_clusters})
    return prefill_capable(view, cands)


def as_int_seed(seed: int | None) -> int:
    """A non-negative int seed (``None`` -> 0)."""
    return 0 if seed is None else int(seed)


