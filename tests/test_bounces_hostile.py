"""Whatever bytes arrive, explain() answers: `kind: other` with one clear problem for what is
not readable mail, in bounded time and memory, never an exception."""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rblwatch.bounces.explain import MAX_MESSAGE_BYTES, explain
from rblwatch.bounces.model import Explained, message_json
from rblwatch.bounces.parse import MAX_DEPTH, MAX_PARTS

HEAD = b"From: MAILER-DAEMON@example.com\nSubject: Undelivered Mail\nMIME-Version: 1.0\n"


def bounded(raw: bytes, seconds: float = 2.0, peak_mb: float = 64.0) -> Explained:
    """explain(raw) — under `seconds` and with a traced memory peak under `peak_mb`."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        got = explain(raw, "hostile.eml")
        took = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert took < seconds, took
    assert peak < peak_mb * 1024 * 1024, peak
    message_json(got)  # and it serialises
    return got


def nested_multiparts(depth: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth)
    )
    closing = b"".join(b"\n--b%d--\n" % i for i in reversed(range(depth)))
    return HEAD + opening + b"Content-Type: text/plain\n\nx\n" + closing


def many_parts(n: int) -> bytes:
    head = HEAD + b'Content-Type: multipart/mixed; boundary="B"\n\n'
    body = b"".join(b"--B\nContent-Type: text/plain\n\npart %d\n" % i for i in range(n))
    return head + body + b"--B--\n"


def test_not_an_email() -> None:
    got = bounded(b"hello, this is a shopping list\n- eggs\n- milk\n")
    assert got.kind == "other"
    assert got.problem == "not an email message (no header fields)"
    assert bounded(b"").problem == "not an email message (no header fields)"


def test_a_50_mb_message_is_refused_unread() -> None:
    raw = HEAD + b"\n" + b"x" * (50 * 1024 * 1024)
    got = bounded(raw, seconds=0.5, peak_mb=1)
    assert got.kind == "other"
    assert (
        got.problem == f"message of {len(raw)} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes"
    )


def test_a_mime_bomb_of_nested_multiparts() -> None:
    for depth in (MAX_DEPTH + 5, 150, 5000):
        got = bounded(nested_multiparts(depth))
        assert got.kind == "other"
        assert got.problem is not None
        assert "nested" in got.problem or "parts" in got.problem


def test_a_nest_of_embedded_messages() -> None:
    raw = b"From: a@example.com\n\nbody\n"
    for _ in range(500):
        raw = b"From: a@example.com\nContent-Type: message/rfc822\n\n" + raw
    got = bounded(raw)
    assert got.kind == "other"
    assert got.problem == "more than 200 nested MIME containers"


def test_a_message_of_10000_parts() -> None:
    got = bounded(many_parts(10_000))
    assert got.kind == "other"
    assert got.problem == f"more than {MAX_PARTS} MIME parts"


def test_just_under_the_part_limit_is_read() -> None:
    got = bounded(many_parts(MAX_PARTS - 2))
    assert got.problem is None


def test_binary_junk() -> None:
    rng = random.Random(13)
    for size in (10, 1000, 1 << 20):
        got = bounded(rng.randbytes(size))
        assert got.kind == "other"


def test_junk_that_looks_like_a_header_then_binary() -> None:
    got = bounded(b"X-Junk: 1\n\n" + os.urandom(2 << 20))
    assert got.kind == "other"


def _hostile_text(line: bytes, count: int) -> Callable[[], bytes]:
    return lambda: HEAD + b"\n" + MARKERS + line * count + b"\n\n" + MARKERS


# the sentences every recogniser starts from, so each one reads the hostile text behind them
MARKERS = (
    b"This is the mail system at host x.\n\n"
    b"This message was created automatically by mail delivery software\naddress(es) failed:\n\n"
    b"-- The following addresses had permanent fatal errors --\n"
    b"Hi. This is the qmail-send program at x.\n"
    b"Diagnostic information for administrators:\n"
    b"The response from the remote server was:\nwasn't delivered to a@b \n"
    b'{"notificationType": \n'
)


def test_megabytes_of_pathological_text_stay_linear() -> None:
    for make in (
        _hostile_text(b"a@", 2_000_000),
        _hostile_text(b"<a@b>:\nx\n", 500_000),
        _hostile_text(b" ", 5_000_000),
        _hostile_text(b"host a[1] said: 550-5.7.1 ", 200_000),
        _hostile_text(b"[1.2.3.4", 500_000),
    ):
        got = bounded(make(), seconds=5.0, peak_mb=200)
        assert len(got.recipients) <= 1000


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_any_bytes_get_an_answer(raw: bytes) -> None:
    message_json(explain(raw, "fuzz.eml"))


_PIECES = st.sampled_from(
    [
        b"From: MAILER-DAEMON@example.com\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n",
        b"Content-Type: message/delivery-status\n",
        b"Content-Type: message/global-delivery-status\n",
        b"Content-Type: message/rfc822\n",
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Type: text/plain; charset=x-unknown\n",
        b"Subject: =?UTF-8?B?broken?=\n",
        b"Subject: =?bogus?Q?=FF?=\n",
        b"\n",
        b"--B\n",
        b"--B--\n",
        b"Final-Recipient: rfc822; a@example.net\n",
        b"Final-Recipient: utf-8; \\x{110000}@example.net\n",
        b"Status: 5.7.1\n",
        b"Diagnostic-Code: smtp; 550-5.7.1 x\n 550 5.7.1 y\n",
        b"\xff\xfe\x00\x80\n",
        b"<a@example.net>: host mx[198.51.100.1] said: 550 5.1.1 no (in reply to RCPT TO)\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=40))
def test_any_mix_of_mime_pieces_gets_an_answer(pieces: list[bytes]) -> None:
    message_json(explain(b"".join(pieces), "fuzz.eml"))
