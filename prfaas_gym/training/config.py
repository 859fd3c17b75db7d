"""Training settings: a documented base dataclass, YAML overrides and a CLI built from fields.

Every script in ``agents/`` declares its settings as a dataclass deriving from
:class:`TrainSettings` (defaults are the hyperparameters used for the shipped policies) and
calls :func:`parse_settings`, which applies, in order: the dataclass defaults, the
``--config FILE.yaml`` mapping, explicit ``--field value`` flags, then ``--smoke`` (a tiny
CI budget). Unknown YAML keys are refused with a message naming the key.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar


S = TypeVar("S", bound="TrainSettings")


@dataclass
class TrainSettings:
    """Settings shared by every training script (units in names; seeds are episode seeds).

    Attributes:
        env_id: registered Gymnasium id.
        scenario: scenario name or YAML path passed to the env.
        reward: reward variant (``goodput``, ``slo``, ``latency``, ``cost``).
        n_requests: requests per training episode (``None``: the scenario's).
        invalid_action: the env's invalid-action mode (``reject``, ``penalize``, ``fallback``).
        oracle_features: Routing: show the true output length (a live router does not know it).
        snapshot_staleness_s, snapshot_noise: the metrics view trained on (docs/envs.md).
        algo: algorithm name understood by the script (``ppo``, ``maskable_ppo``, ``sac``).
        total_timesteps: env steps of RL training (after any imitation warm start).
        n_envs: parallel envs.
        vec_env: ``subproc`` (SubprocVecEnv) or ``dummy`` (in-process, for tests).
        train_seed_start, train_seed_count: training episodes cycle through seeds
            ``start .. start + count - 1`` (env ``i`` of ``n`` takes every ``n``-th).
        val_seed_start, val_seeds: seeds of the periodic evaluation (never used in training).
        test_seed_offset, test_seeds: held-out seeds for the final report (never used above).
        eval_freq: env steps between evaluations (0 disables the eval callback).
        checkpoint_freq: env steps between checkpoints (0 disables them).
        heuristics: comma-separated heuristic policies the eval callback compares against.
        seed: algorithm seed (network init, sampling).
        learning_rate, n_steps, batch_size, n_epochs, gamma, gae_lambda, clip_range,
            ent_coef, vf_coef, max_grad_norm: PPO hyperparameters (``n_steps`` per env).
        net_arch: hidden layer sizes of the policy and value MLPs.
        norm_obs, norm_reward: VecNormalize switches (stats saved with the model).
        torch_threads: torch intra-op threads (keep small on shared machines).
        run_dir: parent of the run directory (TensorBoard logs, checkpoints, final model).
        run_name: run directory name (default: ``<env>-<algo>-s<seed>``).
        export_dir: if set, the policy is also written there (shipped-policy layout). A
            directory inside the package's shipped policies
            (``prfaas_gym/policies/trained/``) needs ``export_shipped`` and is refused in
            smoke runs.
        export_shipped: allow ``export_dir`` to replace a shipped policy; only from the
            command line (``--export-shipped true``), never from a YAML config.
        export_best: export the checkpoint with the best validation goodput (model
            selection on validation seeds) instead of the last one.
        smoke: tiny budget for CI (overrides the budget fields, see :meth:`apply_smoke`).
    """

    env_id: str = "prfaas/Routing-v1"
    scenario: str = "paper/prfaas_pd"
    reward: str = "goodput"
    n_requests: int | None = None
    invalid_action: str = "reject"
    oracle_features: bool = False
    snapshot_staleness_s: float = 0.0
    snapshot_noise: float = 0.0
    algo: str = "ppo"
    total_timesteps: int = 200_000
    n_envs: int = 2
    vec_env: str = "subproc"
    train_seed_start: int = 0
    train_seed_count: int = 100
    val_seed_start: int = 500
    val_seeds: int = 3
    test_seed_offset: int = 1000
    test_seeds: int = 10
    eval_freq: int = 20_000
    checkpoint_freq: int = 50_000
    heuristics: str = "prfaas-threshold"
    seed: int = 0
    learning_rate: float = 3e-4
    n_steps: int = 1024
    batch_size: int = 256
    n_epochs: int = 10
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [128, 128])
    norm_obs: bool = True
    norm_reward: bool = True
    torch_threads: int = 1
    run_dir: str = "runs"
    run_name: str | None = None
    export_dir: str | None = None
    export_shipped: bool = False
    export_best: bool = True
    smoke: bool = False

    def apply_smoke(self) -> None:
        """Shrink the budget to a CI smoke run (a few hundred steps, a few seconds)."""
        self.total_timesteps = min(self.total_timesteps, 256)
        self.n_envs = min(self.n_envs, 2)
        self.n_steps = 64
        self.batch_size = 64
        self.n_epochs = 1
        self.n_requests = min(self.n_requests or 60, 60)
        self.eval_freq = 128
        self.checkpoint_freq = 128
        self.val_seeds = 1
        self.test_seeds = 1
        if hasattr(self, "bc_episodes"):
            self.bc_episodes = min(getattr(self, "bc_episodes"), 1)  # type: ignore[attr-defined]
            self.bc_epochs = min(getattr(self, "bc_epochs"), 1)  # type: ignore[attr-defined]
        if hasattr(self, "dagger_rounds"):
            self.dagger_rounds = min(getattr(self, "dagger_rounds"), 1)  # type: ignore[attr-defined]
            self.dagger_episodes = min(getattr(self, "dagger_episodes"), 1)  # type: ignore[attr-defined]
            self.dagger_epochs = min(getattr(self, "dagger_epochs"), 1)  # type: ignore[attr-defined]

    @property
    def train_seeds(self) -> list[int]:
        """Episode seeds used in training."""
        return list(range(self.train_seed_start, self.train_seed_start + self.train_seed_count))

    @property
    def val_seed_list(self) -> list[int]:
        """Episode seeds of the periodic evaluation."""
        return list(range(self.val_seed_start, self.val_seed_start + self.val_seeds))

    def check_seeds(self) -> None:
        """Refuse overlapping train / validation / test seed ranges, and training or
        validation on any benchmark task's test seeds (``prfaas_gym.benchmark.tasks``)."""
        from prfaas_gym.benchmark.tasks import check_training_seeds

        train = set(self.train_seeds)
        val = set(self.val_seed_list)
        test = set(range(self.test_seed_offset, self.test_seed_offset + self.test_seeds))
        if train & val or train & test or val & test:
            raise ValueError("seeds: train, validation and test seed ranges must not overlap")
        check_training_seeds(train | val, "seeds")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for the metadata record)."""
        return dataclasses.asdict(self)


@dataclass
class ControlSettings(TrainSettings):
    """Defaults for the control envs (Threshold, Provisioning, DualTimescale): one step per
    control interval, so budgets are in the tens of thousands of steps."""

    scenario: str = "envs/bursty_fluctuating.yaml"
    algo: str = "ppo"
    n_requests: int | None = 1000
    total_timesteps: int = 20_000
    n_steps: int = 256
    batch_size: int = 128
    eval_freq: int = 5_000
    checkpoint_freq: int = 10_000


def _field_type(f: dataclasses.Field) -> Any:
    t = f.type if not isinstance(f.type, str) else f.type
    return t


def _parse_value(text: str, default: Any, type_name: str) -> Any:
    """Parse a CLI string using the field's declared type (JSON for lists)."""
    if "list" in type_name:
        text = text.strip()
        return json.loads(text) if text.startswith("[") else [int(x) for x in text.split(",") if x]
    if "bool" in type_name:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {text!r}")
    if text.lower() == "none" and "None" in type_name:
        return None
    if "int" in type_name and "float" not in type_name:
        return int(text)
    if "float" in type_name:
        return float(text)
    return text


def check_export_target(settings: "TrainSettings") -> None:
    """Refuse to write into the package's shipped policies unless asked explicitly (#12:
    ``--smoke`` with a shipped config overwrote ``trained/routing-bursty``)."""
    if not settings.export_dir:
        return
    from prfaas_gym.policies.trained import TRAINED_DIR

    target = Path(settings.export_dir).resolve()
    if target != TRAINED_DIR and TRAINED_DIR not in target.parents:
        return
    if settings.smoke:
        raise ValueError(f"export_dir: {settings.export_dir} is a shipped policy; smoke runs never export there")
    if not settings.export_shipped:
        raise ValueError(f"export_dir: {settings.export_dir} is a shipped policy; add --export-shipped true "
                         "to replace it")


def apply_overrides(settings: S, overrides: dict[str, Any], source: str) -> S:
    """Set fields from a mapping; unknown keys raise ``ValueError`` naming ``source`` and the key."""
    names = {f.name for f in dataclasses.fields(settings)}
    for k, v in overrides.items():
        if k == "export_shipped":
            raise ValueError(f"{source}: export_shipped only from the command line (--export-shipped true)")
        if k not in names:
            raise ValueError(f"{source}: unknown setting {k!r} (known: {', '.join(sorted(names))})")
        setattr(settings, k, v)
    return settings


def parse_settings(cls: type[S], argv: Sequence[str] | None = None, description: str | None = None) -> S:
    """Build ``cls`` from defaults, ``--config`` YAML, ``--<field>`` flags and ``--smoke``."""
    parser = argparse.ArgumentParser(description=description or cls.__doc__)
    parser.add_argument("--config", type=Path, help="YAML file of setting overrides")
    fields = dataclasses.fields(cls)
    for f in fields:
        flag = "--" + f.name.replace("_", "-")
        tname = str(_field_type(f))
        if f.name == "smoke":
            parser.add_argument(flag, action="store_true", help="tiny CI budget")
            continue
        parser.add_argument(flag, dest=f.name, default=None, metavar=tname.replace(" ", ""),
                            help=f"(default: {_default_of(f)!r})")
    args = parser.parse_args(argv)
    settings = cls()
    if args.config is not None:
        from prfaas_gym.safe_yaml import YamlInputError, read_yaml_file

        try:
            data = read_yaml_file(args.config) or {}
        except YamlInputError as exc:
            raise SystemExit(str(exc)) from None
        if not isinstance(data, dict):
            raise SystemExit(f"{args.config}: expected a mapping of settings")
        try:
            apply_overrides(settings, data, str(args.config))
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    for f in fields:
        if f.name == "smoke":
            continue
        raw = getattr(args, f.name)
        if raw is not None:
            try:
                setattr(settings, f.name, _parse_value(raw, _default_of(f), str(_field_type(f))))
            except ValueError as exc:
                raise SystemExit(f"--{f.name.replace('_', '-')}: {exc}") from None
    if args.smoke or settings.smoke:
        settings.smoke = True
        settings.apply_smoke()
        if args.total_timesteps is not None:
            settings.total_timesteps = int(args.total_timesteps)
    settings.check_seeds()
    try:
        check_export_target(settings)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return settings


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None
