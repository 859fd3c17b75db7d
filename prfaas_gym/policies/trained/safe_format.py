"""The trained-policy file format that cannot run code: ``policy.safetensors`` + ``policy.json``.

SB3's ``model.zip`` unpickles (``cloudpickle.loads`` on its ``":serialized:"`` entries) and
``torch.load``s, so opening one runs whatever the file's author put in it. A policy shipped
or shared in this project is instead

* ``policy.safetensors``: the policy network's ``state_dict`` (tensors only; the safetensors
  format is a JSON header plus raw little-endian buffers, nothing is executed on load);
* ``policy.json``: what is needed to rebuild the SB3 policy class around those tensors:
  the algorithm (which fixes the policy class from a closed list), the observation and
  action spaces as plain numbers, the constructor arguments that are plain data (``net_arch``,
  ``ortho_init``, ...), the activation by name from a closed list, and a self-check: a few
  observations with the logits the converted policy must reproduce.

The VecNormalize statistics travel as ``obs_norm.json`` (mean, var, clip, epsilon) beside them.
:func:`load_policy` refuses sizes above :data:`LIMITS` before it allocates anything.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "prfaas-policy/1"
WEIGHTS_FILE = "policy.safetensors"
SPEC_FILE = "policy.json"

# Bounds checked before anything is allocated (a policy file is untrusted data).
LIMITS = {"spec_bytes": 1_000_000, "weights_bytes": 256_000_000, "obs_dim": 100_000,
          "actions": 100_000, "layer_width": 16_384, "layers": 16}

_ACTIVATIONS = ("tanh", "relu", "elu", "leaky_relu", "gelu", "silu")
_PLAIN_KWARGS = {"ortho_init": bool, "normalize_images": bool, "log_std_init": float, "use_sde": bool,
                 "full_std": bool, "use_expln": bool, "squash_output": bool, "share_features_extractor": bool,
                 "n_critics": int, "clip_mean": float}
_DROPPED_KWARGS = ("observation_space", "action_space", "lr_schedule", "optimizer_class", "optimizer_kwargs",
                   "features_extractor_kwargs")


class PolicyFormatError(ValueError):
    """A policy file is malformed, too large, or asks for something the format cannot build."""


def _policy_class(algo: str) -> Any:
    """The SB3 policy class of ``algo`` (a closed list: nothing is imported by name from data)."""
    if algo == "maskable_ppo":
        from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

        return MaskableActorCriticPolicy
    if algo == "ppo":
        from stable_baselines3.common.policies import ActorCriticPolicy

        return ActorCriticPolicy
    if algo == "sac":
        from stable_baselines3.sac.policies import SACPolicy

        return SACPolicy
    raise PolicyFormatError(f"algo {algo!r} is not one of maskable_ppo, ppo, sac")


def _activation(name: str) -> Any:
    import torch.nn as nn

    classes = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU,
               "silu": nn.SiLU}
    if name not in classes:
        raise PolicyFormatError(f"activation {name!r} is not one of {', '.join(_ACTIVATIONS)}")
    return classes[name]


# ---------------------------------------------------------------------------- spaces
def _num(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _bounds(a: np.ndarray) -> Any:
    flat = a.reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _num(float(flat[0]))
    return [_num(float(v)) for v in flat]


def space_to_json(space: Any) -> dict[str, Any]:
    """A Gymnasium Box / Discrete / MultiDiscrete space as plain data."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _bounds(space.low), "high": _bounds(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": [int(v) for v in np.asarray(space.nvec).reshape(-1)]}
    raise PolicyFormatError(f"space {type(space).__name__} cannot be saved (Box, Discrete, MultiDiscrete)")


def _as_float(v: Any, field: str) -> float:
    if isinstance(v, str) and v in ("inf", "-inf"):
        return float(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    raise PolicyFormatError(f"{field}: expected a finite number, 'inf' or '-inf', got {v!r}")


def _int(v: Any, field: str, lo: int, hi: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise PolicyFormatError(f"{field}: expected an integer in [{lo}, {hi}], got {v!r}")
    return v


def space_from_json(d: Any, field: str, limit: int) -> Any:
    """Rebuild a space saved by :func:`space_to_json`, refusing sizes above ``limit``."""
    from gymnasium import spaces

    if not isinstance(d, dict):
        raise PolicyFormatError(f"{field}: expected a mapping")
    kind = d.get("type")
    if kind == "Box":
        shape = d.get("shape")
        if not isinstance(shape, list) or not 1 <= len(shape) <= 3:
            raise PolicyFormatError(f"{field}.shape: expected 1 to 3 dimensions")
        dims = [_int(s, f"{field}.shape", 1, limit) for s in shape]
        n = math.prod(dims)
        if n > limit:
            raise PolicyFormatError(f"{field}.shape: {n} values exceed the limit {limit}")
        dtype = d.get("dtype", "float32")
        if dtype not in ("float32", "float64"):
            raise PolicyFormatError(f"{field}.dtype: expected float32 or float64, got {dtype!r}")

        def arr(v: Any, name: str) -> np.ndarray:
            if isinstance(v, list):
                if len(v) != n:
                    raise PolicyFormatError(f"{field}.{name}: expected {n} values, got {len(v)}")
                return np.array([_as_float(x, f"{field}.{name}") for x in v], dtype=dtype).reshape(dims)
            return np.full(dims, _as_float(v, f"{field}.{name}"), dtype=dtype)

        return spaces.Box(arr(d.get("low"), "low"), arr(d.get("high"), "high"), dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(_int(d.get("n"), f"{field}.n", 1, limit),
                               start=_int(d.get("start", 0), f"{field}.start", -limit, limit))
    if kind == "MultiDiscrete":
        nvec = d.get("nvec")
        if not isinstance(nvec, list) or not 1 <= len(nvec) <= limit:
            raise PolicyFormatError(f"{field}.nvec: expected a list of 1 to {limit} integers")
        return spaces.MultiDiscrete([_int(v, f"{field}.nvec", 1, limit) for v in nvec])
    raise PolicyFormatError(f"{field}.type: expected Box, Discrete or MultiDiscrete, got {kind!r}")


# ---------------------------------------------------------------------------- kwargs
def _kwargs_to_json(policy: Any) -> dict[str, Any]:
    """The policy's constructor arguments as plain data (refusing what is not)."""
    import torch.nn as nn
    from stable_baselines3.common.torch_layers import FlattenExtractor

    params = dict(policy._get_constructor_parameters())
    out: dict[str, Any] = {}
    fe = params.pop("features_extractor_class", FlattenExtractor)
    if fe is not FlattenExtractor:
        raise PolicyFormatError(f"features extractor {fe.__name__}: only MLP policies over flat observations")
    act = params.pop("activation_fn", nn.Tanh)
    names = {v: k for k, v in ((n, _activation(n)) for n in _ACTIVATIONS)}
    if act not in names:
        raise PolicyFormatError(f"activation {act.__name__} is not one of {', '.join(_ACTIVATIONS)}")
    out["activation_fn"] = names[act]
    if params.pop("features_extractor_kwargs", None):
        raise PolicyFormatError("features_extractor_kwargs cannot be saved in this format")
    out["net_arch"] = params.pop("net_arch", None)
    for k in _DROPPED_KWARGS:
        params.pop(k, None)
    for k, v in params.items():
        if k not in _PLAIN_KWARGS:
            raise PolicyFormatError(f"policy argument {k!r} cannot be saved in {FORMAT}")
        out[k] = v
    return out


def _net_arch(v: Any, field: str) -> Any:
    def widths(x: Any, f: str) -> list[int]:
        if not isinstance(x, list) or len(x) > LIMITS["layers"]:
            raise PolicyFormatError(f"{f}: expected a list of at most {LIMITS['layers']} layer widths")
        return [_int(w, f, 1, LIMITS["layer_width"]) for w in x]

    if v is None:
        return None
    if isinstance(v, list):
        return widths(v, field)
    if isinstance(v, dict) and set(v) <= {"pi", "vf", "qf"}:
        return {k: widths(x, f"{field}.{k}") for k, x in v.items()}
    raise PolicyFormatError(f"{field}: expected a list of widths or a mapping pi/vf/qf -> widths")


def _kwargs_from_json(d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise PolicyFormatError("policy_kwargs: expected a mapping")
    out: dict[str, Any] = {"activation_fn": _activation(d.get("activation_fn", "tanh"))}
    arch = _net_arch(d.get("net_arch"), "policy_kwargs.net_arch")
    if arch is not None:
        out["net_arch"] = arch
    for k, v in d.items():
        if k in ("activation_fn", "net_arch"):
            continue
        typ = _PLAIN_KWARGS.get(k)
        if typ is None:
            raise PolicyFormatError(f"policy_kwargs.{k}: not an argument this format accepts")
        if typ is float:
            v = _as_float(v, f"policy_kwargs.{k}")
        elif not isinstance(v, typ) or isinstance(v, bool) != (typ is bool):
            raise PolicyFormatError(f"policy_kwargs.{k}: expected {typ.__name__}, got {v!r}")
        if k == "n_critics":
            _int(v, f"policy_kwargs.{k}", 1, 16)
        out[k] = v
    return out


# ---------------------------------------------------------------------------- save / load
def _logits(policy: Any, obs: np.ndarray) -> np.ndarray:
    """Raw action-head outputs of ``policy`` for a batch of observations (the check values):
    the action net's output for actor-critic policies, the deterministic action for SAC."""
    import torch

    with torch.no_grad():
        x = torch.as_tensor(obs)
        if hasattr(policy, "action_net"):
            features = policy.extract_features(x, policy.pi_features_extractor) \
                if hasattr(policy, "pi_features_extractor") else policy.extract_features(x)
            out = policy.action_net(policy.mlp_extractor.forward_actor(features))
        else:
            out = policy.actor(x, deterministic=True)
    return out.detach().cpu().numpy().astype(np.float64)


def save_policy_files(policy: Any, algo: str, out_dir: str | Path, n_checks: int = 8) -> Path:
    """Write ``policy.safetensors`` and ``policy.json`` for an SB3 ``policy`` (e.g. ``model.policy``).

    The JSON carries ``n_checks`` observations and the outputs the policy gives for them, which
    :func:`load_policy` (with ``verify=True``) and the tests compare against the rebuilt policy.
    """
    from safetensors.torch import save_file

    _policy_class(algo)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    obs_space = policy.observation_space
    rng = np.random.default_rng(0)
    lo = np.where(np.isfinite(obs_space.low), obs_space.low, -1.0)
    hi = np.where(np.isfinite(obs_space.high), obs_space.high, 1.0)
    obs = rng.uniform(lo, hi, size=(n_checks, *obs_space.shape)).astype(obs_space.dtype)
    spec = {
        "format": FORMAT,
        "algo": algo,
        "observation_space": space_to_json(obs_space),
        "action_space": space_to_json(policy.action_space),
        "policy_kwargs": _kwargs_to_json(policy),
        "check": {"obs": obs.astype(np.float64).tolist(), "outputs": _logits(policy, obs).tolist()},
    }
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    _write_atomic(out / WEIGHTS_FILE, lambda p: save_file(state, str(p)))
    _write_atomic(out / SPEC_FILE, lambda p: Path(p).write_text(json.dumps(spec, indent=1) + "\n"))
    return out


def _write_atomic(path: Path, write: Any) -> None:
    from prfaas_gym.atomic import write_file_atomic

    write_file_atomic(path, write)


def read_spec(directory: str | Path) -> dict[str, Any]:
    """``policy.json`` of a policy directory, size-checked and parsed (no policy built)."""
    path = Path(directory) / SPEC_FILE
    size = path.stat().st_size
    if size > LIMITS["spec_bytes"]:
        raise PolicyFormatError(f"{path}: {size} bytes exceeds the limit {LIMITS['spec_bytes']}")
    try:
        spec = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise PolicyFormatError(f"{path}: not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PolicyFormatError(f"{path}: not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise PolicyFormatError(f"{path}: format {spec.get('format') if isinstance(spec, dict) else None!r} "
                                f"is not {FORMAT}")
    return spec


def load_policy(directory: str | Path, *, verify: bool = False) -> Any:
    """Rebuild the SB3 policy of a policy directory on CPU, in eval mode.

    Raises :class:`PolicyFormatError` (a ``ValueError``) naming the file and field on any
    malformed, oversized or mismatching input; nothing in the files is executed.
    ``verify``: also check the rebuilt policy reproduces the recorded check outputs.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    spec = read_spec(d)
    src = d / SPEC_FILE
    cls = _policy_class(str(spec.get("algo")))
    try:
        obs_space = space_from_json(spec.get("observation_space"), "observation_space", LIMITS["obs_dim"])
        act_space = space_from_json(spec.get("action_space"), "action_space", LIMITS["actions"])
        kwargs = _kwargs_from_json(spec.get("policy_kwargs", {}))
    except PolicyFormatError as exc:
        raise PolicyFormatError(f"{src}: {exc}") from None
    w_path = d / WEIGHTS_FILE
    if not w_path.is_file():
        raise PolicyFormatError(f"{w_path}: missing")
    size = w_path.stat().st_size
    if size > LIMITS["weights_bytes"]:
        raise PolicyFormatError(f"{w_path}: {size} bytes exceeds the limit {LIMITS['weights_bytes']}")
    try:
        state = load_file(str(w_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise PolicyFormatError(f"{w_path}: not a safetensors file ({str(exc).splitlines()[0][:80]})") from None
    try:
        policy = cls(obs_space, act_space, lambda _: 0.0, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise PolicyFormatError(f"{src}: policy_kwargs: {str(exc).splitlines()[0][:120]}") from None
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).replace("\n", " ").replace("\t", "")
        raise PolicyFormatError(f"{w_path}: tensors do not match {src} ({first[:160]})") from None
    policy.set_training_mode(False)
    if torch.get_num_threads() > 1:
        torch.set_num_threads(1)
    if verify:
        verify_policy(policy, spec, str(d))
    return policy


def verify_policy(policy: Any, spec: dict[str, Any], source: str) -> None:
    """Check ``policy`` reproduces the outputs recorded in ``spec['check']`` (float32 exact-ish)."""
    check = spec.get("check") or {}
    obs = np.asarray(check.get("obs", []), dtype=policy.observation_space.dtype)
    want = np.asarray(check.get("outputs", []), dtype=np.float64)
    if obs.size == 0:
        raise PolicyFormatError(f"{source}: {SPEC_FILE} has no check values")
    got = _logits(policy, obs)
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-5):
        raise PolicyFormatError(f"{source}: the rebuilt policy does not reproduce its check outputs")
