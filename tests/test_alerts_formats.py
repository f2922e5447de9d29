"""Alert payloads (SPEC §12): Standard Webhooks json, Slack messages and Alertmanager alerts.

Signatures are checked by an independent implementation, the `standardwebhooks` package, and by
a plain HMAC written here from the standard's text.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from dataclasses import replace
from datetime import datetime
from typing import Any, get_args

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Context, Firing
from rblwatch.config import (
    RECEIVER_FORMATS,
    SIGNED_FORMATS,
    ConfigError,
    ReceiverFormat,
    parse_config,
)
from rblwatch.model import (
    DnsList,
    Event,
    EventKind,
    Health,
    ListStatus,
    PairState,
    PairStatus,
    frozen_map,
)

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
PAIR = PairState(
    target="192.0.2.1",
    list="bl",
    group="mail",
    status=PairStatus.LISTED,
    since=T0,
    first_seen=T0 - 100,
    codes=("127.0.0.2",),
    meanings=("spam source",),
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
        "hostname": None,
        "group": "mail",
        "labels": {"team": "mail-ops"},
        "state": "listed",
        "codes": [{"code": "127.0.0.2", "meaning": "spam source"}],
        "txt": "spam from 192.0.2.1",
        "since": formats.rfc3339(T0),
        "initial": False,
        "previous": {"state": "clean", "codes": []},
        "ack": None,
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


def test_an_address_found_through_a_hostname_is_named_so_in_json_and_slack() -> None:
    event = dataclasses.replace(LISTED, hostname="mx1.example.net")
    req = formats.event_request("json", event, CTX, secret=None, now=T0, ttl=240)
    assert json.loads(req.body)["data"]["hostname"] == "mx1.example.net"
    slack = json.loads(
        formats.event_request("slack", event, CTX, secret=None, now=T0, ttl=240).body
    )
    assert slack["text"].endswith("192.0.2.1 (mx1.example.net) is listed on bl")


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
    pair = PAIR
    alert = formats.pair_alert(pair, CTX, T0 + 3600, 240)
    assert alert["labels"] == formats.event_alert(LISTED, CTX, T0, 240)["labels"]
    assert alert["startsAt"] == formats.rfc3339(T0)
    assert alert["endsAt"] == formats.rfc3339(T0 + 3840)


def test_a_recovery_resolves_the_unhealthy_alert_from_when_the_list_became_unhealthy() -> None:
    # issue 9: the resolve started when it ended and said "fails its test points: -."
    fired = formats.event_alert(UNHEALTHY, CTX, T0, 240)
    recovered = Event(kind=EventKind.LIST_RECOVERED, list="bl", at=T0 + 600, since=T0, id=46)
    resolved = formats.event_alert(recovered, CTX, T0 + 601, 240)
    assert resolved["labels"] == fired["labels"]
    assert (resolved["startsAt"], resolved["endsAt"]) == (
        fired["startsAt"],
        formats.rfc3339(T0 + 600),
    )
    description = resolved["annotations"]["description"]
    assert description == (
        "List bl passes its RFC 5782 test points again (unhealthy since 2026-09-21T14:13:20.000Z)."
        " Its answers are trusted and its listings are re-checked."
    )
    assert resolved["annotations"]["summary"] == fired["annotations"]["summary"]


def test_a_recovery_whose_start_is_unknown_still_says_the_list_is_healthy_again() -> None:
    recovered = Event(kind=EventKind.LIST_RECOVERED, list="bl", at=T0 + 600, id=46)
    resolved = formats.event_alert(recovered, CTX, T0 + 601, 240)
    assert resolved["startsAt"] == resolved["endsAt"] == formats.rfc3339(T0 + 600)
    assert "-." not in resolved["annotations"]["description"]
    assert "passes its RFC 5782 test points again." in resolved["annotations"]["description"]


# -- the registry ---------------------------------------------------------------------------------

# The exact bytes of one event in each format, as the README documents them: a refactoring of
# the formats must not change a byte (json is signed over these bytes).
GOLDEN = {
    "json": (
        "",
        '{"type":"listing.created","timestamp":"2026-09-21T14:13:20.000Z","data":{"id":"evt_42",'
        '"event_id":42,"kind":"listed","list":"bl","delist_url":"https://bl.example/remove",'
        '"target":"192.0.2.1","hostname":null,"group":"mail","labels":{"team":"mail-ops"},'
        '"state":"listed",'
        '"codes":[{"code":"127.0.0.2","meaning":"spam source"}],"txt":"spam from 192.0.2.1",'
        '"since":"2026-09-21T14:13:20.000Z","initial":false,'
        '"previous":{"state":"clean","codes":[]},"ack":null}}',
    ),
    "slack": (
        "",
        '{"text":":rotating_light: 192.0.2.1 is listed on bl","blocks":[{"type":"header",'
        '"text":{"type":"plain_text","text":"192.0.2.1 is listed on bl"}},{"type":"section",'
        '"fields":[{"type":"mrkdwn","text":"*Target*\\n192.0.2.1"},'
        '{"type":"mrkdwn","text":"*List*\\nbl"},{"type":"mrkdwn","text":"*Group*\\nmail"},'
        '{"type":"mrkdwn","text":"*Codes*\\n127.0.0.2 spam source"},'
        '{"type":"mrkdwn","text":"*TXT*\\nspam from 192.0.2.1"}]},{"type":"section",'
        '"text":{"type":"mrkdwn","text":"<https://bl.example/remove|Request removal from bl>"}},'
        '{"type":"context","elements":[{"type":"mrkdwn",'
        '"text":"rblwatch evt_42 · 2026-09-21T14:13:20.000Z"}]}]}',
    ),
    "alertmanager": (
        "/api/v2/alerts",
        '[{"labels":{"team":"mail-ops","target":"192.0.2.1","list":"bl","group":"mail",'
        '"alertname":"RblwatchListed"},"annotations":{"summary":"192.0.2.1 is listed on bl",'
        '"description":"192.0.2.1 (group mail) is listed on bl: 127.0.0.2 spam source",'
        '"delist_url":"https://bl.example/remove","codes":"127.0.0.2"},'
        '"startsAt":"2026-09-21T14:13:20.000Z","endsAt":"2026-09-21T14:17:25.000Z"}]',
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_each_format_sends_exactly_the_documented_bytes(name: str) -> None:
    req = formats.FORMATS[name].event_request(LISTED, CTX, secret=SECRET, now=T0 + 5, ttl=240)
    assert (req.path, req.body.decode()) == GOLDEN[name]
    assert req.headers["content-type"] == "application/json"


def test_the_registry_names_every_format_config_accepts_and_no_other() -> None:
    assert set(formats.FORMATS) == set(get_args(ReceiverFormat)) == set(GOLDEN)
    assert set(formats.FORMATS) == set(RECEIVER_FORMATS)
    assert {n for n, f in formats.FORMATS.items() if f.signs} == set(SIGNED_FORMATS)
    assert all(f.name == name for name, f in formats.FORMATS.items())


def receiver_config(fmt: str, **extra: str) -> dict[str, Any]:
    receiver = {"name": "r", "url": "http://127.0.0.1:9/hook", "format": fmt, **extra}
    return {"alerts": {"receivers": [receiver]}}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_config_takes_a_secret_exactly_for_the_formats_that_sign(name: str) -> None:
    fmt = formats.FORMATS[name]
    parse_config(receiver_config(name))
    if fmt.signs:
        parse_config(receiver_config(name, secret=SECRET))
    else:
        with pytest.raises(ConfigError, match="only json deliveries are signed"):
            parse_config(receiver_config(name, secret=SECRET))


def test_only_a_signing_format_signs_and_only_alertmanager_resends() -> None:
    signed = {n for n, f in formats.FORMATS.items() if f.signs}
    resent = {n for n, f in formats.FORMATS.items() if f.resends}
    assert (signed, resent) == ({"json"}, {"alertmanager"})
    for name, fmt in formats.FORMATS.items():
        headers = fmt.event_request(LISTED, CTX, secret=SECRET, now=T0, ttl=240).headers
        assert ("webhook-signature" in headers) is fmt.signs, name


def test_formats_that_do_not_resend_have_nothing_to_resend() -> None:
    firing = Firing(pairs=[(PAIR, CTX)], lists=[ListStatus("bl", Health.DEAD, "x", T0)])
    for fmt in formats.FORMATS.values():
        requests = fmt.resend_requests(firing, now=T0, ttl=240)
        assert bool(requests) is fmt.resends


def test_alertmanager_resends_every_firing_alert_in_batches_of_500() -> None:
    pairs = [(replace(PAIR, target=f"10.0.{i >> 8}.{i & 255}"), CTX) for i in range(1001)]
    unhealthy = ListStatus("bl", Health.DEAD, "127.0.0.2 not listed", T0 - 60)
    firing = Firing(pairs=pairs, lists=[unhealthy])
    requests = formats.FORMATS["alertmanager"].resend_requests(firing, now=T0, ttl=240)
    batches = [json.loads(r.body) for r in requests]
    assert [len(b) for b in batches] == [500, 500, 2]
    assert {r.path for r in requests} == {"/api/v2/alerts"}
    assert batches[0][0] == formats.pair_alert(pairs[0][0], CTX, T0, 240)
    assert batches[-1][-1] == formats.unhealthy_alert(
        "bl", "127.0.0.2 not listed", T0 - 60, T0, 240
    )


def test_an_unknown_format_name_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="json, slack, alertmanager"):
        formats.format_named("teams")


def test_codes_of_a_bitmask_list_each_carry_their_own_bits_meanings() -> None:
    # found in review: meanings come one per set bit, and were paired with codes by position
    surbl = DnsList(name="surbl", zone="multi.surbl.test", bits={8: "PH", 16: "MW", 64: "ABUSE"})
    ctx = Context(dns_list=surbl)
    event = dataclasses.replace(
        LISTED, list="surbl", codes=("127.0.0.24", "127.0.0.64"), meanings=("PH", "MW", "ABUSE")
    )
    data = json.loads(formats.event_request("json", event, ctx, secret=None, now=T0, ttl=1).body)
    assert data["data"]["codes"] == [
        {"code": "127.0.0.24", "meaning": "PH; MW"},
        {"code": "127.0.0.64", "meaning": "ABUSE"},
    ]
