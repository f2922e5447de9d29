"""The NSD fixture serves what the hygiene checks will ask, as `CachingDns` sees it.

These double as end-to-end tests of `rblwatch.hygiene.dns.CachingDns` against a real
authoritative server: long TXT records in several strings, CNAMEs, reverse zones, NXDOMAIN
versus a name without the type, a reload, an outage.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import pytest

from rblwatch.hygiene.dns import CachingDns, DnsTempError, Records, txt_strings
from tests.nsd import TXT_CHUNK, NsdError, NsdServer, txt

TIMEOUT = 0.5
ATTEMPTS = 2
# dnspython sleeps a backoff (0.1 s, doubling) after each round of failed servers before it
# notices the lifetime (timeout x attempts) is spent, so a dead server costs a little more.
OUTAGE_BOUND = TIMEOUT * ATTEMPTS + 0.1 * 2 ** (ATTEMPTS - 1) + 0.5  # + scheduling slack

V6 = "2001:db8::10"
V6_ZONE = "8.b.d.0.1.0.0.2.ip6.arpa"
# 600 bytes, with what the zone-file syntax must escape and a multi-byte character
LONG_TXT = ("v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A" * 18)[:588] + ' "q" \\ é;()'

ZONES = {
    "example.com": [
        '@ TXT "v=spf1 ip4:192.0.2.10 -all"',
        "@ MX 10 mail",
        "@ MX 20 backup.example.net.",
        "mail A 192.0.2.10",
        f"mail AAAA {V6}",
        f"sel._domainkey TXT {txt(LONG_TXT)}",
        "www CNAME mail",
    ],
    "2.0.192.in-addr.arpa": ["10 PTR mail.example.com."],
    V6_ZONE: [f"{ipaddress.ip_address(V6).reverse_pointer}. PTR mail.example.com."],
}


def resolver(srv: NsdServer) -> CachingDns:
    return CachingDns([srv.address], timeout=TIMEOUT, attempts=ATTEMPTS)


def test_a_and_aaaa_answers(nsd_server: NsdServer) -> None:
    dns = resolver(nsd_server.start(ZONES))
    assert dns.lookup("mail.example.com", "A") == Records(("192.0.2.10",))
    assert dns.lookup("MAIL.example.com.", "AAAA") == Records((V6,))


def test_a_txt_of_600_bytes_arrives_in_255_byte_strings_that_join_to_the_original(
    nsd_server: NsdServer,
) -> None:
    dns = resolver(nsd_server.start(ZONES))
    records = dns.lookup("sel._domainkey.example.com", "TXT")
    (strings,) = records.values
    assert isinstance(strings, tuple)
    assert len(LONG_TXT.encode()) == 600
    assert [len(s) for s in strings if isinstance(s, bytes)] == [
        TXT_CHUNK,
        TXT_CHUNK,
        600 - 2 * TXT_CHUNK,
    ]
    assert txt_strings(records) == [LONG_TXT]
    assert txt_strings(dns.lookup("example.com", "TXT")) == ["v=spf1 ip4:192.0.2.10 -all"]


def test_mx_answers_preference_and_exchange(nsd_server: NsdServer) -> None:
    dns = resolver(nsd_server.start(ZONES))
    mx = dns.lookup("example.com", "MX").values
    assert sorted(mx) == [(10, "mail.example.com"), (20, "backup.example.net")]


def test_ptr_in_in_addr_arpa_and_ip6_arpa(nsd_server: NsdServer) -> None:
    dns = resolver(nsd_server.start(ZONES))
    v4 = ipaddress.ip_address("192.0.2.10").reverse_pointer
    assert dns.lookup(v4, "PTR") == Records(("mail.example.com",))
    assert dns.lookup(ipaddress.ip_address(V6).reverse_pointer, "PTR") == Records(
        ("mail.example.com",)
    )
    assert dns.lookup(ipaddress.ip_address("192.0.2.11").reverse_pointer, "PTR").exists is False


def test_nxdomain_does_not_exist_but_a_name_without_the_type_does(
    nsd_server: NsdServer,
) -> None:
    dns = resolver(nsd_server.start(ZONES))
    assert dns.lookup("nope.example.com", "TXT") == Records((), exists=False)
    assert dns.lookup("mail.example.com", "TXT") == Records((), exists=True)
    # an empty non-terminal (only sel._domainkey below it) exists too: NOERROR, no data
    assert dns.lookup("_domainkey.example.com", "TXT") == Records((), exists=True)


def test_a_cname_is_followed_to_the_address(nsd_server: NsdServer) -> None:
    dns = resolver(nsd_server.start(ZONES))
    assert dns.lookup("www.example.com", "A") == Records(("192.0.2.10",))
    assert dns.lookup("www.example.com", "CNAME") == Records(("mail.example.com",))


def test_reload_serves_the_new_data_to_a_fresh_resolver(nsd_server: NsdServer) -> None:
    nsd_server.start(ZONES)
    before = resolver(nsd_server)
    assert before.lookup("mail.example.com", "A") == Records(("192.0.2.10",))
    serial = nsd_server.serial
    changed = {**ZONES, "example.com": ["mail A 192.0.2.11", '@ TXT "v=spf1 -all"']}
    nsd_server.reload(changed)
    assert nsd_server.serial == serial + 1
    after = resolver(nsd_server)
    assert after.lookup("mail.example.com", "A") == Records(("192.0.2.11",))
    assert txt_strings(after.lookup("example.com", "TXT")) == ["v=spf1 -all"]
    assert after.lookup("www.example.com", "A").exists is False
    # one CachingDns is one pass: it keeps what it was told
    assert before.lookup("mail.example.com", "A") == Records(("192.0.2.10",))


def test_reload_with_other_zones_restarts_on_the_same_port(nsd_server: NsdServer) -> None:
    port = nsd_server.start(ZONES).port
    nsd_server.reload({"example.org": ["mail A 198.51.100.1"]})
    assert nsd_server.port == port
    dns = resolver(nsd_server)
    assert dns.lookup("mail.example.org", "A") == Records(("198.51.100.1",))
    with pytest.raises(DnsTempError):  # no longer served: NSD refuses the query
        dns.lookup("mail.example.com", "A")


def test_stop_is_an_outage_that_costs_at_most_the_timeout_bound(nsd_server: NsdServer) -> None:
    nsd_server.start(ZONES)
    nsd_server.stop()
    dns = resolver(nsd_server)
    started = time.monotonic()
    with pytest.raises(DnsTempError):
        dns.lookup("mail.example.com", "A")
    assert time.monotonic() - started < OUTAGE_BOUND
    with pytest.raises(DnsTempError):  # cached: the second ask costs nothing
        dns.lookup("mail.example.com", "A")
    assert dns.queries == 1


def test_start_after_stop_answers_again_on_the_same_port(nsd_server: NsdServer) -> None:
    port = nsd_server.start(ZONES).port
    nsd_server.stop()
    nsd_server.start()
    assert nsd_server.port == port
    assert resolver(nsd_server).lookup("mail.example.com", "A") == Records(("192.0.2.10",))


def test_a_zone_nsd_refuses_fails_with_nsd_s_reason(nsd_server: NsdServer) -> None:
    nsd_server.start(ZONES)
    with pytest.raises(NsdError, match=r"(?s)refused zone example\.com.*192\.0\.2\.300"):
        nsd_server.reload({**ZONES, "example.com": ["mail A 192.0.2.300"]})
    # nothing was replaced: the server still answers the previous data
    assert resolver(nsd_server).lookup("mail.example.com", "A") == Records(("192.0.2.10",))


def test_txt_escapes_quotes_backslashes_and_non_ascii() -> None:
    assert txt('a"b\\c é') == '"a\\"b\\\\c \\195\\169"'
    assert txt("") == '""'
    assert txt("x" * 256) == f'"{"x" * 255}" "x"'


def test_the_server_is_a_context_manager() -> None:
    with NsdServer({"example.com": ["mail A 192.0.2.10"]}) as srv:
        assert resolver(srv).lookup("mail.example.com", "A") == Records(("192.0.2.10",))
        workdir = srv.workdir
    assert not srv.running
    assert not workdir.exists()


def test_a_start_on_a_port_taken_meanwhile_fails_with_nsd_s_reason(
    nsd_server: NsdServer,
) -> None:
    port = nsd_server.start(ZONES).port
    assert port is not None
    nsd_server.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        started = time.monotonic()
        with pytest.raises(NsdError, match="in use"):
            nsd_server.start()
        assert time.monotonic() - started < 2.0
    assert not nsd_server.running
