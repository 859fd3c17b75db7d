"""End-to-end check against a peer simulator: NVIDIA Dynamo's trace replay (vLLM mocker).

Usage: python benchmarks/peer_check.py [--data-dir ../shared/data] [--requests 800] [--loads 0.1,0.5,0.85] [--also-ours] [--diagnose]

Matched single-datacenter 1P1D deployments (one prefill and one decode instance of the same GPU
and TP) serve the same Poisson trace at loads from light to 85% of capacity:

* **ours**: the simulator with the ``vllm`` engine profile of the roofline, chunked prefill under
  vLLM's token budget (``max_num_batched_tokens`` 8192, ``max_num_seqs`` 256), no prefix reuse;
* **peer**: ``dynamo.replay.run_trace_replay`` (ai-dynamo 1.6.1) with the vLLM mocker backend,
  1 prefill + 1 decode worker, the same scheduler limits, timed by a mocker profile (NPZ) built
  from AIConfigurator's database sums (``prfaas_gym.perf.aic_tables.database_step``: prefill
  step by prompt length, decode step by batch and context);
* **peer on our step times** (``--also-ours``): the same replay timed by our roofline instead,
  which isolates scheduling/TTFT-definition differences from step-time differences;
* **ours with the peer's rules** (``--diagnose``): our simulator with the mocker's prefill
  batching rule (a step costs one prompt of its summed new tokens), then also with the
  database's step times, to trace what remains.

Both report TTFT and TPOT as the client sees them in vLLM disaggregated serving: the first token
arrives from the decode worker after its first step on the transferred KV (the peer's
``ttft_ms``; ours = decode start + that request's mean decode step), TPOT = mean time per output
token after the first. Capacity = the lower of the prefill and decode throughput of the
database's step times at the trace's mean lengths.

The peer is an optional extra (``pip install -e .[peer]``; see docs/step_time_model.md for the
``--no-deps`` install its NVIDIA-index dependency forces). Without it the script says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prfaas_gym.perf.aic_tables import AicTables, database_step
from prfaas_gym.perf.roofline import RooflineModel
from prfaas_gym.profiles import get_hardware, get_model
from prfaas_gym.scenario.loader import parse_scenario
from prfaas_gym.sim import Simulator
from prfaas_gym.workload import Request

MAX_TOKENS = 8192  # vLLM max_num_batched_tokens default (V1, chunked prefill)
MAX_SEQS = 256  # vLLM max_num_seqs default


@dataclass(frozen=True)
class Case:
    """A matched 1P1D deployment."""

    name: str
    model: str
    hardware: str
    gpus: int


CASES = (Case("llama3-8b TP1 H100", "llama3-8b", "h100-sxm", 1),
         Case("llama3-70b TP4 H200", "llama3-70b", "h200-sxm", 4))
ISL = (1024, 4096)  # uniform prompt lengths
OSL = (64, 384)  # uniform output lengths


def make_requests(n: int, rate: float, seed: int) -> list[Request]:
    """Poisson arrivals, uniform prompt/output lengths, no shared prefixes."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.exponential(1.0 / rate, n))
    isl = rng.integers(ISL[0], ISL[1] + 1, n)
    osl = rng.integers(OSL[0], OSL[1] + 1, n)
    return [Request(rid=i, arrival_s=float(t[i]), input_tokens=int(isl[i]), output_tokens=int(osl[i]))
            for i in range(n)]


# ----------------------------------------------------------------------------------- timing profiles
def profile_arrays(step_prefill, step_decode, max_ctx: int) -> dict[str, np.ndarray]:
    """Mocker NPZ arrays: prefill ms by prompt length, decode ms on (active KV tokens, context) grid."""
    isl = np.unique(np.round(np.geomspace(16, 16384, 40)).astype(int))
    kv = np.linspace(0, MAX_SEQS * max_ctx, 48)
    ctx = np.linspace(1, max_ctx, 48)
    itl = np.zeros((len(kv), len(ctx)))
    for i, k in enumerate(kv):
        for j, c in enumerate(ctx):
            b = int(min(MAX_SEQS, max(1, round(k / c))))
            itl[i, j] = step_decode(b, int(b * c))
    return {"prefill_isl": isl.astype(float), "prefill_ttft_ms": np.array([step_prefill(int(n)) for n in isl]),
            "decode_active_kv_tokens": kv, "decode_context_length": ctx, "decode_itl": itl}


def db_timing(tab: AicTables, case: Case):
    model = get_model(case.model)

    def pre(n: int) -> float:
        return sum(database_step(tab, model, case.gpus, [(n, 0)]).values())

    def dec(b: int, ctx: int) -> float:
        return sum(database_step(tab, model, case.gpus, batch=b, context_tokens=ctx).values())
    return pre, dec


def our_timing(case: Case):
    rm = RooflineModel(get_model(case.model), get_hardware(case.hardware), case.gpus, engine="vllm")
    return (lambda n: rm.prefill_s([(n, 0)]) * 1e3), (lambda b, ctx: rm.decode_s(b, ctx) * 1e3)


def capacity_rps(pre, dec) -> float:
    """Lower of prefill (full 8192-token steps) and decode (256-sequence batches) throughput."""
    mean_isl, mean_osl = sum(ISL) / 2, sum(OSL) / 2
    prefill_rps = MAX_TOKENS / (pre(MAX_TOKENS) / 1e3) / mean_isl
    ctx = mean_isl + mean_osl / 2
    decode_rps = MAX_SEQS / (dec(MAX_SEQS, int(MAX_SEQS * ctx)) / 1e3) / mean_osl
    return min(prefill_rps, decode_rps)


# ------------------------------------------------------------------------------------------ runs
class SummedPrefill:
    """Our step-time model with the peer's prefill batching rule (diagnostic): a prefill step
    costs one prompt of the step's summed new tokens (the mocker's ``sum_prefill_tokens``)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def prefill_s(self, seqs) -> float:
        total = sum(int(n) for n, _ in seqs)
        return self.inner.prefill_s([(total, 0)]) if total else 0.0

    def decode_s(self, batch: int, context_tokens: int) -> float:
        return self.inner.decode_s(batch, context_tokens)


class PeerSteps:
    """The peer's step times in our simulator (diagnostic): the database's sums, prefill by the
    step's summed new tokens, decode by batch and context (context rounded to 64 tokens)."""

    def __init__(self, pre, dec) -> None:
        import functools
        self._pre = functools.lru_cache(maxsize=None)(pre)
        self._dec = functools.lru_cache(maxsize=None)(dec)

    def prefill_s(self, seqs) -> float:
        total = sum(int(n) for n, _ in seqs)
        return self._pre(total) / 1e3 if total else 0.0

    def decode_s(self, batch: int, context_tokens: int) -> float:
        return self._dec(int(batch), int(round(context_tokens / 64)) * 64) / 1e3 if batch else 0.0


def run_ours(case: Case, reqs: list[Request], summed_prefill: bool = False, steps=None) -> dict[str, np.ndarray]:
    raw = {
        "name": "peer-check", "model": case.model, "seed": 0, "slo": {"ttft_s": 100.0, "tpot_s": 10.0},
        "run": {"requests": len(reqs)},
        "clusters": [{"name": "pd", "datacenter": "dc0", "kind": "pd", "hardware": case.hardware,
                      "gpus_per_instance": case.gpus, "instances": 2, "prefill_instances": 1,
                      "step_time": {"backend": "roofline", "engine": "vllm"},
                      "prefill": {"max_batch_tokens": MAX_TOKENS, "max_batch": MAX_SEQS, "chunked": True},
                      "decode": {"max_batch": MAX_SEQS}, "prefix_cache_gb": 0}],
        "router": {"name": "local-only"},
        "workload": {"kind": "synthetic", "arrival": {"process": "poisson", "rate_rps": 1.0},
                     "input_tokens": {"dist": "constant", "value": 1024},
                     "output_tokens": {"dist": "constant", "value": 64}},
    }
    sc = parse_scenario(raw, "<peer_check>")
    fresh = [Request(rid=r.rid, arrival_s=r.arrival_s, input_tokens=r.input_tokens, output_tokens=r.output_tokens)
             for r in reqs]
    sim = Simulator(sc, seed=0, requests=fresh)
    for cl in sim.clusters:  # instances read their cluster's model at every step
        if steps is not None:
            cl.stm = steps
        elif summed_prefill:
            cl.stm = SummedPrefill(cl.stm)
    sim.run()
    done = [r for r in sim.requests if not r.rejected and math.isfinite(r.finish_s)]
    steps = np.array([(r.finish_s - r.decode_start_s) / max(r.output_tokens - 1, 1) for r in done])
    ttft = np.array([r.decode_start_s - r.arrival_s for r in done]) + steps
    tpot = np.array([(r.finish_s - r.arrival_s - t) / max(r.output_tokens - 1, 1) for r, t in zip(done, ttft)])
    return {"ttft_ms": ttft * 1e3, "tpot_ms": tpot * 1e3, "ttft_prefill_ms": np.array([r.ttft_s for r in done]) * 1e3}


def run_peer(reqs: list[Request], npz: Path, workdir: Path) -> dict[str, np.ndarray]:
    from dynamo.replay import run_trace_replay

    trace = workdir / "trace.jsonl"
    with open(trace, "w") as fh:
        for r in reqs:
            blocks = math.ceil(r.input_tokens / 64)
            fh.write(json.dumps({"timestamp": round(r.arrival_s * 1e3, 3), "input_length": r.input_tokens,
                                 "output_length": r.output_tokens,
                                 "hash_ids": list(range(r.rid * 1000, r.rid * 1000 + blocks))}) + "\n")
    tm = {"type": "external", "provider": "dynamo_profile", "config": {"path": str(npz)}}
    common = {"backend": "vllm", "timing_model": tm, "enable_prefix_caching": False, "enable_chunked_prefill": True,
              "max_num_batched_tokens": MAX_TOKENS, "max_num_seqs": MAX_SEQS, "num_gpu_blocks": 200_000,
              "block_size": 64}
    rep = run_trace_replay(str(trace), trace_block_size=64,
                           prefill_engine_args={"engine": {**common, "worker_type": "prefill"}},
                           decode_engine_args={"engine": {**common, "worker_type": "decode"}},
                           num_prefill_workers=1, num_decode_workers=1, capture_per_request=True)
    rows = [p for p in rep.per_request if p.get("terminal_status") == "completed"]
    return {"ttft_ms": np.array([p["ttft_ms"] for p in rows]),
            "tpot_ms": np.array([(p["e2e_latency_ms"] - p["ttft_ms"]) / max(p["output_length"] - 1, 1) for p in rows])}


def pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=os.environ.get("PRFAAS_DATA_DIR", "../shared/data"))
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--loads", default="0.1,0.5,0.85", help="fractions of capacity")
    ap.add_argument("--also-ours", action="store_true", help="also replay the peer on our step times")
    ap.add_argument("--diagnose", action="store_true",
                    help="also run ours with the peer's prefill batching rule (T of the summed tokens)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    try:
        import dynamo.replay  # noqa: F401
    except ImportError as exc:
        print(f"peer_check: the peer is not installed ({exc}); see docs/step_time_model.md, 'Peer check'",
              file=sys.stderr)
        return 2
    loads = [float(x) for x in args.loads.split(",")]
    print("| deployment | load | rate req/s | TTFT p50 ours/peer | TTFT p90 ours/peer | TPOT p50 ours/peer | "
          "TPOT p90 ours/peer | TTFT p50 ms ours / peer | TPOT p50 ms ours / peer |" +
          (" TTFT p50 peer(our steps)/peer |" if args.also_ours else "") +
          (" TTFT p50 ours(peer's batching)/peer | TTFT p50 ours(peer's batching and steps)/peer |"
           if args.diagnose else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if args.also_ours else "") +
          ("---|---|" if args.diagnose else ""))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for case in CASES:
            tab = AicTables.for_hardware(args.data_dir, case.hardware)
            pre, dec = db_timing(tab, case)
            max_ctx = ISL[1] + OSL[1]
            np.savez(work / "db.npz", **profile_arrays(pre, dec, max_ctx))
            if args.also_ours:
                np.savez(work / "ours.npz", **profile_arrays(*our_timing(case), max_ctx))
            cap = capacity_rps(pre, dec)
            for load in loads:
                reqs = make_requests(args.requests, load * cap, args.seed)
                o = run_ours(case, reqs)
                p = run_peer(reqs, work / "db.npz", work)
                cells = [f"{pct(o[k], q) / pct(p[k], q):.3f}" for k, q in
                         (("ttft_ms", 50), ("ttft_ms", 90), ("tpot_ms", 50), ("tpot_ms", 90))]
                line = (f"| {case.name} | {load:.0%} | {load * cap:.2f} | " + " | ".join(cells) +
                        f" | {pct(o['ttft_ms'], 50):.1f} / {pct(p['ttft_ms'], 50):.1f}"
                        f" | {pct(o['tpot_ms'], 50):.2f} / {pct(p['tpot_ms'], 50):.2f} |")
                if args.also_ours:
                    q = run_peer(reqs, work / "ours.npz", work)
                    line += f" {pct(q['ttft_ms'], 50) / pct(p['ttft_ms'], 50):.3f} |"
                if args.diagnose:
                    d = run_ours(case, reqs, summed_prefill=True)
                    e = run_ours(case, reqs, steps=PeerSteps(pre, dec))
                    line += (f" {pct(d['ttft_ms'], 50) / pct(p['ttft_ms'], 50):.3f} |"
                             f" {pct(e['ttft_ms'], 50) / pct(p['ttft_ms'], 50):.3f} |")
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
