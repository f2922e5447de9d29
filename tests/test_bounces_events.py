"""A `bounce` event as the daemon's reader builds it, and in every alert format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Context
from rblwatch.bounces.explain import ListFacts
from rblwatch.bounces.model import NamedList, Recipient
from rblwatch.bouncewatch import BounceWatcher, bounce_event, seen_name
from rblwatch.config import parse_config
from rblwatch.engine import Engine
from rblwatch.model import Event, EventKind, Target, TargetKind, frozen_map
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
