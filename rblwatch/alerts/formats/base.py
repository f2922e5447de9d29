"""The one shape every alert format has, and the pieces the formats share.

Pure: no sockets, no clock, no config files. The sender hands a format the event, what the
config says about it (`Context`) and the time of the attempt, and gets back the `Request` to
POST. A format that `resends` is also handed, every resend interval, what fires now (`Firing`,
read from the store's state) and returns the requests that keep those alerts alive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from rblwatch.model import (
    CHECK_EVENTS,
    Ack,
    DnsList,
    Event,
    EventKind,
    ListStatus,
    PairState,
    ResolverState,
    frozen_map,
)

JSON_HEADERS: Mapping[str, str] = frozen_map({"content-type": "application/json"})


@dataclass(frozen=True, slots=True)
class Context:
    """What the configuration says about an event's target and list, at the time of sending."""

    labels: Mapping[str, str] = field(default_factory=frozen_map)  # the target group's labels
    dns_list: DnsList | None = None  # None: the list is no longer configured

    @property
    def delist_url(self) -> str | None:
        return self.dns_list.delist_url if self.dns_list is not None else None

    def meaning(self, code: str) -> str:
        """The configured meaning of a code ("" if none): its exact entry, else those of its
        set bits on a bitmask list (SURBL/URIBL: 127.0.0.24 is "PH; MW")."""
        lst = self.dns_list
        if lst is None:
            return ""
        exact = lst.codes.get(code)
        if exact is not None or not lst.bits:
            return exact or ""
        try:
            last = int(code.rsplit(".", 1)[1])
        except (IndexError, ValueError):
            return ""
        return "; ".join(m for bit, m in sorted(lst.bits.items()) if last & bit)


@dataclass(frozen=True, slots=True)
class Request:
    """One POST: appended to the receiver's URL, with its body and headers."""

    path: str
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Firing:
    """What fires now for one receiver: its listed pairs (each with its context) and its
    unhealthy lists, as the store holds them at the time of a resend."""

    pairs: Sequence[tuple[PairState, Context]] = ()
    lists: Sequence[ListStatus] = ()
    resolver: ResolverState | None = None  # set while unreachable, for a receiver that wants it
    # the active acks by (target, list): a re-post must not drop what the event said
    acks: Mapping[tuple[str, str], Ack] = field(default_factory=dict)


class AlertFormat(Protocol):
    """One receiver format (`receivers[].format`): a module of `rblwatch.alerts.formats`
    and one entry in its `FORMATS` map."""

    @property
    def name(self) -> str:
        """The `format:` value that selects it."""

    @property
    def signs(self) -> bool:
        """Whether it takes a receiver `secret` and signs requests with it (config refuses a
        secret for a format that does not)."""

    @property
    def resends(self) -> bool:
        """Whether the sender re-posts what is firing every resend interval (`resend_requests`):
        for receivers that forget an alert they are not told about again."""

    def event_request(
        self, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
    ) -> Request:
        """The POST that delivers `event` at time `now`; `ttl` is how long a firing alert
        lasts unless re-posted (formats that do not resend ignore it)."""

    def batch_request(
        self, items: Sequence[tuple[Event, Context]], *, secret: str | None, now: float, ttl: float
    ) -> Request:
        """The one POST that delivers several events (a receiver's grouping window, oldest
        first, each with its context) at time `now`. Only for two or more: a single event
        goes as `event_request`, so an ungrouped receiver's messages never change."""

    def resend_requests(self, firing: Firing, *, now: float, ttl: float) -> list[Request]:
        """The POSTs that keep `firing` alive until `now + ttl` ([] for formats that do not
        resend)."""


# -- shared pieces --------------------------------------------------------------------------------


def rfc3339(at: float) -> str:
    """UTC with milliseconds and a Z, as both Standard Webhooks and Alertmanager read it."""
    text = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def webhook_id(event: Event) -> str:
    """The stable id of an event's deliveries: the same on every retry and after restarts."""
    return f"evt_{event.id}"


def is_list_event(event: Event) -> bool:
    return event.kind in (EventKind.LIST_UNHEALTHY, EventKind.LIST_RECOVERED)


def is_resolver_event(event: Event) -> bool:
    """The resolver stopped (or started again) answering: about every list, of none."""
    return event.kind in (EventKind.RESOLVER_UNREACHABLE, EventKind.RESOLVER_RECOVERED)


def is_check_event(event: Event) -> bool:
    """A hygiene check's pair event (check_failed, check_passed, check_changed)."""
    return event.kind in CHECK_EVENTS.values()


def is_bounce_event(event: Event) -> bool:
    """A returned message that blamed a target (`bouncewatch`)."""
    return event.kind is EventKind.BOUNCE


def check_reason(meanings: Sequence[str]) -> str:
    """A failing check's reason (its meanings hold the one sentence)."""
    return "; ".join(m for m in meanings if m)


def codes_of(codes: Sequence[str], meanings: Sequence[str], ctx: Context) -> list[dict[str, str]]:
    """Codes as objects with their meanings: the event's own, else the configured ones.

    An event's meanings are one per code only on lists of exact codes; on a bitmask list
    they are one per set bit (127.0.0.24 and 127.0.0.64 carry three), so pairing them with
    codes by position would give a code another's meaning: then each code's meaning is
    worked out from the list's bits instead.
    """
    paired = len(meanings) == len(codes)
    out = []
    for i, code in enumerate(codes):
        meaning = meanings[i] if paired and meanings[i] else ctx.meaning(code)
        out.append({"code": code, "meaning": meaning})
    return out


def ack_data(ack: Ack | None) -> dict[str, object] | None:
    """The pair's acknowledgement when the event was written (`Event.ack`), or None."""
    if ack is None:
        return None

    def when(at: float | None) -> str | None:
        return rfc3339(at) if at is not None else None

    return {
        "by": ack.by,
        "at": rfc3339(ack.at),
        "note": ack.note,
        "until": when(ack.until),
        "delisting_requested_at": when(ack.delisting_requested_at),
        "delisting_note": ack.delisting_note,
    }


def ack_line(ack: Ack) -> str:
    """One line for people: "Acknowledged by alice: asked on #123 · delisting requested …"."""
    line = f"Acknowledged by {ack.by}"
    if ack.until is not None:
        line += f" until {rfc3339(ack.until)}"
    if ack.note:
        line += f": {ack.note}"
    if ack.delisting_requested_at is not None:
        line += f" · delisting requested {rfc3339(ack.delisting_requested_at)}"
        if ack.delisting_note:
            line += f": {ack.delisting_note}"
    return line


def dumps(doc: object) -> bytes:
    """Compact UTF-8 JSON: the bytes the README documents and the tests pin."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


__all__ = [
    "JSON_HEADERS",
    "AlertFormat",
    "Context",
    "Firing",
    "Request",
    "ack_data",
    "ack_line",
    "check_reason",
    "codes_of",
    "dumps",
    "is_check_event",
    "is_list_event",
    "is_resolver_event",
    "rfc3339",
    "webhook_id",
]
