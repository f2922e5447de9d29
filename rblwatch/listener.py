"""The HTTP listener's defences against its peers (SPEC §10, issue 9): whatever a client
sends, the daemon's log stays readable and its memory bounded.

- **Malformed requests** (a bad request line, an over-long line, `Content-Length: abc`) are
  answered 400 by aiohttp as before, but logged as one short line per distinct problem per
  interval (`PROBLEM_INTERVAL`), the repeats counted and summarised when the interval ends;
  never a traceback, since nothing a peer sends is our bug. aiohttp logs them through the
  request handler's `logger`, which is why `PeerErrorLog` is handed to it (aiohttp's own
  `logger` setting) rather than filtering `aiohttp.server`.
- **Request-header timeout** (`HEADER_TIMEOUT`, 10 s): a connection must deliver a complete
  request head within that time of opening, and the next one within that time of the previous
  answer, or it is dropped. aiohttp's `keepalive_timeout` covers the time after an answer; the
  first request is timed here (`Guard`), because aiohttp before 3.14 starts that timer only
  after the first answer, and a client that trickles header bytes would be held for ever.
- **Concurrent connections** are capped (`MAX_CONNECTIONS`, 256): one more is answered 503
  and closed at once, so a flood costs an accept and a close, never unbounded memory.

**TLS** (`--web.config.file`): each connection is wrapped in asyncio's own TLS protocol with
the context current when it is accepted, so a renewed certificate serves the next connection
(exporter-toolkit re-reads it per handshake). The guard sits below TLS: the connection counts
against the cap from its accept, and the header timeout covers the handshake too — a handshake
that never completes is dropped like a trickled request head.

Lines longer than 8190 bytes and more than 128 header fields are refused with 400 (aiohttp's
`max_line_size`, `max_field_size` and `max_headers`, kept at their defaults).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import ssl
import time
from asyncio import sslproto
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

HEADER_TIMEOUT = 10.0  # seconds for a connection to send a complete request head
MAX_CONNECTIONS = 256  # open connections at once; more are refused with 503
PROBLEM_INTERVAL = 60.0  # a distinct peer problem is logged once per this many seconds
_MAX_PROBLEM_KINDS = 64  # distinct problems tracked at once; the rest share one line

_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
)

log = logging.getLogger("rblwatch.web")
_PEER_PART = re.compile(r"[:'\"]")


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = HEADER_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    problem_interval: float = PROBLEM_INTERVAL


@dataclass(slots=True)
class _Window:
    start: float
    repeats: int = 0


@dataclass(slots=True)
class ProblemLog:
    """One warning per distinct problem per `interval`; the repeats become one summary line.

    `report` logs a problem the first time it is seen in an interval and counts it otherwise;
    `flush` logs the counts of intervals that have ended (all of them with `final`). Clock
    and logger are arguments, so a test drives it without waiting.
    """

    interval: float
    logger: logging.Logger = log
    clock: Callable[[], float] = time.monotonic
    windows: dict[str, _Window] = field(default_factory=dict)

    def report(self, problem: str, line: str) -> bool:
        """Log `line` unless `problem` was logged in this interval; True if it was logged."""
        now = self.clock()
        self.flush()
        if problem not in self.windows and len(self.windows) >= _MAX_PROBLEM_KINDS:
            problem = "other malformed requests"
        window = self.windows.get(problem)
        if window is not None:
            window.repeats += 1
            return False
        self.windows[problem] = _Window(now)
        self.logger.warning("%s", line)
        return True

    def flush(self, *, final: bool = False) -> None:
        now = self.clock()
        for problem, window in list(self.windows.items()):
            if final or now - window.start >= self.interval:
                del self.windows[problem]
                if window.repeats:
                    elapsed = math.ceil(min(now - window.start, self.interval))
                    self.logger.warning(
                        "web: %d more like %r in the last %d s",
                        window.repeats,
                        problem,
                        max(1, elapsed),
                    )

    @property
    def pending(self) -> bool:
        return any(w.repeats for w in self.windows.values())


def describe(exc: HttpProcessingError) -> str:
    """The problem, short and on one line: the class and the first line of aiohttp's message."""
    first = next((ln.strip() for ln in str(exc.message).splitlines() if ln.strip()), "")
    # what follows a colon or a quote is the peer's bytes: not ours to echo, and it would
    # make every request a distinct problem
    first = _PEER_PART.split(first, maxsplit=1)[0].strip()
    return f"{type(exc).__name__}: {first[:80]}" if first else type(exc).__name__


class PeerErrorLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The `logger` aiohttp's request handler writes to: a peer's malformed request becomes
    one throttled line; anything else (a bug of ours) is logged as aiohttp meant it."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(logging.getLogger("aiohttp.server"), {})
        self.guard = guard

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            remote = args[0] if args else "?"
            code = exc.code or 400
            problem = describe(exc)
            self.guard.report(problem, f"web: bad request from {remote}: {problem} ({code})")
            return
        if isinstance(exc, ConnectionError):
            # the peer went away (or half-closed) before its answer was written: its doing,
            # not a bug of ours, so a throttled line and no traceback
            remote = args[0] if args else "?"
            problem = "connection closed before the answer"
            self.guard.report(problem, f"web: {remote}: {problem} ({type(exc).__name__})")
            return
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


class Guard:
    """Counts the listener's connections, refuses those over the cap, times first requests."""

    def __init__(
        self,
        limits: Limits,
        problems: ProblemLog,
        tls: Callable[[], ssl.SSLContext | None] | None = None,
    ) -> None:
        self.limits = limits
        self.problems = problems
        self.tls = tls  # the TLS context for a new connection; None: plain HTTP
        self.open = 0
        self.waiting: dict[object, _Guarded] = {}  # by `_key`
        self._flusher: asyncio.TimerHandle | None = None

    def factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for `loop.create_server`: aiohttp's handler, guarded."""

        def protocol() -> asyncio.Protocol:
            # counted here, not in connection_made: a burst of accepts creates many
            # protocols before the first of them is connected
            if self.open >= self.limits.max_connections:
                return _Refused(self)
            self.open += 1
            context = self.tls() if self.tls is not None else None
            if context is None:
                return _Guarded(self, make())
            inner = sslproto.SSLProtocol(
                asyncio.get_running_loop(),
                make(),
                context,
                # no waiter (SSLProtocol allows None): nobody awaits the handshake
                None,  # type: ignore[arg-type]
                server_side=True,
                ssl_handshake_timeout=self.limits.header_timeout,  # type: ignore[arg-type]
            )
            return _GuardedTLS(self, inner)

        return protocol

    def started(self, transport: asyncio.BaseTransport | None) -> None:
        """A request head arrived on `transport`: its first-request timer is done."""
        guarded = self.waiting.pop(_key(transport), None) if transport is not None else None
        if guarded is not None:
            guarded.stop_timer()

    def report(self, problem: str, line: str) -> None:
        """Log a peer's problem through the problem log, its repeats summarised in time."""
        if not self.problems.report(problem, line):
            self.schedule_flush()

    def refused(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else "?"
        self.report(
            "too many connections",
            f"web: refused a connection from {host}: {self.limits.max_connections}"
            " connections are open (the limit)",
        )

    def schedule_flush(self) -> None:
        """Summarise counted repeats when their interval ends, even if no more arrive."""
        if self._flusher is None and self.problems.pending:
            loop = asyncio.get_running_loop()
            self._flusher = loop.call_later(self.problems.interval, self._flush)

    def _flush(self) -> None:
        self._flusher = None
        self.problems.flush()
        self.schedule_flush()

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self.problems.flush(final=True)


class _Guarded(asyncio.Protocol):
    """aiohttp's request handler behind a first-request deadline and the connection count."""

    __slots__ = ("guard", "inner", "timer", "transport")

    def __init__(self, guard: Guard, inner: asyncio.BaseProtocol) -> None:
        self.guard = guard
        # aiohttp's handler, or asyncio's TLS protocol (buffered) in front of it
        self.inner: Any = inner
        self.timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.guard.waiting[_key(transport)] = self
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.guard.limits.header_timeout, self._too_slow)
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        keep_open: bool | None = self.inner.eof_received()
        return keep_open

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_timer()
        if self.transport is not None:
            self.guard.waiting.pop(_key(self.transport), None)
        self.guard.open -= 1
        self.inner.connection_lost(exc)

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _too_slow(self) -> None:
        # not logged: browsers open spare connections that never send a request
        self.timer = None
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]


class _GuardedTLS(_Guarded, asyncio.BufferedProtocol):
    """The guard around asyncio's TLS protocol (a buffered one) around aiohttp's handler."""

    __slots__ = ()

    def get_buffer(self, sizehint: int) -> Any:
        return self.inner.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.inner.buffer_updated(nbytes)


def _key(transport: asyncio.BaseTransport) -> object:
    """One key for a connection, whether seen below TLS (the guard) or above it (a request):
    the socket, which the TLS transport hands out as its own."""
    return transport.get_extra_info("socket") or transport


class _Refused(asyncio.Protocol):
    """A connection over the cap: a 503 and closed at once, nothing read."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.guard.refused(transport)
        transport.write(_REFUSAL)  # type: ignore[attr-defined]
        transport.close()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a `Guard` (aiohttp's TCPSite otherwise)."""

    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, guard: Guard) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        scheme = "https" if self._guard.tls is not None else "http"
        return f"{scheme}://{self._host or '0.0.0.0'}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.factory(server), self._host, self._port, backlog=self._backlog
        )

    async def stop(self) -> None:
        await super().stop()
        self._guard.close()


def guard_middleware(guard: Guard) -> Any:
    """The middleware that tells the guard a request head has arrived on its connection."""

    @web.middleware
    async def started(request: web.Request, handler: Any) -> web.StreamResponse:
        guard.started(request.transport)
        response: web.StreamResponse = await handler(request)
        return response

    return started


def runner_args(guard: Guard) -> dict[str, Any]:
    """aiohttp's own request-handler settings for the listener (`web.AppRunner` kwargs)."""
    return {
        "access_log": None,  # Prometheus scraping every 15 s would drown the journal
        "keepalive_timeout": guard.limits.header_timeout,
        "logger": PeerErrorLog(guard),
    }


__all__ = [
    "HEADER_TIMEOUT",
    "MAX_CONNECTIONS",
    "PROBLEM_INTERVAL",
    "Guard",
    "GuardedSite",
    "Limits",
    "PeerErrorLog",
    "ProblemLog",
    "describe",
    "guard_middleware",
    "runner_args",
]
