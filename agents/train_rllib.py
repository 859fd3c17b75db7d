"""Train PPO with RLlib on a routing task with several env runners, then evaluate it on the
held-out test seeds through the same path as SB3 policies.

Needs the ``ray`` extra. The env id is used by name (``prfaas_gym.rllib.register``), the
observation carries the action mask and RLlib's ``ActionMaskingTorchRLModule`` masks the
logits. Episodes cycle through training seeds 0..99; the learned module is written as a
policy directory (``OUT/policy``) which ``compare --policies OUT/policy`` and
``held_out_report`` run in the plain simulator like any trained router.

    python agents/train_rllib.py --out /abs/dir --env-runners 2 --iterations 20
    python agents/train_rllib.py --out /tmp/rl --smoke          # CI: 1 iteration, tiny episodes
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output directory (made absolute)")
    p.add_argument("--env-id", default="prfaas/Routing-bursty-goodput-v1")
    p.add_argument("--n-requests", type=int, default=300, help="requests per training episode")
    p.add_argument("--env-runners", type=int, default=2, help="RLlib env runners (processes)")
    p.add_argument("--iterations", type=int, default=20, help="PPO training iterations")
    p.add_argument("--batch", type=int, default=2000, help="env steps per iteration (all runners)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--heuristics", default="least-loaded,prfaas-threshold",
                   help="comma-separated heuristics for the held-out comparison")
    p.add_argument("--test-seed-offset", type=int, default=1000)
    p.add_argument("--test-seeds", type=int, default=10)
    p.add_argument("--address", default=None, help="Ray cluster (default: a local Ray)")
    p.add_argument("--smoke", action="store_true", help="tiny budget for CI")
    args = p.parse_args(argv)
    if args.smoke:
        args.n_requests, args.iterations, args.batch, args.test_seeds = 60, 1, 256, 2
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    from ray.rllib.algorithms.ppo import PPOConfig

    import prfaas_gym.rllib as prl
    from prfaas_gym.parallel import Backend
    from prfaas_gym.ray_backend import init_ray
    from prfaas_gym.training.report import held_out_report, markdown_table

    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    init_ray(Backend("ray", workers=args.env_runners + 1 if args.address is None else None,
                     address=args.address))
    prl.register([args.env_id])
    env_kwargs = {"n_requests": args.n_requests}
    config = (
        PPOConfig()
        .environment(args.env_id, env_config={**env_kwargs, "action_mask": True, "train_seeds": [0, 100]})
        .env_runners(num_env_runners=args.env_runners, num_envs_per_env_runner=1,
                     num_cpus_per_env_runner=1)
        .learners(num_learners=0)
        .rl_module(rl_module_spec=prl.masked_module_spec())
        .training(lr=args.lr, train_batch_size_per_learner=args.batch, minibatch_size=min(256, args.batch),
                  num_epochs=5, gamma=0.99)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    t0, history = time.time(), []
    for i in range(args.iterations):
        res = algo.train()
        runners = res.get("env_runners", {})
        history.append({"iteration": i + 1, "env_steps": runners.get("num_env_steps_sampled_lifetime"),
                        "episode_return_mean": runners.get("episode_return_mean")})
        print(f"[rllib] iter {i + 1}: return {history[-1]['episode_return_mean']}", flush=True)
    wall = time.time() - t0
    module = algo.get_module()
    full_kwargs = {**_env_defaults(args.env_id), **env_kwargs}
    policy_dir = prl.save_policy(module, out / "policy", env_id=args.env_id, env_kwargs=full_kwargs,
                                 extra={"train_seeds": [0, 99], "env_runners": args.env_runners,
                                        "iterations": args.iterations, "wall_time_s": round(wall, 1),
                                        "history": history})
    algo.stop()
    report = held_out_report(full_kwargs["scenario"], str(policy_dir),
                             [h.strip() for h in args.heuristics.split(",") if h.strip()],
                             seeds=args.test_seeds, seed_offset=args.test_seed_offset,
                             n_requests=args.n_requests)
    (out / "held_out.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(markdown_table(report))
    return {"policy_dir": str(policy_dir), "wall_time_s": wall, "history": history, "report": report}


def _env_defaults(env_id: str) -> dict:
    """The registered id's own kwargs (scenario, reward)."""
    import gymnasium as gym

    import prfaas_gym  # noqa: F401

    return dict(gym.registry[env_id].kwargs)


if __name__ == "__main__":
    main()
