"""One recipient as a bounce states it (`Found`), and the clean-up of its diagnostic line.

Pure. An SMTP reply spread over several lines repeats its codes on each ("550-5.7.1 ",
"550 5.7.1 "); the diagnostic keeps the first prefix, drops the repeats and joins the lines.
The reply code and enhanced status are read from that first prefix only — a code that appears
elsewhere in the prose is not the reply's, and nothing is inferred when the prefix is absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rblwatch.bounces.codes import normal_status

# a bounce names a handful of recipients; past this many the rest are left unread, so that
# a hostile message of a million "recipients" costs what a thousand do
MAX_RECIPIENTS = 1000
# an SMTP reply line is at most 512 octets (RFC 5321 §4.5.3.1.5); a multi-line one a few of
# them. A longer "diagnostic" is cut here, before any pattern looks at it.
MAX_DIAGNOSTIC = 8192


@dataclass(slots=True)
class Found:
    address: str | None
    action: str | None = None
    status: str | None = None
    reply_code: str | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None


_TYPE = re.compile(r"^[A-Za-z][\w.+-]*\s*;\s*")
# "550-5.7.1 ", "550 5.7.1 ", "550: 5.1.1 ", "#550 5.1.1 ", "554 " — at the start
_PREFIX = re.compile(r"^#?([2-5]\d\d)(?::?[ -]|$)\s*(?:#?([245]\.\d{1,3}\.\d{1,3})(?=\s|$))?\s*")
_STATUS_ONLY = re.compile(r"^#?([245]\.\d{1,3}\.\d{1,3})(?=\s|$)")


def strip_type(value: str | None) -> str | None:
    """'dns; mail.example.com' → 'mail.example.com' (RFC 3464 type; value fields)."""
    if value is None:
        return None
    text = _TYPE.sub("", " ".join(value.split()), count=1).strip()
    return text or None


def mta_name(value: str | None) -> str | None:
    """'dns; gmail-smtp-in.l.example.com. (198.51.100.26, the server for …)' → the host name:
    some MTAs add a comment after the name, and the root dot is not part of it."""
    text = strip_type(value)
    if text is None:
        return None
    return text.split()[0].rstrip(".") or None


def split(text: str | None) -> tuple[str | None, str | None, str | None]:
    """A diagnostic → (reply code, enhanced status, the diagnostic cleaned)."""
    if text is None:
        return None, None, None
    flat = " ".join(_TYPE.sub("", text[:MAX_DIAGNOSTIC].strip(), count=1).split())
    if not flat:
        return None, None, None
    m = _PREFIX.match(flat)
    if m is None:
        s = _STATUS_ONLY.match(flat)
        return None, (normal_status(s[1]) if s else None), flat
    reply, status = m[1], m[2]
    rest = flat[m.end() :]
    # the repeats: the same reply code, with or without a status, after a space
    # (a lookbehind, not a consumed space: repeats follow each other "550-5.7.26 550-5.7.26 ")
    repeat = re.compile(rf"(?<!\S){reply}[ -](?:#?[245]\.\d{{1,3}}\.\d{{1,3}}(?=\s|$))?")
    rest = " ".join(repeat.sub(" ", rest).split())
    head = f"{reply} {status}" if status else reply
    return reply, (normal_status(status) if status else None), f"{head} {rest}".strip()


def from_dsn_fields(block: dict[str, str]) -> Found | None:
    """A per-recipient block of an RFC 3464/6533 DSN → Found; None for a block without a
    recipient (the per-message block repeated, or junk)."""
    address = strip_type(block.get("final-recipient")) or strip_type(
        block.get("original-recipient")
    )
    if address is None:
        return None
    reply, from_diag, text = split(block.get("diagnostic-code"))
    status = normal_status(block.get("status", "").split(" ", 1)[0]) or from_diag
    action = (block.get("action") or "").lower() or None
    return Found(
        address=decode_utf8_addr(address),
        action=action,
        status=status,
        reply_code=reply,
        diagnostic=text,
        remote_mta=mta_name(block.get("remote-mta")),
    )


def decode_utf8_addr(address: str) -> str:
    """RFC 6533 §3: utf-8-addr-xtext writes non-ASCII as \\x{HEX}."""
    return re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: _chr(m[1]), address)


def _chr(hexdigits: str) -> str:
    code = int(hexdigits, 16)
    return chr(code) if code <= 0x10FFFF else "\ufffd"


__all__ = [
    "MAX_RECIPIENTS",
    "Found",
    "decode_utf8_addr",
    "from_dsn_fields",
    "mta_name",
    "split",
    "strip_type",
]
