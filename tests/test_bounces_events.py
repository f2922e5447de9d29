"""A `bounce` event as the daemon's reader builds it, and in every alert format."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import mailbox
from pathlib import Path
from typing import Any

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Context
from rblwatch.bounces.explain import ListFacts
from rblwatch.bounces.model import Explained, NamedList, Recipient
from rblwatch.bouncewatch import BASELINE, BounceWatcher, blamed, bounce_event, fetch, seen_name
from rblwatch.config import parse_config
from rblwatch.config.model import BounceSource
from rblwatch.engine import Engine
from rblwatch.model import CycleCommit, Event, EventKind, Target, TargetKind, frozen_map
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore

T0 = 1_790_000_000.0
CTX = Context(labels=frozen_map({"team": "mail-ops"}))
RCPT = Recipient(
    address="user@example.org",
    action="failed",
    status="5.7.1",
    reply_code="554",
    diagnostic="554 5.7.1 Client host [192.0.2.22] blocked using zen.spamhaus.org",
    cause="blocklisted",
    sending_ip="192.0.2.22",
    lists=(NamedList(None, "unknown.example"), NamedList("spamhaus-zen", "zen.spamhaus.org")),
)
TARGET = Target("192.0.2.22", TargetKind.IPV4, "mail", "mx1.example.com")


def test_the_event_names_the_first_known_list_the_cause_and_the_recipients_domain() -> None:
    e = bounce_event(RCPT, TARGET, T0)
    assert (e.kind, e.list, e.target, e.group) == (
        EventKind.BOUNCE,
        "spamhaus-zen",
        "192.0.2.22",
        "mail",
    )
    assert (e.codes, e.meanings, e.hostname) == (("5.7.1",), ("blocklisted",), "mx1.example.com")
    assert e.detail.startswith("example.org: 554 5.7.1 Client host")
    bare = bounce_event(Recipient(address=None, reply_code="550", cause="other"), TARGET, T0)
    assert (bare.list, bare.codes, bare.detail) == ("", ("550",), "")
    assert seen_name("inbox") == "bounces:inbox"


def test_every_format_carries_a_bounce() -> None:
    e = dataclasses.replace(bounce_event(RCPT, TARGET, T0), id=5)  # as the store returns it

    def body(fmt: str) -> object:
        req = formats.FORMATS[fmt].event_request(e, CTX, secret=None, now=T0 + 1, ttl=240)
        return json.loads(req.body)

    doc = body("json")
    assert isinstance(doc, dict) and doc["type"] == "bounce.received"
    data = doc["data"]
    assert (data["target"], data["cause"], data["status"], data["list"]) == (
        "192.0.2.22",
        "blocklisted",
        "5.7.1",
        "spamhaus-zen",
    )
    assert data["labels"] == {"team": "mail-ops"} and "example.org" in data["diagnostic"]
    slack = body("slack")
    assert isinstance(slack, dict)
    assert slack["text"].endswith("Mail from 192.0.2.22 (mx1.example.com) bounced")
    fields = [f["text"] for f in slack["blocks"][1]["fields"]]
    assert "*Cause*\nblocklisted" in fields and "*List named*\nspamhaus-zen" in fields
    (alert,) = body("alertmanager")  # type: ignore[misc]
    assert alert["labels"]["alertname"] == "RblwatchBounce"
    assert (alert["labels"]["cause"], alert["labels"]["list"]) == ("blocklisted", "spamhaus-zen")
    assert alert["endsAt"] == formats.rfc3339(T0 + 1 + 240)  # news: it fires for a while


ORIGINAL = (
    b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+x@example.com\r\n"
    b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
    b"Final-Recipient: rfc822; user@example.org\r\nAction: failed\r\nStatus: 5.7.1\r\n"
    b"Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; sender domain listed at"
    b" dbl.spamhaus.org\r\n\r\n"
    b"--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: Shop <news@Shop.Example.COM>\r\n"
    b"To: user@example.org\r\nSubject: hi\r\n\r\nhello\r\n--B--\r\n"
)


def test_a_bounce_blames_a_domain_target_by_the_domain_its_original_came_from(
    tmp_path: Path,
) -> None:
    from rblwatch.bounces.explain import explain

    explained = explain(ORIGINAL, "m.eml")
    assert explained.sender_domain == "shop.example.com"  # the original's From
    no_original = ORIGINAL.split(b"--B\r\nContent-Type: message/rfc822")[0] + b"--B--\r\n"
    assert explain(no_original, "m.eml").sender_domain == "example.com"  # the bounce's To

    cfg = parse_config(
        {
            "lists": [{"name": "dbl", "zone": "dbl.spamhaus.org", "kind": "domain"}],
            "targets": [{"group": "web", "domains": ["shop.example.com"]}],
        }
    )
    store = SqliteStore(str(tmp_path / "state.db"))
    try:
        rt = Runtime(cfg, store)
        watcher = BounceWatcher(rt, Engine(rt), clock=lambda: T0)
        targets = {"shop.example.com": Target("shop.example.com", TargetKind.DOMAIN, "web", "")}
        events: list[Event] = []
        rechecks: set[tuple[str, str]] = set()
        facts = [ListFacts("dbl", ("dbl.spamhaus.org",))]
        watcher._read(cfg, explain(ORIGINAL, "m.eml", facts), targets, events, rechecks)
    finally:
        store.close()
    assert [(e.target, e.group, e.list) for e in events] == [("shop.example.com", "web", "dbl")]
    assert rechecks == {("dbl", "shop.example.com")}
    assert rt.stats.bounces == {("blocklisted", "web"): 1}


def _dsn(ip: str, status: str = "5.7.1", text: str = "blocked using dbl.spamhaus.org") -> bytes:
    return ORIGINAL.replace(b"Status: 5.7.1", f"Status: {status}".encode()).replace(
        b"Service unavailable; sender domain listed at dbl.spamhaus.org",
        f"Client host [{ip}] {text}".encode(),
    )


def _watcher(tmp_path: Path, got: list[tuple[str, bytes | None]]) -> tuple[BounceWatcher, Any]:
    cfg = parse_config(
        {
            "resolver": {"nameservers": ["127.0.0.1:9"]},  # nothing is asked; never the internet
            "lists": [{"name": "dbl", "zone": "dbl.spamhaus.org", "kind": "domain"}],
            "targets": [{"group": "mail", "addresses": ["192.0.2.22"]}],
            "bounces": {"sources": [{"name": "inbox", "maildir": str(tmp_path / "box")}]},
        }
    )
    store = SqliteStore(str(tmp_path / "state.db"))
    rt = Runtime(cfg, store)
    return BounceWatcher(rt, Engine(rt), fetch=lambda s, seen, stop: list(got)), store


def test_the_first_reading_of_a_source_remembers_what_is_there_and_alerts_nothing(
    tmp_path: Path,
) -> None:
    got: list[tuple[str, bytes | None]] = [("old", _dsn("192.0.2.22"))]
    watcher, store = _watcher(tmp_path, got)
    try:
        source = watcher.rt.config.bounces.sources[0]
        first = asyncio.run(watcher.poll())
        assert first == [] and store.seen(seen_name(source.name)) == {"old", BASELINE}
        got[:] = [("new", _dsn("192.0.2.22"))]
        second = asyncio.run(watcher.poll())
    finally:
        store.close()
    assert [(e.kind, e.target) for e in second] == [(EventKind.BOUNCE, "192.0.2.22")]
    assert watcher.engine.resolver().stats.sent == 0  # dbl takes no IP: no re-check sent


def test_a_recipients_own_failure_is_counted_but_no_event(tmp_path: Path) -> None:
    unknown = _dsn("192.0.2.22", "5.1.1", "said: 550 5.1.1 <user@example.org>: User unknown")
    got: list[tuple[str, bytes | None]] = [("k", unknown)]
    watcher, store = _watcher(tmp_path, got)
    try:
        store.commit(CycleCommit(seen_name("inbox"), seen=[BASELINE]))
        events = asyncio.run(watcher.poll())
    finally:
        store.close()
    assert events == []
    assert watcher.rt.stats.bounces == {("recipient", "mail"): 1}


def test_a_domain_is_blamed_only_for_a_bounce_about_the_domain() -> None:
    cfg = parse_config(
        {
            "lists": [
                {"name": "zen", "zone": "zen.spamhaus.org", "kind": "ip"},
                {"name": "dbl", "zone": "dbl.spamhaus.org", "kind": "domain"},
            ],
            "targets": [{"group": "web", "domains": ["shop.example.com"]}],
        }
    )
    targets = {"shop.example.com": Target("shop.example.com", TargetKind.DOMAIN, "web", "")}
    explained = Explained("m", "bounce", sender_domain="shop.example.com")
    ip_listing = Recipient(
        "u@example.org", cause="blocklisted", sending_ip="203.0.113.9",
        lists=(NamedList("zen", "zen.spamhaus.org"),),
    )  # fmt: skip
    assert blamed(ip_listing, explained, targets, cfg) is None  # the IP's listing, not ours
    for r in (
        dataclasses.replace(ip_listing, lists=(NamedList("dbl", "dbl.spamhaus.org"),)),
        dataclasses.replace(ip_listing, cause="authentication", lists=()),
        dataclasses.replace(ip_listing, sending_ip=None),
    ):
        assert blamed(r, explained, targets, cfg) == targets["shop.example.com"], r


def test_a_read_stops_between_two_messages_once_the_daemon_stops(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "box", create=True)
    for i in range(3):
        box.add(f"Subject: {i}\n\nbody {i}\n".encode())
    source = BounceSource("inbox", maildir=str(tmp_path / "box"))
    assert len(fetch(source, set(), lambda: False)) == 3
    assert len(fetch(source, set(), lambda: True)) == 1
