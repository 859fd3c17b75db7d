"""The HTTP router service over a bundle: an ASGI app served by uvicorn (``serve`` extra).

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

Request bodies are untrusted (docs/security.md): they are size-limited while they arrive,
parsed with a nesting-depth limit, and every field is range-checked before the bundle sees
it. Serving limits (timeouts, connection cap, auth) live in :mod:`prfaas_gym.export.server`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from prfaas_gym.env.observation import encode_routing_obs
from prfaas_gym.env.snapshot import ClusterSnapshot, RequestFeatures
from prfaas_gym.export.bundle import RouterBundle

try:
    from orjson import loads as _loads
except ModuleNotFoundError:  # the route command without the serve extra
    _loads = json.loads

_PLAIN_NUMBERS = {int, float}
_MAX_FLOAT = sys.float_info.max
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 8
MAX_TOKENS = 10_000_000  # far above any model's context window; refuses 1e300-token requests

_NUMBERS_OR_NULL = {int, float, type(None)}
# the snapshot's list fields but slot_wait_s (which may hold null), in ClusterSnapshot's order
_LIST_FIELDS = ("slot_open", "slot_queue", "cluster_prefill_frac", "cluster_decode_mem_frac",
                "cluster_decode_batch_frac", "cluster_decode_queue", "link_bw_frac", "link_util", "link_flows")


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
        if not _is_plain_number(v):
            raise ValueError(f"{name}[{i}]: expected a finite number >= 0, got {_show(v)}")
        out.append(float(v))
    return out


def _is_plain_number(v: Any) -> bool:
    """A finite number >= 0 that fits a float (exact int/float comparison: no overflow on a
    400-digit integer, and NaN fails it)."""
    return type(v) in _PLAIN_NUMBERS and 0 <= v <= _MAX_FLOAT


def _show(v: Any) -> str:
    text = repr(v) if not isinstance(v, int) or abs(v) < 10**30 else f"an integer of {len(str(abs(v)))} digits"
    return text[:60]


def _number(d: dict, key: str, name: str, default: float | None = None) -> float:
    v = d.get(key, default)
    if v is None:
        raise ValueError(f"{name}: missing")
    if not _is_plain_number(v):
        raise ValueError(f"{name}: expected a finite number >= 0, got {_show(v)}")
    return float(v)


def _plain_lists(lists: list[Any], sizes: list[int]) -> list[list[float]] | None:
    """The common case of a well-formed body, checked at C speed: every field a list of the
    right size holding plain finite numbers >= 0. ``None`` when anything is off, and the
    caller re-checks field by field for the message (:func:`_numbers`)."""
    flat: list[Any] = []
    for v, n in zip(lists, sizes):
        if type(v) is not list or len(v) != n:
            return None
        flat += v
    if not flat:
        return [[] for _ in lists]
    if not set(map(type, flat)) <= _PLAIN_NUMBERS:
        return None
    try:
        flat = list(map(float, flat))
    except OverflowError:  # an integer beyond any float
        return None
    if not _finite_non_negative(flat):
        return None
    out, i = [], 0
    for n in sizes:
        out.append(flat[i:i + n])
        i += n
    return out


def _wait_times(value: Any, n: int) -> list[float] | None:
    """``snapshot.slot_wait_s`` in the common case (numbers >= 0 or ``null``), else ``None``."""
    if type(value) is not list or len(value) != n or not set(map(type, value)) <= _NUMBERS_OR_NULL:
        return None
    try:
        nums = [float(v) for v in value if v is not None]
    except OverflowError:
        return None
    if nums and not _finite_non_negative(nums):
        return None
    return [math.inf if v is None else float(v) for v in value]


def _finite_non_negative(values: list[float]) -> bool:
    """All >= 0 and finite: a NaN or inf makes the sum non-finite (``min``/``max`` would skip
    a NaN that is not first). A sum that overflows only sends the caller to the slow path."""
    return min(values) >= 0.0 and math.isfinite(sum(values))


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
    sizes = [n_slots] * 2 + [n_c] * 4 + [n_l] * 3 + [n_c, n_slots]
    raw = [snap.get(f) for f in _LIST_FIELDS]
    raw += [req.get("cached_tokens", [0] * n_c), req.get("slot_service_s")]
    lists = _plain_lists(raw, sizes)
    if lists is None:  # something is off: find it, field by field
        names = [f"snapshot.{f}" for f in _LIST_FIELDS] + ["request.cached_tokens", "request.slot_service_s"]
        lists = [_numbers(v, name, n) for v, name, n in zip(raw, names, sizes)]
    wait = _wait_times(snap.get("slot_wait_s"), n_slots)
    if wait is None:
        wait = _numbers(snap.get("slot_wait_s"), "snapshot.slot_wait_s", n_slots, allow_null=True)
    fields.update(zip(_LIST_FIELDS, lists))
    snapshot = ClusterSnapshot(slot_wait_s=wait, **fields)
    cached_raw, service = lists[-2:]

    tokens = _number(req, "input_tokens", "request.input_tokens")
    if tokens < 1 or tokens != int(tokens) or tokens > MAX_TOKENS:
        raise ValueError(f"request.input_tokens: expected an integer in 1..{MAX_TOKENS}, got {req.get('input_tokens')!r}")
    home = req.get("home_cluster", -1)
    if isinstance(home, str):
        if home not in bundle.clusters:
            raise ValueError(f"request.home_cluster: unknown cluster {home!r} (known: {', '.join(bundle.clusters)})")
        home = bundle.clusters.index(home)
    elif isinstance(home, bool) or not isinstance(home, int) or not -1 <= home < n_c:
        raise ValueError(f"request.home_cluster: expected a cluster name or index, got {home!r}")
    decoders = m.get("decode_clusters")
    if home >= 0 and decoders is not None and bundle.clusters[home] not in decoders:
        raise ValueError(f"request.home_cluster: {bundle.clusters[home]!r} has no decode instances "
                         f"(decode clusters: {', '.join(decoders)})")
    cached = [int(x) for x in cached_raw]
    for i, c in enumerate(cached):
        if c > tokens:
            raise ValueError(f"request.cached_tokens[{i}]: {c} cached tokens exceed the {int(tokens)} input tokens")
    out_tokens = _number(req, "output_tokens", "request.output_tokens", 0)
    if out_tokens > MAX_TOKENS:
        raise ValueError(f"request.output_tokens: expected at most {MAX_TOKENS}, got {req.get('output_tokens')!r}")
    request = RequestFeatures(input_tokens=int(tokens), output_tokens=int(out_tokens), cached_tokens=cached,
                              slot_service_s=service, home_cluster=home)
    return snapshot, request


def parse_json_body(data: bytes) -> Any:
    """A request body as JSON: at most :data:`MAX_BODY_BYTES`, UTF-8, nested at most
    :data:`MAX_JSON_DEPTH` deep, integers of at most 4,300 digits. ``ValueError`` otherwise.

    Parsed with orjson when installed (the ``serve`` extra; 5-6x faster on a route body, and
    stricter: it refuses NaN, Infinity, numbers beyond a double and lone surrogates outright),
    else with the standard library, whose NaN and infinities the field checks then refuse."""
    if len(data) > MAX_BODY_BYTES:
        raise ValueError(f"body: more than {MAX_BODY_BYTES} bytes")
    _check_depth(data)
    try:
        doc = _loads(data)
    except json.JSONDecodeError as exc:  # orjson's error is a subclass
        raise ValueError(f"body: line {exc.lineno} column {exc.colno}: not JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ValueError("body: not UTF-8") from None
    except RecursionError:
        raise ValueError(f"body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer literal over 4,300 digits
        raise ValueError(f"body: not acceptable JSON ({str(exc).splitlines()[0][:80]})") from None
    return doc


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _bracket_depth(brackets: bytes) -> int:
    depth = best = 0
    for c in brackets:
        if c == 91 or c == 123:  # [ {
            depth += 1
            if depth > best:
                best = depth
                if best > MAX_JSON_DEPTH:
                    break
        else:
            depth -= 1
    return best


def _check_depth(data: bytes) -> None:
    """Refuse JSON text nested deeper than :data:`MAX_JSON_DEPTH`: the brackets are counted
    (linear in the body, before the parser recurses); only when that count is over the limit
    are strings removed first, since brackets inside strings do not nest."""
    if _bracket_depth(data.translate(None, _NOT_BRACKETS)) <= MAX_JSON_DEPTH:
        return
    depth = 0
    for c in _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if c == 91 or c == 123:  # [ {
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"body: nested deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1


def route_action(bundle: RouterBundle, body: Any) -> int:
    """The action index for one ``POST /route`` body (a parsed JSON value): the body is
    checked field by field (sizes included), so the bundle's own shape check is not repeated."""
    snap, req = parse_route_body(bundle, body)
    return bundle.act(encode_routing_obs(snap, req), bundle.mask(snap, req))


def decide_json(bundle: RouterBundle, body: Any) -> dict[str, Any]:
    """Answer one ``POST /route`` body (a parsed JSON value)."""
    return bundle.decision(route_action(bundle, body)).as_dict()


def describe(bundle: RouterBundle) -> dict[str, Any]:
    """``GET /``: the bundle's layout and an example ``/route`` body (the scenario's first
    request on idle clusters, recorded at export)."""
    m = bundle.manifest
    return {"name": bundle.name, "format": m["format"], "scenario": m.get("scenario"),
            "clusters": bundle.clusters, "links": bundle.links, "slots": bundle.slot_labels,
            "features": len(bundle.feature_names), "slo": {"ttft_s": m["ttft_slo_s"], "tpot_s": m["tpot_slo_s"]},
            "example_route_body": m["example_route_body"]}


def make_app(bundle: RouterBundle, *, token: str | None = None, log: Any = None) -> Any:
    """The router as an ASGI app: ``POST /route``, ``GET /``, ``GET /health``.

    ``token``: when set, ``/`` and ``/route`` need ``Authorization: Bearer <token>``
    (``/health`` stays open for liveness probes). ``log``: a ``logging.Logger`` receiving one
    line per client error. Bodies are read up to :data:`MAX_BODY_BYTES` and refused beyond.
    """
    import hmac
    import logging

    log = log or logging.getLogger("prfaas_gym.serve")
    info = json.dumps(describe(bundle), allow_nan=False).encode()
    # one answer per action, encoded once: a decision is an index into these
    answers = [json.dumps(bundle.decision(a).as_dict(), allow_nan=False).encode() for a in range(len(bundle.slots))]
    expected = f"Bearer {token}".encode() if token else None

    async def send_json(send: Any, status: int, payload: bytes, extra: tuple = ()) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), *extra]})
        await send({"type": "http.response.body", "body": payload})

    async def error(send: Any, scope: Any, status: int, msg: str, extra: tuple = ()) -> None:
        client = scope.get("client") or ("-", 0)
        log.warning("%s %s %s -> %d %s", client[0], scope.get("method"), scope.get("path"), status, msg[:200])
        await send_json(send, status, json.dumps({"error": msg}).encode(), extra)

    async def read_body(scope: Any, receive: Any) -> bytes | None:
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return None
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise ConnectionError
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return None
            chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/health" and method == "GET":
            await send_json(send, 200, b'{"status": "ok"}')
            return
        if expected is not None:
            got = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(got, expected):
                await error(send, scope, 401, "authorization: a valid bearer token is required",
                            ((b"www-authenticate", b"Bearer"),))
                return
        if path == "/" and method == "GET":
            await send_json(send, 200, info)
        elif path == "/route" and method == "POST":
            try:
                data = await read_body(scope, receive)
            except ConnectionError:
                return  # the client left; nothing to answer
            if data is None:
                await error(send, scope, 413, f"body: more than {MAX_BODY_BYTES} bytes")
                return
            if not data:
                await error(send, scope, 400, "body: expected a JSON object with 'snapshot' and 'request'")
                return
            try:
                answer = answers[route_action(bundle, parse_json_body(data))]
            except ValueError as exc:
                await error(send, scope, 400, str(exc).splitlines()[0] if str(exc) else "bad request")
                return
            await send_json(send, 200, answer)
        elif path in ("/", "/route", "/health"):
            await error(send, scope, 405, f"{method} {path}: method not allowed (POST /route, GET /, GET /health)")
        else:
            await error(send, scope, 404, f"{path}: no such endpoint (POST /route, GET /, GET /health)")

    return app
