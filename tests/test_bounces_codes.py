"""Enhanced status codes (RFC 3463, IANA registry) and SMTP reply codes (RFC 5321) explained."""

from __future__ import annotations

import pytest

from rblwatch.bounces.codes import DETAILS, normal_status, reply_meaning, status_meaning


def test_a_registered_code_gets_class_subject_and_detail() -> None:
    assert status_meaning("5.7.1") == (
        "Permanent Failure: Security or Policy Status: Delivery not authorized, message refused"
    )
    assert status_meaning("4.4.7") == (
        "Persistent Transient Failure: Network and Routing Status: Delivery time expired"
    )
    assert status_meaning("2.0.0") == "Success: Other or Undefined Status: Other undefined status"


@pytest.mark.parametrize(
    ("subject", "last"),
    [("1", 10), ("2", 4), ("3", 6), ("4", 7), ("5", 6), ("6", 10), ("7", 30)],
)
def test_every_registered_detail_is_known(subject: str, last: int) -> None:
    for detail in range(last + 1):
        assert f"{subject}.{detail}" in DETAILS


def test_the_rfc_7372_authentication_codes() -> None:
    assert str(status_meaning("5.7.26")).endswith("Multiple authentication checks failed")
    assert str(status_meaning("5.7.25")).endswith("Reverse DNS validation failed")
    assert str(status_meaning("5.7.23")).endswith("SPF validation failed")


def test_an_unknown_detail_falls_back_to_its_subject() -> None:
    assert status_meaning("5.7.606") == (
        "Permanent Failure: Security or Policy Status: Other or undefined security status"
    )
    assert status_meaning("4.1.99") == (
        "Persistent Transient Failure: Addressing Status: Other address status"
    )


def test_an_unknown_subject_falls_back_to_other_status() -> None:
    assert status_meaning("5.9.1") == (
        "Permanent Failure: Other or Undefined Status: Other undefined status"
    )


@pytest.mark.parametrize("bad", ["", "5.7", "3.1.1", "5.7.1.2", "x.y.z", "5.1234.1", "550", " "])
def test_malformed_status_codes_mean_nothing(bad: str) -> None:
    assert status_meaning(bad) is None


def test_leading_zeros_are_the_same_code() -> None:
    assert normal_status("5.07.001") == "5.7.1"


def test_reply_codes_of_rfc_5321_and_7504() -> None:
    assert reply_meaning("550") == "Requested action not taken: mailbox unavailable"
    assert reply_meaning("421") == "Service not available, closing transmission channel"
    assert reply_meaning("521") == "Host does not accept mail"
    assert reply_meaning("556") == "Domain does not accept mail"
    for code in ("211", "214", "220", "221", "250", "251", "252", "354", "450", "451", "452"):
        assert reply_meaning(code) is not None
    for code in ("455", "500", "501", "502", "503", "504", "551", "552", "553", "554", "555"):
        assert reply_meaning(code) is not None


def test_an_unregistered_reply_code_gets_its_class() -> None:
    assert reply_meaning("559") == "Permanent negative completion reply"
    assert reply_meaning("459") == "Transient negative completion reply"


@pytest.mark.parametrize("bad", ["", "55", "5500", "650", "160", "5x0", "5.7.1"])
def test_malformed_reply_codes_mean_nothing(bad: str) -> None:
    assert reply_meaning(bad) is None
