"""The hygiene checks against a real authoritative server (NSD, tests/nsd.py): each check's
outcome, result word and reason from real answers — NXDOMAIN versus an empty answer, TXT split
in 255-byte strings, reverse zones in in-addr.arpa and ip6.arpa.

One NSD serves the whole module (`served`): the cases of every check live side by side in
`ZONES`, and the tests that change the world (a zone reloaded, the server stopped) put it back
afterwards. Each test asks through a fresh `CachingDns`, as a hygiene pass does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from rblwatch.hygiene.dkim import check_dkim
from rblwatch.hygiene.dmarc import check_dmarc
from rblwatch.hygiene.dns import CachingDns
from rblwatch.hygiene.fcrdns import check_fcrdns
from rblwatch.hygiene.policy import check_mta_sts, check_tls_rpt
from rblwatch.hygiene.result import CHECKS, CheckResult
from rblwatch.hygiene.runner import Item, run_items
from rblwatch.hygiene.spf import check_spf
from tests import nsd
from tests.dkimkeys import rsa_key_record
from tests.nsd import NsdServer, txt

IP = "192.0.2.10"  # mail.example.com: forward-confirmed, authorised everywhere it should be
OTHER = "198.51.100.200"  # authorised nowhere
IP6 = "2001:db8::25"
IP6_BAD = "2001:db8::26"

# An SPF record of three strings whose first 255-byte boundary falls inside `ip4:192.0.2.10`:
# only a reader that joins the strings without a space (RFC 7208 §3.3) finds the address.
LONG_SPF = (
    "v=spf1 "
    + " ".join(f"ip4:198.51.100.{i}" for i in range(1, 15))
    + f" ip4:{IP} "
    + " ".join(f"ip4:203.0.113.{i}" for i in range(1, 20))
    + " -all"
)
FIFTY_SPF = "v=spf1 " + " ".join(f"include:i{i}.example.com" for i in range(1, 51)) + " -all"


def _ip6_label(ip: str) -> str:
    """The name of `ip` in the zone 8.b.d.0.1.0.0.2.ip6.arpa (its first 24 nibbles)."""
    return ipaddress.ip_address(ip).reverse_pointer.removesuffix(".8.b.d.0.1.0.0.2.ip6.arpa")


def _example_com() -> list[str]:
    hosts = [
        f"mail A {IP}",
        "unconfirmed A 192.0.2.99",  # the PTR of .11 names it; it points elsewhere
        "192-0-2-13.pool A 192.0.2.13",  # confirmed, but an access network's name
        "mx14 A 192.0.2.14",
        "mail20 A 192.0.2.20",
        f"mail6 AAAA {IP6}",
        "other6 AAAA 2001:db8::99",
    ]
    spf = [
        '@ TXT "v=spf1 mx -all"',
        "@ MX 10 mail.example.com.",
        'nested TXT "v=spf1 include:_spf.example.net -all"',
        'soft TXT "v=spf1 include:_spf.example.net ~all"',
        'loop TXT "v=spf1 include:loop2.example.com -all"',
        'loop2 TXT "v=spf1 include:loop.example.com -all"',
        f'many TXT "v=spf1 {" ".join(f"a:h{i}.example.com" for i in range(1, 12))} -all"',
        *[f"h{i} A 203.0.113.{i}" for i in range(1, 12)],
        'redir TXT "v=spf1 redirect=_spf.example.org"',
        'v6 TXT "v=spf1 ip6:2001:db8::/32 -all"',
        'mxd TXT "v=spf1 mx -all"',
        "mxd MX 10 mail.example.com.",
        'ad TXT "v=spf1 a -all"',
        f"ad A {IP}",
        f'void TXT "v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com ip4:{IP} -all"',
        'ptrd TXT "v=spf1 ptr:example.com -all"',
        'exi TXT "v=spf1 exists:%{i}._spf.example.com -all"',
        f"{IP}._spf A 127.0.0.2",
        'twospf TXT "v=spf1 -all"',
        'twospf TXT "v=spf1 +all"',
        f"nospf A {IP}",  # a name with records, none of them SPF
        f"long TXT {txt(LONG_SPF)}",
        # 50 includes of domains that exist and publish SPF: only the lookup limit stops it
        f"fifty TXT {txt(FIFTY_SPF)}",
        *[f'i{i} TXT "v=spf1 -all"' for i in range(1, 51)],
    ]
    dkim = [
        f"s2048._domainkey TXT {txt(rsa_key_record(2048))}",
        f"s1024._domainkey TXT {txt(rsa_key_record(1024))}",
        f"s512._domainkey TXT {txt(rsa_key_record(512))}",
        'revoked._domainkey TXT "v=DKIM1; k=rsa; p="',
        'garbage._domainkey TXT "v=DKIM1; k=rsa; p=%%% not base64 %%%"',
        "cn._domainkey CNAME s2048._domainkey",  # in-zone: NSD follows no CNAME across zones
    ]
    policy = [
        '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"',
        '_dmarc.bad TXT "v=DMARC1; p=maybe"',
        '_dmarc.two TXT "v=DMARC1; p=none"',
        '_dmarc.two TXT "v=DMARC1; p=reject"',
        '_mta-sts TXT "v=STSv1; id=20250101000000"',
        '_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@example.com"',
    ]
    return hosts + spf + dkim + policy


def zones(**replace: list[str]) -> dict[str, list[str]]:
    """Every case of the module; a zone given by keyword (dots as '_') replaces its default."""
    base = {
        "example.com": _example_com(),
        "example.net": [
            '_spf TXT "v=spf1 include:_inner.example.net -all"',
            f'_inner TXT "v=spf1 ip4:{IP} -all"',
        ],
        # no DMARC, MTA-STS or TLS-RPT record at all
        "example.org": [f'_spf TXT "v=spf1 ip4:{IP} -all"'],
        # a registrable domain under a public suffix of two labels: DMARC at the top only
        "example.co.uk": [
            '_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.co.uk"',
            f"mail A {IP}",
        ],
        "2.0.192.in-addr.arpa": [
            "10 PTR mail.example.com.",
            "11 PTR unconfirmed.example.com.",
            "13 PTR 192-0-2-13.pool.example.com.",
            "14 PTR mx14.example.com.",
            # RFC 2317 classless delegation, as hosting providers do it (kept in-zone)
            "20 CNAME 20.16-31",
            "20.16-31 PTR mail20.example.com.",
        ],
        "8.b.d.0.1.0.0.2.ip6.arpa": [
            f"{_ip6_label(IP6)} PTR mail6.example.com.",
            f"{_ip6_label(IP6_BAD)} PTR other6.example.com.",
        ],
    }
    for key, lines in replace.items():
        base[key.replace("_", ".")] = lines
    return base


ZONES = zones()


@pytest.fixture(scope="module")
def module_nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NsdServer]:
    if not nsd.available():
        pytest.fail("nsd is not installed: apt-get install -y nsd (as .ci/run does)")
    server = NsdServer(ZONES, workdir=Path(tmp_path_factory.mktemp("nsd")))
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def served(module_nsd: NsdServer) -> Iterator[NsdServer]:
    """The module's NSD serving ZONES; a test that stops it or reloads other zones gets
    ZONES back afterwards (a reload: no restart, the port stays)."""
    serial = module_nsd.serial
    yield module_nsd
    if not module_nsd.running:
        module_nsd.start(ZONES)
    elif module_nsd.serial != serial:
        module_nsd.reload(ZONES)


@pytest.fixture
def dns(served: NsdServer) -> CachingDns:
    return CachingDns([served.address], timeout=0.5, attempts=1)


def expect(r: CheckResult, outcome: str, result: str, *reason: str) -> None:
    """`r` has this outcome and result word, and its reason holds every `reason` piece
    (none on a pass)."""
    assert (r.outcome, r.result) == (outcome, result), r
    if outcome == "pass":
        assert r.reason == ""
    for piece in reason:
        assert piece in r.reason, r.reason


# --- fcrdns ---------------------------------------------------------------------------------


def test_fcrdns_passes_when_the_ptr_name_resolves_back(dns: CachingDns) -> None:
    r = check_fcrdns(dns, IP)
    expect(r, "pass", "pass")
    assert r.detail == {"ptr": ["mail.example.com"], "confirmed": "mail.example.com"}


def test_fcrdns_a_ptr_name_pointing_elsewhere_is_not_confirmed(dns: CachingDns) -> None:
    r = check_fcrdns(dns, "192.0.2.11")
    expect(r, "fail", "not_confirmed", "unconfirmed.example.com → 192.0.2.99", "add an A record")


def test_fcrdns_follows_a_classless_delegation_cname_to_the_ptr(dns: CachingDns) -> None:
    r = check_fcrdns(dns, "192.0.2.20")
    expect(r, "pass", "pass")
    assert r.detail["confirmed"] == "mail20.example.com"


def test_fcrdns_no_ptr_record(dns: CachingDns) -> None:
    r = check_fcrdns(dns, "192.0.2.12")
    expect(r, "fail", "no_ptr", "no PTR record for 192.0.2.12", "12.2.0.192.in-addr.arpa")


def test_fcrdns_a_generic_name_fails_even_when_confirmed(dns: CachingDns) -> None:
    r = check_fcrdns(dns, "192.0.2.13")
    expect(r, "fail", "generic", "192-0-2-13.pool.example.com looks generic", "numbers")
    assert r.detail["confirmed"] == "192-0-2-13.pool.example.com"


def test_fcrdns_the_helo_name_must_be_a_confirmed_ptr_name(dns: CachingDns) -> None:
    r = check_fcrdns(dns, "192.0.2.14", helo="mail.example.com")
    expect(r, "fail", "helo_mismatch", "HELO name mail.example.com", "confirmed: mx14.example.com")
    expect(check_fcrdns(dns, IP, helo="MAIL.example.com."), "pass", "pass")


def test_fcrdns_ipv6_through_ip6_arpa_and_aaaa(dns: CachingDns) -> None:
    r = check_fcrdns(dns, "2001:DB8:0::25")
    expect(r, "pass", "pass")
    assert (r.target, r.detail["confirmed"]) == (IP6, "mail6.example.com")
    bad = check_fcrdns(dns, IP6_BAD)
    expect(bad, "fail", "not_confirmed", "other6.example.com → 2001:db8::99", "AAAA record")
    expect(check_fcrdns(dns, "2001:db8::27"), "fail", "no_ptr", "ip6.arpa")


# --- spf ------------------------------------------------------------------------------------


def test_spf_passes_through_two_levels_of_include(dns: CachingDns) -> None:
    r = check_spf(dns, "nested.example.com", IP)
    expect(r, "pass", "pass")
    assert r.detail["decided_by"] == (
        "ip4:192.0.2.10 in include:_spf.example.net → include:_inner.example.net"
    )
    assert any("_inner.example.net" in step for step in r.trace)


def test_spf_softfail_after_an_include_names_the_chain(dns: CachingDns) -> None:
    r = check_spf(dns, "soft.example.com", OTHER)
    expect(r, "fail", "softfail", "softfail via ~all after include:_spf.example.net", OTHER)
    assert f"add `ip4:{OTHER}`" in r.reason


def test_spf_an_include_loop_is_a_permerror(dns: CachingDns) -> None:
    r = check_spf(dns, "loop.example.com", IP)
    expect(r, "fail", "permerror", "loop", "loop.example.com → loop2.example.com")


def test_spf_more_than_ten_lookups_is_a_permerror_naming_the_limit(dns: CachingDns) -> None:
    r = check_spf(dns, "many.example.com", IP)
    expect(r, "fail", "permerror", "more than 10 DNS lookups", "RFC 7208 §4.6.4")


def test_spf_fifty_includes_stop_at_the_lookup_limit(dns: CachingDns) -> None:
    r = check_spf(dns, "fifty.example.com", IP)
    expect(r, "fail", "permerror", "more than 10 DNS lookups")
    assert r.detail["lookups"] == 11
    assert dns.queries <= 12  # the record, then one per include until the limit


def test_spf_a_redirect_is_followed(dns: CachingDns) -> None:
    r = check_spf(dns, "redir.example.com", IP)
    expect(r, "pass", "pass")
    assert "redirect=_spf.example.org" in r.detail["decided_by"]  # type: ignore[operator]
    bad = check_spf(dns, "redir.example.com", OTHER)
    expect(bad, "fail", "fail", "-all in redirect=_spf.example.org")


def test_spf_ip6_mechanism(dns: CachingDns) -> None:
    expect(check_spf(dns, "v6.example.com", IP6), "pass", "pass")
    bad = check_spf(dns, "v6.example.com", "2001:db9::1")
    expect(bad, "fail", "fail", "add `ip6:2001:db9::1`")


def test_spf_mx_and_a_mechanisms(dns: CachingDns) -> None:
    expect(check_spf(dns, "mxd.example.com", IP), "pass", "pass")
    expect(check_spf(dns, "ad.example.com", IP), "pass", "pass")
    expect(check_spf(dns, "mxd.example.com", OTHER), "fail", "fail", "-all")
    expect(check_spf(dns, "ad.example.com", OTHER), "fail", "fail", "-all")


def test_spf_ptr_and_exists_with_a_macro(dns: CachingDns) -> None:
    expect(check_spf(dns, "ptrd.example.com", IP), "pass", "pass")
    # .11's PTR name does not resolve back to it: ptr does not match (RFC 7208 §5.5)
    expect(check_spf(dns, "ptrd.example.com", "192.0.2.11"), "fail", "fail", "-all")
    r = check_spf(dns, "exi.example.com", IP)
    expect(r, "pass", "pass")
    assert f"A {IP}._spf.example.com → 127.0.0.2" in "\n".join(r.trace)
    expect(check_spf(dns, "exi.example.com", OTHER), "fail", "fail", "-all")


def test_spf_two_records_are_a_permerror(dns: CachingDns) -> None:
    r = check_spf(dns, "twospf.example.com", IP)
    expect(r, "fail", "permerror", "more than one SPF record", "merge them into one")


def test_spf_more_than_two_void_lookups_is_a_permerror(dns: CachingDns) -> None:
    r = check_spf(dns, "void.example.com", IP)
    expect(r, "fail", "permerror", "more than 2 void lookups")


def test_spf_no_record_is_none_with_the_record_to_publish(dns: CachingDns) -> None:
    for domain in ("nospf.example.com", "nowhere.example.com"):  # records but no SPF; NXDOMAIN
        r = check_spf(dns, domain, IP)
        expect(r, "fail", "none", "publishes no SPF record", f"v=spf1 ip4:{IP} -all")


def test_spf_a_record_split_over_several_strings_is_joined(served: NsdServer) -> None:
    dns = CachingDns([served.address], timeout=0.5, attempts=1)
    (strings,) = dns.lookup("long.example.com", "TXT").values
    assert isinstance(strings, tuple) and len(strings) == 3
    # the address is cut by the 255-byte boundary
    assert strings[0].endswith(b" ip4:1") and strings[1].startswith(b"92.0.2.10 ")
    r = check_spf(dns, "long.example.com", IP)
    expect(r, "pass", "pass")
    assert r.detail["record"] == LONG_SPF
    expect(check_spf(dns, "long.example.com", OTHER), "fail", "fail", "-all")


# --- dkim -----------------------------------------------------------------------------------


def test_dkim_a_2048_bit_key_passes(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "s2048")
    expect(r, "pass", "pass")
    assert (r.selector, r.detail["key_type"], r.detail["bits"]) == ("s2048", "rsa", 2048)
    assert r.detail["warnings"] == []


def test_dkim_a_key_reached_through_a_cname_passes(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "cn")
    expect(r, "pass", "pass")
    assert r.detail["bits"] == 2048


def test_dkim_a_1024_bit_key_passes_with_a_warning(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "s1024")
    expect(r, "pass", "pass")
    assert r.detail["bits"] == 1024
    assert r.detail["warnings"] == ["RSA key of 1024 bits: use 2048"]


def test_dkim_a_512_bit_key_is_weak(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "s512")
    expect(r, "fail", "weak", "has 512 bits", "generate a 2048-bit key")


def test_dkim_an_empty_key_is_revoked(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "revoked")
    expect(r, "fail", "revoked", "revoked (p= is empty)", "revoked._domainkey.example.com")


def test_dkim_a_missing_key(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "nope")
    expect(r, "fail", "missing", "no DKIM key at nope._domainkey.example.com")


def test_dkim_a_garbage_key_is_invalid(dns: CachingDns) -> None:
    r = check_dkim(dns, "example.com", "garbage")
    expect(r, "fail", "invalid", "p= is not valid base64")


# --- dmarc ----------------------------------------------------------------------------------


def test_dmarc_present_passes_with_its_policy(dns: CachingDns) -> None:
    r = check_dmarc(dns, "example.com")
    expect(r, "pass", "pass")
    assert (r.detail["policy"], r.detail["rua"]) == ("reject", ["mailto:dmarc@example.com"])
    assert (r.detail["found_at"], r.detail["organisational"]) == ("_dmarc.example.com", False)


def test_dmarc_absent_fails_with_a_record_to_publish(dns: CachingDns) -> None:
    r = check_dmarc(dns, "example.org")
    expect(
        r,
        "fail",
        "missing",
        "no DMARC record at _dmarc.example.org",
        'TXT _dmarc.example.org "v=DMARC1; p=none',
    )
    sub = check_dmarc(dns, "sub.example.org")
    expect(sub, "fail", "missing", "_dmarc.sub.example.org nor at _dmarc.example.org")


def test_dmarc_an_invalid_policy_names_the_tag(dns: CachingDns) -> None:
    r = check_dmarc(dns, "bad.example.com")
    expect(r, "fail", "invalid", "_dmarc.bad.example.com is invalid", "tag p='maybe'")


def test_dmarc_at_the_organisational_domain_only(dns: CachingDns) -> None:
    r = check_dmarc(dns, "mail.example.co.uk")
    expect(r, "pass", "pass")
    assert (r.detail["found_at"], r.detail["organisational"]) == ("_dmarc.example.co.uk", True)
    assert r.detail["policy"] == "quarantine"


def test_dmarc_two_records_are_invalid(dns: CachingDns) -> None:
    r = check_dmarc(dns, "two.example.com")
    expect(r, "fail", "invalid", "2 DMARC records at _dmarc.two.example.com", "keep exactly one")


# --- mta-sts and tls-rpt --------------------------------------------------------------------


def test_mta_sts_present_and_missing(dns: CachingDns) -> None:
    r = check_mta_sts(dns, "example.com")
    expect(r, "pass", "pass")
    assert r.detail["id"] == "20250101000000"
    missing = check_mta_sts(dns, "example.org")
    expect(missing, "fail", "missing", "no MTA-STS record at _mta-sts.example.org", "v=STSv1")


def test_tls_rpt_present_and_missing(dns: CachingDns) -> None:
    r = check_tls_rpt(dns, "example.com")
    expect(r, "pass", "pass")
    assert r.detail["rua"] == ["mailto:tls@example.com"]
    missing = check_tls_rpt(dns, "example.org")
    expect(missing, "fail", "missing", "_smtp._tls.example.org", "v=TLSRPTv1; rua=mailto:")


# --- the world changes ----------------------------------------------------------------------


def test_a_zone_change_changes_the_result_for_a_fresh_resolver(served: NsdServer) -> None:
    before = CachingDns([served.address], timeout=0.5, attempts=1)
    expect(check_spf(before, "ad.example.com", IP), "pass", "pass")
    moved = [line.replace(f"ad A {IP}", "ad A 192.0.2.11") for line in ZONES["example.com"]]
    served.reload(zones(example_com=moved))
    after = CachingDns([served.address], timeout=0.5, attempts=1)
    expect(check_spf(after, "ad.example.com", IP), "fail", "fail", "-all", f"ip4:{IP}")
    # a pass keeps its answers: the resolver that asked before the change still says pass
    expect(check_spf(before, "ad.example.com", IP), "pass", "pass")


def test_an_outage_is_an_error_for_every_kind_never_a_fail(served: NsdServer) -> None:
    served.stop()
    dns = CachingDns([served.address], timeout=0.5, attempts=1)
    items = [
        Item("fcrdns", IP, IP),
        Item("spf", "example.com", IP),
        Item("dkim", "example.com", None, "s2048"),
        Item("dmarc", "example.com"),
        Item("mta-sts", "example.com"),
        Item("tls-rpt", "example.com"),
    ]
    assert sorted(i.check for i in items) == sorted(CHECKS)
    for r in run_items(dns, items):
        expect(r, "error", "temperror", "timeout")
