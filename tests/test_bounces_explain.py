"""explain(): the rules that hold across formats."""

from __future__ import annotations

import pytest

from rblwatch.bounces import explain as explain_module
from rblwatch.bounces.diagnostic import Found
from rblwatch.bounces.explain import explain, permanent

DSN = b"""From: MAILER-DAEMON@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <t1@example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.com

Final-Recipient: rfc822; ok@example.net
Action: delivered
Status: 2.0.0

Final-Recipient: rfc822; bad@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 no such user

--B--
"""


def test_only_failed_and_delayed_recipients_are_reported() -> None:
    got = explain(DSN, "t.eml")
    assert got.kind == "bounce"
    assert got.reporting_mta == "mail.example.com"
    assert [r.address for r in got.recipients] == ["bad@example.net"]


def test_an_encoded_out_of_office_subject_is_an_auto_reply() -> None:
    raw = (
        b"From: a@example.net\nTo: b@example.com\n"
        b"Subject: =?UTF-8?Q?Automatic_reply:_R=C3=A9union?=\n\nAway.\n"
    )
    assert explain(raw, "t.eml").kind == "auto_reply"


def test_a_bounce_marked_auto_replied_is_still_a_bounce() -> None:
    # Exim puts Auto-Submitted: auto-replied on its bounces
    raw = DSN.replace(b"MIME-Version", b"Auto-Submitted: auto-replied\nMIME-Version")
    assert explain(raw, "t.eml").kind == "bounce"


def test_permanent_from_the_status_then_the_reply_then_the_action() -> None:
    assert permanent(Found("a", "delayed", "5.1.1", "450")) is True
    assert permanent(Found("a", "failed", None, "421")) is False
    assert permanent(Found("a", "failed")) is True
    assert permanent(Found("a", "delayed")) is False
    assert permanent(Found("a")) is None


def test_a_failure_inside_the_parser_is_an_answer_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(raw: bytes) -> object:
        raise RecursionError

    monkeypatch.setattr(explain_module, "parse", boom)
    got = explain(DSN, "t.eml")
    assert got.kind == "other"
    assert got.problem == "unreadable message (RecursionError)"
