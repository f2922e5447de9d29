"""The HTTP listener (SPEC §10): /metrics, a status page, health, reload and a small JSON API.

It runs on the daemon's event loop, so anything that touches the store (which is synchronous)
or formats thousands of rows runs in a thread through `runtime.db`: a slow disk or a scrape
of a /16's listings must never stall the cycles sharing the loop. Nothing here does a lookup;
every answer comes from stored state and the in-process counters.

What is shown is built by `rblwatch.views` (the JSON objects, which the CLI prints too, and
the HTML page); this module is the transport: routes, query parameters, status codes, and the
listener's defences against its peers (`rblwatch.listener`: one log line per malformed
request kind, a request-header timeout, a connection cap).

Secrets: lists are shown by name only (zones may hold access keys); the store URL and receiver
URLs never appear; every value on the HTML page goes through html.escape.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiMapping
from prometheus_client import CollectorRegistry

from rblwatch import webacks, webauth
from rblwatch.config import Config
from rblwatch.console import add_routes as add_console
from rblwatch.listener import Guard, GuardedSite, Limits, ProblemLog, guard_middleware, runner_args
from rblwatch.metrics import CONTENT_TYPE, render
from rblwatch.model import Event
from rblwatch.pairsource import PairsRead, PairsSource, read_console, read_pairs
from rblwatch.plan import target_counts
from rblwatch.runtime import Runtime
from rblwatch.store import Store, StoreError
from rblwatch.targets import TargetError, canonical_target
from rblwatch.views.pairs import (
    PairsQuery,
    page_json,
    pairs_json,
    pairs_query,
)
from rblwatch.views.status import (
    ListingsQuery,
    StatusView,
    budgets_of,
    events_json,
    listings_query,
    parse_rfc3339,
    status_json,
    status_view,
    unknown_list,
    with_signals,
)
from rblwatch.webauth import writer
from rblwatch.webconfig import WebConfigWatch

EVENTS_LIMIT_DEFAULT = 100
EVENTS_LIMIT_MAX = 1000  # a larger limit is capped, not refused: page with since=
_EVENT_PARAMS = frozenset({"since", "limit", "target", "list"})
_PAIR_PARAMS = ("target", "list", "state", "limit", "cursor")
_PLUS_AS_SPACE = re.compile(r" (\d\d:\d\d)$")


class WebError(Exception):
    """The listener cannot start (one line, for the user)."""


def read_status(
    store: Store,
    config: Config,
    targets: int | None = None,
    unresolved: Sequence[tuple[str, str, str]] = (),
) -> StatusView:
    """The status of the configured lists and of the instances sharing the store; `targets`
    None: count the config's targets. `unresolved`: the hostnames the daemon's last
    resolution failed on (group, hostname, reason)."""
    if targets is None:  # no resolved count yet: each hostname counts as one
        targets = sum(target_counts(config).values())
    pairs, statuses, instances = store.pairs(), store.list_statuses(), store.instances()
    checks = [h.name for h in config.hygiene]
    view = status_view(pairs, statuses, config.subjects, targets, instances, checks, store.acks())
    budgets = budgets_of(config.subjects, store.budget_used)
    return with_signals(view, store.resolver_state(), budgets, unresolved)


def recent_events(store: Store, n: int) -> list[Event]:
    """The newest `n` events, oldest first."""
    return list(reversed(store.events(limit=n, newest_first=True)))


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


def pairs_params(query: MultiMapping[str]) -> PairsQuery:
    """The pairs view's filters and page `target`, `list`, `state`, `limit` and `cursor`
    ask for; _BadRequest if bad."""
    unknown = sorted(set(query) - set(_PAIR_PARAMS))
    if unknown:
        raise _BadRequest(f"unknown parameter {unknown[0]!r} (use {', '.join(_PAIR_PARAMS)})")
    given = {key: _one(query, key) for key in _PAIR_PARAMS}
    try:
        return pairs_query(
            target=given["target"],
            list_name=given["list"],
            state=given["state"],
            limit=given["limit"],
            cursor=given["cursor"],
        )
    except ValueError as e:
        raise _BadRequest(str(e)) from None


def status_params(query: MultiMapping[str]) -> ListingsQuery:
    """The page of the status's listings `limit` and `cursor` ask for; _BadRequest if bad.
    Other parameters are ignored, as they always were."""
    try:
        return listings_query(_one(query, "limit"), _one(query, "cursor"))
    except ValueError as e:
        raise _BadRequest(str(e)) from None


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


def _stored_lists(store: Store) -> list[str]:
    return [s.name for s in store.list_statuses()]


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
    target = _one(query, "target")
    try:
        target = None if target is None else canonical_target(target)
    except TargetError as e:
        raise _BadRequest(f"target: {e}") from None
    return EventsQuery(
        since=since_at,
        limit=_limit(_one(query, "limit")),
        target=target,
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
        self.pairs_source = PairsSource()  # the lists' targets kept in order between requests

    def pairs_read(self) -> PairsRead:
        rt = self.runtime
        return PairsRead(
            self.pairs_source, rt.found, time.time(), covered=rt.covered, found_for=rt.found_for
        )

    def targets(self) -> int | None:
        """The daemon's resolved target count, None before its first cycle."""
        per_group = self.runtime.targets_per_group
        return sum(per_group.values()) if per_group else None

    async def metrics(self, request: web.Request) -> web.StreamResponse:
        body = await asyncio.to_thread(render, self.registry)
        response = web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
        response.enable_compression()  # gzip when the scraper asks (Prometheus does)
        return response

    async def healthy(self, request: web.Request) -> web.StreamResponse:
        return _text("OK")

    async def ready(self, request: web.Request) -> web.StreamResponse:
        if self.runtime.ready and self.runtime.store_ok:
            if not self.runtime.resolver.reachable:
                return _text("resolver unreachable", 503)
            return _text("OK")
        return _text("not ready", 503)

    async def reload(self, request: web.Request) -> web.StreamResponse:
        writer(request)  # a user (or loopback), and no cross-site browser request
        if self.runtime.reload is None:
            return _text("reload is not available", 503)
        result = await self.runtime.reload()
        return _text(result.message, 200 if result.ok else 500)

    async def status(self, request: web.Request) -> web.StreamResponse:
        try:
            query = status_params(request.query)
        except _BadRequest as e:
            return _json({"error": str(e)}, 400)
        config, targets = self.runtime.config, self.targets()

        read = self.pairs_read()

        def build(store: Store) -> str:
            view, page = read_console(
                store, config, targets, read, unresolved=self.runtime.unresolved, listings=query
            )
            return json.dumps(status_json(view) | {"pairs": page_json(page)}) + "\n"

        return web.Response(text=await self.runtime.db.read(build), content_type="application/json")

    async def pairs(self, request: web.Request) -> web.StreamResponse:
        try:
            query = pairs_params(request.query)
        except _BadRequest as e:
            return _json({"error": str(e)}, 400)
        config, read = self.runtime.config, self.pairs_read()
        if query.list_name is not None:
            problem = unknown_list(query.list_name, [lst.name for lst in config.subjects])
            if problem is not None:
                return _json({"error": f"list: {problem}"}, 400)

        def build(store: Store) -> str:
            page, counts = read_pairs(store, config, read, query)
            return json.dumps(pairs_json(page, counts)) + "\n"

        return web.Response(text=await self.runtime.db.read(build), content_type="application/json")

    async def events(self, request: web.Request) -> web.StreamResponse:
        try:
            query = events_query(request.query)
        except _BadRequest as e:
            return _json({"error": str(e)}, 400)
        config = self.runtime.config

        def run(store: Store) -> list[Event] | str:
            if query.list_name is not None:
                known = [lst.name for lst in config.subjects] + [h.name for h in config.hygiene]
                problem = unknown_list(query.list_name, known + _stored_lists(store))
                if problem is not None:
                    return f"list: {problem}"
            return query.run(store)

        found = await self.runtime.db.read(run)
        if isinstance(found, str):
            return _json({"error": found}, 400)
        return _json(events_json(found))


def make_app(
    runtime: Runtime,
    registry: CollectorRegistry,
    guard: Guard | None = None,
    security: WebConfigWatch | None = None,
) -> web.Application:
    """The application: every route of SPEC §10 (GET on /-/reload answers 405 by itself).
    `security`: the web config file's users and headers (`rblwatch.webauth`)."""
    h = _Handlers(runtime, registry)
    app = web.Application(middlewares=[] if guard is None else [guard_middleware(guard)])
    webauth.install(app, security, guard.report if guard is not None else webauth.log_only)
    app.middlewares.append(_store_errors)
    add_console(app, runtime, read_status, h.targets, h.pairs_source)  # /, /listings, /target/…
    app.router.add_get("/metrics", h.metrics)
    app.router.add_get("/-/healthy", h.healthy)
    app.router.add_get("/-/ready", h.ready)
    app.router.add_post("/-/reload", h.reload)
    app.router.add_get("/api/v1/status", h.status)
    app.router.add_get("/api/v1/events", h.events)
    app.router.add_get("/api/v1/pairs", h.pairs)
    webacks.add_routes(app, runtime)  # acks, delisting requests, notes (behind webauth.writer)
    return app


async def start(
    runtime: Runtime,
    registry: CollectorRegistry,
    host: str,
    port: int,
    *,
    limits: Limits | None = None,
    security: WebConfigWatch | None = None,
) -> web.AppRunner:
    """Serve the app on host:port ("" = every interface); WebError if it cannot listen.

    The caller stops it with `await runner.cleanup()`. No access log: Prometheus scraping every
    15 seconds would drown the journal. `limits`: the listener's defences (`rblwatch.listener`);
    `security`: the web config file (TLS, users), None for plain HTTP without users.
    """
    limits = limits or Limits()
    tls = security.tls_context if security is not None and security.tls else None
    guard = Guard(limits, ProblemLog(limits.problem_interval), tls=tls)
    app = make_app(runtime, registry, guard, security)
    runner = web.AppRunner(app, **runner_args(guard))
    await runner.setup()
    site = GuardedSite(runner, host or None, port, guard)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise WebError(f"web.listen_address: cannot listen on {shown}: {e.strerror or e}") from None
    return runner


__all__ = [
    "EVENTS_LIMIT_MAX",
    "Limits",
    "WebError",
    "make_app",
    "pairs_params",
    "read_status",
    "recent_events",
    "start",
]
