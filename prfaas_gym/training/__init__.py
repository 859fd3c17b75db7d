"""Library side of the training scripts in ``agents/`` (SB3 + torch; install ``prfaas-gym[rl]``).

Modules: :mod:`~prfaas_gym.training.config` (settings dataclass, YAML/CLI overrides),
:mod:`~prfaas_gym.training.envs` (seed-pooled vectorised envs),
:mod:`~prfaas_gym.training.callbacks` (serving metrics and heuristic-referenced evaluation
for TensorBoard), :mod:`~prfaas_gym.training.imitation` (behaviour-cloning warm start),
:mod:`~prfaas_gym.training.evaluation` and :mod:`~prfaas_gym.training.pipeline` (the steps
a script wires). Nothing heavy is imported here.
"""
