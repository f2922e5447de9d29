"""The HTTP listener (SPEC §10) on a real socket on 127.0.0.1, over a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rblwatch import web
from rblwatch.cluster import Instance
from rblwatch.listener import Limits, ProblemLog, describe
from rblwatch.metrics import build_registry
from rblwatch.model import CycleCommit, EventKind, Health, ListStatus
from rblwatch.runtime import ReloadResult, Runtime
from rblwatch.store import open_store
from rblwatch.views.status import parse_rfc3339, status_json
from tests.postgres import Cluster
from tests.webstate import LISTS, SECRET, T0, event, listed, make_runtime, put


@dataclass
class Reply:
    status: int
    content_type: str
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


Action = Callable[[Callable[..., Awaitable[Reply]]], Awaitable[Any]]


def serve(runtime: Runtime, action: Action) -> Any:
    """Start the listener on a free port, run `action(request)` against it, stop it."""

    async def main() -> Any:
        runner = await web.start(runtime, build_registry(runtime), "127.0.0.1", 0)
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:

                async def request(path: str, method: str = "GET", **kw: Any) -> Reply:
                    url = f"http://127.0.0.1:{port}{path}"
                    async with session.request(method, url, **kw) as r:
                        return Reply(r.status, r.content_type, await r.text(), dict(r.headers))

                return await action(request)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def get(runtime: Runtime, path: str, method: str = "GET", **kw: Any) -> Reply:
    return serve(runtime, lambda request: request(path, method, **kw))  # type: ignore[no-any-return]


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


# --- health, readiness, reload -----------------------------------------------------------------


def test_healthy_answers_ok(runtime: Runtime) -> None:
    reply = get(runtime, "/-/healthy")
    assert (reply.status, reply.text) == (200, "OK\n")


def test_ready_is_503_until_the_runtime_is_ready_then_200(runtime: Runtime) -> None:
    async def action(request: Callable[..., Awaitable[Reply]]) -> list[int]:
        before = await request("/-/ready")
        runtime.ready = True
        after = await request("/-/ready")
        return [before.status, after.status]

    assert serve(runtime, action) == [503, 200]


def test_a_successful_reload_answers_200_with_its_message(runtime: Runtime) -> None:
    calls = []

    async def reload() -> ReloadResult:
        calls.append(1)
        return ReloadResult(True, "config reloaded: 2 lists, 3 targets")

    runtime.reload = reload
    reply = get(runtime, "/-/reload", "POST")
    assert (reply.status, reply.text) == (200, "config reloaded: 2 lists, 3 targets\n")
    assert calls == [1]


def test_a_refused_reload_answers_500_with_the_reason(runtime: Runtime) -> None:
    async def reload() -> ReloadResult:
        return ReloadResult(False, "config.yaml: lists.0.zone: not a DNS name")

    runtime.reload = reload
    reply = get(runtime, "/-/reload", "POST")
    assert (reply.status, reply.text) == (500, "config.yaml: lists.0.zone: not a DNS name\n")


def test_a_reload_posted_from_a_web_page_is_refused(runtime: Runtime) -> None:
    calls = []

    async def reload() -> ReloadResult:
        calls.append(1)
        return ReloadResult(True, "reloaded")

    runtime.reload = reload
    reply = get(runtime, "/-/reload", "POST", headers={"Origin": "https://evil.example"})
    assert reply.status == 403
    assert calls == []


def test_reload_needs_post(runtime: Runtime) -> None:
    reply = get(runtime, "/-/reload")
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"


def test_reload_without_a_daemon_behind_it_is_503(runtime: Runtime) -> None:
    assert get(runtime, "/-/reload", "POST").status == 503


# --- /metrics ------------------------------------------------------------------------------------


def test_metrics_are_served_in_the_prometheus_text_format(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")])
    reply = get(runtime, "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    [sample] = families["rblwatch_listed"].samples
    assert sample.labels == {"target": "192.0.2.1", "list": "corp-bl", "group": "mail"}
    assert sample.value == 1.0
    assert families["rblwatch_listings"].type == "gauge"


def test_metrics_are_gzipped_for_a_scraper_that_asks(runtime: Runtime) -> None:
    reply = get(runtime, "/metrics", headers={"Accept-Encoding": "gzip"})
    assert reply.headers["Content-Encoding"] == "gzip"
    assert "rblwatch_build_info" in reply.text  # the client inflated it


def test_ten_thousand_listings_give_ten_thousand_listed_samples(runtime: Runtime) -> None:
    put(runtime, [listed(f"10.0.{i // 256}.{i % 256}", since=T0 + i) for i in range(10_000)])
    reply = get(runtime, "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    samples = families["rblwatch_listed"].samples
    assert len(samples) == 10_000
    assert {s.value for s in samples} == {1.0}
    assert len({s.labels["target"] for s in samples}) == 10_000
    assert len(families["rblwatch_listed_since_timestamp_seconds"].samples) == 10_000


# --- /api/v1/status ------------------------------------------------------------------------------


def test_status_lists_listings_lists_and_targets_with_rfc3339_times(runtime: Runtime) -> None:
    put(
        runtime,
        [listed("192.0.2.1", meanings=("spam source",), txt="see https://corp.example.net/x")],
    )
    status = ListStatus(name="corp-bl", last_cycle_end=T0 + 30)
    runtime.store.commit(CycleCommit(list="corp-bl", status=status))
    runtime.store.record_health("corp-bl", Health.HEALTHY, "", T0, None)
    runtime.targets_per_group = {"mail": 4, "web": 1}
    reply = get(runtime, "/api/v1/status")
    assert reply.status == 200
    assert reply.content_type == "application/json"
    doc = reply.json()
    # no list ever completed a cycle: every pair is unknown (stale), the listing stays listed
    assert doc.pop("counts") == {
        "total": 9,
        "listed": 1,
        "clean": 0,
        "unknown": 8,
        "errors": 0,
        "stale": 9,
        "acknowledged": 0,
    }
    pairs = doc.pop("pairs")
    assert pairs["next_cursor"] is None
    assert [(p["list"], p["target"], p["state"]) for p in pairs["items"]][:2] == [
        ("corp-bl", "192.0.2.0", "unknown"),
        ("corp-bl", "192.0.2.1", "listed"),
    ]
    assert len(pairs["items"]) == 9
    never = {"start": None, "end": None, "success": None, "skipped": None}
    no_cycle = {**never, "lookups": 0, "errors": 0}
    unlimited = {"used_today": 0, "limit": None, "exhausted": False}
    assert doc == {
        "resolver": {"state": "ok", "since": None, "detail": ""},
        "listings": [
            {
                "target": "192.0.2.1",
                "list": "corp-bl",
                "group": "mail",
                "since": "2026-11-27T12:00:00Z",
                "codes": ["127.0.0.2"],
                "meanings": ["spam source"],
                "txt": "see https://corp.example.net/x",
                "stale": True,  # never a good answer: the pairs view's stale (one rule)
                "ack": None,
            }
        ],
        "next_cursor": None,  # every listing on this page
        "lists": [
            {
                "name": "corp-bl",
                "health": "healthy",
                "last_cycle_end": "2026-11-27T12:00:30Z",
                "last_cycle": {**no_cycle, "end": "2026-11-27T12:00:30Z"},
                "budget": unlimited,
            },
            {
                "name": "spamhaus-zen",
                "health": "unknown",
                "last_cycle_end": None,
                "last_cycle": no_cycle,
                "budget": {"used_today": 0, "limit": 300000, "exhausted": False},
            },
            {
                "name": "corp-dbl",
                "health": "unknown",
                "last_cycle_end": None,
                "last_cycle": no_cycle,
                "budget": unlimited,
            },
        ],
        "unresolved": [],
        "targets": 5,
        "instances": [],  # no heartbeat yet
        "hygiene": {"checks": [], "failing": []},  # no group asks for sender checks
    }


def test_status_json_works_from_a_store_and_a_config_alone(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")])
    status = status_json(web.read_status(runtime.store, runtime.config))
    # no daemon: the config's targets are counted (192.0.2.0/30 is 4, plus example.com)
    assert status["targets"] == 5
    assert [item["target"] for item in status["listings"]] == ["192.0.2.1"]  # type: ignore[attr-defined]


def test_no_secret_appears_in_the_status_api(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")])
    text = get(runtime, "/api/v1/status").text
    assert SECRET not in text
    assert "secret-store-path" not in text


def instance(name: str) -> Instance:
    return Instance(name, f"host-{name}", 4242, "9.9.9", T0, 0.0)


def test_status_lists_the_instance_that_heartbeats_on_the_store(runtime: Runtime) -> None:
    runtime.me = instance("a1")
    runtime.view = runtime.store.tick(runtime.me, LISTS, 30.0)
    (only,) = get(runtime, "/api/v1/status").json()["instances"]
    assert only == {
        "id": "a1",
        "host": "host-a1",
        "pid": 4242,
        "version": "9.9.9",
        "started": "2026-11-27T12:00:00Z",
        "last_heartbeat": only["last_heartbeat"],
        "shards_held": 3 * 16,  # alone on SQLite: every shard of every list
        "leader": True,
    }
    assert parse_rfc3339(only["last_heartbeat"]) == pytest.approx(runtime.view.now, abs=1)


def test_every_instance_on_a_shared_postgres_store_shows_the_same_instances(
    tmp_path: Path, postgres_cluster: Cluster
) -> None:
    name = postgres_cluster.create_database()
    stores = [open_store(postgres_cluster.url(name)) for _ in range(2)]
    try:
        runtimes = [make_runtime(tmp_path / n) for n in ("a", "b")]
        for rt, store, me in zip(runtimes, stores, ("a1", "b2"), strict=True):
            rt.store.close()
            rt.store, rt.me = store, instance(me)
        for _ in range(2):  # the second round: the first's claims rebalanced to fair shares
            for rt in runtimes:
                assert rt.me is not None
                rt.view = rt.store.tick(rt.me, LISTS, 30.0)
        answers = [get(rt, "/api/v1/status").json()["instances"] for rt in runtimes]
        pages = [get(rt, "/").text for rt in runtimes]
    finally:
        for store in stores:
            store.close()
        postgres_cluster.drop_database(name)
    assert answers[0] == answers[1]
    assert [i["id"] for i in answers[0]] == ["a1", "b2"]
    assert sum(i["shards_held"] for i in answers[0]) == 3 * 16
    assert sorted(i["leader"] for i in answers[0]) == [False, True]
    assert "served by a1" in pages[0] and "<td>a1 (this page)</td>" in pages[0]
    assert "served by b2" in pages[1] and "<td>b2 (this page)</td>" in pages[1]


# --- /api/v1/events ------------------------------------------------------------------------------


def events_fixture(runtime: Runtime) -> None:
    put(
        runtime,
        events=[
            event("192.0.2.1", T0),
            event("192.0.2.2", T0 + 60),
            event("example.com", T0 + 120, "corp-dbl", group="web"),
            event(None, T0 + 180, "spamhaus-zen", EventKind.LIST_UNHEALTHY, group=None),
        ],
    )


def test_events_come_oldest_first_in_the_documented_shape(runtime: Runtime) -> None:
    events_fixture(runtime)
    reply = get(runtime, "/api/v1/events")
    assert reply.status == 200
    events = reply.json()["events"]
    assert [e["at"] for e in events] == [
        "2026-11-27T12:00:00Z",
        "2026-11-27T12:01:00Z",
        "2026-11-27T12:02:00Z",
        "2026-11-27T12:03:00Z",
    ]
    assert events[0] == {
        "id": events[0]["id"],
        "kind": "listed",
        "target": "192.0.2.1",
        "hostname": None,
        "list": "corp-bl",
        "group": "mail",
        "at": "2026-11-27T12:00:00Z",
        "codes": ["127.0.0.2"],
        "initial": False,
    }
    assert isinstance(events[0]["id"], int)
    assert (events[3]["kind"], events[3]["target"], events[3]["group"]) == (
        "list_unhealthy",
        None,
        None,
    )


def test_events_since_is_inclusive_and_limit_counts_from_there(runtime: Runtime) -> None:
    events_fixture(runtime)
    reply = get(runtime, "/api/v1/events?since=2026-11-27T12:01:00Z&limit=2")
    assert [e["at"] for e in reply.json()["events"]] == [
        "2026-11-27T12:01:00Z",
        "2026-11-27T12:02:00Z",
    ]


def test_events_since_accepts_an_offset(runtime: Runtime) -> None:
    events_fixture(runtime)
    reply = get(runtime, "/api/v1/events", params={"since": "2026-11-27T13:02:00+01:00"})
    assert [e["target"] for e in reply.json()["events"]] == ["example.com", None]


def test_events_since_forgives_an_unencoded_plus_in_the_offset(runtime: Runtime) -> None:
    events_fixture(runtime)
    reply = get(runtime, "/api/v1/events?since=2026-11-27T13:02:00+01:00")
    assert reply.status == 200
    assert [e["target"] for e in reply.json()["events"]] == ["example.com", None]


def test_events_filter_by_target_and_by_list(runtime: Runtime) -> None:
    events_fixture(runtime)

    async def action(request: Callable[..., Awaitable[Reply]]) -> list[list[str]]:
        by_target = await request("/api/v1/events?target=192.0.2.2")
        by_list = await request("/api/v1/events?list=corp-dbl")
        return [
            [e["target"] for e in by_target.json()["events"]],
            [e["list"] for e in by_list.json()["events"]],
        ]

    assert serve(runtime, action) == [["192.0.2.2"], ["corp-dbl"]]


def test_events_filters_normalise_the_target_and_refuse_an_unknown_list(
    runtime: Runtime,
) -> None:
    put(runtime, events=[event("2001:db8::25", T0), event("192.0.2.2", T0 + 1)])

    async def action(request: Callable[..., Awaitable[Reply]]) -> list[object]:
        long_form = await request("/api/v1/events?target=2001:0db8:0:0::25")
        typo = await request("/api/v1/events?list=corp-bll")
        bad = await request("/api/v1/events?target=not_a_target!")
        return [
            [e["target"] for e in long_form.json()["events"]],
            typo.status,
            typo.json()["error"],
            bad.status,
        ]

    got = serve(runtime, action)
    assert got[0] == ["2001:db8::25"]
    assert got[1] == 400 and str(got[2]).startswith("list: no such list 'corp-bll' (known: ")
    assert got[3] == 400


def test_a_huge_limit_is_capped(runtime: Runtime) -> None:
    put(runtime, events=[event(f"10.0.{i // 256}.{i % 256}", T0 + i) for i in range(1005)])
    reply = get(runtime, "/api/v1/events?limit=5000")
    assert reply.status == 200
    assert len(reply.json()["events"]) == web.EVENTS_LIMIT_MAX == 1000


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("since=yesterday", "since: not an RFC 3339 time"),
        ("since=2026-11-27T12:00:00", "since: time without a zone"),
        ("limit=0", "limit: must be at least 1"),
        ("limit=ten", "limit: not a whole number"),
        ("limit=5&limit=6", "limit: given 2 times"),
        ("lmit=5", "unknown parameter 'lmit'"),
    ],
)
def test_bad_event_parameters_are_400_with_a_one_line_json_error(
    runtime: Runtime, query: str, problem: str
) -> None:
    reply = get(runtime, f"/api/v1/events?{query}")
    assert reply.status == 400
    assert reply.content_type == "application/json"
    assert reply.text.count("\n") == 1
    assert reply.json()["error"].startswith(problem)


def test_recent_events_are_the_newest_ones_even_in_a_long_history(runtime: Runtime) -> None:
    now = T0 + 400 * 86400
    old = [event(f"10.1.{i // 256}.{i % 256}", T0 + i) for i in range(2500)]  # over a scan
    new = [event(f"10.2.0.{i}", now - 600 + i) for i in range(60)]
    put(runtime, events=old + new)
    recent = web.recent_events(runtime.store, 50)
    assert [e.target for e in recent] == [e.target for e in new[-50:]]


def test_recent_events_reach_back_past_a_quiet_month(runtime: Runtime) -> None:
    put(runtime, events=[event("192.0.2.1", T0), event("192.0.2.2", T0 + 1)])
    assert [e.target for e in web.recent_events(runtime.store, 50)] == [
        "192.0.2.1",
        "192.0.2.2",
    ]


# --- the status page ----------------------------------------------------------------------------


CONSOLE_PAGES = ("/", "/listings", "/target/192.0.2.1", "/list/corp-bl", "/events")


def local_only(page: str) -> None:
    """Self-contained: every script, stylesheet and image the page loads is the console's own."""
    loaded = re.findall(r'<(?:script|img|iframe)[^>]*\bsrc="([^"]*)"', page)
    loaded += re.findall(r'<link[^>]*\bhref="([^"]*)"', page)
    assert loaded, "the page loads its stylesheet and script"
    assert all(u.startswith("/static/") for u in loaded), loaded
    assert "<script>" not in page  # no inline script (the CSP allows none)


def test_the_page_shows_listings_lists_events_and_links(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1", meanings=("spam source",))], [event("192.0.2.1", T0)])
    runtime.store.record_health("spamhaus-zen", Health.DEAD, "127.0.0.2 not listed", T0, None)
    reply = get(runtime, "/")
    assert reply.status == 200
    assert reply.content_type == "text/html"
    page = reply.text
    assert '<td><a href="/target/192.0.2.1">192.0.2.1</a></td>' in page
    assert "<td>spam source</td>" in get(runtime, "/listings").text  # the overview has no codes
    assert '<a href="https://corp.example.net/delist?a=1&amp;b=2"' in page
    assert "127.0.0.2 not listed" in page
    assert '<span class="bad">dead</span>' in page
    assert '<a href="/metrics">' in page
    assert '<a href="/api/v1/status">' in page
    assert '<a href="/api/v1/events">' in page
    assert '<time datetime="2026-11-27T12:00:00Z">2026-11-27T12:00:00Z</time>' in page
    local_only(page)
    assert "default-src 'self'" in reply.headers["Content-Security-Policy"]


def test_the_listings_page_shows_each_listing_with_its_meaning_txt_and_delist_link(
    runtime: Runtime,
) -> None:
    put(runtime, [listed("192.0.2.1", meanings=("spam source",), txt="see https://x.example")])
    page = get(runtime, "/listings").text
    assert '<td><a href="/target/192.0.2.1">192.0.2.1</a></td>' in page
    assert "<td>spam source</td>" in page
    assert '<td class="txt">see https://x.example</td>' in page
    assert '<a href="https://corp.example.net/delist?a=1&amp;b=2"' in page
    local_only(page)


def test_the_page_escapes_every_value(runtime: Runtime) -> None:
    evil = "<script>alert(1)</script>"
    put(
        runtime,
        [listed(evil, group=evil, meanings=(evil,), txt=evil)],
        [event(evil, T0, group=evil)],
    )
    for path in ("/", "/listings", f"/listings?q={evil}", f"/events?list={evil}"):
        page = get(runtime, path).text
        assert evil not in page, path
        assert "<script>" not in page, path
    page = get(runtime, "/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in get(runtime, "/listings").text


def test_the_page_shows_no_secret(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")], [event("192.0.2.1", T0)])
    for path in CONSOLE_PAGES:
        page = get(runtime, path).text
        assert SECRET not in page, path
        assert "secret-store-path" not in page, path
        assert "hooks.example.net" not in page, path


def test_the_page_shows_the_instance_that_served_it_and_its_heartbeat(
    runtime: Runtime,
) -> None:
    runtime.me = instance("a1")
    runtime.view = runtime.store.tick(runtime.me, LISTS, 30.0)
    page = get(runtime, "/").text
    assert "served by a1 ·" in page
    row = next(line for line in page.splitlines() if "<td>a1 (this page)</td>" in line)
    assert "<td>host-a1</td>" in row and "<td>48</td>" in row
    assert re.search(r">\ds ago</span>", row), row  # ticked just now
    assert '<span class="ok">leader</span>' in row


def test_before_any_cycle_the_page_says_nothing_is_known_not_nothing_listed(
    runtime: Runtime,
) -> None:
    page = get(runtime, "/").text
    assert "No list has completed a cycle yet: nothing is known" in page
    assert "No target is listed." not in page
    assert '<span class="n unknown"><a href="/listings">not known</a></span> listed' in page
    assert "No events yet." in page


def test_the_page_says_when_nothing_is_listed(runtime: Runtime) -> None:
    status = ListStatus(name="corp-bl", last_cycle_end=T0, last_cycle_lookups=5)
    runtime.store.commit(CycleCommit(list="corp-bl", status=status))
    page = get(runtime, "/").text
    # the list has no good answer yet (no successful cycle): its pairs are unknown, not clean
    assert (
        "No target is known to be listed; 9 pairs are unknown"
        " (2 lists have not completed a cycle yet)." in page
    )
    assert "No target is listed." not in page
    assert '<span class="n"><a href="/listings">0</a></span> listed' in page
    assert "No target is listed." in get(runtime, "/listings").text
    assert "No events yet." in page


def test_during_a_resolver_outage_the_page_says_unknown_never_nothing_listed(
    runtime: Runtime,
) -> None:
    from rblwatch.model import ResolverState
    from rblwatch.views.status import StatusView

    status = ListStatus(name="corp-bl", last_cycle_end=T0)
    runtime.store.commit(CycleCommit(list="corp-bl", status=status))

    original = web.read_status

    def read_status(store: Any, config: Any, targets: Any) -> StatusView:
        view = original(store, config, targets)
        down = ResolverState("unreachable", T0, "every list timed out")
        return dataclasses.replace(view, resolver=down)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(web, "read_status", read_status)
        page = get(runtime, "/").text
    assert "The resolver is unreachable since 2026-11-27T12:00:00Z" in page
    assert "every list timed out" in page
    assert "whether any target is listed is not known" in page
    assert "No target is listed." not in page


def test_a_failed_reload_and_a_silent_store_show_as_banners(runtime: Runtime) -> None:
    runtime.stats.reload_ok = False
    runtime.store_ok = False
    page = get(runtime, "/").text
    assert "The last configuration reload failed" in page
    assert "The store did not answer the last heartbeat" in page


# --- failures ------------------------------------------------------------------------------------


def test_an_unreadable_store_is_a_one_line_503(runtime: Runtime) -> None:
    runtime.store.close()

    async def action(request: Callable[..., Awaitable[Reply]]) -> list[Reply]:
        paths = ("/api/v1/status", "/api/v1/events", "/", *CONSOLE_PAGES[1:], "/live")
        return [await request(p) for p in paths]

    api_status, api_events, page, *pages = serve(runtime, action)
    assert api_status.status == api_events.status == page.status == 503
    assert api_status.json()["error"].startswith("store unavailable:")
    assert page.text.startswith("store unavailable:")
    assert page.text.count("\n") == 1
    for other in pages:
        assert other.status == 503 and other.text.startswith("store unavailable:")
        assert other.text.count("\n") == 1


def test_an_address_in_use_is_a_one_line_web_error(runtime: Runtime) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def main() -> None:
            await web.start(runtime, build_registry(runtime), "127.0.0.1", port)

        with pytest.raises(web.WebError) as info:
            asyncio.run(main())
    message = str(info.value)
    assert message.startswith(f"web.listen_address: cannot listen on 127.0.0.1:{port}: ")
    assert "\n" not in message


# --- hostile peers (issue 9): raw sockets against the real listener ------------------------------


def on_listener(runtime: Runtime, limits: Limits, action: Callable[[int], Awaitable[Any]]) -> Any:
    """Start the listener with `limits`, run `action(port)`, stop it (which flushes its log)."""

    async def main() -> Any:
        runner = await web.start(runtime, build_registry(runtime), "127.0.0.1", 0, limits=limits)
        try:
            return await asyncio.wait_for(action(runner.addresses[0][1]), 20)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


async def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send `data` on a new connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


HEALTHY = b"GET /-/healthy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
MALFORMED = {
    "bad content length": b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    "over-long request line": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
    "over-long header": b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
    "bad version": b"GET / HTTP/9.9\r\nHost: t\r\n\r\n",
}


def test_the_listener_limits_are_documented_defaults() -> None:
    assert (Limits().header_timeout, Limits().max_connections) == (10.0, 256)


def test_malformed_requests_get_400_and_one_log_line_per_kind_never_a_traceback(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def action(port: int) -> list[bytes]:
        return [await exchange(port, data) for data in MALFORMED.values() for _ in range(3)]

    replies = on_listener(runtime, Limits(), action)
    assert [r.split(b"\r\n")[0][9:12] for r in replies] == [b"400"] * 12
    assert "Traceback" not in caplog.text
    assert [r for r in caplog.records if r.exc_info and r.exc_info[0] is not None] == []
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    first = [ln for ln in lines if "bad request from 127.0.0.1" in ln]
    # three kinds: the two over-long lines are one problem (LineTooLong)
    assert len(first) == 3, lines
    repeats = [re.match(r"web: (\d+) more like '([^']+)' in the last 1 s$", ln) for ln in lines]
    counted = {m[2]: int(m[1]) for m in repeats if m}
    assert sum(counted.values()) == 12 - 3, lines  # every repeat counted once, at the end
    assert len(lines) == 3 + len(counted), lines
    assert all("\n" not in ln and len(ln) < 160 for ln in lines), lines
    assert "bbbb" not in caplog.text  # the peer's bytes are not echoed


def test_repeats_are_summarised_when_their_interval_ends(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    async def action(port: int) -> list[str]:
        for _ in range(4):
            await exchange(port, MALFORMED["bad content length"])
        await asyncio.sleep(0.8)  # the interval (0.3 s) has ended; no new request came
        return [r.getMessage() for r in caplog.records]

    lines = on_listener(runtime, Limits(problem_interval=0.3), action)
    assert sum("bad request from" in ln for ln in lines) == 1, lines
    assert sum(ln.startswith("web: 3 more like") for ln in lines) == 1, lines


def test_the_problem_log_counts_repeats_within_an_interval() -> None:
    now = [0.0]
    logger = logging.getLogger("tests.problems")
    problems = ProblemLog(60.0, logger, clock=lambda: now[0])
    assert problems.report("LineTooLong", "first") is True
    assert problems.report("LineTooLong", "again") is False
    assert problems.report("BadStatusLine", "other") is True
    now[0] = 61.0
    assert problems.report("LineTooLong", "a new interval") is True
    assert problems.windows["LineTooLong"].repeats == 0
    assert "BadStatusLine" not in problems.windows  # ended with no repeat: nothing to say


async def _trickle(port: int, first: bytes) -> float:
    """Send `first`, then a header line every 0.1 s; seconds until the server drops us."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = loop.time()
    writer.write(first)
    closed = asyncio.ensure_future(reader.read())
    try:
        while not closed.done():
            writer.write(b"X-Slow: 1\r\n")
            await asyncio.wait([closed], timeout=0.1)
        with contextlib.suppress(ConnectionError):
            await closed
        return loop.time() - start
    finally:
        writer.close()


def test_a_client_that_trickles_its_request_head_is_dropped(runtime: Runtime) -> None:
    async def action(port: int) -> tuple[float, bytes]:
        slow = await _trickle(port, b"GET / HTTP/1.1\r\nHost: t\r\n")
        return slow, await exchange(port, HEALTHY)

    slow, after = on_listener(runtime, Limits(header_timeout=0.5), action)
    assert 0.4 <= slow < 3.0
    assert after.startswith(b"HTTP/1.1 200 OK")


def test_the_next_request_on_a_kept_alive_connection_is_timed_too(runtime: Runtime) -> None:
    async def action(port: int) -> float:
        first = b"GET /-/healthy HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n"
        return await _trickle(port, first)

    assert on_listener(runtime, Limits(header_timeout=0.5), action) < 3.0


def test_connections_over_the_cap_are_refused_at_once_and_the_rest_kept(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    async def action(port: int) -> tuple[bytes, list[bool], bytes]:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        await asyncio.sleep(0.2)  # accepted and counted
        refused = await exchange(port, HEALTHY, timeout=2.0)
        still_open = []
        for reader, _ in idle:
            try:
                still_open.append(await asyncio.wait_for(reader.read(), 0.2) != b"")
            except TimeoutError:
                still_open.append(True)
        idle[0][1].close()
        await asyncio.sleep(0.2)
        served = await exchange(port, HEALTHY)
        for _, writer in idle[1:]:
            writer.close()
        return refused, still_open, served

    refused, still_open, served = on_listener(runtime, Limits(max_connections=3), action)
    assert refused == b"" or refused.startswith(b"HTTP/1.1 503 Service Unavailable")
    assert still_open == [True, True, True]
    assert served.startswith(b"HTTP/1.1 200 OK")
    assert sum("refused a connection from 127.0.0.1" in r.getMessage() for r in caplog.records) == 1


def test_a_problem_is_described_without_the_peer_s_bytes() -> None:
    from aiohttp.http_exceptions import BadHttpMethod, BadStatusLine, LineTooLong

    assert describe(BadStatusLine("GET /x-s3cret")) == "BadStatusLine: Bad status line"
    assert describe(BadHttpMethod("FROB")) == "BadHttpMethod: Bad HTTP method in status line"
    assert describe(LineTooLong(b"a" * 100, 8190)) == (
        "LineTooLong: Got more than 8190 bytes when reading"
    )
