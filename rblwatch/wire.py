"""DNS wire format, pure: the header's named bits, RCODEs, and the reading of a reply.

The resolver's receive loop writes the header and question checks out inline (they run for
every reply of a scan); everything past them is here: `read_answers` for the answer section
and `parse_reply`, the whole rule in one function, which the TCP fallback uses and the
differential test (tests/test_wire_differential.py) holds against dnspython.

The rule, in one sentence: a reply is believed only as far as dnspython would believe it, for
the fields this parser reads — header, question, and each answer record's owner, type, class,
TTL and length; the rdata of IN A, IN TXT and IN CNAME records. The authority and additional
sections (and so EDNS's extended RCODE) are not read: a DNSBL answer never needs them.
References: dnspython 2.x `dns/message.py` (`Message.is_response`, `_WireReader._get_section`,
`Message.resolve_chaining`), `dns/name.py` (`from_wire_parser`), `dns/wirebase.py`.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER_LEN = 12

# The header's flags, read a byte at a time on the hot path, so each bit is named for its byte
# (RFC 1035 §4.1.1). Byte 2:
QR = 0x80  # a response
OPCODE = 0x78  # the opcode field (0: a standard query)
AA = 0x04
TC = 0x02  # truncated: ask again over TCP
RD = 0x01
# byte 3:
RA = 0x80
RCODE = 0x0F  # the RCODE field
# A reply to one of our queries has QR set and opcode QUERY: byte 2 & REPLY_BITS == QR.
REPLY_BITS = QR | OPCODE

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5
RCODE_NAMES = {
    RCODE_NOERROR: "NOERROR",
    RCODE_FORMERR: "FORMERR",
    RCODE_SERVFAIL: "SERVFAIL",
    RCODE_NXDOMAIN: "NXDOMAIN",
    RCODE_NOTIMP: "NOTIMP",
    RCODE_REFUSED: "REFUSED",
}
# dnspython `Message.is_response`: these error replies are believed without a question
# section when they carry none, "even though they still really ought to have" one. A server
# that refuses a query may not echo it; dropping the reply as spoofed would turn a clear
# REFUSED into a timeout after every retry.
ERRORS_WITHOUT_QUESTION = frozenset({RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NOTIMP, RCODE_REFUSED})

QTYPE_A = 1
QTYPE_CNAME = 5
QTYPE_TXT = 16
QTYPE_OPT = 41
QTYPE_TSIG = 250
CLASS_IN = 1

# after the ID: a standard query with recursion desired (the server may be a recursive
# resolver), QDCOUNT 1, no other sections
QUERY_HEADER_TAIL = bytes([RD, 0]) + b"\x00\x01\x00\x00\x00\x00\x00\x00"

# dnspython's limits: `dns.message.MAX_CHAIN` CNAMEs followed, and
# `dns.name.MAX_COMPRESSION_POINTER_CHAIN` pointers in one name
MAX_CHAIN = 16
MAX_POINTERS = 16
_MAX_NAME = 255
_MAX_TTL = 0x7FFFFFFF
_POINTER = 0xC0
_RR = struct.Struct(">HHIH")  # type, class, TTL, rdlength
_QUESTION_POINTER = bytes([_POINTER, HEADER_LEN])  # the usual owner: "the question's name"
_PLAIN_HEAD = _POINTER << 8 | HEADER_LEN
_PLAIN_RR = struct.Struct(">HHHIH")  # that pointer, type, class, TTL, rdlength


class Malformed(ValueError):
    """A reply to our query that cannot be believed (the lookup ends as a bad reply)."""


class Reply(NamedTuple):
    rcode: int
    rdatas: list[bytes]  # of the asked type at the question's name (or its CNAME chain)
    ttl: int | None  # their TTL (dnspython's rrset TTL: the smallest)


def question(name_wire: bytes, qtype: int) -> bytes:
    """A question section's bytes: the name's wire labels, QTYPE and class IN."""
    return name_wire + struct.pack(">HH", qtype, CLASS_IN)


def error_without_question(data: bytes) -> bool:
    """A reply with no question section that is believed all the same (see the rule above)."""
    return (
        len(data) >= HEADER_LEN
        and data[2] & REPLY_BITS == QR
        and data[4] == data[5] == 0
        and data[3] & RCODE in ERRORS_WITHOUT_QUESTION
    )


def answer_offset(data: bytes, q: bytes) -> int:
    """Where the answers start if `data` (ID already matched) replies to question `q`, else -1.

    The question must be ours byte for byte, case aside (a server may echo the case it
    likes, RFC 4343). dnspython compares names, so it would also take a question whose name
    is compressed; with nothing before it but the header no server sends one, and we do not.
    """
    if len(data) < HEADER_LEN or data[2] & REPLY_BITS != QR:
        return -1
    if data[4] == 0 and data[5] == 1:
        end = HEADER_LEN + len(q)
        if data.startswith(q, HEADER_LEN) or data[HEADER_LEN:end].lower() == q:
            return end
    return HEADER_LEN if error_without_question(data) else -1


def parse_reply(data: bytes, query_id: int, q: bytes) -> Reply | None:
    """The whole rule: None if `data` is no reply to our query `q` under `query_id`.

    Raises Malformed for a reply to it that cannot be believed. The TC bit is not looked at:
    over UDP the caller goes to TCP before reading answers.
    """
    if len(data) < 2 or data[0] << 8 | data[1] != query_id:
        return None
    offset = answer_offset(data, q)
    if offset < 0:
        return None
    rcode = data[3] & RCODE
    qtype = q[-4] << 8 | q[-3]
    qname = q[:-4] if offset > HEADER_LEN else b""
    if data[6] == data[7] == 0:
        return Reply(rcode, [], None)
    rdatas, ttl = read_answers(data, offset, qname, qtype, rcode)
    return Reply(rcode, rdatas, ttl)


def read_name(data: bytes, off: int, end: int) -> tuple[bytes, int]:
    """A name at `off` as lower-case uncompressed wire, and the offset just past it.

    dnspython's rules (`dns.name.from_wire_parser`): labels of up to 63 bytes; label types
    0x40 and 0x80 are refused; a compression pointer must point strictly before the place
    the name (or its last pointer's target) started, so there are no loops and no forward
    pointers, and at most MAX_POINTERS of them; what a pointer leads to must lie before the
    part that pointed (no overlap); the whole name is at most 255 bytes. `end` bounds the
    first part (the message, or an rdata).
    """
    parts: list[bytes] = []
    start = biggest = off
    after = -1
    hops = 0
    size = 1
    while True:
        if off >= end:
            raise Malformed("name runs past its end")
        n = data[off]
        if n == 0:
            break
        if n < 64:
            if off + 1 + n > end:
                raise Malformed("label runs past its end")
            parts.append(data[off : off + 1 + n])
            size += n + 1
            off += n + 1
        elif n >= _POINTER:
            if off + 2 > end:
                raise Malformed("pointer runs past its end")
            target = (n & 0x3F) << 8 | data[off + 1]
            hops += 1
            if target >= biggest or hops > MAX_POINTERS:
                raise Malformed("bad compression pointer")
            if after < 0:
                after = off + 2
            end = start  # what the pointer leads to may not reach into the part that pointed
            off = start = biggest = target
        else:
            raise Malformed("bad label type")
    if size > _MAX_NAME:
        raise Malformed("name too long")
    return b"".join(parts).lower() + b"\x00", (off + 1 if after < 0 else after)


def _check_rdata(data: bytes, rtype: int, off: int, end: int) -> bytes | None:
    """Validate the rdata of IN TXT and CNAME records as dnspython does; a CNAME's target.
    (IN A, whose rdata must be 4 bytes, is checked by the caller, in its loop.)"""
    if rtype == QTYPE_TXT:
        # one or more character-strings exactly filling the rdata (dnspython refuses none)
        if off == end:
            raise Malformed("empty TXT record")
        while off < end:
            off += 1 + data[off]
        if off != end:
            raise Malformed("TXT string runs past its record")
    elif rtype == QTYPE_CNAME:
        target, after = read_name(data, off, end)
        if after != end:
            raise Malformed("CNAME record longer than its name")
        return target
    return None


# an answer record kept for selection: owner (lower-case wire), type, TTL, rdata (a CNAME's:
# its lower-case target)
_Kept = tuple[bytes, int, int, bytes]


def read_answers(
    data: bytes, off: int, qname: bytes, qtype: int, rcode: int
) -> tuple[list[bytes], int | None]:
    """The rdata of the answers of type `qtype` at `qname` or its CNAME chain, and their TTL.

    `off` is where the answer section starts; `qname` the question's lower-case wire name (b""
    if the reply had no question). Raises Malformed as dnspython's `from_wire` would, for the
    fields read here. Only a NOERROR reply yields rdata: other RCODEs decide the outcome alone.
    Records at the question's name itself are taken as they come (a listing's usual shape);
    the rest are kept for following a CNAME chain.
    """
    count = data[6] << 8 | data[7]
    if qtype == QTYPE_A and rcode == RCODE_NOERROR and qname:
        plain = _plain_a(data, off, count)
        if plain is not None:
            return plain
    return _read_all(data, off, count, qname, qtype, rcode)


def _read_all(
    data: bytes, off: int, count: int, qname: bytes, qtype: int, rcode: int
) -> tuple[list[bytes], int | None]:
    direct: list[bytes] = []  # of qtype at qname: the answer whenever there is one
    ttl: int | None = None
    kept: list[_Kept] = []
    size = len(data)
    for _ in range(count):
        owner, rtype, rclass, rttl, off, end = _record(data, off, size, qname)
        # Only class IN is read. An A record of class CHAOS (or any other) is not an address:
        # read as one, it made a clean target `listed` (issue 9). dnspython parses other
        # classes' rdata by their own formats, which we do not read at all: such a record is
        # skipped by its length, and the answer is chosen as dnspython's resolver chooses it
        # (`resolve_chaining`: owner, type *and class* of the question).
        if rclass == CLASS_IN:
            if rtype == QTYPE_A and end - off != 4:
                raise Malformed("A record of the wrong length")
            target = _check_rdata(data, rtype, off, end) if rtype != QTYPE_A else None
            if rtype == qtype:
                if owner is qname or owner == qname:
                    rdata = data[off:end]
                    if rdata not in direct:  # an rdataset is a set: a repeated record is one
                        direct.append(rdata)
                    ttl = _ttl(rttl) if ttl is None else min(ttl, _ttl(rttl))
                else:
                    kept.append((owner, rtype, rttl, data[off:end]))
            elif target is not None:
                kept.append((owner, rtype, rttl, target))
        off = end
    if rcode not in (RCODE_NOERROR, RCODE_NXDOMAIN) or not qname:
        return [], None
    if not direct and kept:
        direct, ttl = _select(kept, qname, qtype)
    if direct and rcode == RCODE_NXDOMAIN:
        # dnspython `AnswerForNXDOMAIN`: a name that does not exist cannot hold the answer
        raise Malformed("an answer in an NXDOMAIN reply")
    return (direct, ttl) if rcode == RCODE_NOERROR else ([], None)


def _plain_a(data: bytes, off: int, count: int) -> tuple[list[bytes], int] | None:
    """The shape of nearly every listing, read at a third of the general cost: every answer
    an IN A record of 4 bytes owned by a pointer to the question's name, its TTL below 2^31.
    None for anything else, which the general reading then takes from the start."""
    rdatas: list[bytes] = []
    ttl = _MAX_TTL
    unpack = _PLAIN_RR.unpack_from
    try:
        for _ in range(count):
            head, rtype, rclass, rttl, rdlen = unpack(data, off)
            if head != _PLAIN_HEAD or rtype != QTYPE_A or rclass != CLASS_IN or rdlen != 4:
                return None
            rdata = data[off + 12 : off + 16]
            if len(rdata) != 4 or rttl > _MAX_TTL:
                return None
            if rdata not in rdatas:  # an rdataset is a set: a repeated record is one
                rdatas.append(rdata)
            ttl = rttl if rttl < ttl else ttl  # min() is a call: this runs for every listing
            off += 16
    except struct.error:  # the record's fixed part runs past the end
        return None
    return rdatas, ttl


def _record(
    data: bytes, off: int, size: int, qname: bytes
) -> tuple[bytes, int, int, int, int, int]:
    """A record at `off`: owner, type, class, TTL, and where its rdata starts and ends."""
    if qname and data.startswith(_QUESTION_POINTER, off):
        owner, off = qname, off + 2  # the question's name: a pointer back is always valid
    else:
        owner, off = read_name(data, off, size)
    if off + 10 > size:
        raise Malformed("truncated record")
    rtype, rclass, rttl, rdlen = _RR.unpack_from(data, off)
    off += 10
    if off + rdlen > size:
        raise Malformed("truncated record")
    if rtype in (QTYPE_OPT, QTYPE_TSIG):
        # dnspython: OPT and TSIG belong in the additional section only (BadEDNS, BadTSIG)
        raise Malformed("OPT or TSIG record among the answers")
    return owner, rtype, rclass, rttl, off, off + rdlen


def _ttl(raw: int) -> int:
    """RFC 2181 §8: a TTL with the top bit set is 0 (as dnspython reads it)."""
    return 0 if raw > _MAX_TTL else raw


def _select(kept: list[_Kept], qname: bytes, qtype: int) -> tuple[list[bytes], int | None]:
    """dnspython `Message.resolve_chaining`: the records of `qtype` at the question's name,
    else follow its CNAME (the last one at that name wins: CNAME is a singleton type, so
    dnspython's rdataset keeps only the last), at most MAX_CHAIN of them."""
    name = qname
    for _ in range(MAX_CHAIN):
        rdatas: list[bytes] = []
        ttl: int | None = None
        cname: bytes | None = None
        for owner, rtype, raw_ttl, rdata in kept:
            if owner != name:
                continue
            if rtype == qtype:
                if rdata not in rdatas:  # an rdataset is a set: a repeated record is one
                    rdatas.append(rdata)
                ttl = _ttl(raw_ttl) if ttl is None else min(ttl, _ttl(raw_ttl))
            else:
                cname = rdata
        if rdatas:
            return rdatas, ttl
        if cname is None:
            return [], None
        name = cname
    raise Malformed("CNAME chain too long")
