"""The sim-to-live check (#14 item 6): one trace through the simulator and through the live
stack of stub engines behind the gateway (prfaas_gym/live/twin.py; docs/live.md).

    nice -n 10 python benchmarks/sim_to_live.py [--requests 120] [--time-scale 0.2] [--json out.json]

Exports the shipped bursty router, runs the bursty scenario with it in the simulator, replays
the realised arrivals through `prfaas-gym stub-engines` (a child process) and the gateway, and
prints decision agreement, client TTFT on both sides, and fallbacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prfaas_gym.export import export_router_bundle  # noqa: E402
from prfaas_gym.live.twin import sim_to_live  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="trained:routing-bursty")
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-scale", type=float, default=0.2, help="wall seconds per modelled second (0.2)")
    ap.add_argument("--scrape-interval-s", type=float, default=1.0, help="modelled seconds between scrapes (1)")
    ap.add_argument("--base-port", type=int, default=18300)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = export_router_bundle(args.policy, Path(tmp) / "bundle")
        out = sim_to_live(bundle_dir, n_requests=args.requests, seed=args.seed, time_scale=args.time_scale,
                          scrape_interval_s=args.scrape_interval_s, base_port=args.base_port)
    out["load_average_after"] = os.getloadavg()
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
