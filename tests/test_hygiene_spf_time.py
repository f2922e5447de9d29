"""SPF's overall time limit (RFC 7208 §4.6.4): an evaluation whose lookups answer, but slowly,
is stopped as a temperror — an `error`, which changes nothing — instead of waiting out every
one of its up to ten lookups' timeouts."""

from __future__ import annotations

import time

import pytest

from rblwatch.hygiene import spf
from rblwatch.hygiene.dns import Records
from tests.staticdns import StaticDns


class SlowDns(StaticDns):
    def lookup(self, name: str, rdtype: str) -> Records:
        time.sleep(0.15)
        return super().lookup(name, rdtype)


def test_a_slow_chain_of_includes_ends_as_an_error_at_the_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spf, "TIME_LIMIT", 0.5)
    dns = SlowDns()
    dns.txt("example.com", "v=spf1 include:i1.example.com -all")
    for i in range(1, 9):
        dns.txt(f"i{i}.example.com", f"v=spf1 include:i{i + 1}.example.com -all")
    dns.txt("i9.example.com", "v=spf1 ip4:192.0.2.10 -all")
    start = time.monotonic()
    r = spf.check_spf(dns, "example.com", "192.0.2.10")
    took = time.monotonic() - start
    assert (r.outcome, r.result) == ("error", "temperror"), r
    assert took < 1.5  # stopped soon after the limit, not after all ten lookups (1.5 s)
    assert dns.queries < 10


def test_the_same_chain_passes_when_it_answers_in_time() -> None:
    dns = StaticDns()
    dns.txt("example.com", "v=spf1 include:i1.example.com -all")
    for i in range(1, 9):
        dns.txt(f"i{i}.example.com", f"v=spf1 include:i{i + 1}.example.com -all")
    dns.txt("i9.example.com", "v=spf1 ip4:192.0.2.10 -all")
    assert spf.check_spf(dns, "example.com", "192.0.2.10").outcome == "pass"
    assert spf.TIME_LIMIT >= 20  # the RFC's "at least 20 seconds"
