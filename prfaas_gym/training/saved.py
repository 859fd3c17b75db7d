"""A saved policy loaded with one call (:func:`prfaas_gym.training.load_policy`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class SavedPolicy:
    """A trained SB3 model with its metadata and observation normalisation.

    Attributes:
        policy: the SB3 / sb3-contrib policy network (CPU, eval mode), rebuilt from the safe
            format (``policy.safetensors`` + ``policy.json``); SB3's pickle-based
            ``model.zip`` only with ``trust_pickle=True``.
        metadata: the policy's ``metadata.json`` (env id and kwargs, settings, seeds).
        normalizer: the saved VecNormalize observation transform, or ``None``.
        directory: where it was loaded from.
    """

    policy: Any
    metadata: dict[str, Any]
    normalizer: Any
    directory: Path

    @classmethod
    def load(cls, path: str | Path, *, trust_pickle: bool = False) -> "SavedPolicy":
        from prfaas_gym.policies.trained import load_metadata, load_policy_net, read_json_file, resolve_policy_dir
        from prfaas_gym.policies.trained.router import ObsNormalizer
        from prfaas_gym.training import set_torch_threads

        d = resolve_policy_dir(str(path))
        meta = load_metadata(str(d))
        norm_path = d / "obs_norm.json"
        norm = ObsNormalizer.from_dict(read_json_file(norm_path)) if norm_path.is_file() else None
        policy = load_policy_net(d, str(meta.get("algo", "ppo")), trust_pickle=trust_pickle)
        set_torch_threads(1)
        return cls(policy, meta, norm, d)

    def predict(self, obs: np.ndarray, action_masks: np.ndarray | None = None,
                deterministic: bool = True) -> Any:
        """The action for a raw env observation (normalised as in training)."""
        x = self.normalizer(np.asarray(obs, dtype=np.float32)) if self.normalizer is not None else obs
        if action_masks is not None:
            a, _ = self.policy.predict(x, deterministic=deterministic, action_masks=action_masks)
        else:
            a, _ = self.policy.predict(x, deterministic=deterministic)
        return a

    def make_env(self, **overrides: Any) -> Any:
        """``gym.make`` of the env it was trained on, with its recorded kwargs (``overrides``
        win). A pre-v1 policy (env id ``-v0``) gets the same v1 id."""
        from prfaas_gym.training.envs import make_env

        env_id = str(self.metadata["env_id"]).replace("-v0", "-v1")
        kw = dict(self.metadata.get("env_kwargs", {}))
        kw.update(overrides)
        return make_env(env_id, **kw)
