"""Defects found reviewing the bounce reader (issue 13), each pinned here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rblwatch.bounces import classify
from rblwatch.bounces.explain import ListFacts
from rblwatch.bouncewatch import BASELINE, BounceWatcher, seen_name
from rblwatch.cluster import Fence, View
from rblwatch.config import parse_config
from rblwatch.config.model import BounceSource
from rblwatch.engine import Engine
from rblwatch.model import CycleCommit
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore

T0 = 1_790_000_000.0
DSN = (
    b"From: MAILER-DAEMON@mx.example.net\r\nTo: sender@example.com\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
    b"Final-Recipient: rfc822; user@example.org\r\nAction: failed\r\nStatus: 5.7.1\r\n"
    b"Diagnostic-Code: smtp; 554 5.7.1 Client host [192.0.2.22] blocked using"
    b" zen.spamhaus.org\r\n\r\n--B--\r\n"
)


def _config(tmp_path: Path) -> Any:
    (tmp_path / "box").mkdir()
    return parse_config(
        {
            "resolver": {"nameservers": ["127.0.0.1:9"]},  # never the internet
            "lists": ["spamhaus-zen"],
            "targets": [{"group": "mail", "addresses": ["192.0.2.22"]}],
            "bounces": {"sources": [{"name": "inbox", "maildir": str(tmp_path / "box")}]},
        }
    )


def test_a_bounce_round_is_written_only_while_this_instance_still_leads(tmp_path: Path) -> None:
    # Several instances: the leader's round can take long (an IMAP fetch of 1000 messages);
    # should it lose the lead meanwhile, the new leader reads the same messages, and an
    # unfenced commit of the old one raises every event twice.
    fences: list[Fence | None] = []

    class Spy(SqliteStore):
        def commit(self, c: Any, receivers_for: Any = None, fence: Fence | None = None) -> Any:
            fences.append(fence)
            return super().commit(c, receivers_for, fence)

    store = Spy(str(tmp_path / "state.db"))
    try:
        rt = Runtime(_config(tmp_path), store)
        rt.view = View("me", (), leader=True, live=2, now=T0)

        def fetch(
            source: BounceSource, seen: set[str], stop: Any
        ) -> list[tuple[str, bytes | None]]:
            return [("m1", DSN)]

        source = rt.config.bounces.sources[0]
        store.commit(CycleCommit(seen_name(source.name), seen=[BASELINE]))  # read before

        watcher = BounceWatcher(rt, Engine(rt), fetch=fetch, clock=lambda: T0)
        asyncio.run(watcher._poll_source(rt.config, source, {}, []))
    finally:
        store.close()
    assert fences == [None, Fence("me", leader=True)]


def test_common_microsoft_bounces_get_their_real_cause() -> None:
    facts: list[ListFacts] = []

    def cause_of(status: str, text: str) -> str:
        return classify.cause(status, text, classify.lists_named(text, facts))

    # Directory-Based Edge Blocking: the recipient does not exist in the tenant
    dbeb = "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [x.outlook.com]"
    assert cause_of("5.4.1", dbeb) == "recipient"
    # "the majority of traffic from the sending IP is considered suspicious"
    ms708 = "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP."
    assert cause_of("5.7.708", ms708) == "reputation"
