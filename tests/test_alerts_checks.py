"""Hygiene check events in every alert format (issue 12): check_failed, check_passed and
check_changed, each with the check, the result word and the reason a person acts on; the json
format still signed and one `webhook-id` per event; Alertmanager's alert firing, resolved on a
pass and re-posted while the check fails."""

from __future__ import annotations

import base64
import json
import time

from standardwebhooks import Webhook

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Context, Firing
from rblwatch.model import Event, EventKind, PairState, PairStatus, frozen_map

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
CTX = Context(labels=frozen_map({"team": "mail-ops"}))  # no DNS list: a check's events
T0 = 1_790_000_000.0
REASON = "softfail via ~all after include:_spf.example.net: add `ip4:192.0.2.10`"
FAILED = Event(
    kind=EventKind.CHECK_FAILED,
    list="spf",
    at=T0,
    target="example.com 192.0.2.10",
    group="mail",
    codes=("softfail",),
    meanings=(REASON,),
    id=7,
)
PASSED = Event(
    kind=EventKind.CHECK_PASSED,
    list="spf",
    at=T0 + 600,
    target="example.com 192.0.2.10",
    group="mail",
    codes=("softfail",),
    meanings=(REASON,),
    since=T0,
    id=8,
)
CHANGED = Event(
    kind=EventKind.CHECK_CHANGED,
    list="spf",
    at=T0 + 300,
    target="example.com 192.0.2.10",
    group="mail",
    codes=("fail",),
    meanings=("fail via -all: add `ip4:192.0.2.10`",),
    previous_codes=("softfail",),
    detail=f"before: {REASON}",
    since=T0,
    id=9,
)


def request(fmt: str, event: Event) -> formats.Request:
    return formats.FORMATS[fmt].event_request(event, CTX, secret=SECRET, now=T0 + 5, ttl=240)


def test_json_carries_the_check_result_and_reason_signed_under_one_id() -> None:
    req = request("json", FAILED)
    doc = json.loads(req.body)
    assert doc["type"] == "check.failed"
    data = doc["data"]
    assert (data["check"], data["target"], data["state"], data["result"]) == (
        "spf",
        "example.com 192.0.2.10",
        "fail",
        "softfail",
    )
    assert data["reason"] == REASON and data["id"] == "evt_7"
    assert data["since"] == "2026-09-21T14:13:20.000Z"
    assert req.headers["webhook-id"] == "evt_7"
    now = time.time()  # the library refuses a timestamp too far from its clock
    fresh = formats.FORMATS["json"].event_request(FAILED, CTX, secret=SECRET, now=now, ttl=240)
    assert Webhook(SECRET).verify(fresh.body, dict(fresh.headers))["data"]["reason"] == REASON


def test_json_pass_and_change_say_what_was_before() -> None:
    passed = json.loads(request("json", PASSED).body)
    assert passed["type"] == "check.passed" and passed["data"]["state"] == "pass"
    assert passed["data"]["since"] == "2026-09-21T14:13:20.000Z"  # the failure it ends began
    changed = json.loads(request("json", CHANGED).body)["data"]
    assert (changed["result"], changed["previous"]["result"]) == ("fail", "softfail")
    assert changed["previous"]["reason"] == REASON


def test_slack_names_the_check_the_result_and_the_reason() -> None:
    body = json.loads(request("slack", FAILED).body)
    assert body["text"] == ":rotating_light: example.com 192.0.2.10 fails the spf check"
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert "*Check*\nspf" in fields and "*Result*\nsoftfail" in fields
    assert any(f.startswith("*Reason*\nsoftfail via ~all") for f in fields)
    changed = [f["text"] for f in json.loads(request("slack", CHANGED).body)["blocks"][1]["fields"]]
    assert f"*Before*\nbefore: {REASON}" in changed
    assert json.loads(request("slack", PASSED).body)["text"].startswith(":white_check_mark:")


def test_alertmanager_fires_on_failure_and_resolves_on_the_pass() -> None:
    (firing,) = json.loads(request("alertmanager", FAILED).body)
    assert firing["labels"] == {
        "team": "mail-ops",
        "target": "example.com 192.0.2.10",
        "check": "spf",
        "group": "mail",
        "alertname": "RblwatchCheckFailing",
    }
    assert REASON in firing["annotations"]["description"]
    assert firing["endsAt"] == formats.rfc3339(T0 + 5 + 240)
    (resolved,) = json.loads(request("alertmanager", PASSED).body)
    assert resolved["labels"] == firing["labels"]
    assert (resolved["startsAt"], resolved["endsAt"]) == (
        formats.rfc3339(T0),
        formats.rfc3339(T0 + 600),
    )


def test_alertmanager_reposts_a_failing_check_with_the_same_labels() -> None:
    pair = PairState(
        target="example.com 192.0.2.10",
        list="spf",
        group="mail",
        status=PairStatus.LISTED,
        since=T0,
        first_seen=T0,
        codes=("softfail",),
        meanings=(REASON,),
    )
    (req,) = formats.FORMATS["alertmanager"].resend_requests(
        Firing(pairs=[(pair, CTX)]), now=T0 + 900, ttl=240
    )
    (alert,) = json.loads(req.body)
    (first,) = json.loads(request("alertmanager", FAILED).body)
    assert alert["labels"] == first["labels"]
    assert alert["startsAt"] == formats.rfc3339(T0)
