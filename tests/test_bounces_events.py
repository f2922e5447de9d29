"""A `bounce` event as the daemon's reader builds it, and in every alert format."""

from __future__ import annotations

import dataclasses
import json

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Context
from rblwatch.bounces.model import NamedList, Recipient
from rblwatch.bouncewatch import bounce_event, seen_name
from rblwatch.model import EventKind, Target, TargetKind, frozen_map

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
