"""The pure wire module: its named bits agree with dnspython's, and its name reader's rules."""

from __future__ import annotations

import dns.flags
import dns.opcode
import dns.rcode
import pytest

from rblwatch import lookup, wire


def test_the_flag_bits_are_dnspythons_read_a_byte_at_a_time() -> None:
    assert wire.QR << 8 == dns.flags.QR
    assert wire.AA << 8 == dns.flags.AA
    assert wire.TC << 8 == dns.flags.TC
    assert wire.RD << 8 == dns.flags.RD
    assert wire.RA == dns.flags.RA
    assert wire.OPCODE << 8 == 0x7800 == dns.opcode.to_flags(15)
    assert wire.RCODE == 0x0F


def test_the_rcodes_have_dnspythons_numbers_and_names_and_lookup_uses_them() -> None:
    for code, name in wire.RCODE_NAMES.items():
        assert dns.rcode.to_text(dns.rcode.Rcode(code)) == name
    assert (lookup.RCODE_NOERROR, lookup.RCODE_NXDOMAIN) == (
        wire.RCODE_NOERROR,
        wire.RCODE_NXDOMAIN,
    )
    assert (lookup.RCODE_SERVFAIL, lookup.RCODE_REFUSED) == (
        wire.RCODE_SERVFAIL,
        wire.RCODE_REFUSED,
    )


def test_the_query_header_asks_one_question_with_recursion_desired() -> None:
    assert bytes.fromhex("0100 0001 0000 0000 0000") == wire.QUERY_HEADER_TAIL


HEADER = bytes(12)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (b"\x01A\x02bC\x00", b"\x01a\x02bc\x00"),  # lower-cased
        (b"\x00", b"\x00"),  # the root
    ],
)
def test_a_name_is_read_lower_case(name: bytes, expected: bytes) -> None:
    data = HEADER + name
    assert wire.read_name(data, 12, len(data)) == (expected, len(data))


def test_a_pointer_back_is_followed_and_the_name_ends_after_the_pointer() -> None:
    data = HEADER + b"\x01a\x00" + b"\x01b\xc0\x0c" + b"rest"
    assert wire.read_name(data, 15, len(data)) == (b"\x01b\x01a\x00", 19)


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        (b"\xc0\x0c", "to itself"),
        (b"\xc0\x20", "forward"),
        (b"\x01a\xc0\x0c", "back into its own first part"),
        (b"\x41", "label type 0x40"),
        (b"\x81", "label type 0x80"),
        (b"\x05ab", "label past the end"),
        (b"\x01a", "no end"),
        ((b"\x3f" + b"x" * 63) * 4 + b"\x00", "257 bytes long"),
    ],
)
def test_a_name_dnspython_refuses_is_malformed(tail: bytes, why: str) -> None:
    data = HEADER + tail
    with pytest.raises(wire.Malformed):
        wire.read_name(data, 12, len(data))
