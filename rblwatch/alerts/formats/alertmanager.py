"""`format: alertmanager`: rblwatch as an alert generator, posting to `/api/v2/alerts` (SPEC §12).

Decisions:

- Alerts are identified by their labels (alertname, target, list, group and the group's own
  labels), never by codes: a code change is the same alert with new annotations.
- A firing alert's `endsAt` is `now + ttl`, so alerts of a stopped rblwatch expire on their
  own; this format `resends`: the sender re-posts what fires every resend interval while it
  lasts (see `rblwatch.alerts.sender`).
- A resolving alert (delisting, recovery) starts when the condition began (the event's
  `since`) and ends at the event: Alertmanager rejects an alert that ends before it starts,
  and an alert it no longer holds is shown with the times it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rblwatch.alerts.formats.base import (
    JSON_HEADERS,
    Context,
    Firing,
    Request,
    check_reason,
    codes_of,
    dumps,
    is_bounce_event,
    is_check_event,
    is_list_event,
    is_resolver_event,
    rfc3339,
)
from rblwatch.model import HYGIENE_CHECKS, Ack, Event, EventKind, PairState, ResolverState

ALERTMANAGER_PATH = "/api/v2/alerts"
ALERTMANAGER_BATCH = 500  # alerts per re-post request
LISTED_ALERT = "RblwatchListed"
UNHEALTHY_ALERT = "RblwatchListUnhealthy"
CHECK_ALERT = "RblwatchCheckFailing"
BOUNCE_ALERT = "RblwatchBounce"
RESOLVER_ALERT = "RblwatchResolverUnreachable"


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


def _check_alert(
    *,
    target: str,
    check: str,
    group: str,
    result: str,
    reason: str,
    starts: float,
    ends: float,
    ctx: Context,
) -> dict[str, Any]:
    return {
        "labels": _labels(CHECK_ALERT, ctx, target=target, check=check, group=group),
        "annotations": {
            "summary": f"{target} fails the {check} check",
            "description": f"{target} (group {group}) fails the {check} check: {reason or result}",
            "result": result,
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }


def _bounce_alert(event: Event, ctx: Context, ends: float) -> dict[str, Any]:
    """A bounce is news, not a state: its alert fires until `ends` and is never re-posted."""
    target = event.target or ""
    cause = check_reason(event.meanings) or "other"
    named = f" naming {event.list}" if event.list else ""
    return {
        "labels": _labels(
            BOUNCE_ALERT, ctx, target=target, group=event.group or "", cause=cause, list=event.list
        ),
        "annotations": {
            "summary": f"Mail from {target} bounced ({cause})",
            "description": f"A bounce{named} blamed {target} (group {event.group or ''}):"
            f" {event.detail or cause}",
            "delist_url": ctx.delist_url or "",
        },
        "startsAt": rfc3339(event.at),
        "endsAt": rfc3339(ends),
    }


def _unhealthy_description(list_name: str, detail: str) -> str:
    return (
        f"List {list_name} fails its RFC 5782 test points: {detail or '-'}."
        " Its answers are not trusted and its listings are not re-checked until it recovers."
    )


def _recovered_description(list_name: str, since: float | None) -> str:
    # a recovery event carries no detail of the failure it ends: say what holds now instead
    period = f" (unhealthy since {rfc3339(since)})" if since is not None else ""
    return (
        f"List {list_name} passes its RFC 5782 test points again{period}."
        " Its answers are trusted and its listings are re-checked."
    )


def _unhealthy_alert(name: str, description: str, starts: float, ends: float) -> dict[str, Any]:
    return {
        "labels": {"alertname": UNHEALTHY_ALERT, "list": name},
        "annotations": {"summary": f"List {name} is unhealthy", "description": description},
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }


def resolver_alert(detail: str, starts: float, ends: float) -> dict[str, Any]:
    """The one alert of a resolver outage (no list label: every list is concerned)."""
    return {
        "labels": {"alertname": RESOLVER_ALERT},
        "annotations": {
            "summary": "The resolver is unreachable",
            "description": f"The resolver answers no query: {detail or '-'}. No list behind it"
            " is checked and no listing changes until it answers again.",
        },
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
    }


_RESOLVED = (
    EventKind.DELISTED,
    EventKind.LIST_RECOVERED,
    EventKind.CHECK_PASSED,
    EventKind.RESOLVER_RECOVERED,
)


def event_alert(event: Event, ctx: Context, now: float, ttl: float) -> dict[str, Any]:
    """The alert an event sets: firing until `now + ttl`, or resolved at the event's time."""
    resolved = event.kind in _RESOLVED
    # a resolved alert must not start after it ends (Alertmanager rejects that)
    starts = event.since if resolved and event.since is not None else event.at
    if event.kind is EventKind.REMINDER:  # the listing's alert, firing since it began
        starts = event.since if event.since is not None else event.at
    ends = event.at if resolved else now + ttl
    if is_resolver_event(event):
        return resolver_alert(event.detail, min(starts, ends), ends)
    if event.kind is EventKind.LIST_RECOVERED:
        description = _recovered_description(event.list, event.since)
        return _unhealthy_alert(event.list, description, min(starts, ends), ends)
    if is_list_event(event):
        return _unhealthy_alert(
            event.list, _unhealthy_description(event.list, event.detail), starts, ends
        )
    return _with_ack(_pair_event_alert(event, ctx, starts, ends, now + ttl), event.ack)


def _with_ack(alert: dict[str, Any], ack: Ack | None) -> dict[str, Any]:
    """Annotations, never labels: an ack changes what people read, not which alert it is."""
    if ack is not None:
        alert["annotations"]["acknowledged_by"] = ack.by
        alert["annotations"]["ack_note"] = ack.note
    return alert


def _pair_event_alert(
    event: Event, ctx: Context, starts: float, ends: float, news_ends: float
) -> dict[str, Any]:
    if is_bounce_event(event):
        return _bounce_alert(event, ctx, news_ends)
    if is_check_event(event):
        return _check_alert(
            target=event.target or "",
            check=event.list,
            group=event.group or "",
            result=",".join(event.codes),
            reason=check_reason(event.meanings),
            starts=starts,
            ends=ends,
            ctx=ctx,
        )
    return _listing_alert(
        target=event.target or "",
        list_name=event.list,
        group=event.group or "",
        codes=codes_of(event.codes, event.meanings, ctx),
        starts=starts,
        ends=ends,
        ctx=ctx,
    )


def pair_alert(
    pair: PairState, ctx: Context, now: float, ttl: float, ack: Ack | None = None
) -> dict[str, Any]:
    """The firing alert of a pair listed (or a check failing) now (the periodic re-post),
    with its active `ack`, if any."""
    return _with_ack(_pair_now_alert(pair, ctx, now, ttl), ack)


def _pair_now_alert(pair: PairState, ctx: Context, now: float, ttl: float) -> dict[str, Any]:
    if pair.list in HYGIENE_CHECKS:
        return _check_alert(
            target=pair.target,
            check=pair.list,
            group=pair.group,
            result=",".join(pair.codes),
            reason=check_reason(pair.meanings),
            starts=pair.since,
            ends=now + ttl,
            ctx=ctx,
        )
    return _listing_alert(
        target=pair.target,
        list_name=pair.list,
        group=pair.group,
        codes=codes_of(pair.codes, pair.meanings, ctx),
        starts=pair.since,
        ends=now + ttl,
        ctx=ctx,
    )


def unhealthy_alert(
    list_name: str, detail: str, since: float, now: float, ttl: float
) -> dict[str, Any]:
    """The firing alert of a list unhealthy now (the periodic re-post)."""
    description = _unhealthy_description(list_name, detail)
    return _unhealthy_alert(list_name, description, min(since, now), now + ttl)


def alertmanager_request(alerts: Sequence[dict[str, Any]]) -> Request:
    return Request(ALERTMANAGER_PATH, dumps(list(alerts)), JSON_HEADERS)


def firing_alerts(firing: Firing, now: float, ttl: float) -> list[dict[str, Any]]:
    """Every alert that fires now, each lasting until `now + ttl`."""
    acks = firing.acks
    alerts = [
        pair_alert(pair, ctx, now, ttl, acks.get((pair.target, pair.list)))
        for pair, ctx in firing.pairs
    ]
    for s in firing.lists:
        since = s.health_since if s.health_since is not None else now
        alerts.append(unhealthy_alert(s.name, s.health_detail, since, now, ttl))
    r: ResolverState | None = firing.resolver
    if r is not None and not r.reachable:
        since = r.since if r.since is not None else now
        alerts.append(resolver_alert(r.detail, min(since, now), now + ttl))
    return alerts


class Alertmanager:
    """The `AlertFormat` of `format: alertmanager`: unsigned, and it resends."""

    name = "alertmanager"
    signs = False
    resends = True

    def event_request(
        self, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
    ) -> Request:
        return alertmanager_request([event_alert(event, ctx, now, ttl)])

    def batch_request(
        self, items: Sequence[tuple[Event, Context]], *, secret: str | None, now: float, ttl: float
    ) -> Request:
        # in order: Alertmanager applies a POST's alerts one after another, so a listing and
        # its delisting in one window end resolved, a delisting and a re-listing firing
        return alertmanager_request([event_alert(e, ctx, now, ttl) for e, ctx in items])

    def resend_requests(self, firing: Firing, *, now: float, ttl: float) -> list[Request]:
        alerts = firing_alerts(firing, now, ttl)
        return [
            alertmanager_request(alerts[i : i + ALERTMANAGER_BATCH])
            for i in range(0, len(alerts), ALERTMANAGER_BATCH)
        ]


FORMAT = Alertmanager()

__all__ = [
    "ALERTMANAGER_BATCH",
    "ALERTMANAGER_PATH",
    "BOUNCE_ALERT",
    "CHECK_ALERT",
    "FORMAT",
    "LISTED_ALERT",
    "RESOLVER_ALERT",
    "UNHEALTHY_ALERT",
    "Alertmanager",
    "alertmanager_request",
    "event_alert",
    "firing_alerts",
    "pair_alert",
    "resolver_alert",
    "unhealthy_alert",
]
