"""Grouping windows (`group_wait`, `group_max`): a flood of events is a few messages, not one each.

Real HTTP receivers on 127.0.0.1 (`tests.webhooks`), a real Alertmanager, and both stores: the
sender runs in the test's event loop against the outbox the daemon writes. The end-to-end test
kills a real daemon mid-window. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from rblwatch.alerts import formats
from rblwatch.alerts.sender import context_for
from rblwatch.model import Event, EventKind
from rblwatch.peers import new_instance
from rblwatch.runtime import Runtime
from rblwatch.store import Store, open_store
from rblwatch.store.sqlite import SqliteStore
from tests.alertmanager import Alertmanager
from tests.daemon import wait_until
from tests.postgres import Cluster
from tests.rbldnsd import Rbldnsd
from tests.test_alerts_e2e import daemon_with
from tests.test_alerts_sender import (
    SECRET,
    commit,
    config,
    drained,
    hook,
    listed,
    run,
    sending,
    until,
)
from tests.test_daemon import BASE, ZONE, cycled, metric
from tests.test_daemon import listed as zone_listed
from tests.webhooks import Reply, WebhookReceiver


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(str(tmp_path / "state.db"))
        try:
            yield s
        finally:
            s.close()
        return
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database()
    s = open_store(cluster.url(name))
    try:
        yield s
    finally:
        s.close()
        cluster.drop_database(name)


@pytest.fixture
def receivers() -> Iterator[Callable[[], WebhookReceiver]]:
    made: list[WebhookReceiver] = []

    def make() -> WebhookReceiver:
        made.append(WebhookReceiver())
        return made[-1]

    try:
        yield make
    finally:
        for r in made:
            r.close()


def flood(n: int, at: float | None = None) -> list[Event]:
    """n listings of one cycle: a /16's worth turning up at once, here a few hundred."""
    at = time.time() if at is None else at
    return [listed(f"192.0.2.{i % 250 + 1}", at=at, lst="bl") for i in range(n)]


def distinct(events: list[Event]) -> list[Event]:
    # a commit's pairs are distinct; give the targets of a big flood their own names
    return [replace(e, target=f"10.{i // 250}.{i % 250}.1") for i, e in enumerate(events)]


def slack_lines(body: bytes) -> list[str]:
    doc = json.loads(body)
    sections = [b for b in doc["blocks"] if b["type"] == "section"]
    return [line for b in sections for line in b["text"]["text"].split("\n")]


def test_500_listings_in_one_window_are_group_max_sized_slack_messages_listing_each(
    store: Store, receivers: Callable[[], WebhookReceiver]
) -> None:
    chat = receivers().start()
    receiver = hook("chat", chat.url, format="slack", group_wait=1.0, group_max=100)
    rt = Runtime(config(receiver), store)

    async def scenario() -> None:
        async with sending(rt):
            t0 = time.monotonic()
            events = commit(rt, *distinct(flood(500)))
            await until("five messages", lambda: len(chat.delivered()) == 5, timeout=20)
            await drained(rt)
            assert chat.delivered()[0].at - t0 >= 0.9  # the window was waited out
            await asyncio.sleep(0.3)
        assert len(chat.received) == 5
        lines = [line for r in chat.delivered() for line in slack_lines(r.body)]
        listings = [line for line in lines if " is listed on bl" in line]
        want = {f"{e.target} is listed on bl" for e in events}
        got = [line.split(" ", 1)[1].split(":")[0] for line in listings]
        assert len(got) == 500 and set(got) == want  # each one, once
        for r in chat.delivered():
            doc = json.loads(r.body)
            assert len(doc["blocks"]) <= 50
            assert all(len(b["text"]["text"]) <= 3000 for b in doc["blocks"][1:-1])
            assert doc["text"] == "100 rblwatch events: 100 listed"
            assert "<https://bl.example/remove|Request removal from bl>" in r.body.decode()
        assert rt.stats.alert_deliveries == {"chat": 500}
        assert store.outbox_counts() == {}

    run(scenario())


def test_a_json_batch_is_signed_and_carries_each_event_under_its_own_id(
    store: Store, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    rt = Runtime(config(hook("ops", ops.url, group_wait=0.5, group_max=500)), store)

    async def scenario() -> None:
        async with sending(rt):
            events = commit(rt, *distinct(flood(300)))
            [got] = await until("the batch", ops.delivered)
            await drained(rt)
        doc = Webhook(SECRET).verify(got.body, got.headers)
        assert doc["type"] == "batch"
        inner = doc["data"]["events"]
        ids = [e["data"]["id"] for e in inner]
        assert ids == [f"evt_{e.id}" for e in events] and len(set(ids)) == 300
        # each inside is the event's usual body, byte for byte
        for body, event in zip(inner, events, strict=True):
            ctx = context_for(rt.config, event.group, event.list)
            assert body == json.loads(formats.json_body(event, ctx))
        assert got.id == formats.batch_id(events)
        assert got.id.startswith(f"batch_{events[0].id}_")
        assert doc["timestamp"] == formats.rfc3339(events[-1].at)

    run(scenario())


def test_a_failed_batch_is_retried_whole_under_the_same_id_then_leaves_the_outbox(
    store: Store, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    ops.answer(Reply(503), Reply(503))
    rt = Runtime(config(hook("ops", ops.url, group_wait=0.3, group_max=50)), store)

    async def scenario() -> None:
        async with sending(rt):
            commit(rt, *distinct(flood(20)))
            await until("the delivery", ops.delivered)
            await drained(rt)
        got = ops.received
        assert [r.status for r in got] == [503, 503, 200]
        assert len({r.id for r in got}) == 1 and len({r.body for r in got}) == 1
        assert rt.stats.alert_deliveries == {"ops": 20}
        assert rt.stats.alert_failures == {"ops": 0}

    run(scenario())


def test_a_lone_event_in_a_window_and_every_event_without_one_keep_their_usual_body(
    store: Store, receivers: Callable[[], WebhookReceiver]
) -> None:
    grouped, plain = receivers().start(), receivers().start()
    rt = Runtime(
        config(hook("grouped", grouped.url, group_wait=0.2), hook("plain", plain.url)), store
    )

    async def scenario() -> None:
        async with sending(rt):
            [lone] = commit(rt, listed("192.0.2.1"))
            await until("the lone event", grouped.delivered)
            three = commit(rt, *distinct(flood(3)))
            await until("four to the ungrouped", lambda: len(plain.delivered()) == 4)
            await until("the batch", lambda: len(grouped.delivered()) == 2)
            await drained(rt)
        first = grouped.delivered()[0]
        assert first.id == f"evt_{lone.id}"
        assert Webhook(SECRET).verify(first.body, first.headers)["type"] == "listing.created"
        assert [r.id for r in plain.delivered()] == [f"evt_{e.id}" for e in [lone, *three]]

    run(scenario())


def test_senders_of_two_instances_deliver_every_grouped_event_once(
    postgres_cluster: Cluster, receivers: Callable[[], WebhookReceiver]
) -> None:
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    stores = [open_store(url), open_store(url)]
    ops = receivers().start()
    cfg = config(hook("ops", ops.url, group_wait=0.2, group_max=7))
    runtimes = [Runtime(cfg, s) for s in stores]
    for rt in runtimes:
        rt.me = new_instance("test")

    async def scenario() -> None:
        async with sending(runtimes[0]), sending(runtimes[1]):
            events: list[Event] = []
            for _ in range(10):
                events += commit(runtimes[0], *distinct(flood(9)))
                await asyncio.sleep(0.05)
            await drained(runtimes[0])
        inner = [
            e["data"]["id"]
            for r in ops.delivered()
            for e in (json.loads(r.body).get("data", {}).get("events") or [json.loads(r.body)])
        ]
        assert sorted(inner) == sorted(f"evt_{e.id}" for e in events)  # each once
        assert inner == [f"evt_{e.id}" for e in events]  # in order
        assert max(len(json.loads(r.body)["data"].get("events", [1])) for r in ops.received) <= 7

    try:
        run(scenario())
    finally:
        for s in stores:
            s.close()
        postgres_cluster.drop_database(name)


def test_a_real_alertmanager_gets_a_window_in_one_post_and_its_last_word_on_each_pair(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    rt = Runtime(config(hook("am", alertmanager.url, format="alertmanager", group_wait=0.5)), store)
    now = time.time()
    gone = listed("192.0.2.200", at=now)
    back = Event(
        EventKind.DELISTED, "bl", now + 0.01, target="192.0.2.200", group="mail", since=now
    )

    def active() -> set[str]:
        return {
            a["labels"]["target"]
            for a in alertmanager.alerts()
            if a["labels"]["alertname"] == "RblwatchListed" and a["status"]["state"] == "active"
        }

    async def scenario() -> None:
        async with sending(rt, resend_interval=3600.0):
            commit(rt, *distinct(flood(20)), gone, back)
            await drained(rt)
            want = {f"10.0.{i}.1" for i in range(20)}
            await until("twenty active alerts", lambda: active() == want)

    try:
        run(scenario())
        # one POST for the window (the sender counts each event delivered)
        assert rt.stats.alert_deliveries == {"am": 22}
        assert "192.0.2.200" not in active()  # listed then delisted in one window: resolved
    finally:
        store.close()


def test_kill_9_mid_window_then_a_restart_delivers_every_event_once(
    tmp_path: Path, rbldnsd: Rbldnsd
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    hooks = WebhookReceiver().start()
    d = daemon_with(
        tmp_path,
        rbldnsd,
        f"""\
    - name: ops
      url: {hooks.url}/rblwatch
      secret: {SECRET}
      group_wait: 8s
      backoff: {{initial: 100ms, max: 500ms}}
""",
    )
    try:
        d.start(d.web_port)
        wait_until("a first cycle", lambda: cycled(d))
        zone_listed(rbldnsd, *(f"192.0.2.{i} :127.0.0.2:spam" for i in (1, 2, 3)))
        wait_until("three listings", lambda: len(d.events("listed")) == 3)
        events = d.events("listed")
        assert hooks.received == []  # the window is open
        d.kill9()
        d.start(d.web_port)
        want = [f"evt_{e['id']}" for e in events]
        wait_until("every event", lambda: len(_inner_ids(hooks)) >= 3, timeout=30)
        wait_until("an empty queue", lambda: metric(d, "rblwatch_alert_queue", receiver="ops") == 0)
        time.sleep(0.5)
        got = _inner_ids(hooks)
        assert sorted(got) == sorted(want)  # all of them, none twice
        for r in hooks.received:
            Webhook(SECRET).verify(r.body, r.headers)
        assert d.stop() == 0
    finally:
        d.close()
        hooks.close()


def _inner_ids(hooks: WebhookReceiver) -> list[str]:
    out: list[str] = []
    for r in hooks.received:
        doc: dict[str, Any] = json.loads(r.body)
        inner = doc["data"]["events"] if doc["type"] == "batch" else [doc]
        out += [e["data"]["id"] for e in inner]
    return out
