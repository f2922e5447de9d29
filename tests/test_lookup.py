"""Pure lookup logic: query names and the decoding of answers into outcomes (SPEC §2)."""

from __future__ import annotations

import ipaddress

import dns.name
import dns.reversename
import pytest

from rblwatch.lookup import Decoder, parse_txt_rdata, prefix_wire, query_name, zone_wire
from rblwatch.model import DnsList, Kind, OutcomeKind, Purpose, Reason, TargetKind

NOERROR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, FORMERR = 0, 2, 3, 4, 5, 1


def a(*addrs: str) -> list[bytes]:
    return [ipaddress.IPv4Address(x).packed for x in addrs]


SPAMHAUS = DnsList(
    name="zen",
    zone="zen.spamhaus.org",
    codes={"127.0.0.2": "SBL", "127.0.0.4": "XBL", "127.0.0.10": "PBL"},
    errors={
        "127.255.255.252": Reason.BLOCKED,
        "127.255.255.254": Reason.BLOCKED,
        "127.255.255.255": Reason.RATE_LIMITED,
    },
)
URIBL = DnsList(
    name="uribl",
    zone="multi.uribl.com",
    kind=Kind.DOMAIN,
    bits={2: "black", 4: "grey", 8: "red"},
    errors={"127.0.0.1": Reason.BLOCKED},
)
SURBL = DnsList(
    name="surbl",
    zone="multi.surbl.org",
    kind=Kind.DOMAIN,
    bits={8: "PH", 16: "MW", 64: "ABUSE"},
    error_bits={1: Reason.BLOCKED},
)
PLAIN = DnsList(name="plain", zone="bl.example")
DNSWL = DnsList(
    name="dnswl",
    zone="list.dnswl.org",
    purpose=Purpose.ALLOW,
    errors={"127.0.0.255": Reason.BLOCKED},
)


# -- query names ---------------------------------------------------------------------------


def test_ipv4_query_name_reverses_the_octets() -> None:
    assert (
        query_name("192.0.2.10", TargetKind.IPV4, "zen.spamhaus.org")
        == "10.2.0.192.zen.spamhaus.org"
    )


@pytest.mark.parametrize("addr", ["2001:db8::25", "2a00:1450:4001:82b::200e", "::1", "fe80::"])
def test_ipv6_query_name_equals_dnspythons_reverse_name(addr: str) -> None:
    ip6 = dns.reversename.ipv6_reverse_domain
    expected = dns.reversename.from_address(addr).relativize(ip6)
    assert query_name(addr, TargetKind.IPV6, "bl.test") == f"{expected}.bl.test"
    wire = prefix_wire(addr, TargetKind.IPV6) + zone_wire("bl.test")
    assert dns.name.from_wire(wire, 0)[0] == dns.name.from_text(f"{expected}.bl.test")


def test_the_ipv6_test_point_is_queried_as_32_nibbles() -> None:
    # RFC 5782 §5: ::FFFF:7F00:2 is looked up like any IPv6 address (dnspython's reverse
    # names would turn this v4-mapped address into in-addr.arpa octets instead)
    name = query_name("::ffff:7f00:2", TargetKind.IPV6, "bl.test")
    assert name == "2.0.0.0.0.0.f.7.f.f.f.f." + "0." * 20 + "bl.test"


@pytest.mark.parametrize("zone", ["zen.spamhaus.org", "ZEN.Spamhaus.ORG.", "a" * 63 + ".test"])
def test_zone_wire_equals_dnspythons(zone: str) -> None:
    assert zone_wire(zone) == dns.name.from_text(zone).canonicalize().to_wire()


@pytest.mark.parametrize("zone", ["", ".", "a..b", "a" * 64 + ".test", ("a" * 60 + ".") * 5])
def test_an_invalid_zone_name_is_refused(zone: str) -> None:
    with pytest.raises(ValueError, match="zone name"):
        zone_wire(zone)


def test_domain_query_name_appends_the_zone() -> None:
    assert (
        query_name("Example.COM.", TargetKind.DOMAIN, "dbl.spamhaus.org")
        == "example.com.dbl.spamhaus.org"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("10.20.1.2", TargetKind.IPV4),
        ("0.0.0.255", TargetKind.IPV4),
        ("xn--bcher-kva.example", TargetKind.DOMAIN),
    ],
)
def test_wire_prefix_matches_the_text_name(value: str, kind: TargetKind) -> None:
    wire = prefix_wire(value, kind) + zone_wire("zen.test")
    assert dns.name.from_wire(wire, 0)[0] == dns.name.from_text(query_name(value, kind, "zen.test"))


# -- SPEC §2, row by row -------------------------------------------------------------------


def test_nxdomain_is_clean() -> None:
    assert Decoder(SPAMHAUS).decode(NXDOMAIN, []).kind is OutcomeKind.CLEAN


def test_noerror_without_a_records_is_clean() -> None:
    assert Decoder(SPAMHAUS).decode(NOERROR, []).kind is OutcomeKind.CLEAN


def test_listing_codes_are_sorted_with_their_meanings() -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a("127.0.0.4", "127.0.0.2"), ttl=60)
    assert out.kind is OutcomeKind.LISTED
    assert out.codes == ("127.0.0.2", "127.0.0.4")
    assert out.meanings == ("SBL", "XBL")
    assert out.reason is None
    assert out.ttl == 60


def test_any_loopback_answer_is_a_listing_when_a_list_declares_no_codes() -> None:
    out = Decoder(PLAIN).decode(NOERROR, a("127.0.0.9"))
    assert out.kind is OutcomeKind.LISTED
    assert out.codes == ("127.0.0.9",)


def test_txt_is_carried_on_a_listing() -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a("127.0.0.2"), txt="https://check.spamhaus.org/")
    assert out.txt == "https://check.spamhaus.org/"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("127.255.255.252", Reason.BLOCKED),
        ("127.255.255.254", Reason.BLOCKED),
        ("127.255.255.255", Reason.RATE_LIMITED),
    ],
)
def test_spamhaus_error_codes_are_errors_not_listings(answer: str, reason: Reason) -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a(answer))
    assert out.kind is OutcomeKind.ERROR
    assert out.reason is reason
    assert out.codes == ()


def test_an_error_code_beside_a_listing_code_is_still_an_error() -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a("127.0.0.2", "127.255.255.254"))
    assert out.reason is Reason.BLOCKED


def test_uribl_127_0_0_1_is_blocked() -> None:
    out = Decoder(URIBL).decode(NOERROR, a("127.0.0.1"))
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.BLOCKED)


def test_uribl_bitmask_reports_the_answer_with_each_set_bits_meaning() -> None:
    out = Decoder(URIBL).decode(NOERROR, a("127.0.0.14"))
    assert out.kind is OutcomeKind.LISTED
    assert out.codes == ("127.0.0.14",)
    assert out.meanings == ("black", "grey", "red")


def test_surbl_bit_1_is_blocked() -> None:
    out = Decoder(SURBL).decode(NOERROR, a("127.0.0.1"))
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.BLOCKED)


def test_surbl_answer_24_is_reported_as_one_code_with_two_meanings() -> None:
    out = Decoder(SURBL).decode(NOERROR, a("127.0.0.24"))
    assert out.codes == ("127.0.0.24",)
    assert out.meanings == ("PH", "MW")


@pytest.mark.parametrize("answer", ["10.1.2.3", "192.0.2.1", "126.255.255.255", "128.0.0.2"])
def test_an_answer_outside_127_8_is_a_bad_answer(answer: str) -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a(answer))
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.BAD_ANSWER)
    assert answer in out.detail


def test_one_answer_outside_127_8_spoils_the_whole_reply() -> None:
    out = Decoder(PLAIN).decode(NOERROR, a("127.0.0.2", "10.0.0.1"))
    assert out.reason is Reason.BAD_ANSWER


def test_a_loopback_answer_matching_no_listing_code_is_a_bad_answer() -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a("127.0.0.99"))
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.BAD_ANSWER)


def test_an_unknown_code_beside_a_known_one_is_listed_and_marked_unknown() -> None:
    out = Decoder(SPAMHAUS).decode(NOERROR, a("127.0.0.2", "127.0.0.99"))
    assert out.kind is OutcomeKind.LISTED
    assert out.meanings == ("SBL", "unknown code")


@pytest.mark.parametrize(
    ("rcode", "reason"),
    [
        (SERVFAIL, Reason.SERVFAIL),
        (REFUSED, Reason.REFUSED),
        (FORMERR, Reason.BAD_ANSWER),
        (NOTIMP, Reason.BAD_ANSWER),
    ],
)
def test_failure_rcodes_are_errors(rcode: int, reason: Reason) -> None:
    out = Decoder(SPAMHAUS).decode(rcode, a("127.0.0.2"))
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, reason)


def test_a_hit_on_an_allow_list_is_allowlisted() -> None:
    out = Decoder(DNSWL).decode(NOERROR, a("127.0.5.2"))
    assert out.kind is OutcomeKind.ALLOWLISTED
    assert out.codes == ("127.0.5.2",)


def test_dnswl_parentblock_is_blocked_not_allowlisted() -> None:
    out = Decoder(DNSWL).decode(NOERROR, a("127.0.0.255"))
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.BLOCKED)


def test_reason_is_set_exactly_when_the_outcome_is_an_error() -> None:
    d = Decoder(SPAMHAUS)
    samples = [
        d.decode(NXDOMAIN, []),
        d.decode(NOERROR, a("127.0.0.2")),
        d.decode(NOERROR, a("127.255.255.255")),
        d.decode(SERVFAIL, []),
        d.decode(NOERROR, a("8.8.8.8")),
    ]
    for out in samples:
        assert (out.reason is not None) == (out.kind is OutcomeKind.ERROR)


def test_cached_listing_outcomes_are_independent_of_ttl_and_txt() -> None:
    d = Decoder(SPAMHAUS)
    first = d.decode(NOERROR, a("127.0.0.2"), ttl=30)
    with_txt = d.decode(NOERROR, a("127.0.0.2"), ttl=30, txt="why")
    assert first.txt is None
    assert with_txt.txt == "why"


def test_txt_rdata_character_strings_are_joined() -> None:
    assert parse_txt_rdata([b"\x05hello\x06 world"]) == "hello world"
    assert parse_txt_rdata([]) is None
