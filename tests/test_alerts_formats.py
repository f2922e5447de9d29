"""Alert payloads (SPEC §12): Standard Webhooks json, Slack messages and Alertmanager alerts.

Signatures are checked by an independent implementation, the `standardwebhooks` package, and by
a plain HMAC written here from the standard's text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Context
from rblwatch.model import DnsList, Event, EventKind, PairState, PairStatus, frozen_map

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
LIST = DnsList(
    name="bl",
    zone="bl.test",
    codes=frozen_map({"127.0.0.2": "spam source", "127.0.0.4": "exploited host"}),
    delist_url="https://bl.example/remove",
)
CTX = Context(labels=frozen_map({"team": "mail-ops"}), dns_list=LIST)
T0 = 1_790_000_000.0

LISTED = Event(
    kind=EventKind.LISTED,
    list="bl",
    at=T0,
    target="192.0.2.1",
    group="mail",
    codes=("127.0.0.2",),
    meanings=("spam source",),
    txt="spam from 192.0.2.1",
    id=42,
)
CHANGED = Event(
    kind=EventKind.CHANGED,
    list="bl",
    at=T0 + 60,
    target="192.0.2.1",
    group="mail",
    codes=("127.0.0.4",),
    meanings=("exploited host",),
    previous_codes=("127.0.0.2",),
    since=T0,
    id=43,
)
DELISTED = Event(
    kind=EventKind.DELISTED,
    list="bl",
    at=T0 + 120,
    target="192.0.2.1",
    group="mail",
    codes=("127.0.0.4",),
    meanings=("exploited host",),
    previous_codes=("127.0.0.4",),
    since=T0,
    id=44,
)
UNHEALTHY = Event(
    kind=EventKind.LIST_UNHEALTHY, list="bl", at=T0, detail="127.0.0.2 not listed", id=45
)


def body(event: Event, ctx: Context = CTX) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(formats.json_body(event, ctx))
    return doc


# -- json -----------------------------------------------------------------------------------------


def test_a_json_delivery_is_verified_by_the_standardwebhooks_library() -> None:
    now = time.time()
    req = formats.json_request(LISTED, CTX, SECRET, now)
    assert req.headers["webhook-id"] == "evt_42"
    assert req.headers["webhook-timestamp"] == str(int(now))
    doc = Webhook(SECRET).verify(req.body, dict(req.headers))
    assert doc["type"] == "listing.created"


def test_the_signature_is_a_plain_hmac_over_id_timestamp_and_body() -> None:
    req = formats.json_request(LISTED, CTX, SECRET, T0)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + req.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert req.headers["webhook-signature"] == f"v1,{expected}"


def test_a_tampered_body_or_another_secret_fails_verification() -> None:
    req = formats.json_request(LISTED, CTX, SECRET, time.time())
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(req.body.replace(b"192.0.2.1", b"192.0.2.9"), dict(req.headers))
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(req.body, dict(req.headers))


def test_every_attempt_sends_the_same_body_under_the_same_id_with_a_fresh_timestamp() -> None:
    first = formats.json_request(LISTED, CTX, SECRET, T0)
    later = formats.json_request(LISTED, CTX, SECRET, T0 + 3600)
    assert first.body == later.body
    assert first.headers["webhook-id"] == later.headers["webhook-id"]
    assert first.headers["webhook-timestamp"] != later.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != later.headers["webhook-signature"]


def test_a_receiver_without_a_secret_gets_unsigned_deliveries_with_id_and_timestamp() -> None:
    req = formats.json_request(LISTED, CTX, None, T0)
    assert "webhook-signature" not in req.headers
    assert req.headers["webhook-id"] == "evt_42"
    assert req.headers["content-type"] == "application/json"


def test_a_listing_carries_target_group_labels_codes_with_meanings_txt_and_delist_url() -> None:
    doc = body(LISTED)
    assert doc["type"] == "listing.created"
    assert doc["timestamp"] == formats.rfc3339(T0)
    assert datetime.fromisoformat(doc["timestamp"]).timestamp() == T0
    assert doc["data"] == {
        "id": "evt_42",
        "event_id": 42,
        "kind": "listed",
        "list": "bl",
        "delist_url": "https://bl.example/remove",
        "target": "192.0.2.1",
        "group": "mail",
        "labels": {"team": "mail-ops"},
        "state": "listed",
        "codes": [{"code": "127.0.0.2", "meaning": "spam source"}],
        "txt": "spam from 192.0.2.1",
        "since": formats.rfc3339(T0),
        "initial": False,
        "previous": {"state": "clean", "codes": []},
    }


def test_a_listing_found_on_the_first_lookup_has_no_previous_state() -> None:
    from dataclasses import replace

    doc = body(replace(LISTED, initial=True))
    assert doc["data"]["initial"] is True
    assert doc["data"]["previous"] == {"state": None, "codes": []}


def test_a_change_says_what_the_codes_were_with_their_configured_meanings() -> None:
    data = body(CHANGED)["data"]
    assert body(CHANGED)["type"] == "listing.changed"
    assert data["codes"] == [{"code": "127.0.0.4", "meaning": "exploited host"}]
    assert data["previous"] == {
        "state": "listed",
        "codes": [{"code": "127.0.0.2", "meaning": "spam source"}],
    }
    assert data["since"] == formats.rfc3339(T0)  # when the listing began


def test_a_removal_is_clean_now_and_describes_the_listing_that_ended() -> None:
    doc = body(DELISTED)
    assert doc["type"] == "listing.removed"
    assert doc["data"]["state"] == "clean"
    assert doc["data"]["since"] == formats.rfc3339(T0)
    assert doc["data"]["previous"]["state"] == "listed"


def test_list_events_have_their_own_types_and_no_target() -> None:
    doc = body(UNHEALTHY)
    assert doc["type"] == "list.unhealthy"
    assert doc["data"]["detail"] == "127.0.0.2 not listed"
    assert "target" not in doc["data"]
    recovered = Event(kind=EventKind.LIST_RECOVERED, list="bl", at=T0, id=46)
    assert body(recovered)["type"] == "list.recovered"


def test_a_list_no_longer_configured_still_makes_a_payload() -> None:
    data = body(LISTED, Context())["data"]
    assert data["delist_url"] is None and data["labels"] == {}
    assert data["codes"] == [{"code": "127.0.0.2", "meaning": "spam source"}]


# -- slack ----------------------------------------------------------------------------------------


def slack(event: Event) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(formats.slack_request(event, CTX).body)
    return doc


def test_a_slack_message_has_text_and_blocks_with_target_list_codes_and_a_delist_link() -> None:
    doc = slack(LISTED)
    assert "192.0.2.1 is listed on bl" in doc["text"]
    shown = json.dumps(doc["blocks"])
    for part in ("192.0.2.1", "bl", "mail", "127.0.0.2 spam source", "spam from 192.0.2.1"):
        assert part in shown
    assert "<https://bl.example/remove|Request removal from bl>" in shown
    assert doc["blocks"][0]["type"] == "header"


def test_slack_text_from_the_outside_cannot_forge_links() -> None:
    from dataclasses import replace

    doc = slack(replace(LISTED, txt="see <https://evil.example|here> & there"))
    shown = json.dumps(doc["blocks"])
    assert "<https://evil.example" not in shown
    assert "&lt;https://evil.example|here&gt; &amp; there" in shown


def test_a_slack_removal_has_no_delist_link() -> None:
    doc = slack(DELISTED)
    assert "no longer listed" in doc["text"]
    assert "Request removal" not in json.dumps(doc)


# -- alertmanager -----------------------------------------------------------------------------


def test_a_listing_fires_an_alert_that_ends_after_the_ttl() -> None:
    req = formats.event_request("alertmanager", LISTED, CTX, secret=None, now=T0 + 5, ttl=240)
    assert req.path == "/api/v2/alerts"
    [alert] = json.loads(req.body)
    assert alert["labels"] == {
        "alertname": "RblwatchListed",
        "target": "192.0.2.1",
        "list": "bl",
        "group": "mail",
        "team": "mail-ops",
    }
    assert alert["annotations"]["delist_url"] == "https://bl.example/remove"
    assert "192.0.2.1" in alert["annotations"]["summary"]
    assert "127.0.0.2 spam source" in alert["annotations"]["description"]
    assert alert["startsAt"] == formats.rfc3339(T0)
    assert alert["endsAt"] == formats.rfc3339(T0 + 245)


def test_a_removal_resolves_the_same_alert_at_the_time_of_the_removal() -> None:
    fired = formats.event_alert(LISTED, CTX, T0, 240)
    resolved = formats.event_alert(DELISTED, CTX, T0 + 600, 240)
    assert resolved["labels"] == fired["labels"]  # the same alert
    assert resolved["startsAt"] == formats.rfc3339(T0)
    assert resolved["endsAt"] == formats.rfc3339(T0 + 120)


def test_a_code_change_keeps_the_alert_and_updates_its_annotations() -> None:
    fired = formats.event_alert(LISTED, CTX, T0, 240)
    changed = formats.event_alert(CHANGED, CTX, T0 + 60, 240)
    assert changed["labels"] == fired["labels"]
    assert changed["annotations"]["codes"] == "127.0.0.4"


def test_group_labels_never_override_the_alert_identity() -> None:
    ctx = Context(labels=frozen_map({"target": "spoof", "alertname": "X", "site": "ams"}))
    alert = formats.event_alert(LISTED, ctx, T0, 240)
    assert alert["labels"]["target"] == "192.0.2.1"
    assert alert["labels"]["alertname"] == "RblwatchListed"
    assert alert["labels"]["site"] == "ams"


def test_an_unhealthy_list_is_its_own_alert_resolved_by_recovery() -> None:
    fired = formats.event_alert(UNHEALTHY, CTX, T0, 240)
    assert fired["labels"] == {"alertname": "RblwatchListUnhealthy", "list": "bl"}
    recovered = Event(kind=EventKind.LIST_RECOVERED, list="bl", at=T0 + 30, id=46)
    resolved = formats.event_alert(recovered, CTX, T0 + 31, 240)
    assert resolved["labels"] == fired["labels"]
    assert resolved["endsAt"] == formats.rfc3339(T0 + 30)
    assert resolved["startsAt"] <= resolved["endsAt"]


def test_the_re_post_of_a_listed_pair_starts_when_the_listing_began() -> None:
    pair = PairState(
        target="192.0.2.1",
        list="bl",
        group="mail",
        status=PairStatus.LISTED,
        since=T0,
        first_seen=T0 - 100,
        codes=("127.0.0.2",),
        meanings=("spam source",),
    )
    alert = formats.pair_alert(pair, CTX, T0 + 3600, 240)
    assert alert["labels"] == formats.event_alert(LISTED, CTX, T0, 240)["labels"]
    assert alert["startsAt"] == formats.rfc3339(T0)
    assert alert["endsAt"] == formats.rfc3339(T0 + 3840)
