"""A small HTTP router service over a bundle (standard library only).

The serving stack's gateway posts the cluster state it monitors and the arriving request;
the service answers where to prefill it (or to reject it), with the policy's decision:

``POST /route`` with ``{"snapshot": {...}, "request": {...}}`` -> ``{"action", "slot",
"reject", "prefill_cluster", "prefill_instance", "pull_from"}``

``snapshot`` has the fields of :class:`~prfaas_gym.env.snapshot.ClusterSnapshot` (lists in the
bundle's slot, cluster and link order; ``slot_wait_s`` may hold ``null`` for "no instance";
``time_s`` and the SLOs default to 0 and the bundle's), ``request`` those of
:class:`~prfaas_gym.env.snapshot.RequestFeatures` (``home_cluster`` by name or index;
``output_tokens`` 0 when unknown). ``GET /`` describes the bundle (slots, clusters, links,
an example body); ``GET /health`` answers ``{"status": "ok"}``. Bad bodies get HTTP 400 and
``{"error": "<field>: <what is wrong>"}``.
"""

from __future__ import annotations

import json
import math
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prfaas_gym.env.snapshot import ClusterSnapshot, RequestFeatures
from prfaas_gym.export.bundle import RouterBundle

MAX_BODY_BYTES = 1 << 20

_SLOT_FIELDS = ("slot_open", "slot_queue", "slot_wait_s")
_CLUSTER_FIELDS = ("cluster_prefill_frac", "cluster_decode_mem_frac", "cluster_decode_batch_frac",
                   "cluster_decode_queue")
_LINK_FIELDS = ("link_bw_frac", "link_util", "link_flows")


def _numbers(value: Any, name: str, n: int, *, allow_null: bool = False) -> list[float]:
    if not isinstance(value, list):
        raise ValueError(f"{name}: expected a list of {n} numbers")
    if len(value) != n:
        raise ValueError(f"{name}: expected {n} values for this bundle, got {len(value)}")
    out = []
    for i, v in enumerate(value):
        if v is None and allow_null:
            out.append(math.inf)
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{name}[{i}]: expected a finite number >= 0, got {v!r}")
        out.append(float(v))
    return out


def _number(d: dict, key: str, name: str, default: float | None = None) -> float:
    v = d.get(key, default)
    if v is None:
        raise ValueError(f"{name}: missing")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    return float(v)


def parse_route_body(bundle: RouterBundle, body: Any) -> tuple[ClusterSnapshot, RequestFeatures]:
    """The two records from a ``POST /route`` body; ``ValueError`` naming the bad field."""
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object with 'snapshot' and 'request'")
    snap, req = body.get("snapshot"), body.get("request")
    if not isinstance(snap, dict):
        raise ValueError("snapshot: missing or not an object")
    if not isinstance(req, dict):
        raise ValueError("request: missing or not an object")
    n_slots, n_c, n_l = len(bundle.slots) - 1, len(bundle.clusters), len(bundle.links)
    m = bundle.manifest
    fields: dict[str, Any] = {
        "time_s": _number(snap, "time_s", "snapshot.time_s", 0.0),
        "ttft_slo_s": _number(snap, "ttft_slo_s", "snapshot.ttft_slo_s", m["ttft_slo_s"]),
        "tpot_slo_s": _number(snap, "tpot_slo_s", "snapshot.tpot_slo_s", m["tpot_slo_s"]),
    }
    for f in _SLOT_FIELDS:
        fields[f] = _numbers(snap.get(f), f"snapshot.{f}", n_slots, allow_null=f == "slot_wait_s")
    for f in _CLUSTER_FIELDS:
        fields[f] = _numbers(snap.get(f), f"snapshot.{f}", n_c)
    for f in _LINK_FIELDS:
        fields[f] = _numbers(snap.get(f), f"snapshot.{f}", n_l)
    snapshot = ClusterSnapshot(**fields)

    tokens = _number(req, "input_tokens", "request.input_tokens")
    if tokens < 1 or tokens != int(tokens):
        raise ValueError(f"request.input_tokens: expected an integer >= 1, got {req.get('input_tokens')!r}")
    home = req.get("home_cluster", -1)
    if isinstance(home, str):
        if home not in bundle.clusters:
            raise ValueError(f"request.home_cluster: unknown cluster {home!r} (known: {', '.join(bundle.clusters)})")
        home = bundle.clusters.index(home)
    elif isinstance(home, bool) or not isinstance(home, int) or not -1 <= home < n_c:
        raise ValueError(f"request.home_cluster: expected a cluster name or index, got {home!r}")
    cached = req.get("cached_tokens", [0] * n_c)
    request = RequestFeatures(
        input_tokens=int(tokens),
        output_tokens=int(_number(req, "output_tokens", "request.output_tokens", 0)),
        cached_tokens=[int(x) for x in _numbers(cached, "request.cached_tokens", n_c)],
        slot_service_s=_numbers(req.get("slot_service_s"), "request.slot_service_s", n_slots),
        home_cluster=home,
    )
    return snapshot, request


def decide_json(bundle: RouterBundle, body: Any) -> dict[str, Any]:
    """Answer one ``POST /route`` body (a parsed JSON value)."""
    snap, req = parse_route_body(bundle, body)
    return bundle.decide(snap, req).as_dict()


def describe(bundle: RouterBundle) -> dict[str, Any]:
    """``GET /``: the bundle's layout and an example ``/route`` body (the scenario's first
    request on idle clusters, recorded at export)."""
    m = bundle.manifest
    return {"name": bundle.name, "format": m["format"], "scenario": m.get("scenario"),
            "clusters": bundle.clusters, "links": bundle.links, "slots": bundle.slot_labels,
            "features": len(bundle.feature_names), "slo": {"ttft_s": m["ttft_slo_s"], "tpot_s": m["tpot_slo_s"]},
            "example_route_body": m["example_route_body"]}


def make_server(bundle: RouterBundle, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A threaded HTTP server answering ``/route``, ``/`` and ``/health`` (``port=0``: any free port)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "prfaas-router/1"

        def _send(self, status: int, doc: Any) -> None:
            data = json.dumps(doc, allow_nan=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            if self.path == "/health":
                self._send(HTTPStatus.OK, {"status": "ok"})
            elif self.path == "/":
                self._send(HTTPStatus.OK, describe(bundle))
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: no such endpoint (POST /route, GET /, GET /health)"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/route":
                self._send(HTTPStatus.NOT_FOUND, {"error": f"{self.path}: no such endpoint (POST /route)"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY_BYTES:
                self._send(HTTPStatus.BAD_REQUEST, {"error": f"body: expected 1..{MAX_BODY_BYTES} bytes of JSON"})
                return
            try:
                body = json.loads(self.rfile.read(length))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": f"body: not JSON ({exc})"})
                return
            try:
                self._send(HTTPStatus.OK, decide_json(bundle, body))
            except ValueError as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per error only
            if args and str(args[1] if len(args) > 1 else "").startswith(("4", "5")):
                super().log_message(fmt, *args)

    return ThreadingHTTPServer((host, port), Handler)
