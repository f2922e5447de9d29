"""What `explain-bounce` reports, as values, and their stable JSON form (README: "Bounces").

Pure. A field the bounce does not carry is None — a status code or reply code is never
invented from another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

Kind = Literal["bounce", "auto_reply", "feedback", "other"]
# the closed set of causes (issue 13): what the operator has to do differs for each
Cause = Literal[
    "blocklisted",
    "reputation",
    "reverse_dns",
    "authentication",
    "content",
    "recipient",
    "routing",
    "policy",
    "receiver_misconfigured",
    "other",
]
CAUSES: tuple[Cause, ...] = get_args(Cause)  # in the order of the Literal


@dataclass(frozen=True, slots=True)
class Recheck:
    """The sending IP (or domain) looked up on the named list now (`--recheck`)."""

    outcome: Literal["listed", "clean", "error"]
    codes: tuple[str, ...] = ()
    reason: str | None = None  # for an error: timeout, refused, …


@dataclass(frozen=True, slots=True)
class NamedList:
    """A blocklist the diagnostic names: by zone, lookup URL or a provider's own code."""

    name: str | None  # the catalogue's name; None when the catalogue does not know it
    named_as: str  # what the bounce said: "zen.spamhaus.org", "S3150", "BL21", a URL
    delist_url: str | None = None
    queryable: bool = True  # False: a provider's own list, not asked over DNS (Microsoft's)
    recheck: Recheck | None = None


@dataclass(frozen=True, slots=True)
class OtherList:
    """A list the bounce did not name that `--recheck` also looked the sending IP up on (the
    config's lists, else the catalogue's default ones)."""

    name: str
    recheck: Recheck
    delist_url: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    address: str | None
    action: str | None = None  # failed, delayed, delivered, relayed, expanded (RFC 3464)
    status: str | None = None  # "5.7.1"
    status_meaning: str | None = None
    reply_code: str | None = None  # "550"
    reply_meaning: str | None = None
    diagnostic: str | None = None  # continuation prefixes ("550-5.7.1 ") removed
    remote_mta: str | None = None
    permanent: bool | None = None  # 5.x.x / 5xx: True; 4.x.x / 4xx: False; unknown: None
    cause: Cause = "other"
    sending_ip: str | None = None  # of the returned original, or quoted in the diagnostic
    lists: tuple[NamedList, ...] = ()
    # --recheck only (None without it): the sending IP on the lists the bounce did not name
    other_lists: tuple[OtherList, ...] | None = None


@dataclass(frozen=True, slots=True)
class Explained:
    source: str
    kind: Kind
    message_id: str | None = None
    reporting_mta: str | None = None
    recipients: tuple[Recipient, ...] = field(default_factory=tuple)
    # why a message could not be read as mail at all (kind "other"), else None
    problem: str | None = None
    # the domain the returned original was sent from (its From, else the bounce's To): how
    # the daemon finds a domain target a bounce blames; not in the JSON (yet)
    sender_domain: str | None = None


def recheck_json(r: Recheck | None) -> dict[str, object] | None:
    if r is None:
        return None
    out: dict[str, object] = {"outcome": r.outcome, "codes": list(r.codes)}
    if r.reason is not None:
        out["reason"] = r.reason
    return out


def recipient_json(r: Recipient) -> dict[str, object]:
    out = _recipient_fields(r)
    if r.other_lists is not None:  # the key only with --recheck: the form without it stays
        out["other_lists"] = [
            {"name": o.name, "delist_url": o.delist_url, "recheck": recheck_json(o.recheck)}
            for o in r.other_lists
        ]
    return out


def _recipient_fields(r: Recipient) -> dict[str, object]:
    return {
        "address": r.address,
        "action": r.action,
        "status": r.status,
        "status_meaning": r.status_meaning,
        "reply_code": r.reply_code,
        "reply_meaning": r.reply_meaning,
        "diagnostic": r.diagnostic,
        "remote_mta": r.remote_mta,
        "permanent": r.permanent,
        "cause": r.cause,
        "sending_ip": r.sending_ip,
        "lists": [
            {
                "name": n.name,
                "named_as": n.named_as,
                "delist_url": n.delist_url,
                "queryable": n.queryable,
                "recheck": recheck_json(n.recheck),
            }
            for n in r.lists
        ],
    }


def message_json(m: Explained) -> dict[str, object]:
    out: dict[str, object] = {
        "source": m.source,
        "message_id": m.message_id,
        "kind": m.kind,
        "reporting_mta": m.reporting_mta,
        "recipients": [recipient_json(r) for r in m.recipients],
    }
    if m.problem is not None:
        out["problem"] = m.problem
    return out


def report_json(messages: list[Explained]) -> dict[str, object]:
    """The object `rblwatch explain-bounce --format json` prints."""
    return {"messages": [message_json(m) for m in messages]}


__all__ = [
    "CAUSES",
    "Cause",
    "Explained",
    "Kind",
    "NamedList",
    "OtherList",
    "Recheck",
    "Recipient",
    "message_json",
    "recheck_json",
    "recipient_json",
    "report_json",
]
