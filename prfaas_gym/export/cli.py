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
                                   "normalisation and actor weights of a trained routing policy "
                                   "(docs/export.md).")
    p.add_argument("policy", help="trained:NAME or a trained-policy directory")
    p.add_argument("--out", required=True, metavar="DIR", help="bundle directory to write (replaced whole)")
    p.add_argument("--scenario", default=None,
                   help="scenario fixing cluster names and slots (default: the training scenario)")
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
                                   "the bundle, GET /health answers ok. Ctrl-C stops.")
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.set_defaults(func=run_serve)


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``export``."""
    from prfaas_gym.export.bundle import RouterBundle, export_router_bundle

    out = export_router_bundle(args.policy, args.out, scenario=args.scenario, trust_pickle=args.trust_pickle)
    b = RouterBundle.load(out)
    print(f"wrote {out}: {b.name}, {len(b.slots)} actions ({', '.join(b.slot_labels)}), "
          f"{len(b.feature_names)} features")
    return 0


def run_route(args: argparse.Namespace) -> int:
    """Handler of ``route``."""
    from prfaas_gym.export.bundle import RouterBundle
    from prfaas_gym.export.service import decide_json

    bundle = RouterBundle.load(args.bundle)
    source = "stdin" if args.input == "-" else args.input
    text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: line {exc.lineno}: {exc.msg}") from None
    try:
        print(dump_json(decide_json(bundle, body)))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``serve``."""
    from prfaas_gym.export.bundle import RouterBundle
    from prfaas_gym.export.service import make_server

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port: expected 0..65535, got {args.port}")
    bundle = RouterBundle.load(args.bundle)
    try:
        server = make_server(bundle, args.host, args.port)
    except OSError as exc:  # port in use, address not available, ...
        raise ValueError(f"{args.host}:{args.port}: cannot listen ({exc.strerror or exc})") from None
    host, port = server.server_address[:2]
    print(f"routing with {bundle.name} on http://{host}:{port}/route (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
