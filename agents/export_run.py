"""Export a finished run's checkpoint (``best`` by default) in the shipped-policy layout.

For a run started without ``--export-dir``: rebuilds the model from the run's pickle-based
checkpoint (files this run wrote; the only place a pickle is read), writes
``policy.safetensors`` + ``policy.json``, ``obs_norm.json`` and ``metadata.json`` to the
target, and no pickle. A target inside ``prfaas_gym/policies/trained/`` needs
``--export-shipped``.

    python agents/export_run.py runs/diurnal-provisioning prfaas_gym/policies/trained/diurnal-provisioning --export-shipped
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def export_run(run_dir: Path, out_dir: Path, checkpoint: str = "best") -> Path:
    """Write ``run_dir/checkpoint`` to ``out_dir`` in the safe format (see the module docstring)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from prfaas_gym.training.envs import make_env
    from prfaas_gym.training.pipeline import load_checkpoint, save_policy

    meta = json.loads((run_dir / "final" / "metadata.json").read_text())
    if meta["algo"] == "maskable_ppo":
        from sb3_contrib import MaskablePPO as cls
    else:
        from stable_baselines3 import PPO as cls
    venv = DummyVecEnv([lambda: make_env(meta["env_id"], **meta["env_kwargs"])])
    model, vecnorm = load_checkpoint(cls, run_dir / checkpoint, venv)
    meta["exported"] = "best validation checkpoint" if checkpoint == "best" else checkpoint
    hist = meta.get("eval_history") or []
    if checkpoint == "best" and hist:
        meta["exported_val_goodput_rps"] = max(float(r.get("goodput_rps", 0.0)) for r in hist)
    save_policy(model, vecnorm, out_dir, meta)
    for pickled in ("model.zip", "vecnormalize.pkl"):
        (out_dir / pickled).unlink(missing_ok=True)  # never shipped (docs/security.md)
    venv.close()
    return out_dir


def main(argv: list[str] | None = None) -> None:
    from prfaas_gym.policies.trained import TRAINED_DIR

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--checkpoint", default="best", help="best (default) or final")
    p.add_argument("--export-shipped", action="store_true", help="allow a target among the shipped policies")
    a = p.parse_args(argv)
    target = a.out_dir.resolve()
    if (target == TRAINED_DIR or TRAINED_DIR in target.parents) and not a.export_shipped:
        raise SystemExit(f"{a.out_dir}: a shipped policy; add --export-shipped to replace it")
    print(export_run(a.run_dir, a.out_dir, a.checkpoint))


if __name__ == "__main__":
    main()
