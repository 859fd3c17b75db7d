"""Evaluating a trained model (or heuristics) on given episode seeds.

``evaluate_model`` plays whole episodes in one in-process env, deterministically, with
the training VecNormalize observation statistics and action masks when the env has them.
``heuristic_baseline`` runs heuristic routers through the plain simulator on the same
seeds (paired: the workload depends only on the seed).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def evaluate_model(model: Any, vecnorm: Any | None, env_id: str, env_kwargs: dict[str, Any],
                   seeds: Sequence[int], maskable: bool = False) -> list[dict]:
    """One ``info["summary"]`` per seed for the deterministic policy."""
    from prfaas_gym.training.envs import make_env

    env = make_env(env_id, **env_kwargs)
    base = env.unwrapped
    out: list[dict] = []
    for s in seeds:
        obs, info = env.reset(seed=int(s))
        while True:
            x = vecnorm.normalize_obs(obs) if vecnorm is not None and vecnorm.norm_obs else obs
            if maskable:
                a, _ = model.predict(x, deterministic=True, action_masks=base.action_masks())
            else:
                a, _ = model.predict(x, deterministic=True)
            obs, _, term, trunc, info = env.step(a)
            if term or trunc:
                out.append(dict(info.get("summary", {})))
                break
    env.close()
    return out


def heuristic_baseline(scenario: str, heuristics: Sequence[str], seeds: Sequence[int],
                       n_requests: int | None = None, metric: str = "goodput_rps") -> dict[str, float]:
    """``{heuristic: mean metric}`` over ``seeds`` (consecutive) in the plain simulator."""
    from prfaas_gym.evaluation.compare import compare_policies

    seeds = list(seeds)
    if not heuristics or not seeds:
        return {}
    comp = compare_policies(scenario, list(heuristics), seeds=len(seeds), seed_offset=seeds[0],
                            n_requests=n_requests)
    return {h: float(np.nanmean(comp.values(h, metric))) for h in heuristics}
