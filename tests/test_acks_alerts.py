"""Alert payloads of an acknowledged pair (issue 11 part 2): every format says who is on it.

Pure: the formats are handed events that carry an ack (`Event.ack`, as the store writes them)
and the pairs a re-post fires with the active acks (`Firing.acks`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rblwatch.alerts import formats
from rblwatch.alerts.formats import Firing
from rblwatch.model import Ack, EventKind
from tests.test_alerts_formats import CHANGED, CTX, DELISTED, LISTED, PAIR, T0

ACK = Ack(
    target="192.0.2.1",
    list="bl",
    by="alice",
    at=T0 + 60,
    note="asked <Spamhaus> on ticket 123",
    until=T0 + 7 * 86400,
    delisting_requested_at=T0 + 120,
    delisting_note="form sent",
)
ACKED = replace(CHANGED, ack=ACK)


def json_data(event: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(formats.json_body(event, CTX))
    return dict(doc["data"])


def test_a_json_event_of_an_acknowledged_pair_carries_the_ack_with_rfc3339_times() -> None:
    assert json_data(ACKED)["ack"] == {
        "by": "alice",
        "at": formats.rfc3339(T0 + 60),
        "note": "asked <Spamhaus> on ticket 123",
        "until": formats.rfc3339(T0 + 7 * 86400),
        "delisting_requested_at": formats.rfc3339(T0 + 120),
        "delisting_note": "form sent",
    }
    bare = json_data(replace(LISTED, ack=Ack("192.0.2.1", "bl", "bob", T0)))["ack"]
    assert bare == {
        "by": "bob",
        "at": formats.rfc3339(T0),
        "note": "",
        "until": None,
        "delisting_requested_at": None,
        "delisting_note": "",
    }


def test_a_json_event_without_an_ack_says_null_whatever_its_kind() -> None:
    for event in (LISTED, CHANGED, DELISTED):
        assert json_data(event)["ack"] is None


def test_a_slack_message_of_an_acknowledged_pair_has_the_ack_line_escaped() -> None:
    doc = json.loads(formats.slack_body(ACKED, CTX))
    texts = [b["text"]["text"] for b in doc["blocks"] if b["type"] == "section" and "text" in b]
    [line] = [t for t in texts if t.startswith("Acknowledged")]
    assert line == (
        f"Acknowledged by alice until {formats.rfc3339(T0 + 7 * 86400)}: asked &lt;Spamhaus&gt;"
        f" on ticket 123 · delisting requested {formats.rfc3339(T0 + 120)}: form sent"
    )
    plain = json.loads(formats.slack_body(CHANGED, CTX))
    assert "Acknowledged" not in json.dumps(plain)


def test_a_slack_delisting_of_an_acknowledged_pair_still_says_who_was_on_it() -> None:
    doc = json.loads(formats.slack_body(replace(DELISTED, ack=ACK), CTX))
    assert any(
        b.get("text", {}).get("text", "").startswith("Acknowledged by alice") for b in doc["blocks"]
    )


def test_an_alertmanager_alert_of_an_acknowledged_pair_has_the_ack_annotations_not_labels() -> None:
    plain = formats.event_alert(CHANGED, CTX, T0, 240)
    acked = formats.event_alert(ACKED, CTX, T0, 240)
    assert acked["labels"] == plain["labels"]  # the same alert
    assert acked["annotations"] == {
        **plain["annotations"],
        "acknowledged_by": "alice",
        "ack_note": "asked <Spamhaus> on ticket 123",
    }
    assert "acknowledged_by" not in plain["annotations"]


def test_an_alertmanager_re_post_keeps_the_ack_annotations_of_acknowledged_pairs() -> None:
    other = replace(PAIR, target="192.0.2.2")
    firing = Firing(pairs=[(PAIR, CTX), (other, CTX)], acks={("192.0.2.1", "bl"): ACK})
    first, second = formats.firing_alerts(firing, T0, 240)
    assert first["annotations"]["acknowledged_by"] == "alice"
    assert first["annotations"]["ack_note"] == ACK.note
    assert "acknowledged_by" not in second["annotations"]


def test_operator_events_have_no_alert_type_they_never_reach_a_receiver() -> None:
    # the store writes them without outbox rows; a format is never asked to render one
    operator = {
        EventKind.ACKNOWLEDGED,
        EventKind.UNACKNOWLEDGED,
        EventKind.DELISTING_REQUESTED,
        EventKind.NOTE,
    }
    assert not operator & set(formats.JSON_TYPES)
