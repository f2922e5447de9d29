"""The one entry point: raw bytes of a message → `Explained` (parse, then classify).

Pure. `lists` is what the catalogue (and the config) knows, so a zone, URL or provider code
in a diagnostic can be named with its delist page: `ListFacts` per list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rblwatch.bounces import classify
from rblwatch.bounces.codes import reply_meaning, status_meaning
from rblwatch.bounces.model import Explained, Recipient
from rblwatch.bounces.parse import Found, Parsed, parse

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a bounce with its original attached is well below this


class ListFacts(NamedTuple):
    """What naming a list needs to know of it."""

    name: str
    zones: tuple[str, ...]  # the zone and any other names it is known by
    delist_url: str | None = None
    queryable: bool = True


# what RFC 3464 reports of recipients that did not fail: not the operator's concern here
_NOT_FAILURES = frozenset({"delivered", "relayed", "expanded"})


def explain(raw: bytes, source: str, lists: Sequence[ListFacts] = ()) -> Explained:
    """Never raises on any input: what is not mail is `kind: other` with a `problem`."""
    if len(raw) > MAX_MESSAGE_BYTES:
        return Explained(
            source,
            "other",
            problem=f"message of {len(raw)} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes",
        )
    try:
        parsed = parse(raw)
    # The stdlib's email package is lenient but not total (a header its policy cannot fold, a
    # recursion in a tree the prescan let through): any failure of it is "not readable mail",
    # which is an answer about the input, never a crash of the command or the daemon.
    except Exception as e:  # RecursionError among them
        return Explained(source, "other", problem=f"unreadable message ({type(e).__name__})")
    return _explained(parsed, source, lists)


def _explained(p: Parsed, source: str, lists: Sequence[ListFacts]) -> Explained:
    recipients = tuple(
        _recipient(f, p.original_ip, lists) for f in p.recipients if f.action not in _NOT_FAILURES
    )
    return Explained(
        source=source,
        kind=p.kind,
        message_id=p.message_id,
        reporting_mta=p.reporting_mta,
        recipients=recipients,
        problem=p.problem,
        sender_domain=p.sender_domain,
    )


def _recipient(f: Found, original_ip: str | None, lists: Sequence[ListFacts]) -> Recipient:
    named = classify.lists_named(f.diagnostic, lists)
    return Recipient(
        address=f.address,
        action=f.action,
        status=f.status,
        status_meaning=status_meaning(f.status) if f.status else None,
        reply_code=f.reply_code,
        reply_meaning=reply_meaning(f.reply_code) if f.reply_code else None,
        diagnostic=f.diagnostic,
        remote_mta=f.remote_mta,
        permanent=permanent(f),
        cause=classify.cause(f.status, f.diagnostic, named),
        # the receiver's words are about the connection it refused; Received lines can be
        # wrong about which hop that was
        sending_ip=classify.quoted_ip(f.diagnostic) or original_ip,
        lists=named,
    )


def permanent(f: Found) -> bool | None:
    """From the status class, else the reply code's, else the action; None when none says."""
    for code in (f.status, f.reply_code):
        if code and code[0] in "45":
            return code[0] == "5"
    if f.action in ("failed", "delayed"):
        return f.action == "failed"
    return None


__all__ = ["MAX_MESSAGE_BYTES", "ListFacts", "explain", "permanent"]
