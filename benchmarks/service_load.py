"""Router service under load and abuse (loopback only): ``prfaas-gym serve`` in its own process.

1. Closed-loop load at concurrency 1, 8 and 64: each client holds one keep-alive connection
   and sends the bundle's example ``POST /route`` body again as soon as it has the answer.
   Reported: decisions/s, latency p50/p99/max, requests left without an answer.
2. 1,000 idle slow connections (half silent, half trickling a header byte every 0.5 s) held
   open while one legitimate client measures latency; then how many of the 1,000 the server
   still holds after its read timeout (should be 0: it drops them).

Targets (issue 16): p99 < 10 ms at 64 concurrent clients, no request slower than 100 ms while
1,000 idle connections are held, 0 connections left hanging.

    python benchmarks/service_load.py [--seconds 3] [--idle 1000] [--workers N] [--json]

The load generator runs in this process (asyncio on uvloop, raw HTTP/1.1), the server in
another (``--workers`` processes): on a 2-core machine they compete for the same cores, so
figures are an upper bound on latency. Both sides' CPU per request is reported (the server's
summed over its workers, the load generator's own), and the load average before and after:
at concurrency 64 a closed loop's latency is 64 / throughput, so whatever else runs on the
machine shows up directly in p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_P99_S, TARGET_IDLE_MAX_S = 0.010, 0.100


def start_server(bundle: Path, read_timeout_s: float, extra: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", "serve", str(bundle), "--port", "0",
                             "--read-timeout-s", str(read_timeout_s), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r":(\d+)/route", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r} {proc.stderr.read()[:500]}")
    return proc, int(m.group(1))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (the ``--workers``), from
    Linux ``/proc``, whatever else loads the machine."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    try:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        children = []
    return own + sum(cpu_seconds(int(c)) for c in children)


def request_bytes(body: bytes) -> bytes:
    return (b"POST /route HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    await reader.readexactly(n)
    return status


async def client(port: int, req: bytes, until: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            t0 = time.perf_counter()
            writer.write(req)
            try:
                status = await asyncio.wait_for(read_response(reader), timeout=15)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                errors.append(1)
                return
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def load(port: int, req: bytes, concurrency: int, seconds: float) -> dict:
    lat: list[float] = []
    errors: list[int] = []
    until = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(client(port, req, until, lat, errors) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    a = np.array(lat)
    return {"concurrency": concurrency, "requests": len(lat), "decisions_per_s": len(lat) / wall,
            "p50_ms": float(np.percentile(a, 50) * 1e3), "p99_ms": float(np.percentile(a, 99) * 1e3),
            "max_ms": float(a.max() * 1e3), "errors": len(errors)}


async def idle_attack(port: int, req: bytes, n_idle: int, seconds: float, read_timeout_s: float) -> dict:
    conns = []
    for i in range(n_idle):
        conns.append(await asyncio.open_connection("127.0.0.1", port))

    async def trickle(writer: asyncio.StreamWriter) -> None:
        try:
            for b in b"POST /route HTTP/1.1\r\nHost: slow\r\n":
                writer.write(bytes([b]))
                await asyncio.sleep(0.5)
        except (ConnectionError, RuntimeError):
            pass

    tricklers = [asyncio.create_task(trickle(w)) for _, w in conns[::2]]
    measured = await load(port, req, 1, seconds)
    # the server should drop every idle connection once its read timeout has passed
    await asyncio.sleep(max(0.0, read_timeout_s + 1.5 - seconds))
    still_open = 0
    for reader, _ in conns:
        try:
            data = await asyncio.wait_for(reader.read(1), timeout=0.01)
            still_open += 0 if data == b"" else 1
        except asyncio.TimeoutError:
            still_open += 1
        except ConnectionError:
            pass
    for t in tricklers:
        t.cancel()
    for _, w in conns:
        w.close()
    return {"idle_connections": n_idle, "legit_requests": measured["requests"], "legit_p99_ms": measured["p99_ms"],
            "legit_max_ms": measured["max_ms"], "legit_errors": measured["errors"],
            "idle_still_open_after_timeout": still_open}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="per load level (default 3)")
    ap.add_argument("--idle", type=int, default=1000, help="idle slow connections (default 1000)")
    ap.add_argument("--read-timeout-s", type=float, default=5.0, help="server read timeout (default 5)")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    ap.add_argument("--client-loop", choices=("uvloop", "asyncio"), default="uvloop",
                    help="the load generator's event loop (default uvloop: the cheaper client)")
    ap.add_argument("--server-args", default="", help="extra `serve` options, e.g. '--loop asyncio'")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle + 256)), hard))

    from prfaas_gym.export import RouterBundle, export_router_bundle

    if args.client_loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    with tempfile.TemporaryDirectory() as tmp:
        bundle = export_router_bundle("trained:routing-bursty", Path(tmp) / "b")
        body = json.dumps(RouterBundle.load(bundle).manifest["example_route_body"]).encode()
        req = request_bytes(body)
        proc, port = start_server(bundle, args.read_timeout_s, [*(["--workers", str(args.workers)] if args.workers > 1 else []), *args.server_args.split()])
        try:
            rows = []
            for c in (1, 8, 64):
                cpu0, own0 = cpu_seconds(proc.pid), time.process_time()
                row = asyncio.run(load(port, req, c, args.seconds))
                n = max(row["requests"], 1)
                row["server_cpu_us_per_request"] = (cpu_seconds(proc.pid) - cpu0) / n * 1e6
                row["client_cpu_us_per_request"] = (time.process_time() - own0) / n * 1e6
                rows.append(row)
            idle = asyncio.run(idle_attack(port, req, args.idle, min(args.seconds, args.read_timeout_s - 1),
                                           args.read_timeout_s))
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
    p64 = next(r for r in rows if r["concurrency"] == 64)
    log = [l for l in err.strip().splitlines() if l and not l.startswith("prfaas-gym: terminated")]
    doc = {"config": {"workers": args.workers, "client_loop": args.client_loop, "seconds": args.seconds,
                      "load_average_before": load_before, "load_average_after": os.getloadavg()[0]},
           "load": rows, "idle": idle, "server_log_lines": len(log),
           "targets": {"p99_ms_at_64": {"target": TARGET_P99_S * 1e3, "measured": p64["p99_ms"],
                                        "met": p64["p99_ms"] < TARGET_P99_S * 1e3},
                       "max_ms_with_idle": {"target": TARGET_IDLE_MAX_S * 1e3, "measured": idle["legit_max_ms"],
                                            "met": idle["legit_max_ms"] < TARGET_IDLE_MAX_S * 1e3},
                       "hanging": {"target": 0, "measured": sum(r["errors"] for r in rows) + idle["legit_errors"]
                                   + idle["idle_still_open_after_timeout"]}}}
    if args.json:
        print(json.dumps(doc, indent=1))
        return
    print(f"{'conc':>5} {'req':>7} {'dec/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} "
          f"{'server CPU us/req':>18} {'client CPU us/req':>18}")
    for r in rows:
        print(f"{r['concurrency']:>5} {r['requests']:>7} {r['decisions_per_s']:>8.0f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} {r['errors']:>6} {r['server_cpu_us_per_request']:>18.0f} "
              f"{r['client_cpu_us_per_request']:>18.0f}")
    print(f"with {idle['idle_connections']} idle slow connections: {idle['legit_requests']} legit requests, "
          f"p99 {idle['legit_p99_ms']:.2f} ms, max {idle['legit_max_ms']:.2f} ms, errors {idle['legit_errors']}; "
          f"idle connections still open after the read timeout: {idle['idle_still_open_after_timeout']}")
    for k, t in doc["targets"].items():
        print(f"target {k}: {t['measured']:.2f} vs {t['target']} -> {'met' if t.get('met', t['measured'] == 0) else 'MISSED'}")
    print(f"server log lines: {doc['server_log_lines']}; workers {args.workers}, client loop {args.client_loop}, "
          f"load average {load_before:.2f} before, {doc['config']['load_average_after']:.2f} after")
    for line in log[:3]:
        print(f"  {line[:160]}")


if __name__ == "__main__":
    main()
