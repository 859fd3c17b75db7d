"""The sim-to-live check: one trace through the simulator and through the live stack.

:func:`sim_to_live` runs the bundle's scenario in the simulator with the bundle as router
(:class:`~prfaas_gym.export.bundle.BundleRouter`), recording each request's slot, then
replays the same requests, at the arrival times the simulator realised, through a
:class:`~prfaas_gym.live.gateway.Gateway` in front of :class:`~prfaas_gym.live.stub_engine.StubWorld`
engines (one per simulated instance, in the same roles), time-scaled. It reports how often
the live decision equals the simulated one (overall and per simulated slot) and compares the
client TTFT (simulator: ``decode_start - arrival``; live: first streamed byte) and SLO
attainment of TTFT. This makes the digital-twin claim measurable: disagreement comes from
what the live router cannot see exactly (scrape staleness, its own wait model, its prefix
index vs the simulator's cache) and from the stubs' simplified engines.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from prfaas_gym.export.bundle import BundleRouter, RouterBundle


class _RecordingRouter(BundleRouter):
    """A :class:`BundleRouter` that remembers the slot it chose for each request.
    ``oracle``: show the policy the true output length (as it was trained) or 0 (as live)."""

    def __init__(self, bundle: RouterBundle, oracle: bool | None = None) -> None:
        super().__init__(bundle)
        if oracle is not None:
            self.oracle_output_len = bool(oracle)
        self.slots: dict[int, str] = {}
        self._last = -1

    def act(self, obs: np.ndarray, mask: np.ndarray) -> int:
        self._last = super().act(obs, mask)
        return self._last

    def route(self, req: Any, view: Any) -> Any:
        d = super().route(req, view)
        self.slots[req.rid] = self.bundle.slot_labels[self._last]
        return d


def _fresh(reqs: list) -> list:
    """Copies of simulated requests as open-loop arrivals at their realised times (timelines
    cleared), rids renumbered densely in arrival order as the simulator expects."""
    from prfaas_gym.workload.request import Request

    return [Request(i, r.arrival_s, r.input_tokens, r.output_tokens, r.hash_ids) for i, r in enumerate(reqs)]


def _pcts(xs: list[float]) -> dict[str, float]:
    xs = [x for x in xs if math.isfinite(x)]
    if not xs:
        return {"p50": math.nan, "p90": math.nan, "mean": math.nan}
    return {"p50": float(np.percentile(xs, 50)), "p90": float(np.percentile(xs, 90)), "mean": float(np.mean(xs))}


def _start_stub_process(topology_path: Path, bundle_dir: Path, time_scale: float) -> subprocess.Popen:
    """``prfaas-gym stub-engines`` in its own process (its own GIL: the engines' timers must
    not wait for the gateway's turns); returns once it reports the engines up."""
    import prfaas_gym

    env = dict(os.environ, PYTHONPATH=str(Path(prfaas_gym.__file__).resolve().parent.parent))
    proc = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", "stub-engines", "--topology", str(topology_path),
                             "--bundle", str(bundle_dir), "--time-scale", str(time_scale)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if "stub engines up" not in line:
        proc.kill()
        raise RuntimeError(f"stub engines did not start: {line.strip() or proc.stderr.read()[-300:]}")
    return proc


def sim_to_live(bundle_dir: str | Path, *, n_requests: int = 200, seed: int = 0, time_scale: float = 0.05,
                scrape_interval_s: float = 1.0, base_port: int = 18100, max_tokens_cap: int | None = None,
                sim_oracle: bool | None = None) -> dict[str, Any]:
    """Run the check (module docstring) for the bundle in ``bundle_dir``; the stub engines run
    in a child process. ``scrape_interval_s`` is in modelled seconds. ``sim_oracle``: whether
    the simulated router sees the true output length (default: as the policy was trained; the
    live router never does). Also reports how often the simulated router's decisions with and
    without that oracle feature agree on the same trace (``oracle_effect``)."""
    from prfaas_gym.api import build_simulator
    from prfaas_gym.export.server import Service
    from prfaas_gym.live.gateway import Gateway
    from prfaas_gym.live.replay import replay, trace_tokens
    from prfaas_gym.live.router import LiveRouter
    from prfaas_gym.live.stub_engine import stub_topology_doc
    from prfaas_gym.live.topology import parse_topology

    import tempfile

    import yaml

    bundle_dir = Path(bundle_dir)
    bundle = RouterBundle.load(bundle_dir)
    scenario = bundle.manifest["source"]["env_kwargs"].get("scenario") or bundle.manifest["scenario"]
    # the scenario's own (closed-loop) run fixes the arrivals; the comparison replays them
    # open loop, in the simulator and live alike
    first = build_simulator(scenario, _RecordingRouter(bundle, sim_oracle), n_requests=n_requests, seed=seed)
    first.run()
    arrivals = sorted(first.arrived, key=lambda r: r.arrival_s)
    rec = _RecordingRouter(bundle, sim_oracle)
    sim = build_simulator(scenario, rec, requests=_fresh(arrivals), seed=seed)
    sim.run()
    reqs = sorted(sim.requests, key=lambda r: r.rid)
    # the same policy with the output-length feature flipped, on the same arrivals: how much
    # of a disagreement that feature alone explains
    other = _RecordingRouter(bundle, not rec.oracle_output_len)
    build_simulator(scenario, other, requests=_fresh(arrivals), seed=seed).run()
    oracle_agree = sum(other.slots.get(r.rid) == rec.slots.get(r.rid) for r in reqs) / max(1, len(reqs))
    tokens = trace_tokens(reqs)

    doc = stub_topology_doc(bundle, base_port)
    topo = parse_topology(doc, bundle, "<sim-to-live>")
    tmp = tempfile.TemporaryDirectory()
    topo_path = Path(tmp.name) / "live.yaml"
    topo_path.write_text(yaml.safe_dump(doc))
    stubs = _start_stub_process(topo_path, bundle_dir, time_scale)
    t0 = time.monotonic()
    router = LiveRouter(topo, bundle, clock=lambda: (time.monotonic() - t0) / time_scale)
    gw = Gateway(router, scrape_interval_s=scrape_interval_s * time_scale)
    svc = Service(gw.app(), "127.0.0.1", 0).start_in_thread()
    url = f"http://127.0.0.1:{svc.port}"
    try:
        import httpx

        httpx.get(url + "/health", timeout=30)
        wall = time.perf_counter()
        results = asyncio.run(replay(url, reqs, tokens, time_scale=time_scale, max_tokens_cap=max_tokens_cap))
        wall = time.perf_counter() - wall
    finally:
        svc.stop()
        stubs.terminate()
        stubs.wait(timeout=20)
        tmp.cleanup()
    slo = sim.scenario.ttft_slo_s
    agree = Counter()
    total = Counter()
    confusion: Counter[tuple[str, str]] = Counter()
    for r, res in zip(reqs, results):
        s_slot = rec.slots.get(r.rid, "reject" if r.rejected else "?")
        l_slot = res.slot if res.status != 429 else "reject"
        total[s_slot] += 1
        agree[s_slot] += s_slot == l_slot
        confusion[(s_slot, l_slot)] += 1
    sim_ttft = [r.ttft_client_s if not r.rejected else math.nan for r in reqs]
    live_ttft = [res.ttft_s for res in results]
    both = [(a, b) for a, b in zip(sim_ttft, live_ttft) if math.isfinite(a) and math.isfinite(b)]

    def attain(xs: list[float]) -> float:
        return sum(1 for x in xs if math.isfinite(x) and x <= slo) / len(xs) if xs else math.nan

    return {
        "scenario": sim.scenario.name, "bundle": bundle.name, "requests": len(reqs), "seed": seed,
        "time_scale": time_scale, "scrape_interval_s": scrape_interval_s, "wall_s": wall,
        "sim_oracle_output_len": rec.oracle_output_len,
        "agreement": sum(agree.values()) / max(1, len(reqs)),
        "oracle_effect": {"sim_agreement_with_oracle_flipped": oracle_agree,
                          "sim_slots_with_oracle_flipped": dict(Counter(other.slots.values()))},
        "agreement_by_sim_slot": {k: (agree[k], total[k]) for k in sorted(total)},
        "confusion": {f"{a} -> {b}": n for (a, b), n in sorted(confusion.items())},
        "ttft_sim_s": _pcts(sim_ttft), "ttft_live_s": _pcts(live_ttft),
        "ttft_live_over_sim_median": float(np.median([b / a for a, b in both if a > 0])) if both else math.nan,
        "ttft_slo_attainment": {"sim": attain(sim_ttft), "live": attain(live_ttft)},
        "rejected": {"sim": sum(r.rejected for r in reqs), "live": sum(res.status == 429 for res in results)},
        "failed_live": sum(res.status not in (200, 429) for res in results),
        "fallbacks": dict(router.fallbacks),
    }
