"""The steps every training script wires together (scripts stay wiring only).

1. :func:`start_run` - run directory, torch threads, the command line and start time;
2. :func:`build_venv` - SubprocVecEnv of seed-pooled envs under VecNormalize;
3. :func:`build_model` - PPO / MaskablePPO / SAC with TensorBoard logging;
4. :func:`build_callbacks` - serving metrics, heuristic-referenced eval, checkpoints;
5. :func:`finish_run` - save model + VecNormalize (+ obs stats and metadata), optionally
   export in the shipped-policy layout (``prfaas_gym/policies/trained/NAME/``).

:func:`train` runs them in order, with an optional warm start (imitation) before learning.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from prfaas_gym.training.config import TrainSettings
from prfaas_gym.training.envs import env_kwargs_of

if TYPE_CHECKING:
    from prfaas_gym.training.callbacks import OnEval

ALGOS = ("ppo", "maskable_ppo", "sac")


@dataclass
class RunContext:
    """Where a run writes and what it records."""

    settings: TrainSettings
    run_dir: Path
    command: str
    t0: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wall_time_s(self) -> float:
        return time.time() - self.t0


def start_run(settings: TrainSettings) -> RunContext:
    """Check the export target, create the run directory and fix torch's thread count."""
    from prfaas_gym.training import set_torch_threads
    from prfaas_gym.training.config import check_export_target

    check_export_target(settings)
    set_torch_threads(settings.torch_threads)
    name = settings.run_name or f"{settings.env_id.split('/')[-1]}-{settings.algo}-s{settings.seed}"
    run_dir = Path(settings.run_dir) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    return RunContext(settings, run_dir, command)


def build_venv(settings: TrainSettings, env_kwargs: dict[str, Any]) -> Any:
    """Vectorised training envs (seeds from ``settings.train_seeds``) under VecNormalize."""
    from stable_baselines3.common.vec_env import VecNormalize

    from prfaas_gym.training.envs import make_vec_env

    venv = make_vec_env(settings.env_id, env_kwargs, settings.train_seeds, settings.n_envs, settings.vec_env)
    return VecNormalize(venv, norm_obs=settings.norm_obs, norm_reward=settings.norm_reward,
                        gamma=settings.gamma)


def build_model(settings: TrainSettings, venv: Any, run_dir: Path) -> Any:
    """The algorithm named by ``settings.algo`` with the settings' hyperparameters."""
    algo = settings.algo
    if algo not in ALGOS:
        raise ValueError(f"algo: unknown {algo!r} (known: {', '.join(ALGOS)})")
    tb = str(run_dir / "tb")
    common = dict(learning_rate=settings.learning_rate, gamma=settings.gamma, seed=settings.seed,
                  tensorboard_log=tb, device="cpu", verbose=0)
    if algo == "sac":
        from stable_baselines3 import SAC

        return SAC("MlpPolicy", venv, batch_size=settings.batch_size,
                   learning_starts=min(1000, settings.total_timesteps // 4),
                   policy_kwargs={"net_arch": list(settings.net_arch)}, **common)
    ppo_kw = dict(n_steps=settings.n_steps, batch_size=settings.batch_size, n_epochs=settings.n_epochs,
                  gae_lambda=settings.gae_lambda, clip_range=settings.clip_range, ent_coef=settings.ent_coef,
                  vf_coef=settings.vf_coef, max_grad_norm=settings.max_grad_norm,
                  policy_kwargs={"net_arch": dict(pi=list(settings.net_arch), vf=list(settings.net_arch))})
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO("MlpPolicy", venv, **ppo_kw, **common)
    from stable_baselines3 import PPO

    return PPO("MlpPolicy", venv, **ppo_kw, **common)


def build_callbacks(settings: TrainSettings, ctx: RunContext, env_kwargs: dict[str, Any],
                    maskable: bool, on_eval: OnEval | None = None) -> tuple[Any, Any]:
    """``(CallbackList, HeuristicEvalCallback or None)``; ``on_eval`` sees every evaluation."""
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback

    from prfaas_gym.training.callbacks import HeuristicEvalCallback, ServingMetricsCallback
    from prfaas_gym.training.evaluation import evaluate_model, heuristic_baseline

    cbs: list[Any] = [ServingMetricsCallback()]
    if settings.checkpoint_freq > 0:
        cbs.append(CheckpointCallback(save_freq=max(settings.checkpoint_freq // settings.n_envs, 1),
                                      save_path=str(ctx.run_dir / "checkpoints"), name_prefix="model",
                                      save_vecnormalize=True))
    eval_cb = None
    if settings.eval_freq > 0:
        heur = [h.strip() for h in settings.heuristics.split(",") if h.strip()]
        baseline = heuristic_baseline(settings.scenario, heur, settings.val_seed_list, settings.n_requests)
        ctx.extra["val_baseline_goodput_rps"] = baseline

        def eval_fn(model: Any, vecnorm: Any) -> list[dict]:
            return evaluate_model(model, vecnorm, settings.env_id, env_kwargs, settings.val_seed_list, maskable)

        eval_cb = HeuristicEvalCallback(eval_fn, baseline, settings.eval_freq, ctx.run_dir / "best",
                                        on_eval=on_eval)
        cbs.append(eval_cb)
    return CallbackList(cbs), eval_cb


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit (``+dirty`` never checked: paths of others change concurrently)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Library versions that matter for loading a model."""
    out = {"python": platform.python_version()}
    for mod in ("torch", "stable_baselines3", "sb3_contrib", "gymnasium", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


def obs_norm_dict(vecnorm: Any) -> dict[str, Any] | None:
    """VecNormalize observation statistics as plain JSON data (``None`` if not normalising)."""
    if vecnorm is None or not vecnorm.norm_obs:
        return None
    return {"mean": vecnorm.obs_rms.mean.tolist(), "var": vecnorm.obs_rms.var.tolist(),
            "count": float(vecnorm.obs_rms.count), "clip_obs": float(vecnorm.clip_obs),
            "epsilon": float(vecnorm.epsilon)}


def save_policy(model: Any, vecnorm: Any, out_dir: Path, metadata: dict[str, Any]) -> Path:
    """Write ``policy.safetensors`` + ``policy.json`` (the safe format the loaders read),
    ``obs_norm.json`` and ``metadata.json``, plus SB3's pickle-based ``model.zip`` and
    ``vecnormalize.pkl`` for resuming training (never shipped: docs/security.md)."""
    from prfaas_gym.policies.trained.safe_format import save_policy_files

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_policy_files(model.policy, str(metadata.get("algo", "maskable_ppo")), out_dir)
    model.save(out_dir / "model.zip")
    if vecnorm is not None:
        vecnorm.save(str(out_dir / "vecnormalize.pkl"))
        norm = obs_norm_dict(vecnorm)
        if norm is not None:
            (out_dir / "obs_norm.json").write_text(json.dumps(norm) + "\n")
    (out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    return out_dir


def env_layout(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Slot labels and feature names of the env (what a loader checks against)."""
    from prfaas_gym.training.envs import make_env

    env = make_env(env_id, **env_kwargs)
    base = env.unwrapped
    out = {"feature_names": list(getattr(base, "feature_names", []) or [])}
    if hasattr(base, "slot_labels"):
        out["slot_labels"] = list(base.slot_labels)
    if hasattr(base, "interval_s"):  # control envs: what a loader needs to rebuild the observation
        out["env_config"] = {"interval_s": float(base.interval_s),
                             "threshold_max_tokens": float(base.config["threshold_max_tokens"]),
                             "max_instance_slots": int(base.config["max_instance_slots"])}
    env.close()
    return out


def finish_run(ctx: RunContext, model: Any, env_kwargs: dict[str, Any], eval_cb: Any = None) -> dict[str, Any]:
    """Save the final model and its record in the run directory (and ``export_dir``)."""
    s = ctx.settings
    vecnorm = model.get_vec_normalize_env()
    meta: dict[str, Any] = {
        "env_id": s.env_id,
        "env_kwargs": env_kwargs,
        "algo": s.algo,
        "settings": s.to_dict(),
        "train_seeds": [s.train_seed_start, s.train_seed_start + s.train_seed_count - 1],
        "val_seeds": s.val_seed_list,
        "held_out_test_seeds": [s.test_seed_offset, s.test_seed_offset + s.test_seeds - 1],
        "algo_seed": s.seed,
        "command": ctx.command,
        "wall_time_s": round(ctx.wall_time_s, 1),
        "timesteps": int(model.num_timesteps),
        "git_commit": git_commit(),
        "versions": versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        **env_layout(s.env_id, env_kwargs),
        **ctx.extra,
    }
    if eval_cb is not None:
        meta["eval_history"] = eval_cb.history
        meta["stopped_early"] = eval_cb.stopped
    save_policy(model, vecnorm, ctx.run_dir / "final", meta)
    if s.export_dir:
        from prfaas_gym.training.config import check_export_target

        check_export_target(s)  # again at the write: nothing reaches the shipped policies by accident
        best = ctx.run_dir / "best"
        if s.export_best and eval_cb is not None and (best / "model.zip").is_file():
            model, vecnorm = load_checkpoint(type(model), best, vecnorm.venv if vecnorm is not None else None)
            meta["exported"] = "best validation checkpoint"
            meta["exported_val_goodput_rps"] = float(eval_cb.best_goodput)
        else:
            meta["exported"] = "final model"
        save_policy(model, vecnorm, Path(s.export_dir), meta)
    return meta


def load_checkpoint(cls: Any, directory: Path, venv: Any) -> tuple[Any, Any]:
    """``(model, VecNormalize or None)`` saved in ``directory`` by the eval callback."""
    from stable_baselines3.common.vec_env import VecNormalize

    model = cls.load(str(Path(directory) / "model.zip"), device="cpu")
    vn_path = Path(directory) / "vecnormalize.pkl"
    vecnorm = VecNormalize.load(str(vn_path), venv) if vn_path.is_file() and venv is not None else None
    return model, vecnorm


WarmStart = Callable[[Any, Any, RunContext, dict[str, Any], bool], None]
"""``warm_start(model, venv, ctx, env_kwargs, maskable)``: e.g. behaviour cloning before RL."""


def train(settings: TrainSettings, warm_start: WarmStart | None = None,
          on_eval: OnEval | None = None) -> dict[str, Any]:
    """A whole training run: envs, model, callbacks, optional warm start, learning, saving.

    ``on_eval(row)`` is called after every validation evaluation (every ``eval_freq`` steps,
    at the start and at the end) with ``timesteps`` and the mean validation metrics
    (``goodput_rps``, ``goodput_vs_best_heuristic``, ...); returning ``False`` stops training
    early (the model so far is still saved). Any driver can use it: Tune reports through it
    (``prfaas_gym.tune``), a script may log or stop on a plateau.

    Returns the run's metadata (also written beside the saved model).
    """
    ctx = start_run(settings)
    env_kwargs = env_kwargs_of(settings)
    venv = build_venv(settings, env_kwargs)
    model = build_model(settings, venv, ctx.run_dir)
    maskable = settings.algo == "maskable_ppo"
    callbacks, eval_cb = build_callbacks(settings, ctx, env_kwargs, maskable, on_eval)
    if warm_start is not None:
        warm_start(model, venv, ctx, env_kwargs, maskable)
    model.learn(total_timesteps=settings.total_timesteps, callback=callbacks, tb_log_name="rl",
                reset_num_timesteps=True)
    if eval_cb is not None and not eval_cb.stopped and (
            not eval_cb.history or eval_cb.history[-1]["timesteps"] < model.num_timesteps):
        eval_cb.evaluate()  # the final policy is always evaluated
    meta = finish_run(ctx, model, env_kwargs, eval_cb)
    venv.close()
    print(f"[done] {ctx.run_dir} wall {meta['wall_time_s']} s", flush=True)
    return meta
