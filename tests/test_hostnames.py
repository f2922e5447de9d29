"""resolve_hostnames against a tiny authoritative server on 127.0.0.1 (nothing leaves the host)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from rblwatch.hostnames import resolve_hostnames
from rblwatch.model import Target, TargetKind

ZONE: dict[str, dict[str, list[str]]] = {
    "mx.test.example.": {"A": ["192.0.2.10", "192.0.2.11"], "AAAA": ["2001:0db8::0025"]},
    "v4only.test.example.": {"A": ["192.0.2.20"]},
    "noaddr.test.example.": {"TXT": ['"nothing here"']},
    "shared.test.example.": {"A": ["192.0.2.10"]},
}
SILENT = "slow.test.example."  # the server never answers this one


def _answer(query: dns.message.Message) -> dns.message.Message | None:
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    name = question.name.to_text().lower()
    if name == SILENT:
        return None
    records = ZONE.get(name)
    if records is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    rdtype = dns.rdatatype.to_text(question.rdtype)
    if rdtype in records:
        response.answer.append(
            dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, rdtype, records[rdtype])
        )
    return response


def _serve(sock: socket.socket, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            wire, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        response = _answer(dns.message.from_wire(wire))
        if response is not None:
            sock.sendto(response.to_wire(), peer)


@pytest.fixture(scope="module")
def nameserver() -> Iterator[tuple[str, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(sock, stop), daemon=True)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join()
    sock.close()


def _resolve(
    names: list[str], nameserver: tuple[str, int], timeout: float = 2.0
) -> tuple[list[Target], list[tuple[str, str]]]:
    return asyncio.run(
        resolve_hostnames(names, nameservers=[nameserver], timeout=timeout, group="mail")
    )


def test_a_and_aaaa_become_canonical_targets_sourced_from_the_hostname(
    nameserver: tuple[str, int],
) -> None:
    targets, failures = _resolve(["mx.test.example"], nameserver)
    assert failures == []
    assert targets == [
        Target("192.0.2.10", TargetKind.IPV4, "mail", "mx.test.example"),
        Target("192.0.2.11", TargetKind.IPV4, "mail", "mx.test.example"),
        Target("2001:db8::25", TargetKind.IPV6, "mail", "mx.test.example"),
    ]


def test_a_hostname_with_only_ipv4_is_not_a_failure(nameserver: tuple[str, int]) -> None:
    targets, failures = _resolve(["v4only.test.example"], nameserver)
    assert [t.value for t in targets] == ["192.0.2.20"]
    assert failures == []


def test_a_failing_hostname_does_not_fail_the_others(nameserver: tuple[str, int]) -> None:
    targets, failures = _resolve(
        ["missing.test.example", "mx.test.example", "noaddr.test.example"], nameserver
    )
    assert {t.value for t in targets} == {"192.0.2.10", "192.0.2.11", "2001:db8::25"}
    assert failures == [
        ("missing.test.example", "no such domain (NXDOMAIN)"),
        ("noaddr.test.example", "no A or AAAA records"),
    ]


def test_a_silent_nameserver_is_reported_as_a_timeout(nameserver: tuple[str, int]) -> None:
    targets, failures = _resolve(["slow.test.example", "v4only.test.example"], nameserver, 0.3)
    assert [t.value for t in targets] == ["192.0.2.20"]
    assert failures == [("slow.test.example", "timed out after 0.3s")]


def test_an_address_reached_through_two_names_is_returned_once(
    nameserver: tuple[str, int],
) -> None:
    targets, _ = _resolve(["mx.test.example", "shared.test.example"], nameserver)
    assert [t.value for t in targets].count("192.0.2.10") == 1
    assert targets[0].source == "mx.test.example"


def test_a_malformed_hostname_is_a_failure_not_an_exception(
    nameserver: tuple[str, int],
) -> None:
    targets, failures = _resolve(["-bad-.example", "MX.Test.Example."], nameserver)
    assert len(targets) == 3
    assert [name for name, _ in failures] == ["-bad-.example"]
    assert "-bad-.example" in failures[0][1]
