"""``prfaas-gym export``, ``prfaas-gym route`` and ``prfaas-gym serve``: a trained router
as a bundle, one decision from a JSON file, and the HTTP router service."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prfaas_gym.commands.common import add_trust_pickle_argument, dump_json


def add_export_parsers(sub) -> None:
    """Register ``export``, ``route`` and ``serve``."""
    p = sub.add_parser("export", help="write a trained router as a torch-free bundle",
                       description="Write router.json + weights.npz: the slot layout, observation "
                                   "normalisation and actor weights of a trained routing policy, "
                                   "golden.json (reference cases for other implementations) and "
                                   "optionally router.onnx (docs/export.md).")
    p.add_argument("policy", help="trained:NAME or a trained-policy directory")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write (replaced whole)")
    p.add_argument("--scenario", default=None,
                   help="scenario fixing cluster names and slots (default: the training scenario)")
    p.add_argument("--onnx", action="store_true",
                   help="also write router.onnx (built from the numpy weights with the onnx package; no torch)")
    add_trust_pickle_argument(p)
    p.set_defaults(func=run_export)

    p = sub.add_parser("route", help="one routing decision from a bundle and a JSON body",
                       description="Read a POST /route body ({\"snapshot\": ..., \"request\": ...}) from "
                                   "a file or - (stdin) and print the bundle's decision as JSON.")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--input", required=True, metavar="FILE", help="JSON body, or - for stdin")
    p.set_defaults(func=run_route)

    p = sub.add_parser("serve", help="serve a bundle as an HTTP router (POST /route)",
                       description="Answer POST /route with the bundle's decision; GET / describes "
                                   "the bundle, GET /health answers ok. Ctrl-C or SIGTERM stops. "
                                   "Needs the serve extra (uvicorn); limits in docs/security.md.")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--token-file", default=None, metavar="FILE",
                   help="require 'Authorization: Bearer <token>' on / and /route, the token read from FILE "
                        "(default: $PRFAAS_SERVE_TOKEN if set, else no auth)")
    p.add_argument("--read-timeout-s", type=float, default=5.0, help="a request must arrive within this (5)")
    p.add_argument("--idle-timeout-s", type=float, default=5.0, help="idle keep-alive connections close after this (5)")
    p.add_argument("--max-connections", type=int, default=4096, help="connections above this are closed (4096)")
    p.add_argument("--max-in-flight", type=int, default=4096, help="requests in flight above this get 503 (4096)")
    p.add_argument("--backlog", type=int, default=2048, help="listen backlog (2048)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, one event loop each on the same port (1; limits hold per worker)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop (asyncio; uvloop is cheaper per request but showed rare 1.5-2 s stalls "
                        "at 64 clients on a loaded machine, docs/security.md)")
    p.set_defaults(func=run_serve)


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``export``."""
    from prfaas_gym.export.bundle import RouterBundle, export_router_bundle

    out = export_router_bundle(args.policy, args.out, scenario=args.scenario, trust_pickle=args.trust_pickle,
                               onnx=args.onnx)
    b = RouterBundle.load(out)
    print(f"wrote {out}: {b.name}, {len(b.slots)} actions ({', '.join(b.slot_labels)}), "
          f"{len(b.feature_names)} features; {', '.join(sorted(p.name for p in out.iterdir()))}")
    return 0


def run_route(args: argparse.Namespace) -> int:
    """Handler of ``route``."""
    from prfaas_gym.export.bundle import RouterBundle
    from prfaas_gym.export.service import MAX_BODY_BYTES, decide_json, parse_json_body

    bundle = RouterBundle.load(args.bundle)
    source = "stdin" if args.input == "-" else args.input
    try:
        data = sys.stdin.buffer.read(MAX_BODY_BYTES + 1) if args.input == "-" else Path(args.input).read_bytes()
    except OSError as exc:
        raise ValueError(f"{source}: cannot read ({exc.strerror or exc})") from None
    try:
        # the same limits as the service: size, nesting depth, UTF-8, then every field
        print(dump_json(decide_json(bundle, parse_json_body(data))))
    except ValueError as exc:
        raise ValueError(f"{source}: {str(exc).removeprefix('body: ')}") from None
    return 0


def _read_token(args: argparse.Namespace) -> str | None:
    import os

    if args.token_file is None:
        return os.environ.get("PRFAAS_SERVE_TOKEN") or None
    path = Path(args.token_file)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--token-file {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ValueError(f"--token-file {path}: expected one token of at least 16 characters")
    return token


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``serve``."""
    from prfaas_gym.export.bundle import RouterBundle
    from prfaas_gym.export.server import Service, ServiceLimits, configure_logging, is_loopback
    from prfaas_gym.export.service import make_app

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: expected 0..65535, got {args.port}")
    limits = ServiceLimits(read_timeout_s=args.read_timeout_s, idle_timeout_s=args.idle_timeout_s,
                           max_connections=args.max_connections, max_in_flight=args.max_in_flight,
                           backlog=args.backlog)
    token = _read_token(args)
    bundle = RouterBundle.load(args.bundle)
    log = configure_logging()
    try:
        service = Service(make_app(bundle, token=token, log=log), args.host, args.port, limits, loop=args.loop,
                          workers=args.workers)
    except OSError as exc:  # port in use, address not available, ...
        raise ValueError(f"{args.host}:{args.port}: cannot listen ({exc.strerror or exc})") from None
    if not is_loopback(args.host):
        log.warning("listening on %s, reachable from other machines%s", args.host,
                    "" if token else "; no --token-file: anyone who can reach it can query the policy")
    workers = f", {args.workers} workers" if args.workers > 1 else ""
    print(f"routing with {bundle.name} on http://{service.host}:{service.port}/route "
          f"({'bearer token required' if token else 'no auth'}{workers}; Ctrl-C stops)", flush=True)
    service.run()
    return 0
