"""`format: slack`: an event as a Slack incoming-webhook message (SPEC §12).

`text` for notifications and old clients, `blocks` for what the channel shows. Every piece of
text that came from outside (TXT records, names) is escaped, so it cannot forge a link.

A grouped message (several events of one window) lists them one line each, packed into
sections, with one removal link per list: Slack takes at most 50 blocks and 3,000 characters
a section, so a line is at most `MAX_LINE` characters and config caps `group_max` at 100 for
this format (at most 25,000 characters, 10 sections).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rblwatch.alerts.formats.base import (
    JSON_HEADERS,
    Context,
    Firing,
    Request,
    ack_line,
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
from rblwatch.model import Event, EventKind

MAX_TXT = 500  # Slack fields hold 2,000 characters; TXT records are rarely useful beyond this
MAX_LINE = 250  # one event's line in a grouped message
MAX_SECTION = 3000  # Slack's limit on a section's text

_TITLES: Mapping[EventKind, str] = {
    EventKind.LISTED: "{target} is listed on {list}",
    EventKind.DELISTED: "{target} is no longer listed on {list}",
    EventKind.CHANGED: "{target}: the listing on {list} changed",
    EventKind.LIST_UNHEALTHY: "List {list} is unhealthy: its answers are not trusted",
    EventKind.LIST_RECOVERED: "List {list} is healthy again",
    EventKind.RESOLVER_UNREACHABLE: "The resolver is unreachable: no list is being checked",
    EventKind.RESOLVER_RECOVERED: "The resolver answers again: the lists are checked again",
    EventKind.CHECK_FAILED: "{target} fails the {list} check",
    EventKind.CHECK_PASSED: "{target} passes the {list} check again",
    EventKind.CHECK_CHANGED: "{target}: the {list} check fails differently",
    EventKind.BOUNCE: "Mail from {target} bounced",
    EventKind.REMINDER: "Reminder: {target} is still listed on {list}",
}
_ICONS: Mapping[EventKind, str] = {
    EventKind.LISTED: ":rotating_light:",
    EventKind.DELISTED: ":white_check_mark:",
    EventKind.CHANGED: ":warning:",
    EventKind.LIST_UNHEALTHY: ":warning:",
    EventKind.LIST_RECOVERED: ":white_check_mark:",
    EventKind.RESOLVER_UNREACHABLE: ":warning:",
    EventKind.RESOLVER_RECOVERED: ":white_check_mark:",
    EventKind.CHECK_FAILED: ":rotating_light:",
    EventKind.CHECK_PASSED: ":white_check_mark:",
    EventKind.CHECK_CHANGED: ":warning:",
    EventKind.BOUNCE: ":leftwards_arrow_with_hook:",
    EventKind.REMINDER: ":alarm_clock:",
}
_LINKED = (EventKind.LISTED, EventKind.CHANGED, EventKind.REMINDER)  # a removal link helps


def _mrkdwn(text: str) -> str:
    """Slack's three escapes: without them a `<` in a TXT record could forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_lines(codes: Iterable[dict[str, str]]) -> str:
    lines = [f"{c['code']} {c['meaning']}".strip() for c in codes]
    return _mrkdwn("\n".join(lines)) or "-"


def _field(title: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{title}*\n{value}"}


def _target(event: Event) -> str:
    """The target as people know it: an address found through a hostname says which."""
    target = event.target or ""
    return f"{target} ({event.hostname})" if event.hostname else target


def _check_fields(event: Event) -> list[dict[str, str]]:
    fields = [
        _field("Target", _mrkdwn(_target(event))),
        _field("Check", _mrkdwn(event.list)),
        _field("Group", _mrkdwn(event.group or "")),
        _field("Result", _mrkdwn(",".join(event.codes) or "-")),
    ]
    if event.meanings:
        fields.append(_field("Reason", _mrkdwn(check_reason(event.meanings)[:MAX_TXT])))
    if event.detail:
        fields.append(_field("Before", _mrkdwn(event.detail[:MAX_TXT])))
    return fields


def _bounce_fields(event: Event) -> list[dict[str, str]]:
    fields = [
        _field("Target", _mrkdwn(_target(event))),
        _field("Group", _mrkdwn(event.group or "")),
        _field("Cause", _mrkdwn(check_reason(event.meanings) or "-")),
        _field("Status", _mrkdwn(",".join(c for c in event.codes if c) or "-")),
    ]
    if event.list:
        fields.append(_field("List named", _mrkdwn(event.list)))
    if event.detail:
        fields.append(_field("Diagnostic", _mrkdwn(event.detail[:MAX_TXT])))
    return fields


def _fields(event: Event, ctx: Context) -> list[dict[str, str]]:
    if is_check_event(event):
        return _check_fields(event)
    if is_bounce_event(event):
        return _bounce_fields(event)
    if is_list_event(event):
        return [_field("List", _mrkdwn(event.list)), _field("Detail", _mrkdwn(event.detail or "-"))]
    if is_resolver_event(event):
        since = f"since {rfc3339(event.since)}" if event.since is not None else "-"
        down = event.kind is EventKind.RESOLVER_UNREACHABLE
        return [
            _field("Detail", _mrkdwn(event.detail[:MAX_TXT] or "-")),
            _field("Since" if down else "Outage", rfc3339(event.at) if down else since),
        ]
    fields = [
        _field("Target", _mrkdwn(_target(event))),
        _field("List", _mrkdwn(event.list)),
        _field("Group", _mrkdwn(event.group or "")),
        _field("Codes", _code_lines(codes_of(event.codes, event.meanings, ctx))),
    ]
    if event.kind is EventKind.CHANGED:
        fields.append(_field("Before", _code_lines(codes_of(event.previous_codes, (), ctx))))
    if event.kind is EventKind.REMINDER and event.since is not None:
        fields.append(_field("Listed since", rfc3339(event.since)))
    if event.txt:
        fields.append(_field("TXT", _mrkdwn(event.txt[:MAX_TXT])))
    return fields


def slack_body(event: Event, ctx: Context) -> bytes:
    """`text` (notifications and old clients) plus `blocks` (what the channel shows)."""
    title = _title(event)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": _fields(event, ctx)},
    ]
    if event.ack is not None:
        line = _mrkdwn(ack_line(event.ack)[:MAX_TXT])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line}})
    url = ctx.delist_url
    if url and event.kind in _LINKED:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _link(url, event)}})
    context = f"rblwatch {webhook_id(event)} · {rfc3339(event.at)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    text = f"{_ICONS[event.kind]} {_mrkdwn(title)}"
    return dumps({"text": text, "blocks": blocks})


def _link(url: str, event: Event) -> str:
    return f"<{_mrkdwn(url)}|Request removal from {_mrkdwn(event.list)}>"


def slack_request(event: Event, ctx: Context) -> Request:
    return Request("", slack_body(event, ctx), JSON_HEADERS)


def _title(event: Event) -> str:
    title = _TITLES[event.kind].format(target=_target(event), list=event.list)
    return title + " (found on the first check)" if event.initial else title


def _line(event: Event, ctx: Context) -> str:
    """One event of a grouped message: icon, title and, for a listing, its codes."""
    text = _title(event)
    if event.kind in _LINKED and event.codes:
        codes = codes_of(event.codes, event.meanings, ctx)
        text += ": " + ", ".join(f"{c['code']} {c['meaning']}".strip() for c in codes)
    if len(text) > MAX_LINE:
        text = text[: MAX_LINE - 1] + "…"
    return f"{_ICONS[event.kind]} {_mrkdwn(text)}"


def _sections(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Lines packed into as few sections as Slack's per-section limit allows."""
    packs: list[list[str]] = [[]]
    size = 0
    for line in lines:
        if packs[-1] and size + len(line) + 1 > MAX_SECTION:
            packs.append([])
            size = 0
        packs[-1].append(line)
        size += len(line) + 1
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(p)}} for p in packs]


def _summary(events: Sequence[Event]) -> str:
    counts: dict[EventKind, int] = {}
    for event in events:
        counts[event.kind] = counts.get(event.kind, 0) + 1
    parts = ", ".join(f"{n} {kind.value}" for kind, n in counts.items())
    return f"{len(events)} rblwatch events: {parts}"


def slack_batch_body(items: Sequence[tuple[Event, Context]]) -> bytes:
    """One message listing several events, oldest first, and each list's removal link."""
    events = [e for e, _ in items]
    links: dict[str, str] = {}
    for event, ctx in items:
        url = ctx.delist_url
        if url and event.kind in _LINKED:
            links.setdefault(event.list, _link(url, event))
    summary = _summary(events)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": summary[:150]}},
        *_sections(_line(e, ctx) for e, ctx in items),
        *(_sections(links.values()) if links else []),
    ]
    span = f"{webhook_id(events[0])} … {webhook_id(events[-1])}"
    context = f"rblwatch {span} · {rfc3339(events[0].at)} to {rfc3339(events[-1].at)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return dumps({"text": _mrkdwn(summary), "blocks": blocks})


class Slack:
    """The `AlertFormat` of `format: slack`: unsigned (the webhook URL is the credential)."""

    name = "slack"
    signs = False
    resends = False

    def event_request(
        self, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
    ) -> Request:
        return slack_request(event, ctx)

    def batch_request(
        self, items: Sequence[tuple[Event, Context]], *, secret: str | None, now: float, ttl: float
    ) -> Request:
        return Request("", slack_batch_body(items), JSON_HEADERS)

    def resend_requests(self, firing: Firing, *, now: float, ttl: float) -> list[Request]:
        return []


FORMAT = Slack()

__all__ = [
    "FORMAT",
    "MAX_LINE",
    "MAX_TXT",
    "Slack",
    "slack_batch_body",
    "slack_body",
    "slack_request",
]
