"""Shipped trained policies and their loader (``trained:NAME`` router specs).

Each policy is a directory ``prfaas_gym/policies/trained/NAME/`` holding:

* ``model.zip``: the SB3 (or sb3-contrib) model;
* ``obs_norm.json``: the VecNormalize observation statistics (mean, var, clip, epsilon);
* ``vecnormalize.pkl``: the same VecNormalize, for resuming training with SB3;
* ``metadata.json``: env id and kwargs, algorithm, slot layout, training seeds, the command
  that produced it, wall time, git commit and library versions.

>>> from prfaas_gym.policies import make_router
>>> router = make_router("trained:routing-bursty", scenario)   # doctest: +SKIP

A spec may also be a path to such a directory or to its ``model.zip``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINED_DIR = Path(__file__).resolve().parent

__all__ = ["TRAINED_DIR", "list_trained", "load_router", "resolve_policy_dir", "load_metadata"]


def list_trained() -> list[str]:
    """Names of the shipped policies."""
    return sorted(p.name for p in TRAINED_DIR.iterdir() if (p / "metadata.json").is_file())


def resolve_policy_dir(spec: str) -> Path:
    """The directory of ``trained:NAME``, a policy directory, or a ``model.zip`` path."""
    if spec.startswith("trained:"):
        name = spec.split(":", 1)[1].strip()
        d = TRAINED_DIR / name
        if not (d / "metadata.json").is_file():
            raise ValueError(f"unknown trained policy {name!r}; shipped: {', '.join(list_trained()) or 'none'}")
        return d
    p = Path(spec)
    if p.suffix == ".zip":
        p = p.parent
    if not (p / "metadata.json").is_file():
        raise ValueError(f"{spec}: not a trained-policy directory (no metadata.json)")
    return p


def load_metadata(spec: str) -> dict[str, Any]:
    """The policy's ``metadata.json``."""
    return json.loads((resolve_policy_dir(spec) / "metadata.json").read_text())


def load_router(spec: str, scenario: Any = None, *, seed: int = 0, **params: Any) -> Any:
    """A :class:`~prfaas_gym.policies.trained.router.LearnedRouter` for a routing policy.

    ``scenario`` is checked lazily: the slot layout of the simulator the router first sees
    must equal the trained one. ``seed`` is unused (the policy acts deterministically).
    """
    from prfaas_gym.policies.trained.router import LearnedRouter, ObsNormalizer

    if params:
        raise ValueError(f"router {spec!r}: takes no parameters, got {sorted(params)}")
    d = resolve_policy_dir(spec)
    meta = json.loads((d / "metadata.json").read_text())
    if not str(meta.get("env_id", "")).startswith("prfaas/Routing"):
        raise ValueError(f"{spec}: a {meta.get('env_id')} policy is not a router")
    norm_path = d / "obs_norm.json"
    norm = ObsNormalizer.from_dict(json.loads(norm_path.read_text())) if norm_path.is_file() else None
    algo = meta.get("algo", "maskable_ppo")
    model = load_model(d / "model.zip", algo)
    kw = meta.get("env_kwargs", {})
    return LearnedRouter(
        model.policy, meta["slot_labels"], normalizer=norm,
        max_instance_slots=int(kw.get("max_instance_slots", meta.get("max_instance_slots", 16))),
        pull_slots=bool(kw.get("pull_slots", True)), allow_reject=bool(kw.get("allow_reject", True)),
        maskable=algo == "maskable_ppo", name=spec, feature_names=meta.get("feature_names"),
    )


def load_model(path: Path, algo: str) -> Any:
    """Load an SB3 model on CPU (``algo``: ppo, maskable_ppo, sac)."""
    import torch

    if torch.get_num_threads() > 1:
        torch.set_num_threads(1)
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO as cls
    elif algo == "sac":
        from stable_baselines3 import SAC as cls
    else:
        from stable_baselines3 import PPO as cls
    return cls.load(str(path), device="cpu")
