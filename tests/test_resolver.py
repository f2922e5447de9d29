"""The async DNS client against real peers: rbldnsd for answers, faultdns for everything else.

These tests speak to `Resolver.run` directly and look at what it hands the callback (status,
RCODE, raw rdata): how the answers are decoded into outcomes is tests/test_scan.py's business.
SPEC §8: replies match on source, port, ID and question; anything else is dropped and counted;
truncation goes to TCP; IDs are random.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pytest

from rblwatch.lookup import (
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    prefix_wire,
)
from rblwatch.model import TargetKind
from rblwatch.resolver import (
    QTYPE_A,
    QTYPE_TXT,
    Job,
    Resolver,
    Status,
    Template,
)
from tests.faultdns import SPOOF_A, Action, Fault, FaultDns
from tests.rbldnsd import Rbldnsd

ZONE = "bl.test"
TIMEOUT = 0.2
ATTEMPTS = 2
Server = tuple[str, int]


@dataclass(frozen=True)
class Reply:
    """What the resolver reported for one job."""

    status: int
    rcode: int
    rdatas: list[bytes]
    ttl: int | None

    @property
    def codes(self) -> list[str]:
        return sorted(str(ipaddress.IPv4Address(rd)) for rd in self.rdatas)


def resolver(
    *, timeout: float = TIMEOUT, attempts: int = ATTEMPTS, max_in_flight: int = 64
) -> Resolver:
    return Resolver(timeout=timeout, attempts=attempts, max_in_flight=max_in_flight)


def qname(address: str, zone: str = ZONE) -> str:
    """The name faultdns sees for an address on a zone (reversed octets)."""
    return ".".join([*reversed(address.split(".")), zone])


def jobs_for(
    addresses: Iterable[str], servers: Sequence[Server], qtype: int = QTYPE_A, zone: str = ZONE
) -> list[Job]:
    """One job per address, keyed by the address."""
    tpl = Template.build(zone, servers, qtype)
    return [(a, (tpl,), prefix_wire(a, TargetKind.IPV4)) for a in addresses]


def run(
    res: Resolver, jobs: Iterable[Job], on_each: Callable[[object], None] | None = None
) -> dict[object, Reply]:
    """Run jobs to the end; every key must be reported once (a second report fails the test)."""
    got: dict[object, Reply] = {}

    def on_result(
        key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        assert key not in got, f"{key!r} reported twice"
        got[key] = Reply(status, rcode, list(rdatas), ttl)
        if on_each is not None:
            on_each(key)

    asyncio.run(res.run(jobs, on_result))
    return got


def ask(res: Resolver, server: Server, address: str = "127.0.0.2", qtype: int = QTYPE_A) -> Reply:
    return run(res, jobs_for([address], [server], qtype))[address]


# -- answers from a real DNSBL server -----------------------------------------------------------


@pytest.fixture
def bl(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(
        ZONE,
        "ip4set",
        [
            ":127.0.0.2:Listed: $",
            "127.0.0.2",
            "192.0.2.20 :127.0.0.4:spam",
            "192.0.2.20 :127.0.0.11:policy",
        ],
    )
    rbldnsd.start()
    return rbldnsd


def test_a_listed_address_comes_back_with_every_a_record_and_the_ttl(bl: Rbldnsd) -> None:
    reply = ask(resolver(), bl.address, "192.0.2.20")
    assert reply.status == Status.OK
    assert reply.rcode == RCODE_NOERROR
    assert reply.codes == ["127.0.0.11", "127.0.0.4"]
    assert reply.ttl == 30


def test_a_clean_address_comes_back_as_nxdomain_without_records(bl: Rbldnsd) -> None:
    reply = ask(resolver(), bl.address, "192.0.2.99")
    assert (reply.status, reply.rcode, reply.rdatas) == (Status.OK, RCODE_NXDOMAIN, [])


def test_a_txt_query_returns_the_txt_rdata(bl: Rbldnsd) -> None:
    reply = ask(resolver(), bl.address, "127.0.0.2", QTYPE_TXT)
    assert reply.status == Status.OK
    text = b"Listed: 127.0.0.2"
    assert reply.rdatas == [bytes([len(text)]) + text]  # one character-string


def test_many_lookups_in_one_run_each_get_their_own_answer(bl: Rbldnsd) -> None:
    addresses = ["127.0.0.2", "192.0.2.20", *(f"198.51.100.{i}" for i in range(50))]
    got = run(resolver(max_in_flight=8), jobs_for(addresses, [bl.address]))
    assert got["127.0.0.2"].codes == ["127.0.0.2"]
    assert got["192.0.2.20"].codes == ["127.0.0.11", "127.0.0.4"]
    assert {got[a].rcode for a in addresses[2:]} == {RCODE_NXDOMAIN}
    assert len(got) == len(addresses)


# -- timeouts and retries -------------------------------------------------------------------------


def test_one_job_is_asked_on_each_of_its_templates_and_reported_per_index(bl: Rbldnsd) -> None:
    listed = Template.build(ZONE, [bl.address])
    txt = Template.build(ZONE, [bl.address], QTYPE_TXT)
    got: dict[tuple[object, int], Reply] = {}

    def on_result(
        key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        assert (key, i) not in got
        got[(key, i)] = Reply(status, rcode, list(rdatas), ttl)

    jobs: list[Job] = [
        ("listed", (listed, txt, listed), prefix_wire("192.0.2.20", TargetKind.IPV4)),
        ("clean", (listed, txt), prefix_wire("192.0.2.99", TargetKind.IPV4)),
    ]
    asyncio.run(resolver(max_in_flight=2).run(jobs, on_result))
    assert sorted(got, key=str) == sorted(
        [("clean", 0), ("clean", 1), ("listed", 0), ("listed", 1), ("listed", 2)], key=str
    )
    assert got[("listed", 0)].codes == got[("listed", 2)].codes == ["127.0.0.11", "127.0.0.4"]
    assert got[("listed", 1)].rdatas
    assert got[("listed", 1)].rcode == RCODE_NOERROR
    assert got[("clean", 1)].rcode == RCODE_NXDOMAIN


def test_counted_nxdomains_are_returned_instead_of_reported(bl: Rbldnsd) -> None:
    addresses = ["127.0.0.2", "192.0.2.20", *(f"198.51.100.{i}" for i in range(30))]
    reported: list[object] = []

    def on_result(
        key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        reported.append(key)

    res = resolver()
    jobs = jobs_for(addresses, [bl.address])
    counted = asyncio.run(res.run(jobs, on_result, count_nxdomain=True))
    assert counted.nxdomain == 30
    assert counted.sent == len(addresses)
    assert sorted(map(str, reported)) == ["127.0.0.2", "192.0.2.20"]
    assert res.stats.nxdomain == 30


def test_a_dropped_query_times_out_after_exactly_attempts_queries(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.DROP)
    res = resolver(attempts=3)
    started = time.monotonic()
    reply = ask(res, faultdns.address)
    assert reply.status == Status.TIMEOUT
    assert reply.rdatas == []
    assert faultdns.count(qname("127.0.0.2")) == 3
    assert res.stats.timeouts == 3
    assert time.monotonic() - started >= 3 * TIMEOUT


def test_a_retry_after_a_dropped_query_gets_the_answer(faultdns: FaultDns) -> None:
    name = qname("127.0.0.2")
    faultdns.sequence(name, [Action(Fault.DROP), Action(a=["127.0.0.3"])])
    reply = ask(resolver(), faultdns.address)
    assert (reply.status, reply.codes) == (Status.OK, ["127.0.0.3"])
    assert faultdns.count(name) == 2


def test_a_servfail_is_reported_at_once_and_not_retried(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.SERVFAIL)
    faultdns.rule(qname("127.0.0.3"), Fault.REFUSED)
    got = run(resolver(), jobs_for(["127.0.0.2", "127.0.0.3"], [faultdns.address]))
    assert (got["127.0.0.2"].status, got["127.0.0.2"].rcode) == (Status.OK, RCODE_SERVFAIL)
    assert (got["127.0.0.3"].status, got["127.0.0.3"].rcode) == (Status.OK, RCODE_REFUSED)
    assert faultdns.count(qname("127.0.0.2")) == 1


def test_a_reply_later_than_usual_but_within_the_timeout_is_accepted(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.DELAY, delay_ms=100, a=["127.0.0.4"])
    reply = ask(resolver(timeout=0.3), faultdns.address)
    assert (reply.status, reply.codes) == (Status.OK, ["127.0.0.4"])
    assert faultdns.count(qname("127.0.0.2")) == 1


def test_a_reply_to_an_attempt_that_already_timed_out_is_dropped(faultdns: FaultDns) -> None:
    # the first reply comes 250 ms late, while the retry (under a new ID) is in flight
    faultdns.sequence(qname("127.0.0.2"), [Action(Fault.DELAY, delay_ms=250), Action(Fault.DROP)])
    res = resolver(timeout=0.15)
    reply = ask(res, faultdns.address)
    assert reply.status == Status.TIMEOUT
    assert res.stats.drop_reasons == {"id": 1}


def test_retries_go_to_the_next_server_in_turn() -> None:
    with FaultDns() as first, FaultDns() as second:
        first.default = Action(Fault.DROP)
        second.default = Action(a=["127.0.0.5"])
        jobs = jobs_for(["127.0.0.2"], [first.address, second.address])
        reply = run(resolver(), jobs)["127.0.0.2"]
        assert (reply.status, reply.codes) == (Status.OK, ["127.0.0.5"])
        assert (first.count(qname("127.0.0.2")), second.count(qname("127.0.0.2"))) == (1, 1)


def test_a_job_without_servers_ends_as_a_network_error_without_a_query() -> None:
    reply = run(resolver(), jobs_for(["127.0.0.2"], []))["127.0.0.2"]
    assert reply.status == Status.NETWORK


def test_an_empty_run_returns_at_once() -> None:
    started = time.monotonic()
    assert run(resolver(), []) == {}
    assert time.monotonic() - started < TIMEOUT


def test_a_failing_callback_ends_the_run_with_its_exception(faultdns: FaultDns) -> None:
    def on_result(
        key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        raise LookupError("callback failed")

    res = resolver()
    with pytest.raises(LookupError, match="callback failed"):
        asyncio.run(
            asyncio.wait_for(res.run(jobs_for(["127.0.0.2"], [faultdns.address]), on_result), 2)
        )


# -- truncation -----------------------------------------------------------------------------------


def test_a_truncated_reply_is_asked_again_over_tcp(faultdns: FaultDns) -> None:
    name = qname("127.0.0.2")
    faultdns.rule(name, Fault.TRUNCATE, a=["127.0.0.2", "127.0.0.10"], ttl=77)
    res = resolver()
    reply = ask(res, faultdns.address)
    assert (reply.status, reply.rcode) == (Status.OK, RCODE_NOERROR)
    assert reply.codes == ["127.0.0.10", "127.0.0.2"]
    assert reply.ttl == 77
    assert faultdns.count(name, transport="udp") == 1
    assert faultdns.count(name, transport="tcp") == 1
    assert res.stats.tcp == 1


def test_a_truncated_reply_whose_tcp_retry_is_dropped_times_out(faultdns: FaultDns) -> None:
    name = qname("127.0.0.2")
    faultdns.sequence(name, [Action(Fault.TRUNCATE), Action(Fault.DROP)])
    reply = ask(resolver(), faultdns.address)
    assert reply.status == Status.TIMEOUT
    assert faultdns.count(name, transport="tcp") == 1


# -- replies that must not be believed ----------------------------------------------------------


def test_garbage_is_dropped_and_counted_and_the_lookup_times_out(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.GARBAGE)
    res = resolver()
    reply = ask(res, faultdns.address)
    assert reply.status == Status.TIMEOUT
    assert res.stats.dropped == ATTEMPTS
    assert faultdns.count(qname("127.0.0.2")) == ATTEMPTS


@pytest.mark.parametrize(
    ("fault", "why"), [(Fault.WRONG_ID, "id"), (Fault.WRONG_QUESTION, "question")]
)
def test_a_misaddressed_reply_is_dropped_and_counted_and_the_lookup_times_out(
    faultdns: FaultDns, fault: Fault, why: str
) -> None:
    faultdns.rule(qname("127.0.0.2"), fault, a=["127.0.0.2"])
    res = resolver()
    reply = ask(res, faultdns.address)
    assert reply.status == Status.TIMEOUT
    assert reply.rdatas == []
    assert res.stats.dropped == ATTEMPTS
    assert res.stats.drop_reasons == {why: ATTEMPTS}


def test_a_reply_from_another_port_is_never_believed(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.WRONG_PORT, a=["127.0.0.2"])
    res = resolver()
    reply = ask(res, faultdns.address)
    assert reply.status == Status.TIMEOUT
    assert faultdns.count(qname("127.0.0.2")) == ATTEMPTS
    # sockets connected to the server let the kernel discard such replies unseen; whatever
    # does reach the resolver must be dropped and counted
    assert res.stats.dropped == res.stats.received
    assert set(res.stats.drop_reasons) <= {"source"}


@pytest.mark.parametrize("fault", [Fault.WRONG_ID, Fault.WRONG_QUESTION, Fault.WRONG_PORT])
def test_the_real_reply_after_a_misaddressed_one_is_accepted(
    faultdns: FaultDns, fault: Fault
) -> None:
    faultdns.rule(qname("127.0.0.2"), fault, a=["127.0.0.4"], then_real=True, delay_ms=20)
    res = resolver()
    reply = ask(res, faultdns.address)
    assert (reply.status, reply.codes) == (Status.OK, ["127.0.0.4"])
    assert res.stats.dropped == res.stats.received - 1  # all but the real reply
    assert faultdns.count(qname("127.0.0.2")) == 1


def test_a_spoofed_reply_before_the_real_one_loses(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.SPOOF_THEN_REAL, a=["127.0.0.4"], delay_ms=30)
    res = resolver()
    reply = ask(res, faultdns.address)
    assert reply.status == Status.OK
    assert SPOOF_A not in reply.codes
    assert reply.codes == ["127.0.0.4"]
    assert res.stats.dropped == 1


def _answer_once_with_a_short_a_record(sock: socket.socket) -> None:
    """Reply to one query with its ID and question and an A record only 2 bytes long."""
    query, peer = sock.recvfrom(512)
    header = query[:2] + b"\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00"
    record = b"\xc0\x0c" + struct.pack(">HHIH", QTYPE_A, 1, 60, 2) + b"\x7f\x00"
    sock.sendto(header + query[12:] + record, peer)


def test_a_matching_reply_with_a_malformed_a_record_is_a_bad_reply_not_a_crash() -> None:
    """An A record is 4 bytes: any other length is an unparsable reply for that lookup alone,
    never an exception that ends the whole run without results for the other jobs."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        server = threading.Thread(target=_answer_once_with_a_short_a_record, args=(sock,))
        server.start()
        reply = ask(resolver(), sock.getsockname())
        server.join(5)
    assert reply.status == Status.BAD_REPLY
