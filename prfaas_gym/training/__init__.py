"""Library side of the training scripts in ``agents/`` (SB3 + torch; install ``prfaas-gym[rl]``).

Modules: :mod:`~prfaas_gym.training.config` (settings dataclass, YAML/CLI overrides),
:mod:`~prfaas_gym.training.envs` (seed-pooled vectorised envs),
:mod:`~prfaas_gym.training.callbacks` (serving metrics and heuristic-referenced evaluation
for TensorBoard), :mod:`~prfaas_gym.training.imitation` (behaviour-cloning warm start),
:mod:`~prfaas_gym.training.evaluation` and :mod:`~prfaas_gym.training.pipeline` (the steps
a script wires). Nothing heavy is imported here.

Two helpers for your own scripts: :func:`set_torch_threads` (torch's default intra-op
thread count makes small-MLP training several times slower on a few shared cores) and
:func:`load_policy` (load a saved run or exported policy with one call).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["set_torch_threads", "load_policy"]


def set_torch_threads(n: int = 1) -> int:
    """Set torch's intra-op threads to ``n`` (default 1) and return the previous count.

    The policies trained on these envs are small MLPs fed one observation (or a small
    batch) at a time: torch's default of one thread per core spends more time
    synchronising threads than computing (an SB3 PPO run on 2 cores: 28.4 s with the
    default vs 4.0 s with 1 thread for 2048 steps, issue #12). The training pipeline and
    the policy loaders call this; call it in your own scripts too.
    """
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(max(int(n), 1))
    return prev


def load_policy(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """Load a saved policy with one call: a run's ``final``/``best`` directory, an export
    directory, a shipped ``trained:NAME`` or a ``model.zip`` path.

    Returns a :class:`~prfaas_gym.training.saved.SavedPolicy` (``.policy``, the SB3 policy
    network on CPU, from the safe format; ``trust_pickle=True`` to read SB3's ``model.zip`` of
    a run you made yourself; ``.metadata``; ``.predict(obs, action_masks=None)`` applying the saved observation
    normalisation; ``.make_env(**overrides)``, the env it was trained on). For a routing
    policy inside the simulator use ``make_router(path, scenario)`` instead.
    """
    from prfaas_gym.training.saved import SavedPolicy

    return SavedPolicy.load(path, trust_pickle=trust_pickle)
