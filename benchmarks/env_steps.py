"""Env steps per second for every base id with a trivial (constant-action) policy.

Usage: python benchmarks/env_steps.py [--requests N] [--repeat R]

Each id runs whole episodes on its default (paper) scenario in one process, timing only
``step()`` (resets excluded), through ``gymnasium.make`` (with its default wrappers) and on
the unwrapped env. Routing sends every request to slot 0 (the PrfaaS cluster), and in a
second row round-robin to the three initial PD-P instances (slots 1-3); Threshold
holds a = 0; Provisioning and DualTimescale keep the split (and the middle threshold bin).
Not a timed test: figures depend on the machine (quote the output in docs/envs.md).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import prfaas_gym  # noqa: F401  (registers the ids)
from prfaas_gym.env.registration import BASE_IDS


def trivial_action(env_id: str, space):
    if env_id.startswith("prfaas/Routing"):
        return 0
    if env_id.startswith("prfaas/Threshold"):
        return np.zeros(space.shape, dtype=np.float32)
    if env_id.startswith("prfaas/Provisioning"):
        return np.ones(space.shape, dtype=np.int64)
    a = np.ones(space.shape, dtype=np.int64)
    a[0] = space.nvec[0] // 2
    return a


class RoundRobin:
    """Cycles through fixed actions (a policy as cheap as a constant)."""

    def __init__(self, actions: list[int]) -> None:
        self.actions, self.i = actions, 0

    def __call__(self) -> int:
        self.i += 1
        return self.actions[self.i % len(self.actions)]


def steps_per_s(env, action, min_steps: int, repeat: int) -> tuple[float, float, int]:
    """Best of ``repeat`` measurements: (wall-clock steps/s, CPU-time steps/s, steps)."""
    best_wall = best_cpu = 0.0
    steps = 0
    for _ in range(repeat):
        n, wall, cpu = 0, 0.0, 0.0
        seed = 0
        while n < min_steps:
            env.reset(seed=seed)
            seed += 1
            done = False
            t0, c0 = time.perf_counter(), time.process_time()
            policy = action if callable(action) else None
            while not done:
                _, _, term, trunc, _ = env.step(policy() if policy else action)
                n += 1
                done = term or trunc
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
        best_wall = max(best_wall, n / wall)
        best_cpu = max(best_cpu, n / cpu) if cpu > 0 else best_cpu
        steps = n
    return best_wall, best_cpu, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per episode")
    ap.add_argument("--min-steps", type=int, default=4000, help="steps per measurement (Routing)")
    ap.add_argument("--repeat", type=int, default=3, help="measurements per id (best is reported)")
    args = ap.parse_args()
    print("steps/s, best of repeats; 'make' = gymnasium.make with its wrappers, 'raw' = unwrapped;")
    print("wall = wall-clock, cpu = process CPU time (robust to other load on the machine)")
    print(f"{'env id':<24} {'make wall':>10} {'make cpu':>10} {'raw wall':>10} {'raw cpu':>10} "
          f"{'sim s/step':>10} {'steps':>6}")
    rows = [(env_id, env_id, None) for env_id in BASE_IDS]
    # the initial PD-P instances of the paper scenario (pd/0..pd/2 = actions 1..3), round robin
    rows.insert(1, ("prfaas/Routing-v1", "Routing-v1 rr pd/0-2", [1, 2, 3]))
    for env_id, label, rr in rows:
        made = gym.make(env_id, n_requests=args.requests)
        action = RoundRobin(rr) if rr else trivial_action(env_id, made.action_space)
        min_steps = args.min_steps if env_id.startswith("prfaas/Routing") else 50
        mw, mc, n = steps_per_s(made, action, min_steps, args.repeat)
        raw = made.unwrapped
        rw, rc, _ = steps_per_s(raw, action, min_steps, args.repeat)
        sim_per_step = raw.sim.env.now / max(raw._steps, 1)
        print(f"{label:<24} {mw:>10,.0f} {mc:>10,.0f} {rw:>10,.0f} {rc:>10,.0f} {sim_per_step:>10.3g} {n:>6}")


if __name__ == "__main__":
    main()
