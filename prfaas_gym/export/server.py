"""Serving an ASGI app with limits that hold under load and abuse (uvicorn, ``serve`` extra).

uvicorn (with the httptools parser) runs the app on one asyncio event loop. What it lacks for
an exposed service is added here, in :class:`GuardedHttpToolsProtocol`:

* a **read timeout**: a connection must deliver a whole request (headers and body) within
  ``read_timeout_s`` of its first byte (or of connecting), else it is closed. uvicorn itself
  never times out a connection that connects and then says nothing or trickles headers
  (slowloris); ``timeout_keep_alive`` only covers the gap between requests;
* a **connection cap** (``max_connections``): above it new connections are closed at once
  instead of queueing, so idle sockets cannot exhaust file descriptors;

and through uvicorn's own settings: the idle (keep-alive) timeout, ``limit_concurrency``
(503 above it), the listen backlog, no access log (the app logs one line per client error),
a generic ``Server`` header. Decisions take tens of microseconds of numpy, so they run on the
event loop itself: the loop is the bounded worker pool (one worker; ``limit_concurrency``
in-flight requests at most), and no thread per connection exists to exhaust.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

SERVER_HEADER = "prfaas-router"


@dataclass(frozen=True)
class ServiceLimits:
    """Limits of one service process (defaults suit a router answering in microseconds).

    Attributes:
        read_timeout_s: a request must arrive whole within this time of its first byte.
        idle_timeout_s: a keep-alive connection with no new request is closed after this.
        max_connections: connections above this are closed on accept.
        max_in_flight: requests being answered at once above this get HTTP 503.
        backlog: the listen queue (capped by the kernel's ``somaxconn``).
    """

    read_timeout_s: float = 5.0
    idle_timeout_s: float = 5.0
    max_connections: int = 4096
    max_in_flight: int = 4096
    backlog: int = 2048

    def __post_init__(self) -> None:
        for name in ("read_timeout_s", "idle_timeout_s"):
            v = getattr(self, name)
            if not 0 < v <= 3600:
                raise ValueError(f"{name}: expected a time in (0, 3600] s, got {v}")
        for name in ("max_connections", "max_in_flight", "backlog"):
            v = getattr(self, name)
            if not 1 <= v <= 1_000_000:
                raise ValueError(f"{name}: expected 1..1000000, got {v}")


class _OneWritePerAnswer:
    """A request cycle's view of the transport that sends an answer's header block together
    with its body: uvicorn writes them apart (two ``send`` system calls, two TCP segments, and
    often two wake-ups of the client) although an ASGI app hands both over in one step. The
    header block is held until the next write, and at most until the next loop iteration
    (``call_soon``), so a streamed answer's headers still leave at once."""

    __slots__ = ("_transport", "_loop", "_held", "_started")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif not self._started and not data.startswith(b"HTTP/1.1 100 "):  # not "100 Continue"
            self._started, self._held = True, data
            self._loop.call_soon(self._flush)
            return
        self._transport.write(data)

    def _flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._flush()
        self._transport.close()


COALESCE_WRITES = True
"""Send each answer's header block and body in one write (:class:`_OneWritePerAnswer`)."""


def _guarded_protocol(limits: ServiceLimits) -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with a whole-request read deadline and a connection cap."""

        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            if len(self.connections) >= limits.max_connections:
                transport.abort()
                return
            super().connection_made(transport)
            self._arm()

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(limits.read_timeout_s, self._timed_out)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _timed_out(self) -> None:
            self._deadline = None
            if self.transport is not None and not self.transport.is_closing():
                self.transport.abort()  # a slow or silent client: drop it without a log line

        def data_received(self, data: bytes) -> None:
            if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the first bytes of a new request on a kept-alive connection
            super().data_received(data)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if COALESCE_WRITES and self.cycle is not None:
                self.cycle.transport = _OneWritePerAnswer(self.transport, self.loop)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self.transport is None:  # refused on accept: never registered
                return
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


def is_loopback(host: str) -> bool:
    """``host`` binds to the loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int, backlog: int, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket (``OSError`` when the address is busy or unavailable).
    ``reuse_port``: ``SO_REUSEPORT``, so several worker processes each listen on their own
    socket of one port and the kernel spreads new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP, and without it every answer waits ~40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _serve_worker(server: Any, sock: socket.socket) -> None:
    """One worker process: default signal handling (uvicorn shuts down gracefully on SIGTERM or
    SIGINT, then re-raises the signal, which must end the process quietly)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    server.run(sockets=[sock])


class Service:
    """An ASGI app on a bound socket, under :class:`ServiceLimits`.

    ``loop``: uvicorn's event loop, ``"asyncio"`` (default) or ``"uvloop"`` (cheaper per
    request, but on the loaded 2-core machine it left a few of 64 clients waiting 1.4-2 s;
    docs/security.md).
    ``workers``: processes serving the app (``run`` only; each has its own event loop and
    its own ``SO_REUSEPORT`` socket of the one port, the parent supervises). The limits hold
    per worker.

    >>> svc = Service(app, "127.0.0.1", 0)        # doctest: +SKIP
    >>> svc.start_in_thread(); svc.port; svc.stop()  # doctest: +SKIP
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8000,
                 limits: ServiceLimits | None = None, loop: str = "asyncio", workers: int = 1) -> None:
        try:
            import uvicorn
        except ModuleNotFoundError:
            raise ValueError("serve: needs uvicorn (pip install 'prfaas-gym[serve]')") from None
        if not 1 <= workers <= 64:
            raise ValueError(f"workers: expected 1..64, got {workers}")
        self.limits = limits or ServiceLimits()
        self.workers = workers
        self.sock = bind_socket(host, port, self.limits.backlog, reuse_port=workers > 1)
        self.host, self.port = self.sock.getsockname()[:2]
        try:  # the other workers' sockets, bound now so a busy port fails before serving
            self._more_socks = [bind_socket(host, self.port, self.limits.backlog, reuse_port=True)
                                for _ in range(workers - 1)]
        except OSError:
            self.sock.close()
            raise
        config = uvicorn.Config(
            app, http=_guarded_protocol(self.limits), loop=loop, lifespan="off",
            access_log=False, server_header=False, date_header=True,
            headers=[("server", SERVER_HEADER)], timeout_keep_alive=int(max(1, round(self.limits.idle_timeout_s))),
            limit_concurrency=self.limits.max_in_flight, backlog=self.limits.backlog,
            log_level="warning", timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C / SIGTERM stop it gracefully)."""
        if self.workers > 1:
            self._run_workers()
            return
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def _run_workers(self) -> None:
        """Fork one worker per socket and wait; a worker that dies stops the service (exit 1)
        rather than leaving it answering at part strength unnoticed."""
        import multiprocessing
        from multiprocessing.connection import wait

        ctx = multiprocessing.get_context("fork")  # the app (bundle, numpy) is shared, not rebuilt
        socks = [self.sock, *self._more_socks]
        procs = [ctx.Process(target=_serve_worker, args=(self.server, s), name=f"prfaas-serve-{i}", daemon=True)
                 for i, s in enumerate(socks)]
        try:
            for p in procs:
                p.start()
            wait([p.sentinel for p in procs])
            dead = next(p for p in procs if not p.is_alive())
            logging.getLogger("prfaas_gym.serve").error("%s exited (code %s); stopping the service",
                                                         dead.name, dead.exitcode)
            raise SystemExit(1)
        finally:  # SIGTERM / Ctrl-C in the parent, or a dead worker: stop the others
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                if p.pid is not None:
                    p.join(timeout=10)
            for s in socks:
                s.close()

    def start_in_thread(self, timeout_s: float = 10.0) -> "Service":
        """Serve from a daemon thread (tests, benchmarks; one worker); returns once it accepts
        connections."""
        if self.workers > 1:
            raise ValueError("start_in_thread: serves one worker; use run() for several")
        self._thread = threading.Thread(target=self.run, name="prfaas-serve", daemon=True)
        self._thread.start()
        for _ in range(int(timeout_s / 0.01)):
            if self.server.started:
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("service did not start")

    def stop(self) -> None:
        """Stop a service started with :meth:`start_in_thread`."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> "Service":
        return self.start_in_thread()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def configure_logging() -> logging.Logger:
    """One line per client error on stderr (``prfaas_gym.serve``); uvicorn's own errors too."""
    log = logging.getLogger("prfaas_gym.serve")
    if not log.handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(h)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log
