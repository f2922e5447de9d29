"""Pure lookup logic: DNSBL query names and the decoding of an answer into one Outcome.

No sockets, clocks or files here (SPEC §2). The resolver hands `Decoder.decode` the RCODE and
the raw 4-byte A records of a reply; everything about what those mean for a given list lives
here, so the rules can be tested without a network.

The query-name helpers come in two shapes: text (`query_name`, for people and tests) and DNS
wire labels (`prefix_wire`, for the resolver's hot path, which appends the list's zone).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from rblwatch import wire
from rblwatch.model import (
    CLEAN,
    TARGET_KINDS,
    DnsList,
    Outcome,
    OutcomeKind,
    Purpose,
    Reason,
    TargetKind,
    error,
)

# the RCODEs decoded here, by the names callers have used (the values live in rblwatch.wire)
RCODE_NOERROR = wire.RCODE_NOERROR
RCODE_FORMERR = wire.RCODE_FORMERR
RCODE_SERVFAIL = wire.RCODE_SERVFAIL
RCODE_NXDOMAIN = wire.RCODE_NXDOMAIN
RCODE_REFUSED = wire.RCODE_REFUSED

_LOOPBACK_FIRST_OCTET = 127
UNKNOWN_CODE = "unknown code"


def reversed_labels(value: str, kind: TargetKind) -> list[str]:
    """The labels put in front of a list's zone for a target (RFC 5782 §2.1, §2.4, §3)."""
    return TARGET_KINDS[kind].labels(value)


def query_name(value: str, kind: TargetKind, zone: str) -> str:
    """The DNS name looked up for a target on a zone, e.g. 2.0.0.127.zen.spamhaus.org."""
    return ".".join([*reversed_labels(value, kind), zone.rstrip(".")])


def prefix_wire(value: str, kind: TargetKind) -> bytes:
    """Wire-format labels for the part of the query name in front of the zone.

    Loops over many targets take `TARGET_KINDS[kind].wire` once per kind instead.
    """
    return TARGET_KINDS[kind].wire(value)


def zone_wire(zone: str) -> bytes:
    """A zone name as wire labels with the terminating root label (ValueError if invalid).

    Written out rather than through dns.name: importing dnspython's name module costs a
    hundredth of a /16 scan's run time, and a zone (config-validated) needs only this much.
    """
    labels = [p.encode("ascii") for p in zone.rstrip(".").lower().split(".")]
    if zone in ("", ".") or any(not 0 < len(p) <= 63 for p in labels):
        raise ValueError(f"invalid zone name {zone!r}")
    wire = b"".join(bytes([len(p)]) + p for p in labels) + b"\x00"
    if len(wire) > 255:
        raise ValueError(f"zone name too long: {zone!r}")
    return wire


def _quad(raw: bytes) -> str:
    if len(raw) != 4:  # an A record of another length is shown, not read as an address
        return f"{len(raw)}-byte rdata {raw[:8].hex()}"
    return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"


class Decoder:
    """Turns one reply for one list into exactly one Outcome (SPEC §2).

    Built once per list: the list's code tables are turned into lookups on the raw 4-byte A
    records so the per-reply work is a few dictionary hits. Listed outcomes without TXT are
    cached per answer set and TTL, because a /16 scan sees the same few code combinations
    thousands of times.
    """

    __slots__ = ("_allow", "_bits", "_cache", "_codes", "_error_bits", "_errors", "lst")

    def __init__(self, lst: DnsList) -> None:
        self.lst = lst
        self._codes = {ipaddress.IPv4Address(k).packed: v for k, v in lst.codes.items()}
        self._bits = dict(lst.bits)
        self._errors = {ipaddress.IPv4Address(k).packed: v for k, v in lst.errors.items()}
        self._error_bits = dict(lst.error_bits)
        self._allow = lst.purpose is Purpose.ALLOW
        # keyed by answer set and TTL: a cached listing must not report another reply's TTL
        self._cache: dict[tuple[tuple[bytes, ...], int | None], Outcome] = {}

    def decode_rcode(self, rcode: int) -> Outcome | None:
        """The outcome decided by the RCODE alone, or None when the answers must be read."""
        if rcode == RCODE_NXDOMAIN:
            return CLEAN
        if rcode == RCODE_NOERROR:
            return None
        if rcode == RCODE_SERVFAIL:
            return error(Reason.SERVFAIL)
        if rcode == RCODE_REFUSED:
            return error(Reason.REFUSED)
        return error(Reason.BAD_ANSWER, f"rcode {rcode}")

    def decode(
        self,
        rcode: int,
        answers: Sequence[bytes],
        ttl: int | None = None,
        txt: str | None = None,
    ) -> Outcome:
        """Decode a reply: its RCODE and the rdata of its A records (4 bytes each)."""
        by_rcode = self.decode_rcode(rcode)
        if by_rcode is not None:
            return by_rcode
        if not answers:
            return CLEAN  # NOERROR/NODATA: the name exists but holds no A record
        key = tuple(sorted(set(answers)))  # raw bytes sort as the addresses do
        if txt is None:
            hit = self._cache.get((key, ttl))
            if hit is not None:
                return hit
        outcome = self._decode_answers(key, ttl, txt)
        if txt is None and outcome.kind is not OutcomeKind.ERROR:
            self._cache[(key, ttl)] = outcome
        return outcome

    def _decode_answers(
        self, answers: tuple[bytes, ...], ttl: int | None, txt: str | None
    ) -> Outcome:
        outside = [a for a in answers if len(a) != 4 or a[0] != _LOOPBACK_FIRST_OCTET]
        if outside:
            # an answer outside 127/8 is no DNSBL code: typically a resolver rewriting NXDOMAIN
            return error(Reason.BAD_ANSWER, f"answer {_quad(outside[0])} outside 127.0.0.0/8")
        reason = self._error_reason(answers)
        if reason is not None:
            return error(reason, "answered " + ", ".join(_quad(a) for a in answers))
        if not any(self._is_listing(a) for a in answers):
            return error(
                Reason.BAD_ANSWER,
                "answered " + ", ".join(_quad(a) for a in answers) + ", no listing code",
            )
        codes = tuple(_quad(a) for a in answers)
        meanings = tuple(m for a in answers for m in self._meanings(a))
        kind = OutcomeKind.ALLOWLISTED if self._allow else OutcomeKind.LISTED
        return Outcome(kind, codes=codes, meanings=meanings, txt=txt, ttl=ttl)

    def _error_reason(self, answers: tuple[bytes, ...]) -> Reason | None:
        found: set[Reason] = set()
        for a in answers:
            r = self._errors.get(a)
            if r is not None:
                found.add(r)
            for bit, bit_reason in self._error_bits.items():
                if a[3] & bit:
                    found.add(bit_reason)
        if Reason.RATE_LIMITED in found:
            return Reason.RATE_LIMITED
        return next(iter(found), None)

    def _is_listing(self, a: bytes) -> bool:
        if not self._codes and not self._bits:
            return True  # RFC 5782 §2.3: any 127/8 answer that is not an error code
        return a in self._codes or any(a[3] & bit for bit in self._bits)

    def _meanings(self, a: bytes) -> list[str]:
        exact = self._codes.get(a)
        if exact is not None:
            return [exact]
        by_bits = [m for bit, m in sorted(self._bits.items()) if a[3] & bit]
        if by_bits:
            return by_bits
        return [] if not self._codes and not self._bits else [UNKNOWN_CODE]


def parse_txt_rdata(rdatas: Sequence[bytes]) -> str | None:
    """Join the character-strings of TXT rdata records into one text, or None if there are none."""
    texts: list[str] = []
    for rd in rdatas:
        parts: list[str] = []
        i = 0
        while i < len(rd):
            n = rd[i]
            parts.append(rd[i + 1 : i + 1 + n].decode("utf-8", "replace"))
            i += 1 + n
        texts.append("".join(parts))
    return "; ".join(texts) if texts else None
