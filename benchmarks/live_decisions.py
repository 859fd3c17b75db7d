"""Live routing speed (#14): decisions in-process and requests through the gateway.

1. **In-process**: ``LiveRouter.decide`` (snapshot + request features + the bundle's numpy
   policy) over the bursty scenario's prompts, block hashes precomputed (hashing is reported
   separately: the gateway does it once per request). Target p99 < 1 ms.
2. **Through the gateway** at concurrency 1, 8, 64: ``prfaas-gym gateway`` and
   ``prfaas-gym stub-engines`` run as child processes, both at ``--time-scale 1e-3`` (a
   2K-token prefill takes under 1 ms; the router's clock runs at the same rate), so what is
   measured is mostly HTTP + routing. A request is a streaming ``/v1/completions`` with a 2,048-token prompt (token ids) and ``max_tokens=1``;
   the gateway does the full P/D hand-off (prefill call, then decode call). Reported: requests
   per second, p50/p99 latency, and the gateway's own decision-latency histogram (its
   ``/metrics``). Target p99 < 5 ms at concurrency 64.
3. **Added latency** at concurrency 1: the same request sent straight to one stub engine
   (which then prefills and decodes itself) vs through the gateway; target: the gateway adds
   < 2 ms p50.

The client runs in this process on the same cores as the gateway and the stubs (the machine
has 2): the figures include that contention. Run from the repository root:

    nice -n 10 python benchmarks/live_decisions.py [--requests 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prfaas_gym.export import RouterBundle, export_router_bundle  # noqa: E402
from prfaas_gym.live import EngineMetrics, LiveRouter, parse_topology  # noqa: E402
from prfaas_gym.live.replay import trace_tokens  # noqa: E402
from prfaas_gym.live.stub_engine import stub_topology_doc  # noqa: E402


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def in_process(bundle, doc, n: int) -> dict:
    from prfaas_gym.api import build_simulator

    topo = parse_topology(doc, bundle)
    router = LiveRouter(topo, bundle)
    for w in topo.workers:
        router.state.observe(w.name, EngineMetrics(1.0, 2.0, 0.3, 1e6, router.clock()))
    sim = build_simulator(bundle.manifest["source"]["env_kwargs"]["scenario"], n_requests=n)
    reqs = sim.requests[:n]
    toks = trace_tokens(reqs)
    t = time.perf_counter()
    hashes = [router.hashes(x) for x in toks]
    hash_us = (time.perf_counter() - t) / len(toks) * 1e6
    lat = []
    for i, (x, h) in enumerate(zip(toks, hashes)):
        if i % 200 == 0:  # a scrape: fresh metrics, so the policy (not the stale fallback) decides
            for w in topo.workers:
                router.state.observe(w.name, EngineMetrics(1.0, 2.0, 0.3, 1e6, router.clock()))
        t = time.perf_counter()
        d = router.decide(len(x), h)
        lat.append(time.perf_counter() - t)
        if not d.reject:  # keep a realistic load in the ledger: book, and end every 4th
            router.prefill_sent(i, d)
            if i % 4 == 0:
                router.finished(i, d)
    return {"decisions": n, "decisions_per_s": n / sum(lat), "p50_us": pct(lat, 50) * 1e6,
            "p99_us": pct(lat, 99) * 1e6, "hash_us_per_request": hash_us,
            "mean_prompt_tokens": float(np.mean([len(x) for x in toks])), "fallbacks": dict(router.fallbacks)}


def _spawn(args: list[str], ready: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env)
    line = p.stdout.readline()
    if ready not in line:
        p.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return p


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load(url: str, body: bytes, n: int, conc: int) -> tuple[list[float], float, int, int]:
    """``n`` requests from ``conc`` concurrent clients: latencies of the 200s, the span, the 429
    count, and the count of transport errors (a connection reset or refused is counted and
    reported, not allowed to abort the measurement)."""
    import httpx

    lat: list[float] = []
    rejected = [0]
    errors = [0]
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=conc + 8)) as c:
        left = [n]

        async def worker():
            while left[0] > 0:
                left[0] -= 1
                t = time.perf_counter()
                try:
                    async with c.stream("POST", url, content=body,
                                        headers={"content-type": "application/json"}) as r:
                        async for _ in r.aiter_raw():
                            pass
                        if r.status_code == 429:
                            rejected[0] += 1
                            continue
                        if r.status_code != 200:
                            raise RuntimeError(f"HTTP {r.status_code}")
                except httpx.TransportError:
                    errors[0] += 1
                    continue
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return lat, time.perf_counter() - t0, rejected[0], errors[0]


def _decision_hist(url: str) -> dict:
    """The gateway's decision-latency histogram: count and the bucket bounds holding p50/p99."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        if fam.name == "prfaas_gateway_decision_seconds":
            buckets = sorted((float(s.labels["le"]), s.value) for s in fam.samples if s.name.endswith("_bucket"))
            total = buckets[-1][1]

            def q(p: float) -> float:
                return next(le for le, c in buckets if c >= p * total)

            return {"count": total, "p50_at_most_s": q(0.5), "p99_at_most_s": q(0.99)}
    return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per gateway measurement (2000)")
    ap.add_argument("--decisions", type=int, default=5000, help="in-process decisions (5000)")
    ap.add_argument("--json", default=None, help="write the results here too")
    ap.add_argument("--base-port", type=int, default=18500)
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    bundle_dir = export_router_bundle("trained:routing-bursty", Path(tmp.name) / "bundle")
    bundle = RouterBundle.load(bundle_dir)
    doc = stub_topology_doc(bundle, args.base_port)
    out = {"load_average_before": os.getloadavg()}
    out["in_process"] = in_process(bundle, doc, args.decisions)
    print(json.dumps(out["in_process"]), flush=True)
    out.update(gateway_runs(bundle_dir, doc, args.requests))
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def gateway_runs(bundle_dir: Path, doc: dict, n: int) -> dict:
    """Stub engines and the gateway as child processes; the load from here."""
    import httpx
    import yaml

    tmp = tempfile.TemporaryDirectory()
    topo_path = Path(tmp.name) / "live.yaml"
    topo_path.write_text(yaml.safe_dump({**doc, "max_snapshot_age_s": 3600, "decision_timeout_ms": 1000}))
    procs = []
    try:
        procs.append(_spawn(["stub-engines", "--topology", str(topo_path), "--bundle", str(bundle_dir),
                             "--time-scale", "1e-3"], "stub engines up"))
        port = _free_port()
        procs.append(_spawn(["gateway", "--topology", str(topo_path), "--bundle", str(bundle_dir),
                             "--port", str(port), "--scrape-interval-s", "0.5", "--time-scale", "1e-3"],
                            "gateway with"))
        gw = f"http://127.0.0.1:{port}"
        httpx.get(gw + "/health", timeout=30)
        prompt = list(np.random.default_rng(0).integers(1, 50_000, 2048).tolist())
        body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": 1, "stream": True}).encode()
        res = {}
        asyncio.run(_load(gw + "/v1/completions", body, 100, 4))  # warm-up (connections, caches)
        for conc in (1, 8, 64):
            lat, span, rej, err = asyncio.run(_load(gw + "/v1/completions", body, n, conc))
            res[f"gateway_c{conc}"] = {"requests_per_s": (len(lat) + rej) / span, "p50_ms": pct(lat, 50) * 1e3,
                                       "p99_ms": pct(lat, 99) * 1e3, "rejected": rej, "transport_errors": err}
            print(conc, json.dumps(res[f"gateway_c{conc}"]), flush=True)
        res["gateway_decision_histogram"] = _decision_hist(gw)
        # the same request straight to one engine (it prefills and decodes itself)
        direct = doc["clusters"]["pd"]["workers"][0]["url"] + "/v1/completions"
        lat_d = asyncio.run(_load(direct, body, n, 1))[0]
        lat_g = asyncio.run(_load(gw + "/v1/completions", body, n, 1))[0]
        res["added_c1"] = {"direct_p50_ms": pct(lat_d, 50) * 1e3, "gateway_p50_ms": pct(lat_g, 50) * 1e3,
                           "added_p50_ms": (pct(lat_g, 50) - pct(lat_d, 50)) * 1e3}
        print(json.dumps(res["added_c1"]), flush=True)
        return res
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=20)
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
