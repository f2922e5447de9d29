"""Alert payloads: what one event looks like to a json, slack or alertmanager receiver (SPEC §12).

Pure: no sockets, no clock, no config files. The sender hands in the event, what the config says
about it (`Context`) and the time of the attempt, and gets back the bytes and headers to POST.

Decisions:

- `json` follows Standard Webhooks 1.0. The body is built from the event alone, so every retry
  of an event sends the same bytes under the same `webhook-id` (`evt_<event id>`); only
  `webhook-timestamp` and the signature change per attempt, as the standard intends (a receiver
  rejects timestamps more than a few minutes off, so a retry must not replay an old one).
- Codes travel as objects, `[{"code": "127.0.0.2", "meaning": "SBL"}]`: parallel arrays are easy
  to misalign, and an object per code leaves room for more fields later.
- `alertmanager` alerts are identified by their labels (alertname, target, list, group and the
  group's own labels), never by codes: a code change is the same alert with new annotations.
  A firing alert's `endsAt` is `now + ttl`, so alerts of a stopped rblwatch expire on their own;
  the sender re-posts them while they last (see `rblwatch.alerts.sender`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rblwatch.model import DnsList, Event, EventKind, PairState, PairStatus, frozen_map

JSON_TYPES: Mapping[EventKind, str] = {
    EventKind.LISTED: "listing.created",
    EventKind.DELISTED: "listing.removed",
    EventKind.CHANGED: "listing.changed",
    EventKind.LIST_UNHEALTHY: "list.unhealthy",
    EventKind.LIST_RECOVERED: "list.recovered",
}
ALERTMANAGER_PATH = "/api/v2/alerts"
LISTED_ALERT = "RblwatchListed"
UNHEALTHY_ALERT = "RblwatchListUnhealthy"
MAX_TXT = 500  # Slack fields hold 2,000 characters; TXT records are rarely useful beyond this

_JSON_HEADERS: Mapping[str, str] = frozen_map({"content-type": "application/json"})


@dataclass(frozen=True, slots=True)
class Context:
    """What the configuration says about an event's target and list, at the time of sending."""

    labels: Mapping[str, str] = field(default_factory=frozen_map)  # the target group's labels
    dns_list: DnsList | None = None  # None: the list is no longer configured

    @property
    def delist_url(self) -> str | None:
        return self.dns_list.delist_url if self.dns_list is not None else None

    def meaning(self, code: str) -> str:
        """The configured meaning of an exact code ("" if none): for previous codes, whose
        meanings the event does not carry."""
        return self.dns_list.codes.get(code, "") if self.dns_list is not None else ""


@dataclass(frozen=True, slots=True)
class Request:
    """One POST: appended to the receiver's URL, with its body and headers."""

    path: str
    body: bytes
    headers: Mapping[str, str]


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


def _codes(codes: Sequence[str], meanings: Sequence[str], ctx: Context) -> list[dict[str, str]]:
    out = []
    for i, code in enumerate(codes):
        meaning = meanings[i] if i < len(meanings) and meanings[i] else ctx.meaning(code)
        out.append({"code": code, "meaning": meaning})
    return out


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


# -- json: Standard Webhooks 1.0 ------------------------------------------------------------------


def _previous(event: Event, ctx: Context) -> dict[str, Any]:
    """The state the event ends: clean before a listing (unknown before a first-lookup one)."""
    if event.kind is EventKind.LISTED:
        return {"state": None if event.initial else PairStatus.CLEAN.value, "codes": []}
    codes = _codes(event.previous_codes, (), ctx)
    return {"state": PairStatus.LISTED.value, "codes": codes}


def _pair_data(event: Event, ctx: Context) -> dict[str, Any]:
    state = PairStatus.CLEAN if event.kind is EventKind.DELISTED else PairStatus.LISTED
    since = event.at if event.kind is EventKind.LISTED else event.since
    return {
        "target": event.target,
        "group": event.group,
        "labels": dict(ctx.labels),
        "state": state.value,
        # for listing.removed: the codes of the listing that ended
        "codes": _codes(event.codes, event.meanings, ctx),
        "txt": event.txt,
        "since": rfc3339(since) if since is not None else None,
        "initial": event.initial,
        "previous": _previous(event, ctx),
    }


def json_body(event: Event, ctx: Context) -> bytes:
    """`{type, timestamp, data}`; the same bytes for every attempt of the event."""
    data: dict[str, Any] = {
        "id": webhook_id(event),
        "event_id": event.id,
        "kind": event.kind.value,
        "list": event.list,
        "delist_url": ctx.delist_url,
    }
    if is_list_event(event):
        data["detail"] = event.detail
    else:
        data.update(_pair_data(event, ctx))
    return _dumps({"type": JSON_TYPES[event.kind], "timestamp": rfc3339(event.at), "data": data})


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
    body = json_body(event, ctx)
    msg_id = webhook_id(event)
    timestamp = int(now)
    headers = {**_JSON_HEADERS, "webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = sign(secret, msg_id, timestamp, body)
    return Request("", body, headers)


# -- slack: an incoming-webhook message -----------------------------------------------------------

_SLACK_TITLES: Mapping[EventKind, str] = {
    EventKind.LISTED: "{target} is listed on {list}",
    EventKind.DELISTED: "{target} is no longer listed on {list}",
    EventKind.CHANGED: "{target}: the listing on {list} changed",
    EventKind.LIST_UNHEALTHY: "List {list} is unhealthy: its answers are not trusted",
    EventKind.LIST_RECOVERED: "List {list} is healthy again",
}
_SLACK_ICONS: Mapping[EventKind, str] = {
    EventKind.LISTED: ":rotating_light:",
    EventKind.DELISTED: ":white_check_mark:",
    EventKind.CHANGED: ":warning:",
    EventKind.LIST_UNHEALTHY: ":warning:",
    EventKind.LIST_RECOVERED: ":white_check_mark:",
}


def _mrkdwn(text: str) -> str:
    """Slack's three escapes: without them a `<` in a TXT record could forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_lines(codes: Iterable[dict[str, str]]) -> str:
    lines = [f"{c['code']} {c['meaning']}".strip() for c in codes]
    return _mrkdwn("\n".join(lines)) or "-"


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{title}*\n{value}"}


def _slack_fields(event: Event, ctx: Context) -> list[dict[str, str]]:
    if is_list_event(event):
        return [_field("List", _mrkdwn(event.list)), _field("Detail", _mrkdwn(event.detail or "-"))]
    fields = [
        _field("Target", _mrkdwn(event.target or "")),
        _field("List", _mrkdwn(event.list)),
        _field("Group", _mrkdwn(event.group or "")),
        _field("Codes", _code_lines(_codes(event.codes, event.meanings, ctx))),
    ]
    if event.kind is EventKind.CHANGED:
        fields.append(_field("Before", _code_lines(_codes(event.previous_codes, (), ctx))))
    if event.txt:
        fields.append(_field("TXT", _mrkdwn(event.txt[:MAX_TXT])))
    return fields


def slack_body(event: Event, ctx: Context) -> bytes:
    """`text` (notifications and old clients) plus `blocks` (what the channel shows)."""
    title = _SLACK_TITLES[event.kind].format(target=event.target, list=event.list)
    if event.initial:
        title += " (found on the first check)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": _slack_fields(event, ctx)},
    ]
    url = ctx.delist_url
    if url and event.kind in (EventKind.LISTED, EventKind.CHANGED):
        link = f"<{_mrkdwn(url)}|Request removal from {_mrkdwn(event.list)}>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    context = f"rblwatch {webhook_id(event)} · {rfc3339(event.at)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    text = f"{_SLACK_ICONS[event.kind]} {_mrkdwn(title)}"
    return _dumps({"text": text, "blocks": blocks})


def slack_request(event: Event, ctx: Context) -> Request:
    return Request("", slack_body(event, ctx), _JSON_HEADERS)


# -- alertmanager: rblwatch as an alert generator -------------------------------------------------


def _labels(alertname: str, ctx: Context, **fixed: str | None) -> dict[str, str]:
    # the group's own labels route alerts (team=…, site=…); the fixed ones always win
    labels = {k: v for k, v in ctx.labels.items() if v}
    labels.update({k: v for k, v in fixed.items() if v})
    labels["alertname"] = alertname
    return labels


def _listing_alert(
    *,
    target: str,
    list_name: str,
    group: str,
    codes: list[dict[str, str]],
    starts: float,
    ends: float,
    ctx: Context,
) -> dict[str, Any]:
    shown = ", ".join(f"{c['code']} {c['meaning']}".strip() for c in codes) or "listed"
    return {
        "labels": _labels(LISTED_ALERT, ctx, target=target, list=list_name, group=group),
        "annotations": {
            "summary": f"{target} is listed on {list_name}",
            "description": f"{target} (group {group}) is listed on {list_name}: {shown}",
            "delist_url": ctx.delist_url or "",
            "codes": ",".join(c["code"] for c in codes),
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }


def _unhealthy_alert(list_name: str, detail: str, starts: float, ends: float) -> dict[str, Any]:
    return {
        "labels": {"alertname": UNHEALTHY_ALERT, "list": list_name},
        "annotations": {
            "summary": f"List {list_name} is unhealthy",
            "description": f"List {list_name} fails its RFC 5782 test points: {detail or '-'}."
            " Its answers are not trusted and its listings are not re-checked until it recovers.",
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }


def event_alert(event: Event, ctx: Context, now: float, ttl: float) -> dict[str, Any]:
    """The alert an event sets: firing until `now + ttl`, or resolved at the event's time."""
    resolved = event.kind in (EventKind.DELISTED, EventKind.LIST_RECOVERED)
    # a resolved alert must not start after it ends (Alertmanager rejects that)
    starts = event.since if resolved and event.since is not None else event.at
    ends = event.at if resolved else now + ttl
    if is_list_event(event):
        return _unhealthy_alert(event.list, event.detail, starts, ends)
    return _listing_alert(
        target=event.target or "",
        list_name=event.list,
        group=event.group or "",
        codes=_codes(event.codes, event.meanings, ctx),
        starts=starts,
        ends=ends,
        ctx=ctx,
    )


def pair_alert(pair: PairState, ctx: Context, now: float, ttl: float) -> dict[str, Any]:
    """The firing alert of a pair listed now (the periodic re-post)."""
    return _listing_alert(
        target=pair.target,
        list_name=pair.list,
        group=pair.group,
        codes=_codes(pair.codes, pair.meanings, ctx),
        starts=pair.since,
        ends=now + ttl,
        ctx=ctx,
    )


def unhealthy_alert(
    list_name: str, detail: str, since: float, now: float, ttl: float
) -> dict[str, Any]:
    """The firing alert of a list unhealthy now (the periodic re-post)."""
    return _unhealthy_alert(list_name, detail, min(since, now), now + ttl)


def alertmanager_request(alerts: Sequence[dict[str, Any]]) -> Request:
    return Request(ALERTMANAGER_PATH, _dumps(list(alerts)), _JSON_HEADERS)


# -- one event, any format ------------------------------------------------------------------------


def event_request(
    fmt: str, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
) -> Request:
    """The POST that delivers `event` to a receiver of format `fmt` at time `now`."""
    if fmt == "slack":
        return slack_request(event, ctx)
    if fmt == "alertmanager":
        return alertmanager_request([event_alert(event, ctx, now, ttl)])
    return json_request(event, ctx, secret, now)


__all__ = [
    "ALERTMANAGER_PATH",
    "JSON_TYPES",
    "LISTED_ALERT",
    "UNHEALTHY_ALERT",
    "Context",
    "Request",
    "alertmanager_request",
    "event_alert",
    "event_request",
    "is_list_event",
    "json_body",
    "json_request",
    "pair_alert",
    "rfc3339",
    "sign",
    "signing_key",
    "slack_body",
    "slack_request",
    "unhealthy_alert",
    "webhook_id",
]
