"""Raw bytes of a returned message → what it states: its kind and, per recipient, the codes and
diagnostic as written (`Parsed`). Classifying the cause is `classify`'s job.

Pure, and bounded: the caller refuses oversized input (explain.MAX_MESSAGE_BYTES); here a cheap
scan of the bytes refuses MIME bombs before the stdlib parser builds a tree, and the walk stops
at MAX_DEPTH / MAX_PARTS. RFC 3464 DSNs are read from their `message/delivery-status` part
(which the stdlib parses into a list of header blocks), RFC 6533 global DSNs from the text of
`message/global-delivery-status` (which it does not); the common MTAs' plain-text bounces are
`mta`'s. Auto-replies and feedback reports are told apart and carry no recipients.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr

from rblwatch.bounces import diagnostic, mta
from rblwatch.bounces.ips import bracketed_ips
from rblwatch.bounces.model import Kind

MAX_DEPTH = 20
MAX_PARTS = 1000
# Each nesting level is a `boundary=` or an embedded message; past this many the stdlib's
# recursive parser would be the thing under attack, so the bytes are refused unparsed.
MAX_CONTAINERS = 200

Found = diagnostic.Found

_DSN_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global")
_HEADER_TYPES = ("text/rfc822-headers", "message/global-headers", "message/rfc822-headers")
_DELIMITER = re.compile(rb"^--", re.M)
_FROM_LINE = re.compile(r"^From:[ \t]*(.{1,500})$", re.M | re.I)
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}")
_CONTAINER = re.compile(rb"boundary\s*=|message/(?:rfc822|global)\b", re.I)


@dataclass(slots=True)
class Parsed:
    kind: Kind
    message_id: str | None = None
    reporting_mta: str | None = None
    recipients: list[Found] = field(default_factory=list)
    original_ip: str | None = None  # from the returned original's Received headers
    # the domain the returned original was sent from: its From (else the bounce's To, which a
    # bounce goes back to: the original's envelope sender), lower case
    sender_domain: str | None = None
    problem: str | None = None


@dataclass(slots=True)
class _Tree:
    """The parts that matter, collected in one bounded walk."""

    text: list[str] = field(default_factory=list)  # the bounce's own text (not the original's)
    html: list[str] = field(default_factory=list)  # read only when there is no plain text
    dsn: list[Message] = field(default_factory=list)
    feedback: bool = False
    received: list[str] = field(default_factory=list)  # the original's, top (newest) first
    senders: list[str] = field(default_factory=list)  # the original's From, as written
    parts: int = 0


def prescan(raw: bytes) -> str | None:
    """A problem when the bytes are a MIME bomb, before any parsing."""
    if len(_DELIMITER.findall(raw)) > MAX_PARTS + 1:
        return f"more than {MAX_PARTS} MIME parts"
    if len(_CONTAINER.findall(raw)) > MAX_CONTAINERS:
        return f"more than {MAX_CONTAINERS} nested MIME containers"
    return None


def parse(raw: bytes) -> Parsed:
    problem = prescan(raw)
    if problem is not None:
        return Parsed("other", problem=problem)
    if not _looks_like_mail(raw):
        return Parsed("other", problem="not an email message (no header fields)")
    # compat32, not policy.default: the default policy parses every header it is asked for into
    # an object, 15 times slower on a message of many parts, and raises on some malformed
    # ones; the few headers read here are decoded (RFC 2047) by _header.
    msg = message_from_bytes(raw, policy=policy.compat32)
    tree = _Tree()
    problem = _walk(msg, tree)
    if problem is not None:
        return Parsed("other", message_id=_header(msg, "message-id"), problem=problem)
    out = _kind_and_recipients(msg, tree)
    out.message_id = _header(msg, "message-id")
    out.original_ip = original_ip(tree.received)
    out.sender_domain = _domain_of([*tree.senders, _header(msg, "to") or ""])
    return out


def _domain_of(addresses: list[str]) -> str | None:
    """The domain of the first of `addresses` that has one."""
    for text in addresses:
        _, address = parseaddr(text)
        domain = address.rpartition("@")[2].strip().strip(".").lower()
        if "@" in address and _DOMAIN.fullmatch(domain):
            return domain
    return None


def _looks_like_mail(raw: bytes) -> bool:
    # The stdlib reads anything as a body without headers; junk is not "mail" to us.
    head = raw[:4096].lstrip(b"\r\n")
    first = head.split(b"\n", 1)[0]
    return re.match(rb"(?:From |[!-9;-~]+:)", first) is not None


def _walk(msg: Message, tree: _Tree) -> str | None:
    stack: list[tuple[Message, int, bool]] = [(msg, 0, False)]
    while stack:
        part, depth, in_original = stack.pop()
        tree.parts += 1
        if tree.parts > MAX_PARTS:
            return f"more than {MAX_PARTS} MIME parts"
        if depth > MAX_DEPTH:
            return f"MIME parts nested deeper than {MAX_DEPTH}"
        ctype = part.get_content_type()
        if ctype in _DSN_TYPES and not in_original:
            tree.dsn.append(part)
            continue
        if ctype == "message/feedback-report":
            tree.feedback = True
            continue
        if ctype in _HEADER_TYPES and not in_original:
            tree.received.extend(_received_of(part))
            tree.senders.extend(_senders_of(part))
            continue
        if ctype in _ORIGINAL_TYPES and not in_original:
            tree.received.extend(_received_of(part))
            tree.senders.extend(_senders_of(part))
        children = part.get_payload() if part.is_multipart() else None
        if isinstance(children, list):
            inside = in_original or ctype in _ORIGINAL_TYPES
            stack.extend(
                (c, depth + 1, inside) for c in reversed(children) if isinstance(c, Message)
            )
        elif not in_original and ctype == "text/plain":
            tree.text.append(_text_of(part))
        elif not in_original and ctype == "text/html":
            tree.html.append(_strip_html(_text_of(part)))
    return None


def _kind_and_recipients(msg: Message, tree: _Tree) -> Parsed:
    report = msg.get_param("report-type", header="content-type")
    if tree.feedback or (isinstance(report, str) and report.lower() == "feedback-report"):
        return Parsed("feedback")
    if tree.dsn:
        return _from_dsn(tree)
    body = "\n".join(tree.text or tree.html) if tree.text or tree.html else _text_of(msg)
    if _strong_auto_reply(msg):
        return Parsed("auto_reply")
    found = mta.recognise(body, _header(msg, "subject") or "")
    if found is not None:
        if not tree.received:
            tree.received.extend(_received_in_text(body))
        return Parsed("bounce", reporting_mta=found.reporting_mta, recipients=found.recipients)
    if (_header(msg, "auto-submitted") or "no").lower().startswith("auto-replied"):
        return Parsed("auto_reply")
    if _bounce_sender(msg):
        return Parsed("bounce")
    return Parsed("other")


_OOO_SUBJECT = re.compile(
    r"^(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)"
    r"|autoreply|abwesenheitsnotiz|r[ée]ponse automatique|vacation)\b",
    re.I,
)


def _strong_auto_reply(msg: Message) -> bool:
    """RFC 3834 and the de-facto headers vacation programs set. `Auto-Submitted: auto-replied`
    alone is weak — Exim puts it on its bounces — so it is looked at only after the bounce
    recognisers have had their turn."""
    if any(_header(msg, h) is not None for h in ("x-autoreply", "x-autorespond")):
        return True
    if (_header(msg, "precedence") or "").lower() == "auto_reply":
        return True
    return _OOO_SUBJECT.match(_header(msg, "subject") or "") is not None


def _bounce_sender(msg: Message) -> bool:
    sender = (_header(msg, "from") or "").lower()
    return "mailer-daemon" in sender or "postmaster@" in sender


def _from_dsn(tree: _Tree) -> Parsed:
    out = Parsed("bounce")
    for part in tree.dsn:
        blocks = _dsn_blocks(part)
        if not blocks:
            continue
        if out.reporting_mta is None:
            out.reporting_mta = diagnostic.mta_name(blocks[0].get("reporting-mta"))
        for block in blocks[1 : 1 + diagnostic.MAX_RECIPIENTS]:
            rcpt = diagnostic.from_dsn_fields(block)
            if rcpt is not None:
                out.recipients.append(rcpt)
    return out


def _dsn_blocks(part: Message) -> list[dict[str, str]]:
    if part.get_content_type() == "message/global-delivery-status":
        return parse_blocks(_raw_of_message_part(part).decode("utf-8", "replace"))
    payload = part.get_payload()
    if not isinstance(payload, list):
        return parse_blocks(str(payload))
    return [
        {k.lower(): " ".join(_clean(str(v)).split()) for k, v in b.items()}
        for b in payload
        if isinstance(b, Message)
    ]


def _raw_of_message_part(part: Message) -> bytes:
    # The stdlib takes a message/global-delivery-status body for an embedded message; compat32
    # gives its bytes back as written, UTF-8 intact.
    payload = part.get_payload()
    if isinstance(payload, list):
        return b"\n".join(
            p.as_bytes(policy=policy.compat32) for p in payload if isinstance(p, Message)
        )
    got = part.get_payload(decode=True)
    return got if isinstance(got, bytes) else str(payload).encode("utf-8", "replace")


def parse_blocks(text: str) -> list[dict[str, str]]:
    """RFC 3464 §2.1 blocks: header-style fields, folded lines continued, blocks split by
    blank lines. Field names lower-cased; the first value of a repeated field wins."""
    blocks: list[dict[str, str]] = []
    for chunk in re.split(r"\r?\n[ \t]*\r?\n", text.strip()):
        fields: dict[str, str] = {}
        unfolded = re.sub(r"\r?\n[ \t]+", " ", chunk)
        for line in unfolded.splitlines():
            name, sep, value = line.partition(":")
            if sep and name and " " not in name.strip():
                fields.setdefault(name.strip().lower(), " ".join(value.split()))
        if fields:
            blocks.append(fields)
    return blocks


_RECEIVED_LINE = re.compile(r"^Received:[ \t]*(.*(?:\r?\n[ \t]+.*)*)", re.M | re.I)
_BY = re.compile(r"\sby\s", re.I)
# RFC 3848: ESMTPA, ESMTPSA, UTF8SMTPA, LMTPA … — an authenticated submission, not a relay hop
_SUBMISSION = re.compile(r"\bwith\s+\w*A\b", re.I)


def _received_of(part: Message) -> list[str]:
    # the stdlib parses message/* bodies (message/global-headers too) into an embedded
    # message, and leaves text/rfc822-headers as text
    sub = part.get_payload()
    if isinstance(sub, list):
        if sub and isinstance(sub[0], Message):
            return [" ".join(_clean(str(v)).split()) for v in sub[0].get_all("received") or ()]
        return []
    return _received_in_text(_text_of(part))


def _senders_of(part: Message) -> list[str]:
    """The From of a returned original (an embedded message, or its headers as text)."""
    sub = part.get_payload()
    if isinstance(sub, list):
        if sub and isinstance(sub[0], Message):
            return [_clean(str(v)) for v in sub[0].get_all("from") or ()]
        return []
    found = _FROM_LINE.search(_text_of(part))
    return [found[1]] if found else []


def _received_in_text(text: str) -> list[str]:
    return [" ".join(m[1].split()) for m in _RECEIVED_LINE.finditer(text)]


def original_ip(received: list[str]) -> str | None:
    """The sending IP of the returned original: the lowest (earliest) `Received` whose "from"
    clause carries a public-looking address, skipping authenticated submissions (RFC 3848 "with
    ESMTPSA" and kin), whose client is a user's machine rather than a sending server."""
    for line in reversed(received):
        if _SUBMISSION.search(line):
            continue
        ips = bracketed_ips(_BY.split(line, maxsplit=1)[0])
        if ips:
            return ips[0]
    return None


def _header(msg: Message, name: str) -> str | None:
    """A header's value, RFC 2047 words decoded, unfolded; None when absent or empty."""
    value = msg.get(name)
    if value is None:
        return None
    try:
        text = str(make_header(decode_header(value)))
    except (ValueError, LookupError, UnicodeError):  # a bad encoded word: keep it as written
        text = str(value)
    return " ".join(_clean(text).split()) or None


def _clean(text: str) -> str:
    # compat32 keeps undecodable 8-bit bytes as lone surrogates; they would not survive JSON
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # an unknown charset name: UTF-8 is the likeliest truth today
        return payload.decode("utf-8", "replace")


def _strip_html(html: str) -> str:
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</tr>", "\n", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return re.sub(r"&nbsp;", " ", text).replace("&lt;", "<").replace("&gt;", ">")


__all__ = ["MAX_DEPTH", "MAX_PARTS", "Found", "Parsed", "original_ip", "parse", "parse_blocks"]
