"""The HTML status page served at `/` (SPEC §10): self-contained, every value escaped.

Secrets: lists are shown by name only (zones may hold access keys); the store URL and receiver
URLs never reach this module. Every value goes through html.escape, and only http(s) delisting
links are made clickable.

With several instances, each serves the same page from the shared store; the page says which
one served it, and lists every instance with the age of its last heartbeat.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence

from rblwatch.cluster import Instance
from rblwatch.model import DnsList, Event, Health, ListStatus
from rblwatch.views.status import StatusView, age, rfc3339

PAGE_EVENTS = 50  # the page shows the newest events; the API pages through them all
PAGE_LISTINGS = 1000  # the page shows this many listings; the API has them all

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.5em}
th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}.bad{color:#b00;font-weight:bold}.ok{color:#070}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A table of already-escaped cells (headers are escaped here)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table><tr>{head}</tr>\n{body}</table>\n"


def _delist_link(url: str | None) -> str:
    # only http(s): a javascript: URL in a custom list would run on click
    if not url or not url.startswith(("https://", "http://")):
        return ""
    return f'<a href="{_e(url)}" rel="noopener noreferrer">delist</a>'


def _listings_html(view: StatusView, delist: Mapping[str, str | None]) -> str:
    if not view.listings:
        return "<p>No target is listed.</p>\n"
    rows = [
        [
            _e(p.target),
            _e(p.list),
            _e(p.group),
            _e(rfc3339(p.since)),
            _e(" ".join(p.codes)),
            _e("; ".join(p.meanings)),
            _delist_link(delist.get(p.list)),
        ]
        for p in view.listings[:PAGE_LISTINGS]
    ]
    more = len(view.listings) - PAGE_LISTINGS
    note = (
        f'<p>… and {more} more: see <a href="/api/v1/status">/api/v1/status</a>.</p>\n'
        if more > 0
        else ""
    )
    headers = ("target", "list", "group", "since", "codes", "meanings", "")
    return _table(headers, rows) + note


def _lists_html(view: StatusView) -> str:
    def health(row: ListStatus) -> str:
        css = "ok" if row.health is Health.HEALTHY else "bad"
        return f'<span class="{css}">{_e(row.health.value)}</span>'

    rows = [
        [_e(r.name), health(r), _e(r.health_detail), _e(rfc3339(r.last_cycle_end))]
        for r in view.lists
    ]
    return _table(("list", "health", "detail", "last cycle end"), rows)


def _hygiene_html(view: StatusView) -> str:
    """Sender hygiene: what fails and why (the reason says what to fix), and each check's
    last run; nothing when no target group asks for a check."""
    if not view.checks:
        return ""
    rows = [
        [
            _e(p.list),
            _e(p.target),
            _e(p.group),
            _e(rfc3339(p.since)),
            f'<span class="bad">{_e(",".join(p.codes))}</span>',
            _e("; ".join(p.meanings)),
        ]
        for p in view.failing[:PAGE_LISTINGS]
    ]
    if rows:
        failing = _table(("check", "target", "group", "since", "result", "reason"), rows)
    elif any(r.last_cycle_end is not None for r in view.checks):
        failing = '<p><span class="ok">No sender check fails.</span></p>\n'
    else:
        failing = "<p>No sender check has run yet.</p>\n"
    last = [[_e(r.name), _e(rfc3339(r.last_cycle_end) or "not yet")] for r in view.checks]
    return f"<h2>Sender hygiene</h2>\n{failing}{_table(('check', 'last run'), last)}"


def _events_html(events: Sequence[Event]) -> str:
    if not events:
        return "<p>No events yet.</p>\n"
    rows = [
        [
            _e(rfc3339(e.at)),
            _e(e.kind.value + (" (initial)" if e.initial else "")),
            _e(e.target),
            _e(e.list),
            _e(e.group),
            _e(" ".join(e.codes) or e.detail),
        ]
        for e in reversed(events)  # newest first on the page
    ]
    return _table(("at", "kind", "target", "list", "group", "codes / detail"), rows)


def _heartbeat(i: Instance, now: float | None) -> str:
    if now is None:
        return _e(rfc3339(i.heartbeat))
    return f'<span title="{_e(rfc3339(i.heartbeat))}">{_e(age(now - i.heartbeat))} ago</span>'


def _instances_html(view: StatusView, now: float | None, served_by: str | None) -> str:
    if not view.instances:
        return "<p>No instance has a heartbeat in the store yet.</p>\n"
    rows = [
        [
            _e(i.id) + (" (this page)" if i.id == served_by else ""),
            _e(i.host),
            _e(i.pid),
            _e(i.version),
            _heartbeat(i, now),
            _e(i.shards),
            '<span class="ok">leader</span>' if i.leader else "",
        ]
        for i in view.instances
    ]
    headers = ("instance", "host", "pid", "version", "last heartbeat", "shards held", "")
    return _table(headers, rows)


def render_page(
    view: StatusView,
    events: Sequence[Event],
    lists: Iterable[DnsList],
    version: str,
    *,
    now: float | None = None,
    served_by: str | None = None,
) -> str:
    """The page for a status view and the recent `events` (oldest first) of the `lists`.

    `now`: the time heartbeats' ages are counted from (None: show their times instead);
    `served_by`: the id of the instance serving the page, if it has one.
    """
    delist = {lst.name: lst.delist_url for lst in lists}
    links = (
        '<a href="/metrics">/metrics</a> · <a href="/api/v1/status">/api/v1/status</a> · '
        '<a href="/api/v1/events">/api/v1/events</a>'
    )
    served = f" · served by {_e(served_by)}" if served_by is not None else ""
    summary = (
        f"{view.targets} targets · {len(view.listings)} listings"
        f"{f' · {len(view.failing)} failing sender checks' if view.checks else ''}"
        f" · version {_e(version)}"
        f"{served} · {links}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>rblwatch</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>rblwatch</h1>\n<p>{summary}</p>\n"
        f"<h2>Current listings</h2>\n{_listings_html(view, delist)}"
        f"<h2>Lists</h2>\n{_lists_html(view)}"
        f"{_hygiene_html(view)}"
        f"<h2>Instances</h2>\n{_instances_html(view, now, served_by)}"
        f"<h2>Recent events</h2>\n{_events_html(events)}"
        "</body></html>\n"
    )


__all__ = ["PAGE_EVENTS", "PAGE_LISTINGS", "render_page"]
