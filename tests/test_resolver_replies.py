"""Which replies the resolver believes, and how far, over real UDP (and TCP) against faultdns.

The rule lives in rblwatch/wire.py: as much as dnspython would believe, for the fields read.
These tests pin each case where the hand-written reader once believed more (issue 9: an
A record of class CHAOS read as a listing) or less (issue 8: a REFUSED without a question
dropped as spoofed, so the lookup ended as a timeout) — and that the receive loop, which
writes the header and question checks out inline, agrees with `wire.parse_reply`.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import pytest

from rblwatch import wire
from rblwatch.model import DnsList, OutcomeKind, Reason
from rblwatch.resolver import QTYPE_TXT, Resolver, Status
from rblwatch.scan import plans_for, scan
from rblwatch.targets import parse_target
from tests.faultdns import (
    CLASS_CH,
    QUESTION,
    Action,
    Fault,
    FaultDns,
    name_wire,
    reply_wire,
    rr,
)
from tests.test_resolver import ATTEMPTS, ZONE, Reply, ask, qname, resolver

NAME = qname("127.0.0.2")


def raw(faultdns: FaultDns, build: Callable[[bytes], bytes], name: str = NAME) -> None:
    faultdns.rule(name, Fault.RAW, build=build)


def answers(*records: bytes, rcode: int = 0) -> Callable[[bytes], bytes]:
    return lambda q: reply_wire(q, rcode=rcode, answers=records)


def cname(owner: str | int, target: str) -> bytes:
    return rr(owner, rdtype=wire.QTYPE_CNAME, rdata=name_wire(target))


def outcome_of(faultdns: FaultDns) -> OutcomeKind | Reason | None:
    """What a scan of 127.0.0.2 on a list at faultdns makes of the reply (health not probed)."""
    lst = DnsList(name="bl", zone=ZONE)
    plans = plans_for([lst], (faultdns.address,))
    res = Resolver(timeout=0.2, attempts=ATTEMPTS)
    report = asyncio.run(scan(res, parse_target("127.0.0.2"), plans, keep_clean=True))
    (result,) = report.results
    return (
        result.outcome.reason if result.outcome.kind is OutcomeKind.ERROR else result.outcome.kind
    )


# -- error replies without a question (issue 8) ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "rcode"),
    [
        (Fault.FORMERR, wire.RCODE_FORMERR),
        (Fault.SERVFAIL, wire.RCODE_SERVFAIL),
        (Fault.NOTIMP, wire.RCODE_NOTIMP),
        (Fault.REFUSED, wire.RCODE_REFUSED),
    ],
)
def test_an_error_reply_without_a_question_ends_the_lookup_with_its_rcode(
    faultdns: FaultDns, fault: Fault, rcode: int
) -> None:
    faultdns.rule(NAME, fault, question=False)
    res = resolver()
    reply = ask(res, faultdns.address)
    assert (reply.status, reply.rcode, reply.rdatas) == (Status.OK, rcode, [])
    assert faultdns.count(NAME) == 1  # believed at once, not retried
    assert res.stats.dropped == 0


def test_a_refused_reply_without_a_question_makes_the_lookup_refused(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.REFUSED, question=False)
    assert outcome_of(faultdns) is Reason.REFUSED
    faultdns.rule(NAME, Fault.SERVFAIL, question=False)
    assert outcome_of(faultdns) is Reason.SERVFAIL


@pytest.mark.parametrize("rcode", [wire.RCODE_NOERROR, wire.RCODE_NXDOMAIN])
def test_a_reply_without_a_question_that_is_no_error_is_still_dropped(
    faultdns: FaultDns, rcode: int
) -> None:
    raw(faultdns, lambda q: reply_wire(q, rcode=rcode, question=False))
    res = resolver()
    assert ask(res, faultdns.address).status == Status.TIMEOUT
    assert res.stats.drop_reasons == {"question": ATTEMPTS}


def test_a_reply_with_another_opcode_is_dropped(faultdns: FaultDns) -> None:
    raw(faultdns, lambda q: reply_wire(q, opcode=2, answers=[rr(QUESTION, a="127.0.0.2")]))
    res = resolver()
    assert ask(res, faultdns.address).status == Status.TIMEOUT
    assert res.stats.dropped == ATTEMPTS


# -- class, type and owner of the answers (issue 9) ------------------------------------------------


def test_a_chaos_class_a_record_is_not_an_address(faultdns: FaultDns) -> None:
    raw(faultdns, answers(rr(QUESTION, a="127.0.0.2", rdclass=CLASS_CH)))
    reply = ask(resolver(), faultdns.address)
    assert (reply.status, reply.rdatas) == (Status.OK, [])
    assert outcome_of(faultdns) is OutcomeKind.CLEAN


def test_a_chaos_record_beside_an_in_record_adds_no_code(faultdns: FaultDns) -> None:
    raw(
        faultdns,
        answers(rr(QUESTION, a="127.0.0.2"), rr(QUESTION, a="127.0.0.3", rdclass=CLASS_CH)),
    )
    assert ask(resolver(), faultdns.address).codes == ["127.0.0.2"]


def test_an_a_record_for_another_name_is_not_an_answer(faultdns: FaultDns) -> None:
    raw(faultdns, answers(rr("elsewhere." + ZONE, a="127.0.0.2")))
    assert ask(resolver(), faultdns.address).rdatas == []
    assert outcome_of(faultdns) is OutcomeKind.CLEAN


def test_the_answer_is_at_the_end_of_the_cname_chain_and_nowhere_else(faultdns: FaultDns) -> None:
    raw(
        faultdns,
        answers(
            rr("beside.test", a="127.0.0.5"),
            cname(QUESTION, "middle.test"),
            rr("target.test", a="127.0.0.4"),
            cname("middle.test", "target.test"),
        ),
    )
    assert ask(resolver(), faultdns.address).codes == ["127.0.0.4"]


def test_owner_names_match_whatever_their_case_or_compression(faultdns: FaultDns) -> None:
    raw(faultdns, answers(rr(NAME.upper(), a="127.0.0.2"), rr(QUESTION, a="127.0.0.3")))
    assert ask(resolver(), faultdns.address).codes == ["127.0.0.2", "127.0.0.3"]


def test_a_repeated_record_is_one_answer_with_the_smaller_ttl(faultdns: FaultDns) -> None:
    raw(faultdns, answers(rr(QUESTION, a="127.0.0.2", ttl=60), rr(QUESTION, a="127.0.0.2", ttl=9)))
    reply = ask(resolver(), faultdns.address)
    assert (reply.rdatas, reply.ttl) == ([bytes([127, 0, 0, 2])], 9)


def test_a_ttl_with_the_top_bit_set_reads_as_zero(faultdns: FaultDns) -> None:
    raw(faultdns, answers(rr(QUESTION, a="127.0.0.2", ttl=0x80000000)))
    assert ask(resolver(), faultdns.address).ttl == 0


# -- replies that cannot be believed at all: a bad reply, not a crash ------------------------------

_LOOP = struct.pack("!H", 0xC000 | 12 + len(name_wire(NAME)) + 4)  # the owner points at itself
MALFORMED = {
    "pointer loop": answers(rr(_LOOP, a="127.0.0.2")),
    "forward pointer": answers(rr(0x3FFF, a="127.0.0.2")),
    "label type 0x40": answers(rr(b"\x41" + b"x" * 4 + b"\x00", a="127.0.0.2")),
    "rdlength past the end": answers(rr(QUESTION, a="127.0.0.2", rdlength=40)),
    "ancount past the end": lambda q: reply_wire(
        q, answers=[rr(QUESTION, a="127.0.0.2")], ancount=2
    ),
    "a short A record of another name": answers(rr("x.test", rdata=b"\x7f\x00")),
    "an empty TXT record": answers(rr(QUESTION, rdtype=wire.QTYPE_TXT)),
    "an OPT record among the answers": answers(rr("", rdtype=wire.QTYPE_OPT)),
    "a CNAME longer than its name": answers(
        rr(QUESTION, rdtype=wire.QTYPE_CNAME, rdata=name_wire("t.test") + b"xx")
    ),
    "an answer in an NXDOMAIN reply": answers(rr(QUESTION, a="127.0.0.2"), rcode=3),
    "a CNAME chain of 16": answers(
        cname(QUESTION, "c1.test"), *(cname(f"c{i}.test", f"c{i + 1}.test") for i in range(1, 16))
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_reply_dnspython_refuses_is_a_bad_reply(faultdns: FaultDns, case: str) -> None:
    raw(faultdns, MALFORMED[case])
    assert ask(resolver(), faultdns.address).status == Status.BAD_REPLY


def test_a_cname_chain_of_15_is_followed(faultdns: FaultDns) -> None:
    chain = [cname(f"c{i}.test", f"c{i + 1}.test") for i in range(1, 15)]
    raw(faultdns, answers(cname(QUESTION, "c1.test"), *chain, rr("c15.test", a="127.0.0.6")))
    assert ask(resolver(), faultdns.address).codes == ["127.0.0.6"]


def test_a_tcp_reply_is_read_by_the_same_rules(faultdns: FaultDns) -> None:
    build = answers(rr(QUESTION, a="127.0.0.2"), rr(QUESTION, a="127.0.0.3", rdclass=CLASS_CH))
    faultdns.sequence(NAME, [Action(Fault.TRUNCATE), Action(Fault.RAW, build=build)])
    res = resolver()
    reply = ask(res, faultdns.address)
    assert (reply.status, reply.codes) == (Status.OK, ["127.0.0.2"])
    assert res.stats.tcp == 1


# -- the receive loop is parse_reply written out ---------------------------------------------------


def test_the_receive_loop_and_parse_reply_agree(faultdns: FaultDns) -> None:
    cases: list[Callable[[bytes], bytes]] = [
        *MALFORMED.values(),
        answers(rr(QUESTION, a="127.0.0.2", rdclass=CLASS_CH)),
        answers(rr(QUESTION, a="127.0.0.2"), rr("x.test", a="127.0.0.3")),
        lambda q: reply_wire(q, rcode=5, question=False),
        lambda q: reply_wire(q, rcode=2),
        lambda q: reply_wire(q, rcode=3),
        lambda q: reply_wire(q, rcode=3, question=False),
        lambda q: reply_wire(q, opcode=1),
        lambda q: reply_wire(q, answers=[rr(QUESTION, rdtype=QTYPE_TXT, rdata=b"\x02hi")]),
    ]
    for i, build in enumerate(cases):
        name = qname(f"10.0.0.{i}")
        raw(faultdns, build, name)
        got = ask(resolver(attempts=1), faultdns.address, f"10.0.0.{i}")
        q = name_wire(name) + b"\x00\x01\x00\x01"
        try:
            parsed = wire.parse_reply(build(b"\x12\x34" + wire.QUERY_HEADER_TAIL + q), 0x1234, q)
        except wire.Malformed:
            expected = Reply(Status.BAD_REPLY, got.rcode, [], None)
        else:
            if parsed is None:
                expected = Reply(Status.TIMEOUT, 0, [], None)
            else:
                expected = Reply(Status.OK, parsed.rcode, parsed.rdatas, parsed.ttl)
        assert got == expected, i
