"""Building (vectorised, normalised) training envs with recorded episode seeds.

Training episodes cycle through a fixed list of seeds (:class:`SeedPool`) so the seeds a
policy was trained on are known exactly and can be kept disjoint from evaluation seeds.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import gymnasium as gym

# Fallback for ids not (yet) registered: id -> "module:Class" (see prfaas_gym.env).
_CLASSES = {
    "prfaas/Routing-v1": "prfaas_gym.env.routing:RoutingEnv",
    "prfaas/Threshold-v1": "prfaas_gym.env.threshold:ThresholdEnv",
    "prfaas/Provisioning-v1": "prfaas_gym.env.provisioning:ProvisioningEnv",
    "prfaas/DualTimescale-v1": "prfaas_gym.env.dual:DualTimescaleEnv",
}


def make_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id, **kwargs)``; an unregistered base id falls back to its class."""
    import prfaas_gym  # noqa: F401  (registers the ids)

    if env_id in gym.registry:
        return gym.make(env_id, disable_env_checker=True, **kwargs)
    if env_id in _CLASSES:
        import importlib

        mod, cls = _CLASSES[env_id].split(":")
        return getattr(importlib.import_module(mod), cls)(**kwargs)
    raise ValueError(f"unknown env id {env_id!r}; known: {', '.join(sorted(_CLASSES))}")


class SeedPool(gym.Wrapper):
    """Resets with the next seed of a fixed list (ignores seeds passed to ``reset``).

    Env ``rank`` of ``n_envs`` uses seeds ``seeds[rank], seeds[rank + n_envs], ...``
    (wrapping around), so parallel envs never play the same episode at the same time.
    """

    def __init__(self, env: gym.Env, seeds: Sequence[int], rank: int = 0, stride: int = 1) -> None:
        super().__init__(env)
        if not seeds:
            raise ValueError("SeedPool: seeds must not be empty")
        self.seeds = list(seeds)
        self._k = rank
        self._stride = max(stride, 1)
        self.last_seed: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        s = self.seeds[self._k % len(self.seeds)]
        self._k += self._stride
        self.last_seed = s
        return self.env.reset(seed=s, options=options)

    def action_masks(self):
        """Forward ``action_masks`` (MaskablePPO) to the wrapped env."""
        return self.env.unwrapped.action_masks()


def env_factory(env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], rank: int,
                n_envs: int) -> Callable[[], gym.Env]:
    """A picklable thunk building one training env (Monitor + SeedPool)."""

    def thunk() -> gym.Env:
        from stable_baselines3.common.monitor import Monitor

        env = make_env(env_id, **env_kwargs)
        env = Monitor(env, info_keywords=())
        return SeedPool(env, seeds, rank=rank, stride=n_envs)

    return thunk


def make_vec_env(env_id: str, env_kwargs: dict[str, Any], seeds: Sequence[int], n_envs: int,
                 kind: str = "subproc") -> Any:
    """A ``SubprocVecEnv`` (``kind="subproc"``) or ``DummyVecEnv`` of ``n_envs`` envs."""
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    thunks = [env_factory(env_id, env_kwargs, seeds, i, n_envs) for i in range(n_envs)]
    if kind == "subproc" and n_envs > 1:
        return SubprocVecEnv(thunks, start_method="fork")
    if kind not in ("subproc", "dummy"):
        raise ValueError(f"vec_env: expected 'subproc' or 'dummy', got {kind!r}")
    return DummyVecEnv(thunks)


def env_kwargs_of(settings: Any, **extra: Any) -> dict[str, Any]:
    """The env constructor kwargs recorded with a model (scenario, reward, n_requests, ...)."""
    kw: dict[str, Any] = {"scenario": settings.scenario, "reward": settings.reward,
                          "invalid_action": settings.invalid_action,
                          "snapshot_staleness_s": float(settings.snapshot_staleness_s),
                          "snapshot_noise": float(settings.snapshot_noise)}
    if settings.env_id.startswith("prfaas/Routing"):
        kw["oracle_features"] = bool(settings.oracle_features)  # recorded explicitly: loaders read it
    if settings.n_requests is not None:
        kw["n_requests"] = int(settings.n_requests)
    kw.update(extra)
    return kw
