"""Byte-identical check for speed work: fixed-seed records, summaries and env rollouts.

A performance change must not move a single simulated number. This script runs a set of
cases that together reach every mechanism (prefix caches and pulls, batching and chunking,
KV streaming on full-duplex links, decode memory with preemption, faults and link outages,
causal sessions, provisioning, the Gymnasium envs) and prints one SHA-256 per case over the
per-request records (CSV, exact float repr), the JSON summary, the egress series and the
gauges. Write the digests before a change and compare after:

    python benchmarks/golden_check.py --write /tmp/golden_before.json
    python benchmarks/golden_check.py --check /tmp/golden_before.json   # exit 1 on a difference

Not a test of correctness (the test suite is): it proves that two versions of the code
simulate the same thing, bit for bit.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from prfaas_gym.policies import make_provisioner, make_router
from prfaas_gym.scenario import load_scenario
from prfaas_gym.sim import Simulator
from prfaas_gym.metrics import egress_series, request_arrays

# (label, scenario, router, provisioner, seed, requests, gauge interval s, needs the data directory)
SIM_CASES = [
    ("paper-threshold", "paper/prfaas_pd", None, None, 0, 10000, None, False),
    ("paper-homogeneous", "paper/homogeneous", None, None, 1, 3000, 5.0, False),
    ("paper-naive", "paper/naive_heterogeneous", None, None, 2, 3000, None, False),
    ("bursty-conductor", "bursty_fluctuating", "mooncake-conductor", None, 1, 3000, None, False),
    ("bursty-adaptive", "bursty_fluctuating", "prfaas-adaptive", None, 2, 3000, 10.0, False),
    ("bursty-least-loaded", "bursty_fluctuating", "least-loaded", None, 0, 3000, None, False),
    ("bursty-threshold", "bursty_fluctuating", "prfaas-threshold", None, 0, 3000, None, False),
    ("bursty-random", "bursty_fluctuating", "random", None, 3, 2000, None, False),
    ("dense-long-context", "dense_long_context", "least-loaded", None, 0, 2000, 10.0, False),
    ("link-outage", "link_outage", None, None, 0, 3000, None, False),
    ("three-region", "three_region", "least-loaded", None, 0, 3000, None, False),
    ("diurnal-autoscaler", "diurnal_day", None, "queue-autoscaler", 0, 3000, None, False),
    ("scale-10k", "scale_10k_gpu", None, None, 0, 50000, None, False),
    ("azure-conv", "azure_conv", None, None, 0, 3000, None, True),
    ("mooncake-conductor", "mooncake_conversation", "mooncake-conductor", None, 0, 6000, None, True),
]

# (label, env id, requests per episode, episodes): random valid actions from a fixed seed
ENV_CASES = [
    ("routing-v1", "prfaas/Routing-v1", 2000, 2),
    ("threshold-v1", "prfaas/Threshold-v1", 2000, 1),
    ("provisioning-v1", "prfaas/Provisioning-v1", 1000, 1),
    ("dual-timescale-v1", "prfaas/DualTimescale-v1", 1000, 1),
]


def _digest_sim(sim, summary: dict) -> str:
    h = hashlib.sha256()
    cols = request_arrays(sim.requests)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(list(cols))
    for row in zip(*(cols[n].tolist() for n in cols)):
        w.writerow([repr(x) for x in row])
    h.update(buf.getvalue().encode())
    h.update(json.dumps(summary, sort_keys=True, default=repr).encode())
    t, gbps = egress_series(sim)
    h.update(np.ascontiguousarray(t).tobytes() + np.ascontiguousarray(gbps).tobytes())
    h.update(repr(sim.gauges).encode() + repr(sim.prefill_counts_log).encode())
    h.update(repr((sim.events_processed, sim.env.now, sim.preemptions)).encode())
    return h.hexdigest()


def _digest_env(env_id: str, n_requests: int, episodes: int) -> str:
    import gymnasium as gym

    import prfaas_gym  # noqa: F401  (registers the ids)

    h = hashlib.sha256()
    env = gym.make(env_id, n_requests=n_requests)
    rng = np.random.default_rng(123)
    for ep in range(episodes):
        obs, info = env.reset(seed=ep)
        done = False
        while not done:
            mask = info.get("action_mask")
            if mask is not None and isinstance(env.action_space, gym.spaces.Discrete):
                valid = np.flatnonzero(mask)
                action = int(valid[rng.integers(len(valid))])
            else:
                env.action_space.seed(int(rng.integers(1 << 30)))
                action = env.action_space.sample()
            obs, reward, term, trunc, info = env.step(action)
            h.update(np.asarray(obs, dtype=np.float64).tobytes() if not isinstance(obs, dict)
                     else b"".join(np.asarray(obs[k], dtype=np.float64).tobytes() for k in sorted(obs)))
            h.update(repr((float(reward), term, trunc)).encode())
            done = term or trunc
        h.update(json.dumps(info.get("summary", {}), sort_keys=True, default=repr).encode())
    env.close()
    return h.hexdigest()


def run(data_dir: Path | None, only: str | None) -> dict[str, str]:
    """Digest of every case (cases needing the data directory are skipped without it)."""
    out: dict[str, str] = {}
    for label, scenario, router, prov, seed, n, gauge_s, needs_data in SIM_CASES:
        if (only and only not in label) or (needs_data and data_dir is None):
            continue
        t0 = time.perf_counter()
        sc = load_scenario(scenario)
        sim = Simulator(sc, make_router(router, sc, seed=seed), make_provisioner(prov, sc), seed=seed,
                        n_requests=n, data_dir=data_dir, gauge_interval_s=gauge_s)
        summary = sim.run()
        out[label] = _digest_sim(sim, summary)
        print(f"{label:<22} {out[label][:16]}  {time.perf_counter() - t0:6.1f} s", file=sys.stderr)
    for label, env_id, n, episodes in ENV_CASES:
        if only and only not in label:
            continue
        t0 = time.perf_counter()
        out[label] = _digest_env(env_id, n, episodes)
        print(f"{label:<22} {out[label][:16]}  {time.perf_counter() - t0:6.1f} s", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", type=Path, help="write the digests to this JSON file")
    ap.add_argument("--check", type=Path, help="compare with digests written before; exit 1 on a difference")
    ap.add_argument("--only", help="run only the cases whose label contains this")
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR"))
    args = ap.parse_args()
    digests = run(Path(args.data_dir) if args.data_dir else None, args.only)
    if args.write:
        args.write.write_text(json.dumps(digests, indent=1) + "\n")
    if args.check:
        expected = json.loads(args.check.read_text())
        bad = [k for k in digests if k in expected and expected[k] != digests[k]]
        missing = [k for k in digests if k not in expected]
        for k in bad:
            print(f"DIFFERENT: {k}")
        for k in missing:
            print(f"not in {args.check}: {k}")
        print(f"{len(digests) - len(bad) - len(missing)} identical, {len(bad)} different")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
