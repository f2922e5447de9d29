"""Causes and lists named, from the status code and the diagnostic's words; the diagnostic's
clean-up and the sending IP it quotes."""

from __future__ import annotations

import pytest

from rblwatch.bounces.classify import cause, lists_named, quoted_ip
from rblwatch.bounces.diagnostic import split
from rblwatch.bounces.explain import ListFacts
from rblwatch.bounces.model import CAUSES, NamedList
from rblwatch.bounces.parse import original_ip

LISTS = (
    ListFacts("spamhaus-zen", ("zen.spamhaus.org",), "https://check.spamhaus.org/"),
    ListFacts("barracuda", ("b.barracudacentral.org",), "https://www.barracudacentral.org/lookups"),
    ListFacts("spamcop", ("bl.spamcop.net",), "https://www.spamcop.net/bl.shtml"),
    ListFacts("dqs", ("${KEY}.zen.dq.spamhaus.net",)),
    ListFacts("microsoft", (), "https://sender.office.com/", queryable=False),
    ListFacts("proofpoint", (), "https://ipcheck.proofpoint.com/", queryable=False),
)


def why(status: str | None, text: str) -> str:
    return cause(status, text, lists_named(text, LISTS))


@pytest.mark.parametrize(
    ("status", "text", "want"),
    [
        ("5.1.1", "550 5.1.1 no such user", "recipient"),
        ("5.2.2", "552 5.2.2 over quota", "recipient"),
        ("5.3.4", "552 5.3.4 Message size exceeds fixed limit", "content"),
        ("5.7.26", "To protect our users from spam, DMARC failed", "authentication"),
        ("5.7.23", "SPF fail", "authentication"),
        ("5.7.25", "no PTR", "reverse_dns"),
        ("5.4.4", "unable to route", "routing"),
        ("4.4.1", "Connection timed out", "routing"),
        ("5.7.1", "Client host rejected: cannot find your reverse hostname", "reverse_dns"),
        ("5.7.1", "Message rejected as spam by Content Filtering", "content"),
        ("5.7.1", "virus found in attachment", "content"),
        ("5.7.1", "DKIM signature did not verify", "authentication"),
        ("5.7.1", "your IP is listed on a DNSBL", "blocklisted"),
        (
            "5.7.1",
            "rejected because 192.0.2.1 is in a black list at some.example.org",
            "blocklisted",
        ),
        ("4.7.0", "temporarily rate limited due to poor reputation", "reputation"),
        ("5.7.1", "Relaying denied", "policy"),
        ("5.7.1", "Delivery not authorized", "policy"),
        (None, "something unusual happened", "other"),
        ("5.5.2", "syntax error", "other"),
    ],
)
def test_the_cause_from_code_and_words(status: str | None, text: str, want: str) -> None:
    assert want in CAUSES
    assert why(status, text) == want


def test_spamhaus_refusing_the_receivers_resolver_is_the_receivers_problem() -> None:
    for text in (
        "554 5.7.1 Client host [192.0.2.22] blocked using zen.spamhaus.org; Error: open resolver",
        "554 5.7.1 Service unavailable; https://www.spamhaus.org/returnc/pub/203.0.113.5",
        "550 5.7.1 Your query through a public resolver was refused by zen.spamhaus.org",
        "554 rejected: zen.spamhaus.org returned 127.255.255.254",
    ):
        assert why("5.7.1", text) == "receiver_misconfigured", text


def test_a_zone_is_named_as_a_whole_dns_suffix() -> None:
    assert lists_named("blocked using zen.spamhaus.org", LISTS) == (
        NamedList("spamhaus-zen", "zen.spamhaus.org", "https://check.spamhaus.org/"),
    )
    assert lists_named("22.2.0.192.zen.spamhaus.org said 127.0.0.2", LISTS)[0].name == (
        "spamhaus-zen"
    )
    # not a suffix of a longer label: notzen.spamhaus.org is not zen.spamhaus.org
    assert [n.name for n in lists_named("blocked using notzen.spamhaus.org", LISTS)] == [None]


def test_a_list_the_catalogue_does_not_know_is_named_without_a_name() -> None:
    assert lists_named("554 Blocked using dnsbl.example.org", LISTS) == (
        NamedList(None, "dnsbl.example.org"),
    )


def test_lookup_urls_name_their_list() -> None:
    got = lists_named("see https://www.spamcop.net/bl.shtml?192.0.2.22", LISTS)
    assert [(n.name, n.named_as) for n in got] == [
        ("spamcop", "https://www.spamcop.net/bl.shtml?192.0.2.22")
    ]
    got = lists_named("see https://www.barracudacentral.org/lookups/lookup-reputation", LISTS)
    assert got[0].name == "barracuda"
    assert lists_named("https://check.spamhaus.org/listed/?searchterm=192.0.2.1", LISTS)[
        0
    ].name == ("spamhaus-zen")


def test_provider_codes_name_provider_lists() -> None:
    ms = lists_named("550 5.7.606 Access denied, banned sending IP [198.51.100.7]", LISTS)
    assert ms == (NamedList("microsoft", "5.7.606", "https://sender.office.com/", False),)
    assert lists_named("550 5.7.649 Access denied", LISTS)[0].named_as == "5.7.649"
    assert lists_named("550 5.7.650 something else", LISTS) == ()
    assert lists_named("on our block list (S3140)", LISTS)[0].named_as == "S3140"
    yahoo = lists_named("553 5.7.1 [BL23] Connections not accepted from IP addresses", LISTS)
    assert yahoo == (NamedList("spamhaus-zen", "BL23", "https://check.spamhaus.org/"),)
    pp = lists_named("554 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.9", LISTS)
    assert pp[0].name == "proofpoint"
    assert pp[0].queryable is False


def test_a_provider_list_missing_from_the_facts_keeps_what_the_bounce_said() -> None:
    assert lists_named("550 5.7.606 Access denied", ()) == (NamedList(None, "5.7.606"),)


def test_gmails_help_links_are_not_blocklists() -> None:
    text = "550 5.7.1 unsolicited mail https://support.google.com/mail/?p=UnsolicitedMessageError"
    assert lists_named(text, LISTS) == ()
    assert why("5.7.1", text) == "content"


def test_each_list_is_named_once() -> None:
    text = (
        "blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.22 "
        "and again zen.spamhaus.org"
    )
    assert lists_named(text, LISTS) == (
        NamedList("spamhaus-zen", "zen.spamhaus.org", "https://check.spamhaus.org/"),
    )


def test_continuation_prefixes_are_removed_and_lines_joined() -> None:
    assert split("smtp; 550-5.7.1 first\n 550-5.7.1 second\n 550 5.7.1 third") == (
        "550",
        "5.7.1",
        "550 5.7.1 first second third",
    )
    assert split("550-5.7.26 a 550-5.7.26 550-5.7.26 b") == ("550", "5.7.26", "550 5.7.26 a b")
    assert split("550-Mailbox\n550 unavailable") == ("550", None, "550 Mailbox unavailable")
    assert split("550: 5.1.1 gone") == ("550", "5.1.1", "550 5.1.1 gone")


def test_no_code_is_invented() -> None:
    assert split("X-Postfix; connect to mx.example.net[198.51.100.5]:25: timed out")[:2] == (
        None,
        None,
    )
    assert split("Mailbox unavailable, see 5.1.1 in RFC 3463")[:2] == (None, None)
    assert split(None) == (None, None, None)


def test_the_ip_the_receiver_quotes() -> None:
    assert quoted_ip("Client host [192.0.2.22] blocked") == "192.0.2.22"
    assert quoted_ip("banned sending IP [198.51.100.7].") == "198.51.100.7"
    assert quoted_ip("Connections will not be accepted from 192.0.2.25, because") == "192.0.2.25"
    assert quoted_ip("unusual traffic from 192.0.2.26.") == "192.0.2.26"
    assert quoted_ip("client [2001:db8::25] rejected") == "2001:db8::25"
    # the receiver's own address in Postfix's name[ip] form, and private ones, are not it
    assert quoted_ip("connect to mx.example.net[198.51.100.5]:25: timed out") is None
    assert quoted_ip("from [10.1.2.3] and 127.0.0.2") is None
    assert quoted_ip(None) is None


def test_the_sending_ip_from_the_received_headers() -> None:
    received = [
        "from mail.example.com (mail.example.com [192.0.2.22]) by mx.example.net with ESMTPS",
        "from app (app [10.0.0.5]) by mail.example.com (Postfix) with ESMTP id 1",
        "from laptop ([203.0.113.77]) by mail.example.com with ESMTPSA id 2",
    ]
    assert original_ip(received) == "192.0.2.22"
    assert original_ip(received[1:]) is None
    assert original_ip(["from x (x [192.0.2.1]) by y with ESMTP"]) == "192.0.2.1"
    assert original_ip(["from a by b (198.51.100.3)"]) is None  # an IP of the receiver, after 'by'
