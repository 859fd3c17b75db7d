"""RLlib integration: every ``prfaas/`` env id by name, action masking, policies as routers.

>>> import prfaas_gym.rllib
>>> prfaas_gym.rllib.register()                       # doctest: +SKIP
>>> config = (PPOConfig()
...           .environment("prfaas/Routing-v1", env_config={"action_mask": True, "n_requests": 300})
...           .rl_module(rl_module_spec=prfaas_gym.rllib.masked_module_spec()))  # doctest: +SKIP

:func:`register` registers each id with ``ray.tune.registry.register_env``; the creator
imports the package inside the env runner (runners are separate processes, possibly on other
nodes: start Ray through :func:`prfaas_gym.ray_backend.init_ray` so the package travels in
``runtime_env``). ``env_config`` holds the env's keyword arguments plus two keys of ours:

* ``action_mask: true``: the observation becomes RLlib's masking layout,
  ``{"action_mask": Box(0, 1, (n,)), "observations": <the env's Box>}``, read from the env's
  ``action_masks()`` after every reset and step; use it with :func:`masked_module_spec`
  (RLlib's ``ActionMaskingTorchRLModule``, which adds log(mask) to the action logits);
* ``train_seeds: [start, count]``: episodes cycle through these seeds
  (:class:`~prfaas_gym.training.envs.SeedPool`; env runner ``i`` of ``n`` takes every ``n``-th),
  so training never touches the validation or test seeds.

:func:`save_policy` writes a trained masked PPO module as a policy directory (``metadata.json``
with ``algo: rllib_ppo``, the slot layout and feature names, and ``module.safetensors``, the
module's weights: loading runs no code from the files); ``make_router(DIR)`` / ``compare --policies DIR`` then run it in the
plain simulator through the same :class:`~prfaas_gym.policies.trained.router.LearnedRouter`
as SB3 policies (:func:`load_module_policy`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

MASK_KEY = "action_mask"
OBS_KEY = "observations"
ALGO = "rllib_ppo"
WEIGHTS = "module.safetensors"


class ActionMaskObservation(gym.ObservationWrapper):
    """``obs`` -> ``{"action_mask": env.action_masks() as float32, "observations": obs}``."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Discrete) or not hasattr(env.unwrapped, "action_masks"):
            raise ValueError(f"action_mask: {env.spec.id if env.spec else env}: needs a Discrete "
                             "action space with action_masks() (the routing envs)")
        n = int(env.action_space.n)
        self.observation_space = gym.spaces.Dict({
            MASK_KEY: gym.spaces.Box(0.0, 1.0, (n,), np.float32),
            OBS_KEY: env.observation_space,
        })

    def observation(self, observation: Any) -> dict[str, Any]:
        mask = np.asarray(self.env.unwrapped.action_masks(), dtype=np.float32)
        return {MASK_KEY: mask, OBS_KEY: observation}


def make_env(env_id: str, config: dict[str, Any] | None = None) -> gym.Env:
    """The env for RLlib's ``env_config`` (module docstring); an RLlib ``EnvContext`` works."""
    from prfaas_gym.training.envs import SeedPool, make_env as make_gym_env

    # RLlib's EnvContext: env runner index (0 = the local one) and the number of runners
    rank = int(getattr(config, "worker_index", 0) or 0)
    runners = int(getattr(config, "num_workers", 0) or 0)
    config = dict(config or {})
    masked = bool(config.pop("action_mask", False))
    seeds = config.pop("train_seeds", None)
    env = make_gym_env(env_id, **config)
    if seeds is not None:
        start, count = (int(x) for x in seeds)
        env = SeedPool(env, range(start, start + count), rank=max(rank - 1, 0), stride=max(runners, 1))
    return ActionMaskObservation(env) if masked else env


def env_ids() -> list[str]:
    """Every registered ``prfaas/`` id."""
    import prfaas_gym  # noqa: F401  (registers the ids with Gymnasium)
    from prfaas_gym.env.registration import NAMESPACE

    return sorted(k for k in gym.registry if k.startswith(f"{NAMESPACE}/"))


def register(ids: Sequence[str] | None = None) -> list[str]:
    """Register ``ids`` (default: every ``prfaas/`` id) with RLlib under their Gymnasium
    names, so ``config.environment("prfaas/Routing-v1", env_config={...})`` works in RLlib
    and Tune (the plain Gymnasium lookup fails there with ``NamespaceNotFound`` in the env
    runners, which never imported the package). Returns the registered names."""
    from ray.tune.registry import register_env

    names = list(ids) if ids is not None else env_ids()
    for name in names:
        register_env(name, functools.partial(make_env, name))
    return names


DEFAULT_MODEL_CONFIG: dict[str, Any] = {"fcnet_hiddens": [128, 128], "head_fcnet_hiddens": [],
                                        "vf_share_layers": False}


def masked_module_spec(model_config: dict[str, Any] | None = None) -> Any:
    """``RLModuleSpec`` of RLlib's ``ActionMaskingTorchRLModule`` (PPO) for ``action_mask`` envs."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

    return RLModuleSpec(module_class=ActionMaskingTorchRLModule,
                        model_config={**DEFAULT_MODEL_CONFIG, **(model_config or {})})


def save_policy(module: Any, out_dir: str | Path, *, env_id: str, env_kwargs: dict[str, Any],
                model_config: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write a trained ``ActionMaskingTorchRLModule`` as a policy directory (module docstring)."""
    from safetensors.torch import save_file

    from prfaas_gym.training.pipeline import env_layout, versions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(out / WEIGHTS))
    meta = {"env_id": env_id, "env_kwargs": env_kwargs, "algo": ALGO,
            "model_config": {**DEFAULT_MODEL_CONFIG, **(model_config or {})},
            **env_layout(env_id, env_kwargs), "versions": {**versions(), "ray": _ray_version()},
            **(extra or {})}
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")
    return out


def _ray_version() -> str | None:
    try:
        import ray

        return ray.__version__
    except ImportError:
        return None


class ModulePolicy:
    """A masked RLlib PPO module with SB3's ``predict`` (what ``LearnedRouter`` calls)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def predict(self, obs: np.ndarray, deterministic: bool = True, action_masks: Any = None) -> tuple[int, None]:
        """The greedy action (the masked logits' argmax)."""
        import torch
        from ray.rllib.core.columns import Columns

        n = self.module.action_space.n
        mask = np.ones(n, np.float32) if action_masks is None else np.asarray(action_masks, np.float32)
        batch = {Columns.OBS: {MASK_KEY: torch.from_numpy(mask[None, :]),
                               OBS_KEY: torch.from_numpy(np.asarray(obs, np.float32)[None, :])}}
        with torch.no_grad():
            logits = self.module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
        return int(torch.argmax(logits[0]).item()), None


def load_module_policy(directory: str | Path, meta: dict[str, Any] | None = None) -> ModulePolicy:
    """The policy saved by :func:`save_policy` (safetensors weights: no code is unpickled)."""
    from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = meta or json.loads((directory / "metadata.json").read_text())
    n_obs, n_act = len(meta["feature_names"]), len(meta["slot_labels"])
    obs_space = gym.spaces.Dict({MASK_KEY: gym.spaces.Box(0.0, 1.0, (n_act,), np.float32),
                                 OBS_KEY: gym.spaces.Box(0.0, 1.0, (n_obs,), np.float32)})
    module = ActionMaskingTorchRLModule(observation_space=obs_space, action_space=gym.spaces.Discrete(n_act),
                                        inference_only=True, model_config=dict(meta["model_config"]))
    state = load_file(str(directory / WEIGHTS), device="cpu")
    # the actor's weights (a learner module also saves its critic, which acting never uses)
    module.load_state_dict({k: state[k] for k in module.state_dict() if k in state}, strict=True)
    module.eval()
    return ModulePolicy(module)
