"""The test peers work: the rbldnsd fixture and the fault-injecting server, seen via dnspython.

Every other test trusts these fixtures, so each behaviour is pinned here with plain dnspython
queries (no rblwatch code), and with raw sockets where dnspython would hide what arrived.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.faultdns import SPOOF_A, Action, Fault, FaultDns
from tests.rbldnsd import Rbldnsd, RbldnsdError

TIMEOUT = 1.0


def qname(address: str, zone: str) -> str:
    """The DNSBL query name: reversed octets (IPv4) or nibbles (IPv6), then the zone."""
    ip = ipaddress.ip_address(address)
    labels = ip.packed.hex() if ip.version == 6 else [str(b) for b in ip.packed]
    return ".".join([*reversed(labels), zone])


def udp(server: tuple[str, int], name: str, rdtype: str = "A", **kw: float) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, server[0], port=server[1], timeout=kw.get("timeout", TIMEOUT))


def answers(reply: dns.message.Message) -> list[str]:
    return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)


def raw_exchange(
    server: tuple[str, int], name: str, window: float = 0.3
) -> tuple[dns.message.Message, list[tuple[bytes, int]]]:
    """Send one query and collect every datagram (wire, source port) that arrives in ``window``."""
    query = dns.message.make_query(name, "A")
    got: list[tuple[bytes, int]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(query.to_wire(), server)
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                wire, source = sock.recvfrom(65535)
            except TimeoutError:
                break
            got.append((wire, source[1]))
    return query, got


# -- rbldnsd -------------------------------------------------------------------------------

BL_LINES = [
    ":127.0.0.2:Listed: $",
    "127.0.0.2",
    "192.0.2.10 :127.0.0.4:listed $",
    "192.0.2.20 :127.0.0.4:spam",
    "192.0.2.20 :127.0.0.11:policy",
]


@pytest.fixture
def bl(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone("bl.test", "ip4set", BL_LINES)
    rbldnsd.add_zone(
        "v6.test", "ip6trie", ["::ffff:7f00:2 :127.0.0.2:v6 test", "2001:db8::/64 :3:"]
    )
    rbldnsd.add_zone(
        "dbl.test", "dnset", [":127.0.1.2:Domain $", "test", "bad.example", "*.wild.example"]
    )
    rbldnsd.start()
    return rbldnsd


def test_rbldnsd_answers_a_listed_ip4set_entry_with_its_a_and_txt(bl: Rbldnsd) -> None:
    reply = udp(bl.address, qname("192.0.2.10", "bl.test"))
    assert reply.rcode() == dns.rcode.NOERROR
    assert answers(reply) == ["127.0.0.4"]
    assert reply.answer[0].ttl == 30
    assert bl.txt_records(qname("192.0.2.10", "bl.test")) == ["listed 192.0.2.10"]
    assert bl.a_records(qname("127.0.0.2", "bl.test")) == ["127.0.0.2"]
    assert bl.txt_records(qname("127.0.0.2", "bl.test")) == ["Listed: 127.0.0.2"]


def test_rbldnsd_answers_nxdomain_for_a_clean_address(bl: Rbldnsd) -> None:
    reply = udp(bl.address, qname("127.0.0.1", "bl.test"))
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.answer == []


def test_rbldnsd_gives_several_a_records_for_an_address_on_several_lines(bl: Rbldnsd) -> None:
    name = qname("192.0.2.20", "bl.test")
    assert bl.a_records(name) == ["127.0.0.11", "127.0.0.4"]
    assert bl.txt_records(name) == ["policy", "spam"]


def test_rbldnsd_serves_ip6trie_entries(bl: Rbldnsd) -> None:
    assert bl.a_records(qname("::ffff:7f00:2", "v6.test")) == ["127.0.0.2"]
    assert bl.a_records(qname("2001:db8::1234", "v6.test")) == ["127.0.0.3"]
    assert bl.txt_records(qname("2001:db8::1234", "v6.test")) == []  # ":3:" = no TXT
    assert udp(bl.address, qname("::ffff:7f00:1", "v6.test")).rcode() == dns.rcode.NXDOMAIN


def test_rbldnsd_serves_dnset_names_and_wildcards(bl: Rbldnsd) -> None:
    assert bl.a_records("test.dbl.test") == ["127.0.1.2"]
    assert bl.txt_records("bad.example.dbl.test") == ["Domain bad.example"]
    assert bl.a_records("x.wild.example.dbl.test") == ["127.0.1.2"]
    assert udp(bl.address, "wild.example.dbl.test").rcode() == dns.rcode.NXDOMAIN
    assert udp(bl.address, "invalid.dbl.test").rcode() == dns.rcode.NXDOMAIN


def test_rbldnsd_reloads_a_rewritten_zone(bl: Rbldnsd) -> None:
    listed, clean = qname("192.0.2.10", "bl.test"), qname("198.51.100.7", "bl.test")
    bl.rewrite_zone("bl.test", ["127.0.0.2", "198.51.100.7 :127.0.0.9:new"])
    bl.wait_for_a(clean, ["127.0.0.9"], timeout=5)
    assert bl.a_records(listed) == []
    # A second rewrite within the same second must be noticed too.
    bl.rewrite_zone("bl.test", ["127.0.0.2", "192.0.2.10 :127.0.0.4:back"])
    bl.wait_for_a(listed, ["127.0.0.4"], timeout=5)
    assert bl.a_records(clean) == []


def test_rbldnsd_restarts_on_the_same_port(bl: Rbldnsd) -> None:
    port = bl.port
    bl.stop()
    assert not bl.running
    with pytest.raises(dns.exception.Timeout):
        udp(bl.address, qname("127.0.0.2", "bl.test"), timeout=0.2)
    bl.start()
    assert bl.port == port
    assert bl.a_records(qname("127.0.0.2", "bl.test")) == ["127.0.0.2"]


def test_rbldnsd_start_failure_reports_its_log(rbldnsd: Rbldnsd) -> None:
    rbldnsd.add_zone("bl.test", "nosuchtype", ["127.0.0.2"])
    with pytest.raises(RbldnsdError, match="nosuchtype"):
        rbldnsd.start()
    assert not rbldnsd.running


def test_rbldnsd_stop_ends_the_process(rbldnsd: Rbldnsd) -> None:
    rbldnsd.add_zone("bl.test", "ip4set", ["127.0.0.2"])
    rbldnsd.start()
    pid = rbldnsd.pid
    assert pid is not None
    rbldnsd.stop()
    assert rbldnsd.pid is None
    assert not os.path.exists(f"/proc/{pid}")


# -- faultdns ------------------------------------------------------------------------------

NAME = "2.0.0.127.bl.test"


def test_faultdns_answers_a_txt_and_ttl(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.ANSWER, a=["127.0.0.2", "127.0.0.10"], txt=['say "hi"'], ttl=60)
    reply = udp(faultdns.address, NAME)
    assert answers(reply) == ["127.0.0.10", "127.0.0.2"]
    assert reply.answer[0].ttl == 60
    assert answers(udp(faultdns.address, NAME, "TXT")) == ['"say \\"hi\\""']
    assert faultdns.count(NAME) == 2
    assert faultdns.count(NAME, rdtype="TXT") == 1


def test_faultdns_answers_outside_loopback_and_cname(faultdns: FaultDns) -> None:
    faultdns.rule("a.test", Fault.ANSWER, a=["10.1.2.3"])
    faultdns.rule("c.test", Fault.ANSWER, a=["10.1.2.3"], cname="search.isp.example")
    assert answers(udp(faultdns.address, "a.test")) == ["10.1.2.3"]
    reply = udp(faultdns.address, "c.test")
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]


@pytest.mark.parametrize(
    ("fault", "rcode"),
    [
        (Fault.NXDOMAIN, dns.rcode.NXDOMAIN),
        (Fault.NODATA, dns.rcode.NOERROR),
        (Fault.SERVFAIL, dns.rcode.SERVFAIL),
        (Fault.REFUSED, dns.rcode.REFUSED),
    ],
)
def test_faultdns_answers_rcodes_without_records(
    faultdns: FaultDns, fault: Fault, rcode: dns.rcode.Rcode
) -> None:
    faultdns.rule(NAME, fault)
    reply = udp(faultdns.address, NAME)
    assert reply.rcode() == rcode
    assert reply.answer == []


def test_faultdns_default_is_nxdomain_and_can_be_changed(faultdns: FaultDns) -> None:
    assert udp(faultdns.address, "anything.test").rcode() == dns.rcode.NXDOMAIN
    faultdns.default = Action(Fault.SERVFAIL)
    assert udp(faultdns.address, "anything.test").rcode() == dns.rcode.SERVFAIL


def test_faultdns_drop_makes_the_client_time_out(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.DROP)
    with pytest.raises(dns.exception.Timeout):
        udp(faultdns.address, NAME, timeout=0.2)
    assert faultdns.count(NAME, transport="udp") == 1


def test_faultdns_truncates_over_udp_and_answers_over_tcp(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.TRUNCATE, a=["127.0.0.3"])
    reply = udp(faultdns.address, NAME)
    assert reply.flags & dns.flags.TC
    assert reply.answer == []
    query = dns.message.make_query(NAME, "A")
    tcp_reply = dns.query.tcp(query, "127.0.0.1", port=faultdns.port, timeout=TIMEOUT)
    assert not tcp_reply.flags & dns.flags.TC
    assert answers(tcp_reply) == ["127.0.0.3"]
    assert faultdns.count(NAME, transport="udp") == 1
    assert faultdns.count(NAME, transport="tcp") == 1


def test_faultdns_udp_with_tcp_fallback_gets_the_real_answer(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.TRUNCATE, a=["127.0.0.3"])
    query = dns.message.make_query(NAME, "A")
    reply, used_tcp = dns.query.udp_with_fallback(
        query, "127.0.0.1", port=faultdns.port, timeout=TIMEOUT
    )
    assert used_tcp
    assert answers(reply) == ["127.0.0.3"]


def test_faultdns_garbage_carries_the_query_id_and_does_not_parse(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.GARBAGE)
    query, got = raw_exchange(faultdns.address, NAME, window=0.2)
    assert len(got) == 1
    wire = got[0][0]
    assert int.from_bytes(wire[:2], "big") == query.id
    with pytest.raises(dns.exception.DNSException):
        dns.message.from_wire(wire)


def test_faultdns_wrong_id_sends_the_answer_under_another_id_and_then_nothing(
    faultdns: FaultDns,
) -> None:
    faultdns.rule(NAME, Fault.WRONG_ID)
    query, got = raw_exchange(faultdns.address, NAME)
    assert len(got) == 1
    reply = dns.message.from_wire(got[0][0])
    assert reply.id != query.id
    assert answers(reply) == ["127.0.0.2"]


def test_faultdns_wrong_question_answers_another_name(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.WRONG_QUESTION)
    query, got = raw_exchange(faultdns.address, NAME)
    assert len(got) == 1
    reply = dns.message.from_wire(got[0][0])
    assert reply.id == query.id
    assert reply.question[0].name != query.question[0].name
    assert reply.answer[0].name == reply.question[0].name
    assert not query.is_response(reply)


def test_faultdns_wrong_port_replies_from_another_port(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.WRONG_PORT)
    query, got = raw_exchange(faultdns.address, NAME)
    assert len(got) == 1
    wire, source_port = got[0]
    assert source_port != faultdns.port
    assert dns.message.from_wire(wire).id == query.id


def test_faultdns_then_real_follows_a_bad_reply_with_the_real_one(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.WRONG_PORT, then_real=True, delay_ms=20)
    query, got = raw_exchange(faultdns.address, NAME)
    assert [port == faultdns.port for _wire, port in got] == [False, True]
    assert all(dns.message.from_wire(wire).id == query.id for wire, _port in got)


def test_faultdns_spoof_then_real_sends_a_forged_reply_first(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.SPOOF_THEN_REAL, a=["127.0.0.4"], delay_ms=30)
    query, got = raw_exchange(faultdns.address, NAME)
    first, second = (dns.message.from_wire(wire) for wire, _port in got)
    assert first.id != query.id
    assert answers(first) == [SPOOF_A]
    assert second.id == query.id
    assert answers(second) == ["127.0.0.4"]


def test_faultdns_spoof_then_real_is_survived_by_a_careful_client(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.SPOOF_THEN_REAL, a=["127.0.0.4"])
    query = dns.message.make_query(NAME, "A")
    reply = dns.query.udp(
        query, "127.0.0.1", port=faultdns.port, timeout=TIMEOUT, ignore_errors=True
    )
    assert answers(reply) == ["127.0.0.4"]


def test_faultdns_delay_answers_late(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.DELAY, delay_ms=200)
    with pytest.raises(dns.exception.Timeout):
        udp(faultdns.address, NAME, timeout=0.05)
    started = time.monotonic()
    assert answers(udp(faultdns.address, NAME)) == ["127.0.0.2"]
    assert time.monotonic() - started >= 0.15


def test_faultdns_delay_does_not_hold_up_other_names(faultdns: FaultDns) -> None:
    faultdns.rule("slow.test", Fault.DELAY, delay_ms=500)
    faultdns.rule("fast.test", Fault.ANSWER)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(dns.message.make_query("slow.test", "A").to_wire(), faultdns.address)
        started = time.monotonic()
        assert answers(udp(faultdns.address, "fast.test")) == ["127.0.0.2"]
    assert time.monotonic() - started < 0.3


def test_faultdns_sequence_steps_through_actions_then_repeats_the_last(faultdns: FaultDns) -> None:
    faultdns.sequence(NAME, [Action(Fault.DROP), Action(Fault.SERVFAIL), Action(a=["127.0.0.5"])])
    with pytest.raises(dns.exception.Timeout):
        udp(faultdns.address, NAME, timeout=0.1)
    assert udp(faultdns.address, NAME).rcode() == dns.rcode.SERVFAIL
    assert answers(udp(faultdns.address, NAME)) == ["127.0.0.5"]
    assert answers(udp(faultdns.address, NAME)) == ["127.0.0.5"]
    assert faultdns.count(NAME) == 4


def test_faultdns_wildcard_rules_match_below_a_zone_and_exact_names_win(
    faultdns: FaultDns,
) -> None:
    faultdns.rule("*.bl.test", Fault.SERVFAIL)
    faultdns.rule("*.deep.bl.test", Fault.REFUSED)
    faultdns.rule(NAME, Fault.ANSWER)
    assert udp(faultdns.address, "9.9.9.9.bl.test").rcode() == dns.rcode.SERVFAIL
    assert udp(faultdns.address, "bl.test").rcode() == dns.rcode.SERVFAIL
    assert udp(faultdns.address, "x.deep.bl.test").rcode() == dns.rcode.REFUSED
    assert answers(udp(faultdns.address, NAME.upper())) == ["127.0.0.2"]
    assert udp(faultdns.address, "other.test").rcode() == dns.rcode.NXDOMAIN


def test_faultdns_applies_rcode_faults_over_tcp_too(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.SERVFAIL)
    query = dns.message.make_query(NAME, "A")
    reply = dns.query.tcp(query, "127.0.0.1", port=faultdns.port, timeout=TIMEOUT)
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert faultdns.count(NAME, transport="tcp") == 1


def test_faultdns_stop_closes_its_sockets() -> None:
    srv = FaultDns().start()
    port = srv.port
    srv.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))  # would fail if the listener were still open
