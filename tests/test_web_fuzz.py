"""A fuzzer for the HTTP listener: whatever a peer sends, the answer is a 2xx-4xx (or 503) or a
closed connection, never a 500, and the log never holds a traceback (issue 9).

The real listener (aiohttp, rblwatch's handlers and middleware) runs in a thread on a free
loopback port over a real SQLite store with listings and events; hypothesis builds requests
from the API's own vocabulary (paths, parameters, methods, headers) and from noise, and sends
each on a raw socket. Bounded for CI (`RBLWATCH_FUZZ_EXAMPLES`, default 300 per test); a soak:

    RBLWATCH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/test_web_fuzz.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rblwatch import web
from rblwatch.metrics import build_registry
from tests.webstate import T0, event, listed, make_runtime, put

EXAMPLES = int(os.environ.get("RBLWATCH_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")


class Listener:
    """The listener on its own event loop in a thread, for synchronous requests."""

    def __init__(self, tmp_path: Path) -> None:
        self.runtime = make_runtime(tmp_path)
        put(
            self.runtime,
            [listed(f"192.0.2.{i}", since=T0 + i) for i in range(20)],
            [event(f"192.0.2.{i}", T0 + i) for i in range(20)],
        )
        self.runtime.ready = True
        self.loop = asyncio.new_event_loop()
        self.port = 0
        started = threading.Event()

        async def start() -> None:
            registry = build_registry(self.runtime)
            self.runner = await web.start(self.runtime, registry, "127.0.0.1", 0)
            self.port = self.runner.addresses[0][1]
            started.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()),
            daemon=True,
        )
        self.thread.start()
        assert started.wait(10), "the listener did not start"

    def send(self, data: bytes, *, half_close: bool = True) -> bytes:
        """The reply to `data` on a new connection, read until the server closes it.

        With `half_close` the client also ends its side after `data` (as `nc -N` does), so
        noise that is no complete request ends at once instead of at the header timeout;
        aiohttp then closes without answering, which is its right.
        """
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()
            # handlers of connections the fuzz left half-open: ended here, not by the GC
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    server = Listener(tmp_path_factory.mktemp("web-fuzz"))
    try:
        yield server
    finally:
        server.close()


PATHS = [
    "/",
    "/metrics",
    "/-/healthy",
    "/-/ready",
    "/-/reload",
    "/api/v1/status",
    "/api/v1/events",
    "/api/v1/nothing",
    "/favicon.ico",
]
PARAMS = ["since", "limit", "target", "list", "x", ""]
WORDS = [
    "2026-11-01T00:00:00Z",
    "2026-11-01T00:00:00+01:00",
    "-1",
    "0",
    "100",
    "99999999999999999999",
    "192.0.2.1",
    "2001:0db8::1",
    "bücher.example",
    "corp-bl",
    "../../etc/passwd",
    "%00",
    "\u2028",
    "<script>",
]
values = st.one_of(st.sampled_from(WORDS), st.text(max_size=40))
query = st.lists(st.tuples(st.sampled_from(PARAMS), values), max_size=4).map(
    lambda pairs: "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
)
methods = st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"])
headers = st.lists(
    st.sampled_from(
        [
            "Origin: http://evil.example",
            "Accept-Encoding: gzip, deflate",
            "Content-Type: application/json",
            "Content-Length: 5",
            "Transfer-Encoding: chunked",
            "Expect: 100-continue",
            "Cookie: a=b",
            "X-Forwarded-For: 203.0.113.9",
        ]
    ),
    max_size=3,
)


def check(reply: bytes, caplog: pytest.LogCaptureFixture) -> None:
    if reply:
        m = STATUS.match(reply)
        assert m is not None, reply[:200]
        status = int(m[1])
        assert status < 500 or status == 503, reply[:300]
    problems = [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    assert problems == [], problems[0].getMessage()


@FUZZ
@given(methods, st.sampled_from(PATHS), query, headers, st.binary(max_size=64))
def test_requests_built_from_the_api_never_get_a_500_or_a_traceback(
    listener: Listener,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    qs: str,
    extra: list[str],
    body: bytes,
) -> None:
    caplog.set_level(logging.DEBUG)
    target = path + ("?" + qs if qs else "")
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *extra, "Connection: close"]
    if "Content-Length: 5" not in extra and "Transfer-Encoding: chunked" not in extra:
        head.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body
    # "Content-Length: 5" with a shorter body waits for the rest: end it by a half-close
    short = (
        "Content-Length: 5" in extra and len(body) < 5
    ) or "Transfer-Encoding: chunked" in extra
    reply = listener.send(request, half_close=short)
    if short:
        check(reply, caplog)
        return
    assert reply, "a well-formed request got no answer at all"
    check(reply, caplog)


@FUZZ
@given(st.binary(max_size=512))
def test_noise_never_gets_a_500_or_a_traceback(
    listener: Listener, caplog: pytest.LogCaptureFixture, noise: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    check(listener.send(noise), caplog)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(PATHS))
def test_a_mangled_request_line_never_gets_a_500_or_a_traceback(
    listener: Listener, caplog: pytest.LogCaptureFixture, junk: bytes, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    data = b"GET " + path.encode() + junk + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    check(listener.send(data), caplog)


def test_a_peer_that_half_closes_after_its_request_leaves_no_traceback(
    listener: Listener, caplog: pytest.LogCaptureFixture
) -> None:
    # found by the fuzzer: aiohttp closes on the peer's EOF and then fails to write the
    # answer, which it logged with a traceback ("Cannot write to closing transport")
    caplog.set_level(logging.DEBUG)
    for path in PATHS:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        check(listener.send(request, half_close=True), caplog)
