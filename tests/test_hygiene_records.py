"""The record checks of sender hygiene: fcrdns, dkim, dmarc, mta-sts and tls-rpt, each a
function of an in-memory DNS (tests/staticdns.py) returning one CheckResult."""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rblwatch.hygiene.dkim import check_dkim, validate_selector
from rblwatch.hygiene.dmarc import check_dmarc, organisational_domain, parse_tags
from rblwatch.hygiene.fcrdns import check_fcrdns, generic_reason
from rblwatch.hygiene.policy import check_mta_sts, check_tls_rpt
from tests.staticdns import StaticDns

IP = "192.0.2.10"
REV = "10.2.0.192.in-addr.arpa"
IP6 = "2001:db8::25"
REV6 = "5.2.0.0." + "0." * 20 + "8.b.d.0.1.0.0.2.ip6.arpa"


# --- fcrdns ---------------------------------------------------------------------------------


def ptr_zone(*names: str, ip: str = IP, rev: str = REV) -> StaticDns:
    dns = StaticDns()
    for name in names:
        dns.add(rev, "PTR", name)
    return dns


def test_a_ptr_name_that_resolves_back_passes() -> None:
    dns = ptr_zone("mail.example.com")
    dns.add("mail.example.com", "A", IP)
    r = check_fcrdns(dns, IP)
    assert (r.check, r.target, r.ip, r.outcome, r.result) == ("fcrdns", IP, IP, "pass", "pass")
    assert r.detail == {"ptr": ["mail.example.com"], "confirmed": "mail.example.com"}
    assert (REV, "PTR") in dns.asked


def test_ipv6_reverse_name_is_the_nibbles_and_confirms_by_aaaa() -> None:
    dns = ptr_zone("mail6.example.com", rev=REV6)
    dns.add("mail6.example.com", "A", IP)  # the other family never confirms
    assert check_fcrdns(dns, IP6).result == "not_confirmed"
    dns.add("mail6.example.com", "AAAA", "2001:0db8:0:0::0025")  # any spelling of it
    r = check_fcrdns(dns, "2001:DB8::25")
    assert (r.outcome, r.target, r.detail["confirmed"]) == ("pass", IP6, "mail6.example.com")
    assert (REV6, "PTR") in dns.asked


def test_no_ptr_fails_and_says_whom_to_ask() -> None:
    r = check_fcrdns(StaticDns(missing=[REV]), IP)
    assert (r.outcome, r.result) == ("fail", "no_ptr")
    assert "ISP" in r.reason and "PTR" in r.reason and IP in r.reason


def test_a_ptr_name_resolving_elsewhere_is_not_confirmed_and_the_reason_shows_it() -> None:
    dns = ptr_zone("mail.example.com", "other.example.net")
    dns.add("mail.example.com", "A", "198.51.100.7")
    r = check_fcrdns(dns, IP)
    assert (r.outcome, r.result) == ("fail", "not_confirmed")
    assert "mail.example.com → 198.51.100.7" in r.reason
    assert "other.example.net → nothing" in r.reason
    assert "add an A record" in r.reason


def test_a_confirmed_generic_name_fails_with_why_and_what_to_do() -> None:
    dns = ptr_zone("static-192-0-2-10.isp.net")
    dns.add("static-192-0-2-10.isp.net", "A", IP)
    r = check_fcrdns(dns, IP)
    assert (r.outcome, r.result) == ("fail", "generic")
    assert "address's numbers" in r.reason and "PTR to a name of your own" in r.reason


def test_several_ptrs_pass_when_any_confirmed_name_is_not_generic() -> None:
    dns = ptr_zone("dhcp-44.pool.isp.net", "mail.example.com")
    dns.add("dhcp-44.pool.isp.net", "A", IP)
    dns.add("mail.example.com", "A", IP)
    r = check_fcrdns(dns, IP)
    assert r.outcome == "pass" and r.detail["confirmed"] == "mail.example.com"


def test_helo_must_be_a_confirmed_name_ignoring_case_and_the_final_dot() -> None:
    dns = ptr_zone("mail.example.com")
    dns.add("mail.example.com", "A", IP)
    assert check_fcrdns(dns, IP, helo="MAIL.example.com.").outcome == "pass"
    r = check_fcrdns(dns, IP, helo="smtp.example.com")
    assert (r.outcome, r.result) == ("fail", "helo_mismatch")
    assert "HELO name smtp.example.com" in r.reason and "mail.example.com" in r.reason


def test_a_broken_ptr_lookup_is_an_error_not_a_fail() -> None:
    r = check_fcrdns(StaticDns(broken=[REV]), IP)
    assert (r.outcome, r.result) == ("error", "temperror")
    assert REV in r.reason and "timeout" in r.reason


def test_a_broken_forward_lookup_is_an_error_unless_another_name_decides() -> None:
    dns = ptr_zone("mail.example.com", "backup.example.com")
    dns.broken.add("backup.example.com")
    assert check_fcrdns(dns, IP).outcome == "error"  # nothing confirms: it might have
    dns.add("mail.example.com", "A", IP)
    assert check_fcrdns(dns, IP).outcome == "pass"  # confirmed anyway


def test_a_broken_name_that_could_turn_generic_into_pass_is_an_error() -> None:
    dns = ptr_zone("dhcp-44.pool.isp.net", "mail.example.com")
    dns.add("dhcp-44.pool.isp.net", "A", IP)
    dns.broken.add("mail.example.com")
    assert check_fcrdns(dns, IP).outcome == "error"
    # but a broken generic name cannot change a generic verdict
    dns = ptr_zone("dhcp-44.pool.isp.net", "ppp-9.isp.net")
    dns.add("dhcp-44.pool.isp.net", "A", IP)
    dns.broken.add("ppp-9.isp.net")
    assert check_fcrdns(dns, IP).result == "generic"


def test_a_target_that_is_not_an_address_fails_without_a_lookup() -> None:
    dns = StaticDns()
    r = check_fcrdns(dns, "mail.example.com")
    assert (r.outcome, r.result) == ("fail", "invalid") and "not an IP address" in r.reason
    assert dns.asked == []


@pytest.mark.parametrize(
    ("name", "ip"),
    [
        ("static-192-0-2-10.isp.net", IP),
        ("dhcp-44.pool.isp.net", IP),
        ("10.2.0.192.dsl.isp.net", IP),
        ("192.0.2.10.example.net", IP),
        ("c000020a.isp.net", IP),  # 192.0.2.10 in hex
        ("ip192000002010.isp.net", IP),
        ("host-44.example.com", IP),
        ("cust1234.example.net", IP),
        ("adsl.customer.isp.net", IP),
        ("ec2-192-0-2-10.compute-1.amazonaws.com", IP),
        ("2001-db8-0-0-0-0-0-25.ipv6.isp.net", IP6),
        ("20010db8000000000000000000000025.isp.net", IP6),
    ],
)
def test_generic_names(name: str, ip: str) -> None:
    assert generic_reason(name, ip) is not None


@pytest.mark.parametrize(
    "name",
    [
        "mail.example.com",
        "mail2.example.com",
        "host.example.com",  # a bare word chosen by a person, not an ISP's numbered name
        "static.example.com",  # "static" is what a good ISP name says
        "spool.example.com",  # whole tokens: "pool" inside a word is no sign
        "smtp.cable.com",  # the registered domain's own words are not held against it
        "mail.dsl.example",
        "mx-2-10.example.com",  # two octets are not the address
    ],
)
def test_names_that_are_not_generic(name: str) -> None:
    assert generic_reason(name, IP) is None
    assert generic_reason(name, IP6) is None


# --- dkim -----------------------------------------------------------------------------------


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    size = bytes([n]) if n < 128 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
    if n >= 128:
        size += n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + body


def _integer(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def rsa_key(bits: int) -> str:
    """A SubjectPublicKeyInfo whose modulus has `bits` bits, base64 (not a real key: only
    its shape and size matter to the check)."""
    modulus = (1 << (bits - 1)) | 0xF1
    rsa = _tlv(0x30, _integer(modulus) + _integer(65537))
    algorithm = _tlv(0x30, _tlv(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
    spki = _tlv(0x30, algorithm + _tlv(0x03, b"\x00" + rsa))
    return base64.b64encode(spki).decode()


KEY_NAME = "s1._domainkey.example.com"


def dkim_zone(*records: str) -> StaticDns:
    dns = StaticDns()
    dns.txt(KEY_NAME, *records)
    return dns


def test_a_2048_bit_rsa_key_passes_with_its_type_and_size() -> None:
    r = check_dkim(dkim_zone(f"v=DKIM1; k=rsa; p={rsa_key(2048)}"), "example.com", "s1")
    assert (r.check, r.target, r.selector, r.outcome) == ("dkim", "example.com", "s1", "pass")
    assert (r.detail["key_type"], r.detail["bits"], r.detail["warnings"]) == ("rsa", 2048, [])
    assert r.key == KEY_NAME


def test_a_1024_bit_key_passes_with_a_warning() -> None:
    r = check_dkim(dkim_zone(f"p={rsa_key(1024)}"), "example.com", "s1")
    assert r.outcome == "pass" and r.detail["bits"] == 1024
    assert r.detail["warnings"] == ["RSA key of 1024 bits: use 2048"]


def test_a_512_bit_key_is_weak_and_the_reason_says_what_to_generate() -> None:
    r = check_dkim(dkim_zone(f"v=DKIM1; p={rsa_key(512)}"), "example.com", "s1")
    assert (r.outcome, r.result, r.detail["bits"]) == ("fail", "weak", 512)
    assert "2048-bit key" in r.reason and "new selector" in r.reason


def test_an_empty_p_is_revoked() -> None:
    r = check_dkim(dkim_zone("v=DKIM1; k=rsa; p="), "example.com", "s1")
    assert (r.outcome, r.result) == ("fail", "revoked")
    assert "revoked" in r.reason and "sign with a current selector" in r.reason


def test_no_key_record_is_missing_and_says_to_publish_it() -> None:
    r = check_dkim(StaticDns(missing=[KEY_NAME]), "example.com", "s1")
    assert (r.outcome, r.result) == ("fail", "missing")
    assert KEY_NAME in r.reason and "publish the selector's public key" in r.reason


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ("v=DKIM1; p=not*base64!", "not valid base64"),
        ("v=DKIM1; k=dsa; p=AAAA", "unknown key type k='dsa'"),
        ("v=DKIM2; p=AAAA", "v='DKIM2'"),
        ("v=DKIM1; k=rsa", "p= is missing"),
        ("just some text", "not a tag=value list"),
        ("v=DKIM1; p=AAAA; p=BBBB", "not a tag=value list"),
        ("v=DKIM1; p=" + base64.b64encode(b"garbage").decode(), "not an RSA public key"),
        ("v=DKIM1; k=ed25519; p=" + base64.b64encode(b"x" * 31).decode(), "32 bytes"),
    ],
)
def test_records_that_say_no_usable_key_are_invalid_with_what_is_wrong(
    record: str, said: str
) -> None:
    r = check_dkim(dkim_zone(record), "example.com", "s1")
    assert (r.outcome, r.result) == ("fail", "invalid")
    assert said in r.reason and "publish the key exactly" in r.reason


def test_two_records_at_the_selector_are_ambiguous() -> None:
    r = check_dkim(dkim_zone(f"p={rsa_key(2048)}", f"p={rsa_key(2048)}"), "example.com", "s1")
    assert (r.result, len(r.detail["records"])) == ("invalid", 2)  # type: ignore[arg-type]
    assert "keep exactly one" in r.reason


def test_an_ed25519_key_passes() -> None:
    p = base64.b64encode(b"k" * 32).decode()
    r = check_dkim(dkim_zone(f"v=DKIM1; k=ed25519; p={p}"), "example.com", "s1")
    assert (r.outcome, r.detail["key_type"], r.detail["bits"]) == ("pass", "ed25519", 256)


def test_testing_mode_is_a_warning() -> None:
    r = check_dkim(dkim_zone(f"v=DKIM1; t=y:s; p={rsa_key(2048)}"), "example.com", "s1")
    assert r.outcome == "pass"
    assert r.detail["warnings"] == ["t=y: testing mode, receivers may treat signatures as absent"]


def test_a_key_in_several_strings_and_with_folding_whitespace_is_read_whole() -> None:
    key = rsa_key(4096)  # > 255 bytes: StaticDns splits it in strings as a server does
    spaced = " ".join(key[i : i + 64] for i in range(0, len(key), 64))
    r = check_dkim(dkim_zone(f"v=DKIM1; p={spaced}"), "example.com", "s1")
    assert (r.outcome, r.detail["bits"]) == ("pass", 4096)


def test_a_broken_key_lookup_is_an_error() -> None:
    r = check_dkim(StaticDns(broken=[KEY_NAME]), "example.com", "s1")
    assert (r.outcome, r.selector) == ("error", "s1") and KEY_NAME in r.reason


@pytest.mark.parametrize(
    ("selector", "said"),
    [
        ("a.b", "selector 'a.b': rblwatch takes one DNS label per selector"),
        ("", "selector is empty"),
        ("-s1", "letters, digits and '-'"),
        ("s_1", "letters, digits and '-'"),
        ("s" * 64, "longer than 63"),
    ],
)
def test_bad_selectors_get_one_line_and_no_lookup(selector: str, said: str) -> None:
    assert said in (validate_selector(selector) or "")
    dns = StaticDns()
    r = check_dkim(dns, "example.com", selector)
    assert (r.outcome, r.result) == ("fail", "invalid") and said in r.reason
    assert dns.asked == []


def test_good_selectors_validate() -> None:
    for s in ("s1", "google", "selector1", "20230601", "k-1"):
        assert validate_selector(s) is None


def test_a_domain_that_is_not_one_fails_invalid_for_every_domain_check() -> None:
    dns = StaticDns()
    for r in (
        check_dkim(dns, "not a domain", "s1"),
        check_dmarc(dns, "not a domain"),
        check_mta_sts(dns, "exa..mple"),
        check_tls_rpt(dns, "com"),
    ):
        assert (r.outcome, r.result) == ("fail", "invalid") and r.reason
    assert dns.asked == []


# --- dmarc ----------------------------------------------------------------------------------


def dmarc_zone(name: str, *records: str) -> StaticDns:
    dns = StaticDns()
    dns.txt(name, *records)
    return dns


def test_a_valid_dmarc_record_passes_with_its_policy_and_reports() -> None:
    record = "v=DMARC1; p=reject; rua=mailto:d@example.com,mailto:x@rep.example.net!10m; foo=bar"
    r = check_dmarc(dmarc_zone("_dmarc.example.com", record), "Example.COM.")
    assert (r.check, r.target, r.outcome, r.result) == ("dmarc", "example.com", "pass", "pass")
    assert dict(r.detail) == {
        "record": record,
        "policy": "reject",
        "subdomain_policy": "reject",
        "pct": 100,
        "rua": ["mailto:d@example.com", "mailto:x@rep.example.net!10m"],
        "found_at": "_dmarc.example.com",
        "organisational": False,
        "warnings": [],
    }


def test_policy_none_and_no_rua_pass_with_warnings() -> None:
    dns = dmarc_zone("_dmarc.example.com", "v=DMARC1; p=none; sp=quarantine")
    r = check_dmarc(dns, "example.com")
    assert r.outcome == "pass" and r.detail["subdomain_policy"] == "quarantine"
    warnings = r.detail["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 2
    assert warnings[0].startswith("policy none: monitoring only")
    assert "rua=mailto:dmarc-reports@example.com" in warnings[1]


def test_a_missing_record_fails_with_the_record_to_publish() -> None:
    r = check_dmarc(StaticDns(), "example.com")
    assert (r.outcome, r.result) == ("fail", "missing")
    assert '"v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com"' in r.reason


def test_the_organisational_domain_record_applies_to_a_subdomain() -> None:
    dns = dmarc_zone("_dmarc.example.co.uk", "v=DMARC1; p=quarantine; rua=mailto:d@example.co.uk")
    r = check_dmarc(dns, "mail.example.co.uk")
    assert (r.outcome, r.detail["found_at"], r.detail["organisational"]) == (
        "pass",
        "_dmarc.example.co.uk",
        True,
    )
    assert dns.asked == [("_dmarc.mail.example.co.uk", "TXT"), ("_dmarc.example.co.uk", "TXT")]
    assert organisational_domain("mail.example.co.uk") == "example.co.uk"
    missing = check_dmarc(StaticDns(), "mail.example.co.uk")
    assert "nor at _dmarc.example.co.uk" in missing.reason


def test_an_organisational_domain_is_asked_once() -> None:
    dns = StaticDns()
    check_dmarc(dns, "example.com")
    assert dns.asked == [("_dmarc.example.com", "TXT")]


def test_records_not_starting_with_the_version_are_ignored() -> None:
    dns = dmarc_zone("_dmarc.example.com", "v=spf1 -all", "p=reject; v=DMARC1")
    assert check_dmarc(dns, "example.com").result == "missing"


def test_a_version_in_other_letters_is_read_with_a_warning() -> None:
    dns = dmarc_zone("_dmarc.example.com", "V = dmarc1; p=reject; rua=mailto:d@example.com")
    r = check_dmarc(dns, "example.com")
    assert (r.outcome, r.detail["warnings"]) == (
        "pass",
        ["write the version exactly v=DMARC1: strict receivers ignore others"],
    )


def test_two_dmarc_records_are_invalid() -> None:
    dns = dmarc_zone("_dmarc.example.com", "v=DMARC1; p=none", "v=DMARC1; p=reject")
    r = check_dmarc(dns, "example.com")
    assert (r.result, "keep exactly one" in r.reason) == ("invalid", True)


@pytest.mark.parametrize(
    ("record", "said"),
    [
        ("v=DMARC1; p=bogus", "tag p='bogus' must be none or quarantine or reject"),
        ("v=DMARC1; p=none; pct=150", "tag pct='150' must be a whole number from 0 to 100"),
        ("v=DMARC1; p=none; rua=https://example.com/r", "is not a mailto: address"),
        ("v=DMARC1; p=none; adkim=x", "tag adkim='x' must be r or s"),
        ("v=DMARC1; p=none; fo=2", "tag fo='2'"),
        ("v=DMARC1; rua=mailto:d@example.com", "p= is missing"),
        ("v=DMARC1; p=none; p=reject", "tag p= appears twice"),
        ("v=DMARC1; p none", "is not tag=value"),
    ],
)
def test_bad_values_are_invalid_naming_the_tag(record: str, said: str) -> None:
    r = check_dmarc(dmarc_zone("_dmarc.example.com", record), "example.com")
    assert (r.outcome, r.result) == ("fail", "invalid")
    assert said in r.reason and "_dmarc.example.com" in r.reason


def test_dmarc_lookup_errors_are_errors_at_either_name() -> None:
    assert check_dmarc(StaticDns(broken=["_dmarc.example.com"]), "example.com").outcome == "error"
    r = check_dmarc(StaticDns(broken=["_dmarc.example.co.uk"]), "mail.example.co.uk")
    assert (r.outcome, "_dmarc.example.co.uk" in r.reason) == ("error", True)


def test_a_huge_garbage_record_gets_a_short_reason() -> None:
    r = check_dmarc(dmarc_zone("_dmarc.example.com", "v=DMARC1; p=" + "x" * 10_000), "example.com")
    assert r.result == "invalid" and len(r.reason) < 500
    assert len(str(r.detail["record"])) <= 200


def test_non_utf8_bytes_are_invalid_not_a_crash() -> None:
    dns = StaticDns({("_dmarc.example.com", "TXT"): [(b"v=DMARC1; p=\xff\xfe",)]})
    assert check_dmarc(dns, "example.com").result == "invalid"


def test_tag_lists_allow_a_trailing_semicolon() -> None:
    assert parse_tags(" v=DMARC1 ; P = none ;") == {"v": "DMARC1", "p": "none"}


# --- mta-sts and tls-rpt --------------------------------------------------------------------


def test_an_mta_sts_record_passes_and_says_the_policy_is_not_fetched() -> None:
    dns = dmarc_zone("_mta-sts.example.com", "v=STSv1; id=20250101T000000", "v=spf1 -all")
    r = check_mta_sts(dns, "example.com")
    assert (r.check, r.outcome, r.detail["id"]) == ("mta-sts", "pass", "20250101T000000")
    assert r.detail["policy_fetched"] is False
    assert r.detail["policy_url"] == "https://mta-sts.example.com/.well-known/mta-sts.txt"


@pytest.mark.parametrize(
    ("records", "result", "said"),
    [
        ((), "missing", 'publish TXT _mta-sts.example.com "v=STSv1; id='),
        (("v=stsv1; id=1",), "missing", "publish"),  # the version is case-sensitive
        (("v=STSv1;",), "invalid", "id= tag is missing"),
        (("v=STSv1; id=a-b",), "invalid", "1 to 32 letters and digits"),
        (("v=STSv1; id=" + "1" * 33,), "invalid", "1 to 32 letters and digits"),
        (("v=STSv1; id=1", "v=STSv1; id=2"), "invalid", "keep exactly one"),
    ],
)
def test_mta_sts_failures(records: tuple[str, ...], result: str, said: str) -> None:
    r = check_mta_sts(dmarc_zone("_mta-sts.example.com", *records), "example.com")
    assert (r.outcome, r.result) == ("fail", result) and said in r.reason


def test_a_tls_rpt_record_passes_with_its_addresses() -> None:
    record = "v=TLSRPTv1; rua=mailto:tls@example.com,https://reports.example.net/tls"
    r = check_tls_rpt(dmarc_zone("_smtp._tls.example.com", record), "example.com")
    assert (r.check, r.outcome) == ("tls-rpt", "pass")
    assert r.detail["rua"] == ["mailto:tls@example.com", "https://reports.example.net/tls"]


@pytest.mark.parametrize(
    ("records", "result", "said"),
    [
        ((), "missing", '"v=TLSRPTv1; rua=mailto:tls-reports@example.com"'),
        (("v=TLSRPTv1",), "invalid", "rua= tag is missing"),
        (("v=TLSRPTv1; rua=ftp://x.example",), "invalid", "not a mailto: or https: URI"),
        (("v=TLSRPTv1; rua=mailto:a@b.example", "v=TLSRPTv1; rua=mailto:c@d.example"),
         "invalid", "keep exactly one"),
    ],
)  # fmt: skip
def test_tls_rpt_failures(records: tuple[str, ...], result: str, said: str) -> None:
    r = check_tls_rpt(dmarc_zone("_smtp._tls.example.com", *records), "example.com")
    assert (r.outcome, r.result) == ("fail", result) and said in r.reason


def test_policy_lookup_errors_are_errors() -> None:
    dns = StaticDns(broken=["_mta-sts.example.com", "_smtp._tls.example.com"])
    assert check_mta_sts(dns, "example.com").outcome == "error"
    assert check_tls_rpt(dns, "example.com").outcome == "error"


# --- hostile records ------------------------------------------------------------------------

_PREFIXES = st.sampled_from(
    [b"", b"v=DMARC1; ", b"v=DKIM1; ", b"v=STSv1; ", b"v=TLSRPTv1; ", b"p=", b"k=ed25519; p="]
)
_SPKI_HEAD = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f00")
_RECORD = st.tuples(_PREFIXES, st.binary(max_size=600)).map(lambda t: (t[0] + t[1],))
# keys that are good base64 of DER-ish garbage, to reach dkimpy's ASN.1 reader
_KEY = st.tuples(st.sampled_from([b"", _SPKI_HEAD]), st.binary(max_size=300)).map(
    lambda t: (b"v=DKIM1; p=" + base64.b64encode(t[0] + t[1]),)
)
_RECORDS = st.lists(_RECORD | _KEY, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_RECORDS)
def test_random_txt_bytes_never_raise(records: list[tuple[bytes, ...]]) -> None:
    dns = StaticDns(
        {
            (name, "TXT"): records
            for name in (KEY_NAME, "_dmarc.example.com", "_mta-sts.example.com",
                         "_smtp._tls.example.com")
        }
    )  # fmt: skip
    for r in (
        check_dkim(dns, "example.com", "s1"),
        check_dmarc(dns, "example.com"),
        check_mta_sts(dns, "example.com"),
        check_tls_rpt(dns, "example.com"),
    ):
        assert r.outcome in ("pass", "fail")
        assert len(r.reason) < 800


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_random_domains_selectors_and_ips_never_raise(text: str, other: str) -> None:
    dns = StaticDns()
    dns.add(REV, "PTR", text)
    dns.add(text, "A", other)
    for r in (
        check_dkim(dns, text, other),
        check_dmarc(dns, text),
        check_mta_sts(dns, text),
        check_tls_rpt(dns, text),
        check_fcrdns(dns, text),
        check_fcrdns(dns, IP, helo=other),
    ):
        assert r.outcome in ("pass", "fail")
    for ip in (IP, IP6):
        generic_reason(text, ip)
