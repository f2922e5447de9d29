"""`format: json`: an event as a Standard Webhooks 1.0 delivery (SPEC §12).

Decisions:

- The body is built from the event alone, so every retry of an event sends the same bytes under
  the same `webhook-id` (`evt_<event id>`); only `webhook-timestamp` and the signature change per
  attempt, as the standard intends (a receiver rejects timestamps more than a few minutes off,
  so a retry must not replay an old one).
- Codes travel as objects, `[{"code": "127.0.0.2", "meaning": "SBL"}]`: parallel arrays are easy
  to misalign, and an object per code leaves room for more fields later.
- Signed with the receiver's `whsec_…` secret when it has one; unsigned otherwise.
- A grouped message (a receiver with `group_wait`, two or more events in its window) is one
  delivery of type `batch` whose `data.events` holds each event's usual body, unchanged, with
  its own `data.id` (`evt_<event id>`): receivers de-duplicate by those, since a batch retried
  after more events arrived is another set. Its `webhook-id` is `batch_<first event id>_` and
  16 hex digits of a SHA-256 of its events' ids: stable for one set, unique across sets. A single
  event is never wrapped, so a receiver without grouping sees exactly what it always did.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from rblwatch.alerts.formats.base import (
    JSON_HEADERS,
    Context,
    Firing,
    Request,
    ack_data,
    check_reason,
    codes_of,
    dumps,
    is_bounce_event,
    is_check_event,
    is_list_event,
    is_resolver_event,
    rfc3339,
    webhook_id,
)
from rblwatch.model import Event, EventKind, PairStatus

JSON_TYPES: Mapping[EventKind, str] = {
    EventKind.LISTED: "listing.created",
    EventKind.DELISTED: "listing.removed",
    EventKind.CHANGED: "listing.changed",
    EventKind.LIST_UNHEALTHY: "list.unhealthy",
    EventKind.LIST_RECOVERED: "list.recovered",
    EventKind.RESOLVER_UNREACHABLE: "resolver.unreachable",
    EventKind.RESOLVER_RECOVERED: "resolver.recovered",
    EventKind.CHECK_FAILED: "check.failed",
    EventKind.CHECK_PASSED: "check.passed",
    EventKind.CHECK_CHANGED: "check.changed",
    EventKind.BOUNCE: "bounce.received",
    EventKind.REMINDER: "listing.reminder",
}
BATCH_TYPE = "batch"


def _check_data(event: Event, ctx: Context) -> dict[str, Any]:
    """A hygiene pair's event: the check, its result word and reason (the fix to make)."""
    passed = event.kind is EventKind.CHECK_PASSED
    since = event.at if event.kind is EventKind.CHECK_FAILED else event.since
    return {
        "check": event.list,
        "target": event.target,
        "group": event.group,
        "labels": dict(ctx.labels),  # the group's, as a listing's event carries them
        "state": "pass" if passed else "fail",
        "result": event.codes[0] if event.codes else None,
        "reason": check_reason(event.meanings) or None,
        "since": rfc3339(since) if since is not None else None,
        "initial": event.initial,
        "previous": {
            "result": event.previous_codes[0] if event.previous_codes else None,
            "reason": event.detail.removeprefix("before: ") or None,
        },
    }


def _bounce_data(event: Event, ctx: Context) -> dict[str, Any]:
    """A bounce that blamed a target: its cause, code, the list it named and what it said."""
    return {
        "target": event.target,
        "group": event.group,
        "labels": dict(ctx.labels),
        "cause": event.meanings[0] if event.meanings else None,
        "status": event.codes[0] if event.codes and event.codes[0] else None,
        "diagnostic": event.detail or None,
    }


def _previous(event: Event, ctx: Context) -> dict[str, Any]:
    """The state the event ends: clean before a listing (unknown before a first-lookup one)."""
    if event.kind is EventKind.LISTED:
        return {"state": None if event.initial else PairStatus.CLEAN.value, "codes": []}
    if event.kind is EventKind.REMINDER:  # news, not a change: the state it reminds of
        return {"state": PairStatus.LISTED.value, "codes": codes_of(event.codes, (), ctx)}
    codes = codes_of(event.previous_codes, (), ctx)
    return {"state": PairStatus.LISTED.value, "codes": codes}


def _pair_data(event: Event, ctx: Context) -> dict[str, Any]:
    state = PairStatus.CLEAN if event.kind is EventKind.DELISTED else PairStatus.LISTED
    since = event.at if event.kind is EventKind.LISTED else event.since
    return {
        "target": event.target,
        "hostname": event.hostname,  # the `hostnames:` entry the address was found through
        "group": event.group,
        "labels": dict(ctx.labels),
        "state": state.value,
        # for listing.removed: the codes of the listing that ended
        "codes": codes_of(event.codes, event.meanings, ctx),
        "txt": event.txt,
        "since": rfc3339(since) if since is not None else None,
        "initial": event.initial,
        "previous": _previous(event, ctx),
    }


def json_body(event: Event, ctx: Context) -> bytes:
    """`{type, timestamp, data}`; the same bytes for every attempt of the event."""
    return dumps(json_doc(event, ctx))


def json_doc(event: Event, ctx: Context) -> dict[str, Any]:
    """The document `json_body` encodes: an event's usual body, also inside a batch."""
    data: dict[str, Any] = {
        "id": webhook_id(event),
        "event_id": event.id,
        "kind": event.kind.value,
        "list": event.list,
        "delist_url": ctx.delist_url,
    }
    if is_list_event(event):
        data["detail"] = event.detail
    elif is_resolver_event(event):
        # `list` is "": the resolver every list without nameservers of its own is asked through
        unreachable = event.kind is EventKind.RESOLVER_UNREACHABLE
        since = event.at if unreachable else event.since
        data["state"] = "unreachable" if unreachable else "ok"
        data["since"] = rfc3339(since) if since is not None else None
        data["detail"] = event.detail
    elif is_check_event(event):
        data.update(_check_data(event, ctx))
    elif is_bounce_event(event):
        data.update(_bounce_data(event, ctx))
    else:
        data.update(_pair_data(event, ctx))
    # who is working on the pair (the operator's ack when the event was written), or null
    data["ack"] = ack_data(event.ack)
    return {"type": JSON_TYPES[event.kind], "timestamp": rfc3339(event.at), "data": data}


def batch_id(events: Sequence[Event]) -> str:
    """The `webhook-id` of a batch: the same for the same events, in any attempt."""
    ids = ",".join(webhook_id(e) for e in events)
    digest = hashlib.sha256(ids.encode()).hexdigest()[:16]
    return f"batch_{events[0].id}_{digest}"


def batch_body(items: Sequence[tuple[Event, Context]]) -> bytes:
    """`{type: batch, timestamp: <the last event's>, data: {events: [<each usual body>]}}`."""
    events = [json_doc(event, ctx) for event, ctx in items]
    last = items[-1][0]
    return dumps({"type": BATCH_TYPE, "timestamp": rfc3339(last.at), "data": {"events": events}})


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_…` secret: the base64-decoded part after the prefix."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks 1.0, symmetric)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def json_request(event: Event, ctx: Context, secret: str | None, now: float) -> Request:
    """The webhook POST; unsigned (no `webhook-signature`) when the receiver has no secret."""
    return _signed(webhook_id(event), json_body(event, ctx), secret, now)


def json_batch_request(
    items: Sequence[tuple[Event, Context]], secret: str | None, now: float
) -> Request:
    """One POST delivering several events, signed as one message."""
    return _signed(batch_id([e for e, _ in items]), batch_body(items), secret, now)


def _signed(msg_id: str, body: bytes, secret: str | None, now: float) -> Request:
    timestamp = int(now)
    headers = {**JSON_HEADERS, "webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return Request("", body, headers)


class StandardWebhooks:
    """The `AlertFormat` of `format: json`."""

    name = "json"
    signs = True
    resends = False

    def event_request(
        self, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
    ) -> Request:
        return json_request(event, ctx, secret, now)

    def batch_request(
        self, items: Sequence[tuple[Event, Context]], *, secret: str | None, now: float, ttl: float
    ) -> Request:
        return json_batch_request(items, secret, now)

    def resend_requests(self, firing: Firing, *, now: float, ttl: float) -> list[Request]:
        return []


FORMAT = StandardWebhooks()

__all__ = [
    "BATCH_TYPE",
    "FORMAT",
    "JSON_TYPES",
    "StandardWebhooks",
    "batch_body",
    "batch_id",
    "json_batch_request",
    "json_body",
    "json_doc",
    "json_request",
    "sign",
    "signing_key",
]
