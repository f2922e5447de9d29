"""The console's route handlers: read the store (in a worker thread, through `runtime.db`),
build the view model (`rblwatch.views`) and render its template.

Every page reads only what it shows: the overview and the listings page share one snapshot of
the stored pairs (`snapshot`), the rest ask the store for one target's or one list's rows.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from rblwatch import __version__, webauth
from rblwatch.config import Config
from rblwatch.console.counting import CountsCache
from rblwatch.console.render import CSP, STATIC_TYPES, render, render_page, static_file
from rblwatch.console.snapshot import SnapshotCache, marks, with_pairs
from rblwatch.model import DnsList, ListStatus
from rblwatch.pairsource import PairsSource
from rblwatch.runtime import Runtime
from rblwatch.store import Store
from rblwatch.targets import TargetError, canonical_target
from rblwatch.views import detail, eventlog, listings
from rblwatch.views.page import PAGE_EVENTS, Problems
from rblwatch.views.pairs import pair_items
from rblwatch.views.status import StatusView, unknown_list
from rblwatch.views.ui import BadParameter

# web.read_status: the status view of a store for a config and a resolved target count
ReadStatus = Callable[[Store, Config, int | None], StatusView]
LIST_EVENTS = 2000  # a list page looks for its health changes among its newest events
TARGET_EVENTS = 200  # a target page's timeline


def _html(text: str, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # delisting sites learn nothing; not "no-referrer", under which Chromium sends its own
    # forms' posts with `Origin: null`, which the CSRF check (rightly) refuses
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _params(request: web.Request) -> dict[str, str]:
    """Query parameters, each at most once (a repeated one is refused, as the API does)."""
    out: dict[str, str] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise BadParameter(f"{key}: given {len(values)} times (give it once)")
        out[key] = values[0]
    return out


class Console:
    """The pages: `/`, `/listings`, `/target/{target}`, `/list/{name}`, `/events`, `/live`
    (the live refresh's mark) and `/static/{name}`."""

    def __init__(
        self,
        runtime: Runtime,
        read_status: ReadStatus,
        targets: Callable[[], int | None],
        source: PairsSource | None = None,
    ) -> None:
        self.runtime = runtime
        self.read_status = read_status
        self.targets = targets
        self.cache = SnapshotCache()
        # the lists' targets in order (shared with the API's pairs view when given) and the
        # pair counts over them
        self.counts = CountsCache(source if source is not None else PairsSource())

    # -- shared ----------------------------------------------------------------------------

    def _common(self, mark: str, here: str, **context: Any) -> dict[str, Any]:
        me = self.runtime.me
        return {
            "version": self.runtime.version or __version__,
            "served_by": me.id if me is not None else None,
            "mark": mark,
            "here": here,
            **context,
        }

    def _lists(self) -> tuple[DnsList, ...]:
        return self.runtime.config.subjects

    def _problem(self, request: web.Request, message: str, status: int = 400) -> web.Response:
        page = render("error.html", **self._common("", request.path_qs, message=message))
        return _html(page, status)

    # -- pages -------------------------------------------------------------------------------

    async def overview(self, request: web.Request) -> web.StreamResponse:
        config, targets, rt = self.runtime.config, self.targets(), self.runtime
        problems = Problems(store_ok=rt.store_ok, reload_ok=rt.stats.reload_ok)

        def build(store: Store) -> str:
            snap = self.cache.get(store)
            m = snap.marks
            counted, per_list = self.counts.counts(store, snap, config, rt)
            view = self.read_status(with_pairs(store, snap), config, targets)
            view = dataclasses.replace(view, counts=counted, unresolved=list(rt.unresolved))
            events = list(reversed(store.events(limit=PAGE_EVENTS, newest_first=True)))
            return render_page(
                view,
                events,
                config.subjects,
                self.runtime.version or __version__,
                now=time.time(),
                served_by=rt.me.id if rt.me else None,
                problems=problems,
                default_interval=config.schedule.interval,
                mark=m.live,
                per_list=per_list,
            )

        return _html(await self.runtime.db.read(build))

    async def listings(self, request: web.Request) -> web.StreamResponse:
        try:
            query = listings.listing_query(_params(request))
        except BadParameter as e:
            return self._problem(request, str(e))
        lists = self._lists()
        delist = {lst.name: lst.delist_url for lst in lists}
        names = [lst.name for lst in lists]
        groups = list(dict.fromkeys(g.group for g in self.runtime.config.targets))

        config = self.runtime.config

        def build(store: Store) -> str:
            snap = self.cache.get(store)
            got = self.counts.inputs(store, snap, config, self.runtime)
            page = listings.listing_page(snap.listings(set(names)), query, delist, got.now)
            wanted = [(r.target, r.list) for r in page.items]
            items = pair_items(got.lists, wanted, got.now, got.acks)
            page = listings.with_items(page, items, got.now)
            return render(
                "listings.html",
                **self._common(
                    snap.marks.live,
                    request.path_qs,
                    page=page,
                    query=query,
                    lists=names,
                    groups=groups,
                    states=listings.STATES,
                    sorts=listings.SORTS,
                ),
            )

        return _html(await self.runtime.db.read(build))

    async def target(self, request: web.Request) -> web.StreamResponse:
        try:
            target = canonical_target(request.match_info["target"])
        except TargetError as e:
            return self._problem(request, f"target: {e}", 404)
        lists, config = self._lists(), self.runtime.config
        csrf = webauth.csrf_token(request)

        def build(store: Store) -> str:
            snap = self.cache.get(store)
            m = snap.marks
            got = self.counts.inputs(store, snap, config, self.runtime)
            pairs = [p for p in snap.pairs if p.target == target]
            stored = {p.list for p in pairs}
            seen = {
                lst.name
                for lst in lists
                if lst.name in stored or target in self.cache.seen(store, lst.name, m)
            }
            history = store.events(target=target, limit=TARGET_EVENTS, newest_first=True)
            now = got.now
            items = pair_items(got.lists, [(target, n) for n in seen], now, got.acks)
            model = detail.target_page(
                target,
                lists,
                pairs,
                seen,
                history,
                now,
                acks=store.acks(target=target),
                notes=store.notes(target),
                items=items,
            )
            return render(
                "target.html", **self._common(m.live, request.path_qs, t=model, csrf=csrf)
            )

        return _html(await self.runtime.db.read(build))

    async def list_page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        config, targets = self.runtime.config, self.targets()
        lst = next((x for x in config.subjects if x.name == name), None)
        if lst is None:
            problem = unknown_list(name, [x.name for x in config.subjects])
            return self._problem(request, f"list: {problem}", 404)

        def build(store: Store) -> str:
            snap = self.cache.get(store)
            view = self.read_status(with_pairs(store, snap), config, targets)
            status = next((r for r in view.lists if r.name == name), ListStatus(name=name))
            pairs = [p for p in snap.pairs if p.list == name]
            events = store.events(list_name=name, limit=LIST_EVENTS, newest_first=True)
            interval = lst.interval or config.schedule.interval
            model = detail.list_page(
                lst, status, interval, pairs, events, view.budgets, time.time()
            )
            return render("list.html", **self._common(snap.marks.live, request.path_qs, l=model))

        return _html(await self.runtime.db.read(build))

    async def events(self, request: web.Request) -> web.StreamResponse:
        try:
            query = eventlog.event_query(_params(request))
            target = canonical_target(query.target) if query.target else None
        except (BadParameter, TargetError) as e:
            return self._problem(request, str(e) if isinstance(e, BadParameter) else f"target: {e}")
        names = [lst.name for lst in self._lists()] + [h.name for h in self.runtime.config.hygiene]

        def build(store: Store) -> str | None:
            if query.list and unknown_list(
                query.list, names + [s.name for s in store.list_statuses()]
            ):
                return None
            m = marks(store)
            found = store.events(
                since=query.since_at,
                limit=query.read_limit,
                target=target,
                list_name=query.list or None,
                newest_first=True,
            )
            shown, more = eventlog.page_of(found, query)
            return render(
                "events.html",
                **self._common(
                    m.live,
                    request.path_qs,
                    rows=eventlog.event_rows(shown, time.time()),
                    more=more,
                    query=query,
                    kinds=eventlog.KINDS,
                    lists=names,
                ),
            )

        page = await self.runtime.db.read(build)
        if page is None:
            return self._problem(request, f"list: {unknown_list(query.list, names)}")
        return _html(page)

    # -- live refresh and assets --------------------------------------------------------------

    async def live(self, request: web.Request) -> web.StreamResponse:
        """The mark a page compares with its own (`data-mark`): cheap, polled every few
        seconds by every open page."""
        m = await self.runtime.db.read(marks)
        body = json.dumps({"mark": m.live, "listed": m.listed}) + "\n"
        response = web.Response(text=body, content_type="application/json")
        response.headers["Cache-Control"] = "no-store"
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = static_file(name)
        if body is None:
            raise web.HTTPNotFound()
        response = web.Response(body=body, content_type=STATIC_TYPES[name])
        response.headers["Cache-Control"] = "max-age=3600"  # the URL carries the version
        return response


def add_routes(
    app: web.Application,
    runtime: Runtime,
    read_status: ReadStatus,
    targets: Callable[[], int | None],
    source: PairsSource | None = None,
) -> Console:
    """Register the console's pages on `app` (the rest of the listener is `rblwatch.web`'s).
    `source`: the listener's `PairsSource`, so the console and the API share one ordering
    of the targets."""
    c = Console(runtime, read_status, targets, source)
    routes: Mapping[str, Callable[[web.Request], Any]] = {
        "/": c.overview,
        "/listings": c.listings,
        "/target/{target}": c.target,
        "/list/{name}": c.list_page,
        "/events": c.events,
        "/live": c.live,
        "/static/{name}": c.static,
    }
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    return c


__all__ = ["Console", "add_routes"]
