"""Shipped trained policies and their loader (``trained:NAME`` router specs).

Each policy is a directory ``prfaas_gym/policies/trained/NAME/`` holding:

* ``policy.safetensors`` + ``policy.json``: the policy network's weights and what rebuilds
  the SB3 policy class around them (:mod:`~prfaas_gym.policies.trained.safe_format`; loading
  them runs no code from the files);
* ``obs_norm.json``: the VecNormalize observation statistics (mean, var, clip, epsilon);
* ``metadata.json``: env id and kwargs, algorithm, slot layout, training seeds, the command
  that produced it, wall time, git commit and library versions.

A training run also leaves SB3's ``model.zip`` and ``vecnormalize.pkl`` beside them (to resume
training). Those are pickles: loading one runs code chosen by whoever wrote the file, so the
loader opens them only when asked with ``trust_pickle=True`` (``--trust-pickle`` on the CLI),
never for a policy named in a scenario file. ``prfaas-gym policy convert DIR --trust-pickle``
turns such a directory into the safe format once.

>>> from prfaas_gym.policies import make_router
>>> router = make_router("trained:routing-bursty", scenario)   # doctest: +SKIP

A spec may also be a path to such a directory or to a file inside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TRAINED_DIR = Path(__file__).resolve().parent

__all__ = ["TRAINED_DIR", "list_trained", "load_router", "load_provisioner", "is_provisioning", "resolve_policy_dir", "load_metadata", "load_policy_net",
           "convert_policy_dir", "PickleRefused"]

METADATA_LIMIT_BYTES = 4_000_000


class PickleRefused(ValueError):
    """A policy exists only in a pickle-based format and ``trust_pickle`` was not given."""


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
    if p.is_file() or p.suffix in (".zip", ".json", ".safetensors", ".pkl"):
        p = p.parent
    if not (p / "metadata.json").is_file():
        raise ValueError(f"{spec}: not a trained-policy directory (no metadata.json)")
    return p


def read_json_file(path: Path, limit: int = METADATA_LIMIT_BYTES) -> Any:
    """A JSON file of a policy directory: size-checked, UTF-8, parse errors in one line."""
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{path}: {size} bytes exceeds the limit {limit}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply") from None


def load_metadata(spec: str) -> dict[str, Any]:
    """The policy's ``metadata.json``."""
    path = resolve_policy_dir(spec) / "metadata.json"
    meta = read_json_file(path)
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return meta


OBSERVATION_PARAMS = ("snapshot_staleness_s", "snapshot_noise")


def observation_settings(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The observation settings a policy was trained with, from its metadata's ``env_kwargs``.

    A policy whose metadata does not say was trained before ``prfaas/Routing-v1`` (v0: the
    true output length in the observation, fresh exact snapshots)."""
    return {"oracle_output_len": bool(env_kwargs.get("oracle_features", True)),
            "snapshot_staleness_s": float(env_kwargs.get("snapshot_staleness_s", 0.0)),
            "snapshot_noise": float(env_kwargs.get("snapshot_noise", 0.0))}


def load_router(spec: str, scenario: Any = None, *, seed: int = 0, trust_pickle: bool = False,
                **params: Any) -> Any:
    """A :class:`~prfaas_gym.policies.trained.router.LearnedRouter` for a routing policy.

    ``scenario`` is checked lazily: the slot layout of the simulator the router first sees
    must equal the trained one. ``seed`` seeds the snapshot noise (the policy itself acts
    deterministically). ``params`` may set ``snapshot_staleness_s`` and ``snapshot_noise``
    to evaluate the policy with fresher or staler metrics than it was trained with (default:
    its training settings); the output-length feature always follows the training.
    ``trust_pickle``: allow SB3's pickle-based ``model.zip`` when the directory has no
    safe-format files (runs code from the file: only for files you made yourself).
    """
    from prfaas_gym.policies.trained.router import LearnedRouter

    unknown = sorted(set(params) - set(OBSERVATION_PARAMS))
    if unknown:
        raise ValueError(f"router {spec!r}: unknown parameter(s) {unknown} (known: {', '.join(OBSERVATION_PARAMS)})")
    d = resolve_policy_dir(spec)
    meta = load_metadata(str(d))
    if not str(meta.get("env_id", "")).startswith("prfaas/Routing"):
        hint = " (use it as a provisioner: ROUTER+" + spec + ")" if is_provisioning(meta) else ""
        raise ValueError(f"{spec}: a {meta.get('env_id')} policy is not a router{hint}")
    if not isinstance(meta.get("slot_labels"), list):
        raise ValueError(f"{d / 'metadata.json'}: slot_labels: expected a list")
    norm = _load_normalizer(d)
    algo = str(meta.get("algo", "maskable_ppo"))
    if algo == "rllib_ppo":  # an RLlib masked PPO module (prfaas_gym.rllib.save_policy): weights only
        from prfaas_gym.rllib import load_module_policy

        policy, algo = load_module_policy(d, meta), "maskable_ppo"
    else:
        policy = load_policy_net(d, algo, trust_pickle=trust_pickle)
    kw = meta.get("env_kwargs", {})
    if not isinstance(kw, dict):
        raise ValueError(f"{d / 'metadata.json'}: env_kwargs: expected a mapping")
    obs = observation_settings(kw)
    obs.update({k: float(v) for k, v in params.items()})
    return LearnedRouter(
        policy, meta["slot_labels"], normalizer=norm,
        max_instance_slots=int(kw.get("max_instance_slots", meta.get("max_instance_slots", 16))),
        pull_slots=bool(kw.get("pull_slots", True)), allow_reject=bool(kw.get("allow_reject", True)),
        maskable=algo == "maskable_ppo", name=spec, feature_names=meta.get("feature_names"), seed=seed, **obs,
    )


def _load_normalizer(d: Path) -> Any:
    """The ``obs_norm.json`` of a policy directory as an ``ObsNormalizer`` (or ``None``)."""
    from prfaas_gym.policies.trained.router import ObsNormalizer

    norm_path = d / "obs_norm.json"
    try:
        return ObsNormalizer.from_dict(read_json_file(norm_path)) if norm_path.is_file() else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{norm_path}: {str(exc).splitlines()[0] if str(exc) else 'malformed'}") from None


def is_provisioning(meta: dict[str, Any]) -> bool:
    """True for a policy trained on ``prfaas/Provisioning-*`` (a provisioner, not a router)."""
    return str(meta.get("env_id", "")).startswith("prfaas/Provisioning")


def load_provisioner(spec: str, scenario: Any = None, *, seed: int = 0, **params: Any) -> Any:
    """A :class:`~prfaas_gym.policies.trained.provisioner.LearnedProvisioner` for a
    ``prfaas/Provisioning-v1`` policy (safe format only). ``params`` may set
    ``snapshot_staleness_s`` and ``snapshot_noise`` (default: its training settings);
    ``seed`` seeds the snapshot noise. The scenario is checked on first use (observation
    layout)."""
    from prfaas_gym.policies.trained.provisioner import LearnedProvisioner

    unknown = sorted(set(params) - set(OBSERVATION_PARAMS))
    if unknown:
        raise ValueError(f"provisioner {spec!r}: unknown parameter(s) {unknown} "
                         f"(known: {', '.join(OBSERVATION_PARAMS)})")
    d = resolve_policy_dir(spec)
    meta = load_metadata(str(d))
    if not is_provisioning(meta):
        raise ValueError(f"{spec}: a {meta.get('env_id')} policy is not a provisioner")
    kw = meta.get("env_kwargs", {})
    if not isinstance(kw, dict):
        raise ValueError(f"{d / 'metadata.json'}: env_kwargs: expected a mapping")
    algo = str(meta.get("algo", "maskable_ppo"))
    policy = load_policy_net(d, algo)
    env = meta.get("env_config")
    if not isinstance(env, dict) or not all(k in env for k in ("interval_s", "threshold_max_tokens",
                                                                "max_instance_slots")):
        raise ValueError(f"{d / 'metadata.json'}: env_config: expected interval_s, threshold_max_tokens "
                         "and max_instance_slots (the control env's settings)")
    obs = observation_settings(kw)
    obs.pop("oracle_output_len")
    obs.update({k: float(v) for k, v in params.items()})
    return LearnedProvisioner(
        policy, interval_s=float(env["interval_s"]), threshold_max_tokens=float(env["threshold_max_tokens"]),
        max_instance_slots=int(env["max_instance_slots"]), normalizer=_load_normalizer(d),
        maskable=algo == "maskable_ppo", feature_names=meta.get("feature_names"), seed=seed,
        name=spec, **obs,
    )


def load_policy_net(directory: str | Path, algo: str, *, trust_pickle: bool = False) -> Any:
    """The SB3 policy network of a policy directory, on CPU.

    The safe format (``policy.safetensors`` + ``policy.json``) is used when present. Otherwise
    SB3's ``model.zip`` is loaded only with ``trust_pickle=True``; without it
    :class:`PickleRefused` is raised before the file is opened.
    """
    from prfaas_gym.policies.trained import safe_format

    d = Path(directory)
    if (d / safe_format.SPEC_FILE).is_file():
        spec_algo = safe_format.read_spec(d).get("algo")
        if spec_algo != algo:
            raise ValueError(f"{d / safe_format.SPEC_FILE}: algo {spec_algo!r} differs from metadata.json's {algo!r}")
        return safe_format.load_policy(d)
    zip_path = d / "model.zip"
    if not zip_path.is_file():
        raise ValueError(f"{d}: no policy weights ({safe_format.SPEC_FILE} + {safe_format.WEIGHTS_FILE})")
    if not trust_pickle:
        raise PickleRefused(
            f"{zip_path}: refusing a pickle-based SB3 file (loading it can run arbitrary code); "
            f"convert it once with `prfaas-gym policy convert {d} --trust-pickle` if you made it yourself"
        )
    return load_model(zip_path, algo).policy


def convert_policy_dir(directory: str | Path, *, trust_pickle: bool = False) -> Path:
    """Write the safe-format files of a directory holding SB3's ``model.zip`` (unpickles it:
    needs ``trust_pickle=True``); the rebuilt policy is checked to give the same outputs."""
    from prfaas_gym.policies.trained import safe_format

    d = resolve_policy_dir(str(directory))
    meta = load_metadata(str(d))
    algo = str(meta.get("algo", "maskable_ppo"))
    policy = load_policy_net(d, algo, trust_pickle=trust_pickle) if not (d / safe_format.SPEC_FILE).is_file() \
        else None
    if policy is None:
        return d  # already converted
    safe_format.save_policy_files(policy, algo, d)
    safe_format.load_policy(d, verify=True)
    return d


def load_model(path: Path, algo: str) -> Any:
    """Load an SB3 model on CPU (``algo``: ppo, maskable_ppo, sac). This unpickles ``path``:
    only for files this process or its user wrote (see :func:`load_policy_net`)."""
    from prfaas_gym.training import set_torch_threads

    set_torch_threads(1)  # small MLP, one observation at a time: threads only add overhead
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO as cls
    elif algo == "sac":
        from stable_baselines3 import SAC as cls
    else:
        from stable_baselines3 import PPO as cls
    return cls.load(str(path), device="cpu")
