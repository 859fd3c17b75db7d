"""``prfaas-gym gateway`` and ``prfaas-gym stub-engines`` (docs/live.md)."""

from __future__ import annotations

import argparse


def add_live_parsers(sub) -> None:
    """Register ``gateway`` and ``stub-engines``."""
    p = sub.add_parser("gateway", help="OpenAI-compatible proxy routing with a trained bundle",
                       description="Proxy /v1/completions and /v1/chat/completions (streaming too) to the "
                                   "workers of a topology file, routed by the bundle, with the vLLM P/D "
                                   "hand-off; 429 on reject; Prometheus /metrics; /health (docs/live.md). "
                                   "Needs the live extra.")
    p.add_argument("--topology", required=True, metavar="YAML", help="topology file (workers per bundle cluster)")
    p.add_argument("--bundle", required=True, metavar="DIR", help="router bundle (prfaas-gym export)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    p.add_argument("--scrape-interval-s", type=float, default=0.5, help="engine /metrics scrape period (0.5)")
    p.add_argument("--policy-url", default=None, metavar="URL",
                   help="ask a `prfaas-gym serve` at URL instead of deciding in-process (falls back when it fails)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="wall seconds per modelled second of the router's clock: match stub engines run with "
                        "--time-scale (default 1: real engines)")
    p.add_argument("--dynamo", action="store_true",
                   help="book decisions in NVIDIA Dynamo's SelectionService, which also makes the fallback choice")
    p.set_defaults(func=run_gateway)

    p = sub.add_parser("stub-engines", help="CPU stub engines for every worker of a topology",
                       description="Serve an OpenAI-compatible stub engine (vLLM metric names, P/D hand-off) on "
                                   "every worker URL of a topology (loopback only), timed by the scenario's "
                                   "step-time model x --time-scale (docs/live.md).")
    p.add_argument("--topology", required=True, metavar="YAML", help="topology file")
    p.add_argument("--bundle", required=True, metavar="DIR", help="router bundle the topology is checked against")
    p.add_argument("--time-scale", type=float, default=1.0, help="wall seconds per modelled second (1.0)")
    p.set_defaults(func=run_stub_engines)


def _load(args: argparse.Namespace):
    from prfaas_gym.export.bundle import RouterBundle
    from prfaas_gym.live.topology import load_topology

    bundle = RouterBundle.load(args.bundle)
    return bundle, load_topology(args.topology, bundle)


def run_gateway(args: argparse.Namespace) -> int:
    """Handler of ``gateway``."""
    from prfaas_gym.export.server import Service, configure_logging, is_loopback
    from prfaas_gym.live.gateway import Gateway
    from prfaas_gym.live.router import LiveRouter, RemotePolicy

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: expected 0..65535, got {args.port}")
    if not 0.01 <= args.scrape_interval_s <= 3600:
        raise ValueError(f"--scrape-interval-s: expected 0.01..3600, got {args.scrape_interval_s}")
    if not 1e-9 <= args.time_scale <= 100:
        raise ValueError(f"--time-scale: expected 1e-9..100, got {args.time_scale}")
    bundle, topo = _load(args)
    clock = _scaled_clock(args.time_scale)
    policy = RemotePolicy(args.policy_url, timeout_s=topo.decision_timeout_s) if args.policy_url else None
    log = configure_logging()
    if args.dynamo:
        from prfaas_gym.live.dynamo import DynamoRouter

        router = DynamoRouter(topo, bundle, policy=policy, clock=clock)
    else:
        router = LiveRouter(topo, bundle, policy=policy, clock=clock)
    gw = Gateway(router, scrape_interval_s=args.scrape_interval_s, log=log)
    try:
        service = Service(gw.app(), args.host, args.port)
    except OSError as exc:
        raise ValueError(f"{args.host}:{args.port}: cannot listen ({exc.strerror or exc})") from None
    if not is_loopback(args.host):
        log.warning("listening on %s, reachable from other machines (no auth on the gateway)", args.host)
    print(f"gateway with {bundle.name} over {len(topo.workers)} workers on http://{service.host}:{service.port} "
          f"(/v1/completions, /v1/chat/completions, /metrics, /health; Ctrl-C stops)", flush=True)
    service.run()
    return 0


def _scaled_clock(time_scale: float):
    """Modelled seconds since start: wall time / ``time_scale``."""
    import time

    t0 = time.monotonic()
    if time_scale == 1.0:
        return time.monotonic
    return lambda: (time.monotonic() - t0) / time_scale


def run_stub_engines(args: argparse.Namespace) -> int:
    """Handler of ``stub-engines``."""
    import threading
    from urllib.parse import urlsplit

    from prfaas_gym.export.server import is_loopback
    from prfaas_gym.live.stub_engine import StubWorld

    bundle, topo = _load(args)
    for w in topo.workers:
        if not is_loopback(urlsplit(w.url).hostname or ""):
            raise ValueError(f"{args.topology}: {w.name}: stub engines listen on loopback only, not {w.url}")
    world = StubWorld(topo, time_scale=args.time_scale)
    try:
        servers = world.serve_all()
    except OSError as exc:
        raise ValueError(f"stub engines: cannot listen ({exc.strerror or exc})") from None
    print(f"{len(topo.workers)} stub engines up ({', '.join(w.url for w in topo.workers)}); Ctrl-C stops", flush=True)
    try:
        threading.Event().wait()
    finally:
        servers.stop()
    return 0
