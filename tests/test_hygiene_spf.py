"""The SPF check: RFC 7208 evaluation by pyspf, every lookup through rblwatch's `Dns`.

Two parts. The OpenSPF RFC 7208 test suite (tests/data/rfc7208-tests.yml, copied unchanged
from pyspf 2.0.14's source distribution, licence in its header) runs through `evaluate`, the
same path `check_spf` takes, against an in-memory DNS built from each scenario's zone data
the way pyspf's own harness (test/testspf.py in that distribution) builds it. Then
`check_spf`'s own behaviour: outcomes, the reasons a person reads, the trace, the limits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dns.resolver
import pytest
import spf
import yaml

from rblwatch.hygiene.dns import DnsTempError, Records, Value
from rblwatch.hygiene.spf import check_spf, evaluate
from tests.staticdns import StaticDns

SUITE = Path(__file__).parent / "data" / "rfc7208-tests.yml"

# Every case pyspf 2.0.14 gets wrong through this path, with why. Empty: all 203 pass.
KNOWN_FAILURES: Mapping[str, str] = {}


class SuiteDns(StaticDns):
    """StaticDns with the suite's zone-data conventions (as testspf.py reads them).

    A name's records are a list of {TYPE: value} entries or the word TIMEOUT: a lookup of
    a type not listed before TIMEOUT times out, as does a type whose value is TIMEOUT, and
    any name under `error.`. A CNAME is followed as a recursive resolver would. SPF (type 99)
    records are served as TXT when the name has no TXT of its own: the suite relies on that
    duplication everywhere but in "Selecting records".
    """

    def __init__(self, zonedata: Mapping[str, list[Any]]) -> None:
        super().__init__()
        self.zone = {name.lower().rstrip("."): _entries(rr) for name, rr in zonedata.items()}

    def lookup(self, name: str, rdtype: str) -> Records:
        self.queries += 1
        self.asked.append((name, rdtype))
        return self._resolve(name.lower().rstrip("."), rdtype, depth=0)

    def _resolve(self, name: str, rdtype: str, depth: int) -> Records:
        entries = self.zone.get(name)
        if entries is None:
            if name.startswith("error."):
                raise DnsTempError("DNS timeout")
            return Records((), exists=False)
        found: list[Value] = []
        for entry in entries:
            if entry == "TIMEOUT":
                if not found:
                    raise DnsTempError("DNS timeout")
                break
            t, v = entry
            if t == rdtype and v == "TIMEOUT":
                raise DnsTempError("DNS timeout")
            if t == rdtype:
                found.append(v)
            elif t == "CNAME" and depth < 8 and not found:
                return self._resolve(str(v).lower().rstrip("."), rdtype, depth + 1)
        return Records(tuple(found))


def _entries(rr: list[Any]) -> list[Any]:
    out: list[Any] = []
    txt_seen = any(isinstance(e, dict) and "TXT" in e for e in rr)
    for e in rr:
        if not isinstance(e, dict):
            out.append(e)  # TIMEOUT
            continue
        ((t, v),) = e.items()
        if v == "NONE":  # an empty rrset that still counts as the name's TXT
            continue
        if t == "SPF":
            if txt_seen:
                continue
            t = "TXT"
        out.append((t, _value(t, v)))
    return out


def _value(t: str, v: Any) -> Value:
    if v == "TIMEOUT":
        return "TIMEOUT"
    if t == "TXT":
        strings = [v] if isinstance(v, str) else list(v)
        return tuple(s.encode() for s in strings)
    if t == "MX":
        return (int(v[0]), str(v[1]).lower().rstrip("."))
    return str(v).rstrip(".")


def _suite_cases() -> Iterator[Any]:
    with SUITE.open("rb") as fp:
        for scenario in yaml.safe_load_all(fp):
            for name, case in scenario["tests"].items():
                marks = []
                if name in KNOWN_FAILURES:
                    marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name]))
                yield pytest.param(scenario["zonedata"], case, id=name, marks=marks)


SUITE_CASES = list(_suite_cases())


@pytest.mark.parametrize(("zonedata", "case"), SUITE_CASES)
def test_rfc7208_suite(zonedata: Mapping[str, list[Any]], case: Mapping[str, Any]) -> None:
    """Each OpenSPF RFC 7208 case (release 2014.04): 203 cases, all pass.

    As testspf.py judges them: the result is the expected one (or one of a list of
    acceptable ones) and, where the case gives one, so is the explanation, pyspf's default
    explanation set to DEFAULT. Cases asking for pyspf's harsh mode (strict: 2, one case)
    run in the RFC mode check_spf uses, which gives the same result.
    """
    dns = SuiteDns(zonedata)
    ev = evaluate(dns, case["host"], case["mailfrom"], case["helo"], default_explanation="DEFAULT")
    wanted = case["result"]
    acceptable = [wanted] if isinstance(wanted, str) else list(wanted)
    assert ev.result in acceptable, ev.trace
    if "explanation" in case:
        assert ev.explanation == case["explanation"]


def test_the_suite_is_all_there() -> None:
    assert len(SUITE_CASES) == 203
    assert set(KNOWN_FAILURES) <= {p.id for p in SUITE_CASES}


# --- check_spf ------------------------------------------------------------------------------

IP = "192.0.2.10"


def txt(records: Mapping[str, str | list[str]]) -> StaticDns:
    """A StaticDns with these TXT records (one string, or a list of records, per name)."""
    dns = StaticDns()
    for name, texts in records.items():
        dns.txt(name, *([texts] if isinstance(texts, str) else texts))
    return dns


def test_an_ip4_term_passes_and_the_trace_shows_it() -> None:
    dns = txt({"example.com": "v=spf1 ip4:192.0.2.0/24 -all"})
    r = check_spf(dns, "example.com", IP)
    assert (r.check, r.target, r.ip, r.outcome, r.result, r.reason) == (
        "spf",
        "example.com",
        IP,
        "pass",
        "pass",
        "",
    )
    assert r.detail["record"] == "v=spf1 ip4:192.0.2.0/24 -all"
    assert r.detail["lookups"] == 0
    assert r.trace == (
        'example.com: "v=spf1 ip4:192.0.2.0/24 -all"',
        "  ip4:192.0.2.0/24: match → pass",
    )
    assert dns.asked == [("example.com", "TXT")]


def test_a_pass_through_an_include_names_the_include() -> None:
    dns = txt(
        {
            "example.com": "v=spf1 include:_spf.example.net -all",
            "_spf.example.net": "v=spf1 ip4:192.0.2.0/28 -all",
        }
    )
    r = check_spf(dns, "example.com", IP)
    assert r.outcome == "pass"
    assert r.detail["decided_by"] == "ip4:192.0.2.0/28 in include:_spf.example.net"
    assert r.detail["lookups"] == 1
    assert '    _spf.example.net: "v=spf1 ip4:192.0.2.0/28 -all"' in r.trace


def test_a_softfail_after_an_include_names_the_chain_and_the_fix() -> None:
    dns = txt(
        {
            "example.com": "v=spf1 include:_spf.example.net ~all",
            "_spf.example.net": "v=spf1 ip4:198.51.100.0/24 -all",
        }
    )
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("fail", "softfail")
    assert r.reason.startswith("softfail via ~all after include:_spf.example.net: ")
    assert "192.0.2.10 is not authorised by" in r.reason
    assert "add `ip4:192.0.2.10` to example.com's SPF record" in r.reason
    assert r.trace == (
        'example.com: "v=spf1 include:_spf.example.net ~all"',
        "  include:_spf.example.net",
        '    _spf.example.net: "v=spf1 ip4:198.51.100.0/24 -all"',
        "      ip4:198.51.100.0/24: no match",
        "      -all: match → fail",
        "    no match",
        "  ~all: match → softfail",
    )


def test_no_record_is_none_and_says_what_to_publish() -> None:
    dns = StaticDns(missing=["example.com"])
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("fail", "none")
    assert r.reason == (
        "none: example.com publishes no SPF record — publish `v=spf1 ip4:192.0.2.10 -all`"
    )
    assert r.detail["record"] is None


def test_a_txt_record_that_is_not_spf_is_no_record() -> None:
    dns = txt({"example.com": ["google-site-verification=abc", "v=spf10 -all"]})
    r = check_spf(dns, "example.com", IP)
    assert r.result == "none"


def test_a_redirect_is_followed_and_named() -> None:
    dns = txt(
        {
            # redirect= written first is still followed last (RFC 7208 §6.1)
            "example.com": "v=spf1 redirect=_spf.example.com a:mail.example.com ip4:198.51.100.1",
            "_spf.example.com": "v=spf1 ip4:203.0.113.0/24 -all",
        }
    )
    dns.add("mail.example.com", "A", "198.51.100.2")
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("fail", "fail")
    assert r.reason.startswith("fail via -all in redirect=_spf.example.com: ")
    assert r.trace == (
        'example.com: "v=spf1 redirect=_spf.example.com a:mail.example.com ip4:198.51.100.1"',
        "  a:mail.example.com",
        "    A mail.example.com → 198.51.100.2",
        "    no match",
        "  ip4:198.51.100.1: no match",
        "  redirect=_spf.example.com",
        '    _spf.example.com: "v=spf1 ip4:203.0.113.0/24 -all"',
        "      ip4:203.0.113.0/24: no match",
        "      -all: match → fail",
    )
    assert r.detail["lookups"] == 2
    assert check_spf(dns, "example.com", "203.0.113.7").outcome == "pass"


def test_an_ip6_term_matches_an_ipv6_sender_only() -> None:
    dns = txt({"example.com": "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8:1::/48 -all"})
    assert check_spf(dns, "example.com", "2001:db8:1::25").outcome == "pass"
    r = check_spf(dns, "example.com", "2001:db8:2::25")
    assert r.result == "fail"
    assert "add `ip6:2001:db8:2::25`" in r.reason
    assert check_spf(dns, "example.com", "::ffff:192.0.2.10").outcome == "pass"
    mapped = check_spf(dns, "example.com", "::ffff:198.51.100.9")
    assert "198.51.100.9 is not authorised" in mapped.reason
    assert "add `ip4:198.51.100.9`" in mapped.reason  # a mapped address is evaluated as IPv4


def test_an_mx_term_matches_the_exchanges_addresses() -> None:
    dns = txt({"example.com": "v=spf1 mx -all"})
    dns.add("example.com", "MX", (10, "mx1.example.com"), (20, "mx2.example.com"))
    dns.add("mx1.example.com", "A", "198.51.100.1")
    dns.add("mx2.example.com", "A", IP)
    r = check_spf(dns, "example.com", IP)
    assert r.outcome == "pass"
    assert r.detail["decided_by"] == "mx"
    assert "    A mx2.example.com → 192.0.2.10" in r.trace
    assert check_spf(dns, "example.com", "192.0.2.11").result == "fail"


def test_more_than_ten_lookups_is_a_permerror() -> None:
    names = [f"a{i}.example.com" for i in range(11)]
    dns = txt({"example.com": "v=spf1 " + " ".join(f"a:{n}" for n in names) + " -all"})
    for n in names:
        dns.add(n, "A", "198.51.100.1")
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("fail", "permerror")
    assert r.reason == ("permerror: more than 10 DNS lookups (RFC 7208 §4.6.4): flatten includes")
    assert r.detail["lookups"] == 11
    assert ("a10.example.com", "A") not in dns.asked  # stopped before the 11th


def test_more_than_two_void_lookups_is_a_permerror() -> None:
    dns = txt(
        {"example.com": "v=spf1 a:gone1.example.com a:gone2.example.com a:gone3.example.com -all"}
    )
    dns.missing.update({"gone1.example.com", "gone2.example.com", "gone3.example.com"})
    r = check_spf(dns, "example.com", IP)
    assert r.result == "permerror"
    assert r.reason.startswith("permerror: more than 2 void lookups (RFC 7208 §4.6.4)")


def test_an_include_loop_is_a_permerror_naming_the_loop() -> None:
    dns = txt(
        {
            "example.com": "v=spf1 include:_spf.example.com -all",
            "_spf.example.com": "v=spf1 include:example.com -all",
        }
    )
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("fail", "permerror")
    assert "loop (example.com → _spf.example.com → example.com)" in r.reason
    assert "10-lookup limit" in r.reason
    assert dns.queries <= 12


def test_a_record_of_fifty_includes_ends_as_a_permerror() -> None:
    records = {"example.com": "v=spf1 " + " ".join(f"include:i{i}.example.net" for i in range(50))}
    records.update({f"i{i}.example.net": "v=spf1 ip4:198.51.100.1 -all" for i in range(50)})
    dns = txt(records)
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("fail", "permerror")
    assert "more than 10 DNS lookups" in r.reason
    assert dns.queries == 11  # the record and ten includes; never the other forty


def test_an_include_or_redirect_of_a_domain_without_spf_is_a_permerror() -> None:
    dns = txt({"example.com": "v=spf1 include:nospf.example.net -all"})
    r = check_spf(dns, "example.com", IP)
    assert r.result == "permerror"
    assert r.reason == (
        "permerror: include:nospf.example.net has no SPF record (RFC 7208 §5.2): publish one "
        "there or drop the include"
    )
    r = check_spf(txt({"example.com": "v=spf1 redirect=nospf.example.net"}), "example.com", IP)
    assert r.reason.startswith("permerror: redirect=nospf.example.net has no SPF record")


def test_two_spf_records_are_a_permerror() -> None:
    dns = txt({"example.com": ["v=spf1 -all", "v=spf1 ip4:192.0.2.10 -all"]})
    r = check_spf(dns, "example.com", IP)
    assert r.reason.startswith("permerror: more than one SPF record (RFC 7208 §4.5)")


def test_a_dns_failure_is_an_error_not_a_fail() -> None:
    dns = txt({"example.com": "v=spf1 include:_spf.example.net -all"})
    dns.broken.add("_spf.example.net")
    r = check_spf(dns, "example.com", IP)
    assert (r.outcome, r.result) == ("error", "temperror")
    assert "_spf.example.net" in r.reason and "timeout" in r.reason
    top = check_spf(StaticDns(broken=["example.com"]), "example.com", IP)
    assert top.outcome == "error"


def test_hostile_records_end_as_a_result_not_a_traceback() -> None:
    for raw in (b"v=spf1 \xff\xfe -all", b"v=spf1 a:%{ -all", b"v=spf1 redirect=example.com"):
        dns = StaticDns({("example.com", "TXT"): [(raw,)]})
        r = check_spf(dns, "example.com", IP)
        assert (r.outcome, r.result) == ("fail", "permerror"), raw
        assert r.reason.startswith("permerror"), raw


def test_a_long_record_is_cut_in_the_reason_but_whole_in_the_detail() -> None:
    record = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(40)) + " -all"
    r = check_spf(txt({"example.com": record}), "example.com", IP)
    assert r.result == "fail"
    assert record not in r.reason and "…" in r.reason
    assert r.detail["record"] == record


def test_a_domain_that_is_not_a_domain_fails_as_a_permerror() -> None:
    dns = StaticDns()
    for bad in ("not a domain", "example..com", "-bad.example", "x" * 64 + ".example", "com"):
        r = check_spf(dns, bad, IP)
        assert (r.outcome, r.result, r.target) == ("fail", "permerror", bad)
        assert r.reason.startswith("permerror: ")
    assert dns.queries == 0


def test_an_ip_that_is_not_an_ip_is_the_callers_bug() -> None:
    with pytest.raises(ValueError):
        check_spf(StaticDns(), "example.com", "192.0.2.300")


def test_the_sender_and_helo_default_to_postmaster_and_the_domain() -> None:
    dns = txt({"example.com": "v=spf1 exists:%{l}.%{h}.x.example.com -all"})
    dns.add("postmaster.example.com.x.example.com", "A", "127.0.0.2")
    assert check_spf(dns, "example.com", IP).outcome == "pass"
    r = check_spf(dns, "example.com", IP, sender="bounce@example.com", helo="mx.example.com")
    assert r.outcome == "fail"
    assert ("bounce.mx.example.com.x.example.com", "A") in dns.asked


def test_no_lookup_goes_anywhere_but_the_given_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a lookup escaped to the network")

    monkeypatch.setattr(spf, "DNSLookup_dnspython", refuse)
    monkeypatch.setattr(dns.resolver, "query", refuse)
    monkeypatch.setattr(dns.resolver.Resolver, "resolve", refuse)
    zone_ = txt(
        {
            "example.com": "v=spf1 a mx ptr exists:x.example.com include:_spf.example.net -all",
            "_spf.example.net": "v=spf1 ip4:192.0.2.10 -all",
        }
    )
    zone_.add("example.com", "A", "198.51.100.1")
    zone_.add("example.com", "MX", (10, "mx.example.com"))
    zone_.add("mx.example.com", "A", "198.51.100.2")
    zone_.add("10.2.0.192.in-addr.arpa", "PTR", "out.example.org")
    zone_.add("out.example.org", "A", IP)
    r = check_spf(zone_, "example.com", IP)
    assert (r.outcome, r.detail["decided_by"]) == (
        "pass",
        "ip4:192.0.2.10 in include:_spf.example.net",
    )
    assert r.detail["queries"] == zone_.queries == 8


def test_outside_an_evaluation_pyspf_cannot_look_anything_up() -> None:
    with pytest.raises(spf.TempError):
        spf.DNSLookup("example.com", "TXT", True, 20)
    res, _code, _exp = spf.query("192.0.2.10", "a@example.com", "example.com").check()
    assert res == "temperror"


def test_type_spf_records_are_never_asked_for() -> None:
    """pyspf asks for type 99 in its harsh mode; our dispatcher answers nothing for it."""
    answers: list[object] = []

    class Asking(StaticDns):
        def lookup(self, name: str, rdtype: str) -> Records:
            answers.append(spf.DNSLookup(name, "SPF", 2, 20))
            return super().lookup(name, rdtype)

    d = Asking()
    d.txt("example.com", "v=spf1 -all")
    check_spf(d, "example.com", IP)
    assert answers == [[]]
    assert d.asked == [("example.com", "TXT")]


def test_concurrent_evaluations_each_use_their_own_dns() -> None:
    barrier = threading.Barrier(2, timeout=10)

    class Meeting(StaticDns):
        """Both evaluations are inside pyspf at once when they ask."""

        def lookup(self, name: str, rdtype: str) -> Records:
            barrier.wait()
            return super().lookup(name, rdtype)

    passing, failing = Meeting(), Meeting()
    passing.txt("example.com", "v=spf1 ip4:192.0.2.10 -all")
    failing.txt("example.com", "v=spf1 -all")
    results: dict[str, str] = {}

    def run(label: str, d: StaticDns) -> None:
        results[label] = check_spf(d, "example.com", IP).result

    threads = [
        threading.Thread(target=run, args=("passing", passing)),
        threading.Thread(target=run, args=("failing", failing)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == {"passing": "pass", "failing": "fail"}
    assert passing.asked == failing.asked == [("example.com", "TXT")]
