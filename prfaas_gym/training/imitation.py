"""Imitation warm start: behaviour cloning of a heuristic router into an SB3 policy.

The per-request routing reward arrives only when requests complete, tens of decisions
later, so PPO from scratch spends most of its budget rediscovering load balancing. Cloning
the best heuristic first (supervised, on ``(observation, mask, heuristic action)`` pairs
from routing-env rollouts) starts PPO at heuristic level; PPO then fine-tunes.

The critic is pre-trained too, on the discounted returns of the heuristic's own rollouts
(scaled like VecNormalize scales rewards), so the first PPO updates do not follow a random
value baseline away from the cloned policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np


@dataclass
class Demonstrations:
    """Heuristic rollouts: raw observations, masks, actions, rewards, episode ends."""

    obs: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    summaries: list[dict]

    def discounted_returns(self, gamma: float) -> np.ndarray:
        """Per-step discounted return within each episode."""
        out = np.zeros_like(self.rewards, dtype=np.float64)
        g = 0.0
        for i in range(len(self.rewards) - 1, -1, -1):
            if self.dones[i]:
                g = 0.0
            g = self.rewards[i] + gamma * g
            out[i] = g
        return out


def collect_demonstrations(env_id: str, env_kwargs: dict[str, Any], heuristic: str,
                           seeds: Sequence[int]) -> Demonstrations:
    """Run ``heuristic`` through the routing env on ``seeds``; record what it did."""
    from prfaas_gym.policies import make_router
    from prfaas_gym.training.envs import make_env

    env = make_env(env_id, **env_kwargs)
    base = env.unwrapped
    router = make_router(heuristic, base.scenario).bind(base)

    def choose(obs: np.ndarray, info: dict) -> tuple[int, np.ndarray]:
        mask = np.asarray(info["action_mask"] if "action_mask" in info else base.action_masks(), dtype=bool)
        a, _ = router.predict(obs)
        return int(a), mask

    return _record_episodes(env, seeds, choose)


def _record_episodes(env: Any, seeds: Sequence[int],
                     choose: Callable[[np.ndarray, dict], tuple[Any, np.ndarray]]) -> Demonstrations:
    """Roll ``choose(obs, info) -> (action, mask)`` through ``env`` for one episode per seed,
    recording every step; closes the env."""
    obs_l, mask_l, act_l, rew_l, done_l, summaries = [], [], [], [], [], []
    for s in seeds:
        obs, info = env.reset(seed=int(s))
        while True:
            a, mask = choose(obs, info)
            obs_l.append(obs)
            mask_l.append(mask)
            act_l.append(a)
            obs, r, term, trunc, info = env.step(a)
            rew_l.append(r)
            done_l.append(term or trunc)
            if term or trunc:
                summaries.append(info.get("summary", {}))
                break
    env.close()
    return Demonstrations(np.asarray(obs_l, np.float32), np.asarray(mask_l, bool), np.asarray(act_l, np.int64),
                          np.asarray(rew_l, np.float64), np.asarray(done_l, bool), summaries)


def fit_normalizer(vecnorm: Any, demos: Demonstrations, gamma: float) -> None:
    """Seed a VecNormalize's running statistics with the demonstrations."""
    if getattr(vecnorm, "norm_obs", False):
        vecnorm.obs_rms.update(demos.obs.astype(np.float64))
    if getattr(vecnorm, "norm_reward", False):
        vecnorm.ret_rms.update(demos.discounted_returns(gamma))


def behaviour_clone(model: Any, demos: Demonstrations, vecnorm: Any | None, *, epochs: int = 10,
                    batch_size: int = 512, lr: float = 1e-3, value_coef: float = 0.5,
                    gamma: float = 0.99, seed: int = 0, logger: Any = None,
                    step0: int = 0) -> list[float]:
    """Supervised pre-training of ``model.policy`` (actor: masked NLL; critic: MSE).

    Uses the policy's own ``evaluate_actions`` so the cloned distribution is exactly the one
    PPO then optimises. Returns the mean actor loss per epoch.
    """
    import torch

    policy = model.policy
    obs = demos.obs
    if vecnorm is not None and getattr(vecnorm, "norm_obs", False):
        obs = vecnorm.normalize_obs(obs)
    returns = demos.discounted_returns(gamma)
    if vecnorm is not None and getattr(vecnorm, "norm_reward", False):
        returns = returns / np.sqrt(vecnorm.ret_rms.var + vecnorm.epsilon)
    dev = policy.device
    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=dev)
    act_t = torch.as_tensor(demos.actions, device=dev)
    mask_t = demos.masks
    ret_t = torch.as_tensor(returns, dtype=torch.float32, device=dev)
    maskable = "action_masks" in policy.evaluate_actions.__code__.co_varnames
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    n = len(act_t)
    history: list[float] = []
    policy.set_training_mode(True)
    for epoch in range(epochs):
        perm = rng.permutation(n)
        tot, cnt = 0.0, 0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            if maskable:
                values, logp, _ = policy.evaluate_actions(obs_t[idx], act_t[idx], action_masks=mask_t[idx])
            else:
                values, logp, _ = policy.evaluate_actions(obs_t[idx], act_t[idx])
            actor = -logp.mean()
            critic = torch.nn.functional.mse_loss(values.flatten(), ret_t[idx])
            loss = actor + value_coef * critic
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            tot += actor.item() * len(idx)
            cnt += len(idx)
        history.append(tot / max(cnt, 1))
        if logger is not None:
            logger.record("bc/actor_nll", history[-1])
            logger.dump(step0 + epoch)
    policy.set_training_mode(False)
    return history


def clone_accuracy(model: Any, demos: Demonstrations, vecnorm: Any | None) -> float:
    """Fraction of demonstration steps where the deterministic policy picks the heuristic's action."""
    obs = demos.obs
    if vecnorm is not None and getattr(vecnorm, "norm_obs", False):
        obs = vecnorm.normalize_obs(obs)
    try:
        a, _ = model.policy.predict(obs, deterministic=True, action_masks=demos.masks)
    except TypeError:
        a, _ = model.policy.predict(obs, deterministic=True)
    return float(np.mean(np.asarray(a) == demos.actions))


def concat(a: Demonstrations, b: Demonstrations) -> Demonstrations:
    """Both data sets, ``a`` first."""
    return Demonstrations(np.concatenate([a.obs, b.obs]), np.concatenate([a.masks, b.masks]),
                          np.concatenate([a.actions, b.actions]), np.concatenate([a.rewards, b.rewards]),
                          np.concatenate([a.dones, b.dones]), a.summaries + b.summaries)


def dagger_round(model: Any, vecnorm: Any | None, env_id: str, env_kwargs: dict[str, Any], heuristic: str,
                 seeds: Sequence[int], maskable: bool = True) -> Demonstrations:
    """One DAgger round: the current policy drives, the heuristic labels every visited state.

    Plain behaviour cloning only sees states the heuristic visits; its small errors lead the
    learner into backlogged states it was never shown (compounding error, worse on longer
    episodes). Labelling the learner's own states with the heuristic's choice fixes that.
    The returned ``summaries`` are the learner's episodes.
    """
    from prfaas_gym.policies import make_router
    from prfaas_gym.training.envs import make_env

    env = make_env(env_id, **env_kwargs)
    base = env.unwrapped
    router = make_router(heuristic, base.scenario).bind(base)
    obs_l, mask_l, act_l, rew_l, done_l, summaries = [], [], [], [], [], []
    for s in seeds:
        obs, info = env.reset(seed=int(s))
        while True:
            mask = np.asarray(info["action_mask"], dtype=bool)
            label, _ = router.predict(obs)
            x = vecnorm.normalize_obs(obs) if vecnorm is not None and vecnorm.norm_obs else obs
            if maskable:
                a, _ = model.predict(x, deterministic=True, action_masks=mask)
            else:
                a, _ = model.predict(x, deterministic=True)
            obs_l.append(obs)
            mask_l.append(mask)
            act_l.append(int(label))
            obs, r, term, trunc, info = env.step(int(a))
            rew_l.append(r)
            done_l.append(term or trunc)
            if term or trunc:
                summaries.append(info.get("summary", {}))
                break
    env.close()
    return Demonstrations(np.asarray(obs_l, np.float32), np.asarray(mask_l, bool), np.asarray(act_l, np.int64),
                          np.asarray(rew_l, np.float64), np.asarray(done_l, bool), summaries)


def provision_action(targets: dict[int, int] | None, sim: Any, pd_clusters: Sequence[int]) -> np.ndarray:
    """A provisioner's targets as ``prfaas/Provisioning-v1``'s action: per PD cluster 0 (one
    prefill instance fewer), 1 (keep) or 2 (one more), the sign of target - current."""
    out = []
    for c in pd_clusters:
        cur = sim.clusters[c].prefill_count()
        t = (targets or {}).get(c, cur)
        out.append(1 + (t > cur) - (t < cur))
    return np.asarray(out, np.int64)


def collect_provisioning_demonstrations(env_id: str, env_kwargs: dict[str, Any], heuristic: str,
                                        seeds: Sequence[int]) -> Demonstrations:
    """Run a heuristic *provisioner* (``static``, ``queue-autoscaler``, ...) through
    ``prfaas/Provisioning-v1`` on ``seeds``: at every step it is asked for its targets on the
    env's simulator and its answer becomes the action (:func:`provision_action`)."""
    from prfaas_gym.policies import make_provisioner
    from prfaas_gym.training.envs import make_env

    env = make_env(env_id, **env_kwargs)
    base = env.unwrapped
    teacher = make_provisioner(heuristic, base.scenario)

    def choose(obs: np.ndarray, info: dict) -> tuple[np.ndarray, np.ndarray]:
        targets = teacher.provision(base.sim) if teacher is not None else None
        return (provision_action(targets, base.sim, base.pd_clusters),
                np.asarray(base.action_masks(), dtype=bool))

    return _record_episodes(env, seeds, choose)


def warm_start(settings: Any, collect: Callable[..., Demonstrations]) -> Callable[..., None]:
    """A ``pipeline.train`` warm start: behaviour cloning of ``settings.bc_heuristic`` on the
    demonstrations ``collect(env_id, env_kwargs, heuristic, seeds)`` records, then
    ``settings.dagger_rounds`` DAgger rounds where the settings have them (the learner drives,
    the heuristic labels its states); a no-op without ``bc_heuristic``. Cloning losses go to
    TensorBoard under ``bc/`` (the documented ``bc/actor_nll`` tag)."""
    s = settings

    def run(model: Any, venv: Any, ctx: Any, env_kwargs: dict[str, Any], maskable: bool) -> None:
        if not s.bc_heuristic:
            return
        seeds = s.train_seeds[: s.bc_episodes]
        demos = collect(s.env_id, env_kwargs, s.bc_heuristic, seeds)
        fit_normalizer(venv, demos, s.gamma)
        from stable_baselines3.common.logger import configure

        tb = configure(str(ctx.run_dir / "tb" / "bc"), ["tensorboard"])
        hist = behaviour_clone(model, demos, venv, epochs=s.bc_epochs, lr=s.bc_lr,
                               gamma=s.gamma, seed=s.seed, logger=tb)
        step = len(hist)
        for k in range(getattr(s, "dagger_rounds", 0)):
            start = s.bc_episodes + k * s.dagger_episodes
            more = dagger_round(model, venv, s.env_id, env_kwargs, s.bc_heuristic,
                                s.train_seeds[start:start + s.dagger_episodes], maskable)
            demos = concat(demos, more)
            goodput = sum(x.get("goodput_rps", 0.0) for x in more.summaries) / max(len(more.summaries), 1)
            print(f"[dagger {k}] learner goodput {goodput:.3f} req/s, {len(demos.actions)} labelled steps",
                  flush=True)
            hist = behaviour_clone(model, demos, venv, epochs=s.dagger_epochs, lr=s.bc_lr,
                                   gamma=s.gamma, seed=s.seed + k + 1, logger=tb, step0=step)
            step += len(hist)
        ctx.extra["bc"] = {"heuristic": s.bc_heuristic, "episodes": len(seeds), "steps": len(demos.actions),
                           "final_nll": hist[-1], "accuracy": clone_accuracy(model, demos, venv)}
        print(f"[bc] {ctx.extra['bc']}", flush=True)
        tb.close()

    return run
