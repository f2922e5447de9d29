"""The HTTP listener (SPEC §10): /metrics, a status page, health, reload and a small JSON API.

It runs on the daemon's event loop, so anything that touches the store (which is synchronous)
or formats thousands of rows runs in a thread through `asyncio.to_thread`: a slow disk or a
scrape of a /16's listings must never stall the cycles sharing the loop. Nothing here does a
lookup; every answer comes from stored state and the in-process counters.

`status_json` and `events_json` are the JSON shapes of `/api/v1/status` and `/api/v1/events`.
They take a Store and a Config (no running daemon) so `rblwatch status --format json` and
`rblwatch history --format json` print exactly what the API serves.

Secrets: lists are shown by name only (zones may hold access keys); the store URL and receiver
URLs never appear; every value on the HTML page goes through html.escape.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiMapping
from prometheus_client import CollectorRegistry

from rblwatch import __version__
from rblwatch.config import Config
from rblwatch.metrics import CONTENT_TYPE, render
from rblwatch.model import Event, Health, ListStatus, PairState, PairStatus
from rblwatch.runtime import Runtime
from rblwatch.store import Store, StoreError
from rblwatch.targets import expand

EVENTS_LIMIT_DEFAULT = 100
EVENTS_LIMIT_MAX = 1000  # a larger limit is capped, not refused: page with since=
PAGE_EVENTS = 50
PAGE_LISTINGS = 1000  # the page shows this many listings; the API has them all
_EVENT_PARAMS = frozenset({"since", "limit", "target", "list"})
_PLUS_AS_SPACE = re.compile(r" (\d\d:\d\d)$")


class WebError(Exception):
    """The listener cannot start (one line, for the user)."""


# --- times -------------------------------------------------------------------------------------


def rfc3339(at: float | None) -> str | None:
    """Unix seconds as RFC 3339 UTC, whole seconds ("2026-11-27T12:00:00Z").

    Rounded down, so an event's `at` used as the next `since` (inclusive) finds that event again
    rather than skipping any that share its second; clients de-duplicate by `id`.
    """
    if at is None:
        return None
    moment = datetime.datetime.fromtimestamp(int(at), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """RFC 3339 (with a zone, "Z" or an offset) → unix seconds; ValueError otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text!r} (e.g. 2026-11-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r} (e.g. 2026-11-01T00:00:00Z)")
    return moment.timestamp()


# --- the JSON shapes (shared with the CLI) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusView:
    """One read of the store for the status API and page: configured lists only."""

    listings: list[PairState]  # listed pairs, by target then list
    lists: list[ListStatus]  # one per configured list, in config order (a blank row if none)
    targets: int


def read_status(store: Store, config: Config, targets: int | None = None) -> StatusView:
    """Read pairs and list rows once. `targets` None: count the config's targets instead."""
    names = [lst.name for lst in config.lists]
    configured = set(names)
    listings = [p for p in store.pairs() if p.status is PairStatus.LISTED and p.list in configured]
    listings.sort(key=lambda p: (p.target, p.list))
    rows = {row.name: row for row in store.list_statuses()}
    lists = [rows.get(name) or ListStatus(name=name) for name in names]
    return StatusView(listings, lists, configured_targets(config) if targets is None else targets)


def configured_targets(config: Config) -> int:
    """Targets in the config without resolving anything: each hostname counts as one.

    For callers with no running daemon (the CLI); the daemon knows the resolved count.
    """
    total = 0
    for g in config.targets:
        found = expand(
            g.addresses, g.exclude, g.domains, ipv4_min_prefix=config.limits.ipv4_min_prefix
        )
        total += len(found) + len(g.hostnames)
    return total


def status_json(store: Store, config: Config, *, targets: int | None = None) -> dict[str, object]:
    """The object `GET /api/v1/status` and `rblwatch status --format json` print."""
    return view_json(read_status(store, config, targets))


def view_json(view: StatusView) -> dict[str, object]:
    return {
        "listings": [_listing_json(p) for p in view.listings],
        "lists": [
            {
                "name": row.name,
                "health": row.health.value,
                "last_cycle_end": rfc3339(row.last_cycle_end),
            }
            for row in view.lists
        ],
        "targets": view.targets,
    }


def _listing_json(p: PairState) -> dict[str, object]:
    return {
        "target": p.target,
        "list": p.list,
        "group": p.group,
        "since": rfc3339(p.since),
        "codes": list(p.codes),
        "meanings": list(p.meanings),
        "txt": p.txt,
    }


def events_json(events: Iterable[Event]) -> dict[str, object]:
    """The object `GET /api/v1/events` and `rblwatch history --format json` print."""
    return {
        "events": [
            {
                "id": e.id,
                "kind": e.kind.value,
                "target": e.target,
                "list": e.list,
                "group": e.group,
                "at": rfc3339(e.at),
                "codes": list(e.codes),
                "initial": e.initial,
            }
            for e in events
        ]
    }


def recent_events(store: Store, n: int) -> list[Event]:
    """The newest `n` events, oldest first."""
    return list(reversed(store.events(limit=n, newest_first=True)))


# --- the status page ---------------------------------------------------------------------------

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


def _events_html(events: list[Event]) -> str:
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


def render_page(runtime: Runtime) -> str:
    """The HTML status page: self-contained (no external assets), every value escaped."""
    config = runtime.config
    targets = sum(runtime.targets_per_group.values()) if runtime.targets_per_group else None
    view = read_status(runtime.store, config, targets)
    events = recent_events(runtime.store, PAGE_EVENTS)
    delist = {lst.name: lst.delist_url for lst in config.lists}
    links = (
        '<a href="/metrics">/metrics</a> · <a href="/api/v1/status">/api/v1/status</a> · '
        '<a href="/api/v1/events">/api/v1/events</a>'
    )
    summary = (
        f"{view.targets} targets · {len(view.listings)} listings · "
        f"version {_e(runtime.version or __version__)} · {links}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>rblwatch</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>rblwatch</h1>\n<p>{summary}</p>\n"
        f"<h2>Current listings</h2>\n{_listings_html(view, delist)}"
        f"<h2>Lists</h2>\n{_lists_html(view)}"
        f"<h2>Recent events</h2>\n{_events_html(events)}"
        "</body></html>\n"
    )


# --- query parameters -----------------------------------------------------------------------


class _BadRequest(Exception):
    pass


def _one(query: MultiMapping[str], key: str) -> str | None:
    values = query.getall(key, [])
    if len(values) > 1:
        raise _BadRequest(f"{key}: given {len(values)} times (give it once)")
    return values[0] if values else None


def _limit(text: str | None) -> int:
    if text is None:
        return EVENTS_LIMIT_DEFAULT
    try:
        limit = int(text)
    except ValueError:
        raise _BadRequest(f"limit: not a whole number: {text!r}") from None
    if limit < 1:
        raise _BadRequest(f"limit: must be at least 1, got {limit}")
    return min(limit, EVENTS_LIMIT_MAX)


@dataclass(frozen=True, slots=True)
class EventsQuery:
    since: float | None = None
    limit: int = EVENTS_LIMIT_DEFAULT
    target: str | None = None
    list_name: str | None = None

    def run(self, store: Store) -> list[Event]:
        return store.events(
            since=self.since, limit=self.limit, target=self.target, list_name=self.list_name
        )


def events_query(query: MultiMapping[str]) -> EventsQuery:
    """The store query `since`, `limit`, `target` and `list` ask for; _BadRequest if bad."""
    unknown = sorted(set(query) - _EVENT_PARAMS)
    if unknown:
        raise _BadRequest(f"unknown parameter {unknown[0]!r} (use since, limit, target, list)")
    since = _one(query, "since")
    if since is not None:
        # an unencoded "+01:00" arrives as " 01:00" (a + in a query string is a space)
        since = _PLUS_AS_SPACE.sub(r"+\1", since)
    try:
        since_at = None if since is None else parse_rfc3339(since)
    except ValueError as e:
        raise _BadRequest(f"since: {e}") from None
    return EventsQuery(
        since=since_at,
        limit=_limit(_one(query, "limit")),
        target=_one(query, "target"),
        list_name=_one(query, "list"),
    )


# --- the application ---------------------------------------------------------------------------


def _json(data: Mapping[str, object], status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data) + "\n", content_type="application/json"
    )


def _text(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text + "\n")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _store_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A store that cannot be read is a 503 with one line, not a traceback."""
    try:
        return await handler(request)
    except StoreError as e:
        if request.path.startswith("/api/"):
            return _json({"error": f"store unavailable: {e}"}, 503)
        return _text(f"store unavailable: {e}", 503)


class _Handlers:
    def __init__(self, runtime: Runtime, registry: CollectorRegistry) -> None:
        self.runtime = runtime
        self.registry = registry

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        body = await asyncio.to_thread(render, self.registry)
        response = web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
        response.enable_compression()  # gzip when the scraper asks (Prometheus does)
        return response

    async def healthy(self, request: web.Request) -> web.StreamResponse:
        return _text("OK")

    async def ready(self, request: web.Request) -> web.StreamResponse:
        if self.runtime.ready:
            return _text("OK")
        return _text("not ready", 503)

    async def reload(self, request: web.Request) -> web.StreamResponse:
        # Browsers send Origin with a cross-site POST; curl, systemd and Prometheus tooling do
        # not. Refusing it keeps a web page the operator happens to open from reloading (or
        # hammering) the daemon through the loopback listener.
        if request.headers.get("Origin") is not None:
            return _text("reload refused: requests from web pages are not accepted", 403)
        if self.runtime.reload is None:
            return _text("reload is not available", 503)
        result = await self.runtime.reload()
        return _text(result.message, 200 if result.ok else 500)

    async def status(self, request: web.Request) -> web.StreamResponse:
        runtime = self.runtime
        targets = sum(runtime.targets_per_group.values()) if runtime.targets_per_group else None

        def build(store: Store) -> str:
            return json.dumps(status_json(store, runtime.config, targets=targets)) + "\n"

        return web.Response(text=await runtime.db.read(build), content_type="application/json")

    async def events(self, request: web.Request) -> web.StreamResponse:
        try:
            query = events_query(request.query)
        except _BadRequest as e:
            return _json({"error": str(e)}, 400)
        found = await self.runtime.db.read(query.run)
        return _json(events_json(found))

    async def page(self, request: web.Request) -> web.StreamResponse:
        text = await asyncio.to_thread(render_page, self.runtime)
        return web.Response(text=text, content_type="text/html")


def make_app(runtime: Runtime, registry: CollectorRegistry) -> web.Application:
    """The application: every route of SPEC §10 (GET on /-/reload answers 405 by itself)."""
    h = _Handlers(runtime, registry)
    app = web.Application(middlewares=[_store_errors])
    app.router.add_get("/", h.page)
    app.router.add_get("/metrics", h.metrics)
    app.router.add_get("/-/healthy", h.healthy)
    app.router.add_get("/-/ready", h.ready)
    app.router.add_post("/-/reload", h.reload)
    app.router.add_get("/api/v1/status", h.status)
    app.router.add_get("/api/v1/events", h.events)
    return app


async def start(
    runtime: Runtime, registry: CollectorRegistry, host: str, port: int
) -> web.AppRunner:
    """Serve the app on host:port ("" = every interface); WebError if it cannot listen.

    The caller stops it with `await runner.cleanup()`. No access log: Prometheus scraping every
    15 seconds would drown the journal.
    """
    runner = web.AppRunner(make_app(runtime, registry), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or None, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise WebError(f"web.listen_address: cannot listen on {shown}: {e.strerror or e}") from None
    return runner


__all__ = [
    "WebError",
    "events_json",
    "make_app",
    "parse_rfc3339",
    "recent_events",
    "render_page",
    "rfc3339",
    "start",
    "status_json",
]
