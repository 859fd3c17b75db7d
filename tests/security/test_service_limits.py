"""The router service under abuse: limits, timeouts, auth, headers, one log line per error."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("sb3_contrib")

from prfaas_gym.export import RouterBundle, export_router_bundle  # noqa: E402
from prfaas_gym.export.server import Service, ServiceLimits, is_loopback  # noqa: E402
from prfaas_gym.export.service import MAX_BODY_BYTES, make_app  # noqa: E402

TOKEN = "s3cret-token-0123456789"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return RouterBundle.load(export_router_bundle("trained:routing-bursty", tmp_path_factory.mktemp("b") / "b"))


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read the whole answer (the server closes or we time out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
                if b"\r\n\r\n" in b"".join(chunks):
                    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                    n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
                    if n and len(body) >= n[0]:
                        break
        except socket.timeout:
            pass
    return b"".join(chunks)


def _post(port: int, body: bytes, headers: str = "") -> tuple[int, bytes, dict]:
    req = (f"POST /route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    resp = _raw(port, req)
    head, _, payload = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    hdrs = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return int(lines[0].split()[1]), payload, hdrs


@pytest.fixture()
def service(bundle, caplog):
    log = logging.getLogger("prfaas_test_serve")
    limits = ServiceLimits(read_timeout_s=0.5, idle_timeout_s=1.0, max_connections=64)
    with Service(make_app(bundle, log=log), port=0, limits=limits) as svc:
        yield svc


def test_bodies_that_used_to_get_no_answer(service, bundle, caplog):
    caplog.set_level(logging.WARNING, logger="prfaas_test_serve")
    ok = json.dumps(bundle.manifest["example_route_body"]).encode()
    status, _, hdrs = _post(service.port, ok)
    assert status == 200
    assert hdrs["server"] == "prfaas-router" and "python" not in json.dumps(hdrs).lower()
    deep = b"[" * 100_000 + b"]" * 100_000
    huge_int = b'{"snapshot": {}, "request": {"input_tokens": ' + b"9" * 5000 + b"}}"
    for body, code, needle in ((deep, 413, b"bytes"), (b"[" * 5000 + b"]" * 5000, 400, b"nested"),
                               (huge_int, 400, b"body"), (b"x" * (MAX_BODY_BYTES + 1), 413, b"bytes"),
                               (b"\xff\xfe", 400, b"body")):
        status, payload, _ = _post(service.port, body)
        assert status == code and needle in payload, (status, payload[:200])
    lines = [r for r in caplog.records if r.name == "prfaas_test_serve"]
    assert len(lines) == 5 and all("\n" not in r.getMessage() for r in lines)


def test_impossible_requests_refused(service, bundle):
    for field, value, needle in (("cached_tokens", [10**6, 0], b"exceed"), ("input_tokens", 1e300, b"input_tokens"),
                                 ("home_cluster", "prfaas", b"no decode")):
        body = json.loads(json.dumps(bundle.manifest["example_route_body"]))
        body["request"][field] = value
        status, payload, _ = _post(service.port, json.dumps(body).encode())
        assert status == 400 and needle in payload, payload


def test_silent_and_slow_clients_are_dropped(service):
    silent = socket.create_connection(("127.0.0.1", service.port))
    slow = socket.create_connection(("127.0.0.1", service.port))
    slow.sendall(b"POST /route HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    for s in (silent, slow):
        s.settimeout(5)
        assert s.recv(100) == b""  # closed by the server, no answer owed
        s.close()
    assert time.monotonic() - t0 < 3


def test_connection_cap(service):
    held = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(64)]
    time.sleep(0.1)
    extra = socket.create_connection(("127.0.0.1", service.port))
    extra.settimeout(2)
    try:
        assert extra.recv(10) == b""
    except ConnectionResetError:
        pass
    for s in held + [extra]:
        s.close()


def test_bearer_token(bundle):
    body = json.dumps(bundle.manifest["example_route_body"]).encode()
    with Service(make_app(bundle, token=TOKEN), port=0) as svc:
        assert _post(svc.port, body)[0] == 401
        assert _post(svc.port, body, "Authorization: Bearer wrong\r\n")[0] == 401
        assert _post(svc.port, body, f"Authorization: Bearer {TOKEN}\r\n")[0] == 200
        assert b"200" in _raw(svc.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[:20]


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


def test_cli_warns_on_non_loopback_bind_and_refuses_bad_limits(tmp_path, bundle, capsys):
    import subprocess
    import sys

    from prfaas_gym.cli import main

    out = export_router_bundle("trained:routing-paper", tmp_path / "b")
    assert main(["serve", str(out), "--read-timeout-s", "0"]) == 2
    assert "read_timeout_s" in capsys.readouterr().err
    bad = tmp_path / "tok"
    bad.write_text("short")
    assert main(["serve", str(out), "--token-file", str(bad)]) == 2
    assert "token" in capsys.readouterr().err
    proc = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", "serve", str(out), "--host", "0.0.0.0",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "routing with" in first
        port = int(first.split("http://0.0.0.0:")[1].split("/")[0])
        for _ in range(100):  # up: it answers on loopback too
            try:
                if b" 200 " in _raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[:20]:
                    break
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "reachable from other machines" in err and "Traceback" not in err
    assert proc.returncode in (0, 143)  # uvicorn shuts down gracefully, then re-raises SIGTERM


def test_reset_clients_leave_no_traceback(service, bundle, caplog):
    import struct

    caplog.set_level(logging.DEBUG)
    body = json.dumps(bundle.manifest["example_route_body"]).encode()
    for partial in (b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{", b"GET / HT"):
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", service.port))
            s.sendall(partial)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
            s.close()
    assert _post(service.port, body)[0] == 200  # still serving
    text = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert "Traceback" not in text and len(caplog.records) <= 40


def test_keep_alive_answers_are_not_delayed_by_nagle(service, bundle):
    """TCP_NODELAY on accepted sockets: without it each answer waited ~40 ms for a delayed ACK."""
    import statistics

    body = json.dumps(bundle.manifest["example_route_body"]).encode()
    req = (f"POST /route HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", service.port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            s.sendall(req)
            got = b""
            while b"}" not in got:
                got += s.recv(65536)
            times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.030, times


@pytest.mark.parametrize("loader", ["stdlib", "orjson"])
def test_numbers_that_are_not_plain_are_refused_by_either_parser(bundle, loader, monkeypatch):
    """NaN after a good value (``min``/``max`` skip it), infinities and integers beyond a float
    (``float()`` overflows) are refused as the field, never a 500 or a traceback."""
    import prfaas_gym.export.service as service

    if loader == "orjson":
        monkeypatch.setattr(service, "_loads", pytest.importorskip("orjson").loads)
    else:
        monkeypatch.setattr(service, "_loads", json.loads)
    good = json.dumps(bundle.manifest["example_route_body"])
    n = len(bundle.manifest["example_route_body"]["snapshot"]["slot_queue"])
    for tail, needle in (("[0, NaN" + ", 0" * (n - 2) + "]", "slot_queue"),
                         ("[0, 1e400" + ", 0" * (n - 2) + "]", "slot_queue"),
                         ("[0, " + "9" * 400 + ", 0" * (n - 2) + "]", "slot_queue"),
                         ("[0, -1" + ", 0" * (n - 2) + "]", "slot_queue[1]")):
        doc = good.replace('"slot_queue": [' + ", ".join(["0"] * n) + "]", '"slot_queue": ' + tail)
        assert doc != good
        with pytest.raises(ValueError) as err:
            service.decide_json(bundle, service.parse_json_body(doc.encode()))
        msg = str(err.value)
        assert "\n" not in msg and len(msg) < 200
        assert needle in msg or (loader == "orjson" and "not JSON" in msg), msg
    wait = good.replace('"slot_wait_s": [0.0', '"slot_wait_s": [' + "9" * 400)
    with pytest.raises(ValueError, match="slot_wait_s"):
        service.decide_json(bundle, json.loads(wait))


def test_header_and_body_leave_in_one_write():
    """uvicorn writes an answer's header block and body apart; the service joins them (one
    system call, one segment), passes ``100 Continue`` at once, and never holds headers past
    one loop iteration (a streamed answer's headers still leave)."""
    import asyncio

    from prfaas_gym.export.server import _OneWritePerAnswer

    class Sink:
        def __init__(self):
            self.writes, self.closed = [], False

        def write(self, data):
            self.writes.append(data)

        def is_closing(self):
            return self.closed

        def close(self):
            self.closed = True

    async def scenario():
        loop = asyncio.get_running_loop()
        sink = Sink()
        t = _OneWritePerAnswer(sink, loop)
        t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert sink.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        t.write(b"{}")
        t.write(b"more")
        assert sink.writes[1:] == [b"HTTP/1.1 200 OK\r\n\r\n{}", b"more"]
        streamed = Sink()
        t = _OneWritePerAnswer(streamed, loop)
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        await asyncio.sleep(0)
        assert streamed.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
        closing = Sink()
        t = _OneWritePerAnswer(closing, loop)
        t.write(b"HTTP/1.1 500\r\n\r\n")
        t.close()
        assert closing.writes == [b"HTTP/1.1 500\r\n\r\n"] and closing.closed

    asyncio.run(scenario())


def test_expect_100_continue_still_answers(service, bundle):
    body = json.dumps(bundle.manifest["example_route_body"]).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as s:
        s.sendall(f"POST /route HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode())
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        got = b""
        while b"}" not in got:
            got += s.recv(65536)
    assert got.startswith(b"HTTP/1.1 200") and b'"action"' in got


def test_cli_serve_with_workers_answers_and_stops_cleanly(bundle, tmp_path):
    """``serve --workers 2``: two processes on one port (SO_REUSEPORT); SIGTERM stops both."""
    import subprocess
    import sys

    out = export_router_bundle("trained:routing-paper", tmp_path / "b")
    body = json.dumps(RouterBundle.load(out).manifest["example_route_body"]).encode()
    proc = subprocess.Popen([sys.executable, "-m", "prfaas_gym.cli", "serve", str(out), "--port", "0",
                             "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "2 workers" in first, first
        port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
        for _ in range(200):
            try:
                if _post(port, body)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        children = open(f"/proc/{proc.pid}/task/{proc.pid}/children").read().split()
        assert len(children) == 2
        assert all(_post(port, body)[0] == 200 for _ in range(20))  # new connection each
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "Traceback" not in err, err
    for c in children:
        assert not Path(f"/proc/{c}").exists() or "Z" in open(f"/proc/{c}/stat").read().split()[2]
