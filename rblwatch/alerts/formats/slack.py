"""`format: slack`: an event as a Slack incoming-webhook message (SPEC §12).

`text` for notifications and old clients, `blocks` for what the channel shows. Every piece of
text that came from outside (TXT records, names) is escaped, so it cannot forge a link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    rfc3339,
    webhook_id,
)
from rblwatch.model import Event, EventKind

MAX_TXT = 500  # Slack fields hold 2,000 characters; TXT records are rarely useful beyond this

_TITLES: Mapping[EventKind, str] = {
    EventKind.LISTED: "{target} is listed on {list}",
    EventKind.DELISTED: "{target} is no longer listed on {list}",
    EventKind.CHANGED: "{target}: the listing on {list} changed",
    EventKind.LIST_UNHEALTHY: "List {list} is unhealthy: its answers are not trusted",
    EventKind.LIST_RECOVERED: "List {list} is healthy again",
    EventKind.CHECK_FAILED: "{target} fails the {list} check",
    EventKind.CHECK_PASSED: "{target} passes the {list} check again",
    EventKind.CHECK_CHANGED: "{target}: the {list} check fails differently",
    EventKind.BOUNCE: "Mail from {target} bounced",
}
_ICONS: Mapping[EventKind, str] = {
    EventKind.LISTED: ":rotating_light:",
    EventKind.DELISTED: ":white_check_mark:",
    EventKind.CHANGED: ":warning:",
    EventKind.LIST_UNHEALTHY: ":warning:",
    EventKind.LIST_RECOVERED: ":white_check_mark:",
    EventKind.CHECK_FAILED: ":rotating_light:",
    EventKind.CHECK_PASSED: ":white_check_mark:",
    EventKind.CHECK_CHANGED: ":warning:",
    EventKind.BOUNCE: ":leftwards_arrow_with_hook:",
}


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
    fields = [
        _field("Target", _mrkdwn(_target(event))),
        _field("List", _mrkdwn(event.list)),
        _field("Group", _mrkdwn(event.group or "")),
        _field("Codes", _code_lines(codes_of(event.codes, event.meanings, ctx))),
    ]
    if event.kind is EventKind.CHANGED:
        fields.append(_field("Before", _code_lines(codes_of(event.previous_codes, (), ctx))))
    if event.txt:
        fields.append(_field("TXT", _mrkdwn(event.txt[:MAX_TXT])))
    return fields


def slack_body(event: Event, ctx: Context) -> bytes:
    """`text` (notifications and old clients) plus `blocks` (what the channel shows)."""
    title = _TITLES[event.kind].format(target=_target(event), list=event.list)
    if event.initial:
        title += " (found on the first check)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": _fields(event, ctx)},
    ]
    if event.ack is not None:
        line = _mrkdwn(ack_line(event.ack)[:MAX_TXT])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line}})
    url = ctx.delist_url
    if url and event.kind in (EventKind.LISTED, EventKind.CHANGED):
        link = f"<{_mrkdwn(url)}|Request removal from {_mrkdwn(event.list)}>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    context = f"rblwatch {webhook_id(event)} · {rfc3339(event.at)}"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    text = f"{_ICONS[event.kind]} {_mrkdwn(title)}"
    return dumps({"text": text, "blocks": blocks})


def slack_request(event: Event, ctx: Context) -> Request:
    return Request("", slack_body(event, ctx), JSON_HEADERS)


class Slack:
    """The `AlertFormat` of `format: slack`: unsigned (the webhook URL is the credential)."""

    name = "slack"
    signs = False
    resends = False

    def event_request(
        self, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
    ) -> Request:
        return slack_request(event, ctx)

    def resend_requests(self, firing: Firing, *, now: float, ttl: float) -> list[Request]:
        return []


FORMAT = Slack()

__all__ = ["FORMAT", "MAX_TXT", "Slack", "slack_body", "slack_request"]
