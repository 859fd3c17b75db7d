"""Train on ``prfaas/Provisioning-v1``: move PD instances between prefill and decode every long interval.

Recipe: behaviour-clone a heuristic provisioner (``bc_heuristic``; ``static`` = always keep the
split) on training seeds, then fine-tune with MaskablePPO (or PPO); the exported model is the
best validation checkpoint, the cloned start included. Envs, callbacks and saving come from
:mod:`prfaas_gym.training`. The result loads as a provisioner: ``ROUTER+trained:NAME``.

    python agents/train_provisioning.py --config agents/configs/diurnal_provisioning.yaml   # shipped policy
    python agents/train_provisioning.py --smoke                                              # CI
"""

from __future__ import annotations

from dataclasses import dataclass

from prfaas_gym.training import imitation, pipeline
from prfaas_gym.training.config import ControlSettings, parse_settings


@dataclass
class ProvisioningSettings(ControlSettings):
    """Settings: :class:`ControlSettings` defaults (fields documented on :class:`TrainSettings`),
    plus the imitation warm start.

    Attributes:
        bc_heuristic: provisioner to clone first (``static``, ``queue-autoscaler``, a mapping
            spec; "" skips cloning).
        bc_episodes: demonstration episodes (training seeds ``train_seed_start ..``).
        bc_epochs: supervised epochs over the demonstrations.
        bc_lr: learning rate of the supervised pre-training.
    """

    env_id: str = "prfaas/Provisioning-v1"
    algo: str = "maskable_ppo"
    heuristics: str = "prfaas-threshold,prfaas-threshold+queue-autoscaler"
    bc_heuristic: str = "static"
    bc_episodes: int = 4
    bc_epochs: int = 10
    bc_lr: float = 1e-3


def main(argv: list[str] | None = None) -> dict:
    """Train with the settings from the command line (``--help`` lists them)."""
    s = parse_settings(ProvisioningSettings, argv, __doc__)
    return pipeline.train(s, imitation.warm_start(s, imitation.collect_provisioning_demonstrations))


if __name__ == "__main__":
    main()
