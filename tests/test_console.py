"""The console's pages over HTTP (aiohttp's test client on the real app, a real SQLite store):
what each page shows, its parameters' errors, the live mark and the pairs snapshot."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from rblwatch import web
from rblwatch.console.snapshot import SnapshotCache
from rblwatch.metrics import build_registry
from rblwatch.model import CycleCommit, Event, EventKind, Health, ListStatus, PairStatus
from rblwatch.runtime import Runtime
from rblwatch.views.listings import listing_order
from tests.webstate import T0, clean, event, listed, make_runtime, put


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


def fetch(runtime: Runtime, *paths: str) -> list[tuple[int, str, dict[str, str]]]:
    async def main() -> list[tuple[int, str, dict[str, str]]]:
        app = web.make_app(runtime, build_registry(runtime))
        async with TestClient(TestServer(app)) as client:
            out = []
            for path in paths:
                r = await client.get(path)
                out.append((r.status, await r.text(), dict(r.headers)))
            return out

    return asyncio.run(main())


def page(runtime: Runtime, path: str) -> str:
    [(status, text, _)] = fetch(runtime, path)
    assert status == 200, text
    return text


def targets_in(html: str) -> list[str]:
    return re.findall(r'<td><a href="/target/[^"]*">([^<]*)</a>', html)


def test_listings_are_in_numeric_order_a_hundred_a_page_with_paging_links(
    runtime: Runtime,
) -> None:
    put(runtime, [listed(f"192.0.{i // 250}.{i % 250}") for i in range(250)])
    first = page(runtime, "/listings")
    shown = targets_in(first)
    assert len(shown) == 100
    assert shown[:3] == ["192.0.0.0", "192.0.0.1", "192.0.0.2"]
    assert shown[9:11] == ["192.0.0.9", "192.0.0.10"]  # not "192.0.0.100" after .10
    assert "1\N{EN DASH}100 of 250" in first
    assert '<a rel="next" href="?page=2">' in first and 'rel="prev"' not in first
    last = page(runtime, "/listings?page=3")
    assert targets_in(last)[-1] == "192.0.0.249" and '<a rel="prev" href="?page=2">' in last


def test_a_search_narrows_the_listings_and_keeps_its_filters_in_the_links(
    runtime: Runtime,
) -> None:
    put(runtime, [listed(f"192.0.2.{i}") for i in range(200)] + [listed("192.0.2.7", "corp-dbl")])
    assert targets_in(page(runtime, "/listings?q=192.0.2.7")) == ["192.0.2.7", "192.0.2.7"]
    assert targets_in(page(runtime, "/listings?q=192.0.2.7&list=corp-dbl")) == ["192.0.2.7"]
    wide = page(runtime, "/listings?q=192.0.2.0/25&per_page=50")
    assert '<a rel="next" href="?q=192.0.2.0%2F25&amp;page=2&amp;per_page=50">' in wide
    assert "Nothing matches." in page(runtime, "/listings?q=203.0.113.1")


def test_an_idn_listing_shows_in_unicode_beside_its_a_label(runtime: Runtime) -> None:
    put(runtime, [listed("xn--bcher-kva.example", "corp-dbl", group="web")])
    html = page(runtime, "/listings?q=bücher")
    assert 'xn--bcher-kva.example</a> <span class="idn">bücher.example</span>' in html


def test_a_bad_parameter_is_a_400_page_that_names_it(runtime: Runtime) -> None:
    replies = fetch(
        runtime, "/listings?state=<b>", "/listings?page=0", "/events?kind=nope", "/events?list=x"
    )
    assert [r[0] for r in replies] == [400, 400, 400, 400]
    assert "state: &#39;&lt;b&gt;&#39; is not one of" in replies[0][1]
    assert "page: must be at least 1" in replies[1][1]
    assert "kind: &#39;nope&#39; is not an event kind" in replies[2][1]
    assert "list: no such list &#39;x&#39;" in replies[3][1]


def test_a_target_page_shows_every_list_its_history_and_room_for_acks_and_notes(
    runtime: Runtime,
) -> None:
    put(
        runtime,
        [listed("192.0.2.1", txt="see https://corp.example.net/why")],
        [event("192.0.2.1", T0 - 600, kind=EventKind.DELISTED), event("192.0.2.1", T0)],
    )
    seen = CycleCommit(list="spamhaus-zen", seen=["192.0.2.1"])
    runtime.store.commit(seen)
    html = page(runtime, "/target/192.0.2.1")
    rows = {
        m[0]: m[1]
        for m in re.findall(r'<tr class="state-([a-z-]+)"><td><a href="/list/([^"]+)"', html)
    }
    assert rows == {"listed": "corp-bl", "clean": "spamhaus-zen", "not-checked": "corp-dbl"}
    assert "see https://corp.example.net/why" in html
    assert '<a href="https://corp.example.net/delist?a=1&amp;b=2"' in html
    assert html.index(">listed</span>") < html.index(">delisted</span>")  # newest first
    assert (
        '<section class="acks" id="acks">' in html and '<section class="notes" id="notes">' in html
    )


def test_a_target_is_found_however_it_is_typed_and_a_bad_one_is_a_404(runtime: Runtime) -> None:
    put(runtime, [listed("2001:db8::1")])
    assert "<h1>2001:db8::1</h1>" in page(runtime, "/target/2001:0db8:0:0::1")
    [(status, html, _)] = fetch(runtime, "/target/not a target!")
    assert status == 404 and "target:" in html


def test_a_list_page_shows_its_figures_codes_and_health_history(runtime: Runtime) -> None:
    status = ListStatus(
        "corp-bl", Health.HEALTHY, last_cycle_start=T0, last_cycle_end=T0 + 12,
        last_cycle_duration=12.0, last_cycle_lookups=400, last_cycle_errors=2, targets=5,
    )  # fmt: skip
    put(runtime, [listed("192.0.2.1"), listed("192.0.2.2")])
    runtime.store.commit(CycleCommit(list="corp-bl", status=status))
    runtime.store.record_health(
        "corp-bl", Health.DEAD, "127.0.0.2 not listed", T0 + 20,
        Event(EventKind.LIST_UNHEALTHY, "corp-bl", T0 + 20, detail="127.0.0.2 not listed"),
    )  # fmt: skip
    html = page(runtime, "/list/corp-bl")
    assert "400 lookups, 2 errors (0.5 %), 12.0 s, 5 targets" in html
    assert '<tr><td>127.0.0.2</td><td>spam source</td><td class="num">2</td></tr>' in html
    assert ">list_unhealthy</span>" in html
    [(code, missing, _)] = fetch(runtime, "/list/nope")
    assert code == 404 and "no such list &#39;nope&#39;" in missing


def test_the_events_page_filters_by_kind_list_and_target(runtime: Runtime) -> None:
    put(
        runtime,
        events=[
            event("192.0.2.1", T0),
            event("192.0.2.2", T0 + 1, kind=EventKind.DELISTED),
            event("example.com", T0 + 2, "corp-dbl", group="web"),
        ],
    )
    assert targets_in(page(runtime, "/events")) == ["example.com", "192.0.2.2", "192.0.2.1"]
    assert targets_in(page(runtime, "/events?kind=delisted")) == ["192.0.2.2"]
    assert targets_in(page(runtime, "/events?list=corp-dbl")) == ["example.com"]
    assert targets_in(page(runtime, "/events?target=192.0.2.1")) == ["192.0.2.1"]
    assert targets_in(page(runtime, "/events?since=2026-11-27T12:00:01Z")) == [
        "example.com",
        "192.0.2.2",
    ]


def test_the_live_mark_moves_with_a_new_listing_and_the_pages_show_it_at_once(
    runtime: Runtime,
) -> None:
    async def main() -> list[Any]:
        app = web.make_app(runtime, build_registry(runtime))
        async with TestClient(TestServer(app)) as client:
            before = await (await client.get("/live")).json()
            assert "192.0.2.9" not in await (await client.get("/listings")).text()
            put(runtime, [listed("192.0.2.9")], [event("192.0.2.9", T0)])
            after = await (await client.get("/live")).json()
            listings = await (await client.get("/listings")).text()
            overview = await (await client.get("/")).text()
            return [before, after, listings, overview]

    before, after, listings, overview = asyncio.run(main())
    assert before["mark"] != after["mark"] and after["listed"] == 1
    assert "192.0.2.9" in listings and "192.0.2.9" in overview
    assert f'data-mark="{after["mark"]}"' in overview


def test_the_snapshot_brought_up_to_date_equals_a_full_read(runtime: Runtime) -> None:
    store, cache = runtime.store, SnapshotCache()
    put(runtime, [listed(f"192.0.2.{i}") for i in range(20)] + [listed("10.0.0.1", "corp-dbl")])
    assert cache.get(store).pairs == listing_order(store.pairs())
    delisted = clean("192.0.2.3")
    store.commit(
        CycleCommit(
            list="corp-bl",
            upserts=[delisted, listed("192.0.2.100")],
            events=[
                event("192.0.2.3", T0 + 5, kind=EventKind.DELISTED),
                event("192.0.2.100", T0 + 5),
            ],
        )
    )
    store.commit(
        CycleCommit(list="spamhaus-zen", status=ListStatus("spamhaus-zen", last_cycle_end=T0))
    )
    got = cache.get(store).pairs
    assert got == listing_order(store.pairs())
    assert next(p for p in got if p.target == "192.0.2.3").status is PairStatus.CLEAN


def test_the_assets_are_served_from_the_package_and_nothing_else_is(runtime: Runtime) -> None:
    css, js, other = fetch(runtime, "/static/console.css", "/static/console.js", "/static/x.js")
    assert css[0] == 200 and css[2]["Content-Type"].startswith("text/css")
    assert "white-space:nowrap" in css[1]
    assert js[0] == 200 and js[2]["Content-Type"].startswith("text/javascript")
    assert 'fetch("/live"' in js[1]
    assert other[0] == 404
    for asset in (css[1], js[1]):
        assert "http://" not in asset and "https://" not in asset  # no CDN, no web fonts


def test_the_target_template_shows_acknowledgements_and_notes_escaped() -> None:
    from rblwatch.console.render import render
    from rblwatch.model import Ack, DnsList, Note
    from rblwatch.views.detail import target_page

    evil = "<img src=x onerror=alert(1)>"
    acks = [Ack("192.0.2.1", "bl", "ops", T0, evil, delisting_requested_at=T0 + 5)]
    notes = [Note("192.0.2.1", "ann", T0, evil)]
    model = target_page("192.0.2.1", [DnsList("bl", "bl.test")], [], set(), [], T0, acks, notes)
    html = render("target.html", t=model, version="1", served_by=None, mark="", here="/")
    assert evil not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") == 2
    assert "until the listing ends" in html and "No acknowledgement." not in html
    assert "<b>ann</b>" in html and "No notes." not in html
