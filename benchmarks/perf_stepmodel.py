"""Micro-benchmark of step-time model calls (the simulator's hot path).

Usage: python benchmarks/perf_stepmodel.py [--calls 200000]
Reports calls/s for cold (cache-miss) and warm (repeated) prefill and decode calls.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from prfaas_gym.perf import build_step_time_model
from prfaas_gym.profiles import get_hardware, get_model


def bench(label: str, fn, args: list) -> None:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for a in args:
        fn(*a)
    dt = time.perf_counter() - t0
    print(f"{label:<48} {len(args) / dt:>12,.0f} calls/s  ({dt / len(args) * 1e6:.2f} us/call)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=200_000)
    n = ap.parse_args().calls
    rng = np.random.default_rng(0)
    for model, hw, gpus in (("llama3-8b", "h100-sxm", 1), ("prfaas-1t-hybrid", "h20", 8)):
        for spec in (None, {"backend": "polynomial", "prefill_s": [0.4691, 1.3004e-4, 2.94e-10], "decode_step_s": 0.025}):
            stm = build_step_time_model(spec, get_model(model), get_hardware(hw), gpus)
            name = f"{model}/{(spec or {}).get('backend', 'roofline')}"
            lens = rng.integers(128, 32768, size=n // 10)
            cold = [([(int(l), 0)],) for l in lens]
            bench(f"{name} prefill cold (unique lengths)", stm.prefill_s, cold)
            warm = [([(int(lens[i % 64]), 0)],) for i in range(n)]
            bench(f"{name} prefill warm", stm.prefill_s, warm)
            dec = [(int(b), int(b) * int(c)) for b, c in zip(rng.integers(1, 64, n), rng.integers(100, 400, n) * 64)]
            bench(f"{name} decode (quantised contexts)", stm.decode_s, dec)


if __name__ == "__main__":
    main()
