"""Reminders (`repeat_interval`): listings still open and not acknowledged come back, durably.

The decision (`due_reminders`) on plain values; the sweep against both stores and a real HTTP
receiver, with a clock the test moves (repeat intervals are hours; nothing here waits one).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from rblwatch.alerts import formats
from rblwatch.model import Ack, CycleCommit, Event, EventKind, PairState, PairStatus
from rblwatch.peers import new_instance
from rblwatch.reminders import Reminders, detail_of, due_reminders, last_of, receivers_in
from rblwatch.runtime import Runtime
from rblwatch.store import Store, open_store
from rblwatch.store.sqlite import SqliteStore
from tests.postgres import Cluster
from tests.test_alerts_sender import AL, BL, SECRET, config, hook, run, sending, until
from tests.webhooks import WebhookReceiver

HOUR = 3600.0
T0 = time.time() - 10 * HOUR  # the listings began ten hours ago


def pair(target: str, *, since: float = T0, lst: str = "bl", group: str = "mail") -> PairState:
    return PairState(
        target=target,
        list=lst,
        group=group,
        status=PairStatus.LISTED,
        since=since,
        first_seen=since,
        codes=("127.0.0.2",),
        meanings=("spam source",),
        txt="see https://bl.example/",
    )


LISTS = {"bl": BL, "al": AL}
OPS = hook("ops", "http://127.0.0.1:9", repeat_interval=4 * HOUR)
CHAT = hook("chat", "http://127.0.0.1:9", format="slack", repeat_interval=HOUR)
PLAIN = hook("plain", "http://127.0.0.1:9")  # no repeat_interval: never reminded


def never(target: str, lst: str) -> bool:
    return False


# -- the decision ---------------------------------------------------------------------------------


def test_a_listing_is_reminded_to_each_receiver_whose_interval_has_passed_since_it_began() -> None:
    [event] = due_reminders([pair("192.0.2.1")], LISTS, [OPS, CHAT, PLAIN], {}, T0 + HOUR, never)
    assert event.kind is EventKind.REMINDER
    assert (event.target, event.list, event.since, event.at) == ("192.0.2.1", "bl", T0, T0 + HOUR)
    assert event.codes == ("127.0.0.2",) and event.txt == "see https://bl.example/"
    assert receivers_in(event.detail) == ["chat"]  # ops waits four hours, plain never
    [later] = due_reminders([pair("192.0.2.1")], LISTS, [OPS, CHAT], {}, T0 + 4 * HOUR, never)
    assert receivers_in(later.detail) == ["ops", "chat"]


def test_the_next_reminder_waits_a_whole_interval_after_the_last_one() -> None:
    last = {("192.0.2.1", "bl", "chat"): T0 + 5 * HOUR}
    early = T0 + 5.9 * HOUR
    assert due_reminders([pair("192.0.2.1")], LISTS, [CHAT], last, early, never) == []
    assert due_reminders([pair("192.0.2.1")], LISTS, [CHAT], last, T0 + 6 * HOUR, never)


def test_no_reminder_for_an_acknowledged_clean_allow_listed_or_unrouted_pair() -> None:
    now = T0 + 9 * HOUR
    acked = {("192.0.2.1", "bl")}
    clean = PairState("192.0.2.3", "bl", "mail", PairStatus.CLEAN, T0, T0)
    web_only = hook("web", "http://127.0.0.1:9", repeat_interval=HOUR, groups=("web",))
    pairs = [pair("192.0.2.1"), pair("192.0.2.2", lst="al"), clean, pair("192.0.2.4")]
    got = due_reminders(pairs, LISTS, [CHAT, web_only], {}, now, lambda t, x: (t, x) in acked)
    assert [(e.target, receivers_in(e.detail)) for e in got] == [("192.0.2.4", ["chat"])]


def test_the_receivers_of_a_reminder_are_read_back_from_its_detail() -> None:
    assert detail_of(["ops", "chat"]) == "to ops, chat"
    sent = [("a", "bl", "to ops, chat", 5.0), ("a", "bl", "to ops", 7.0), ("b", "bl", "to x", 1.0)]
    assert last_of(sent) == {
        ("a", "bl", "ops"): 7.0,
        ("a", "bl", "chat"): 5.0,
        ("b", "bl", "x"): 1.0,
    }


# -- the sweep, on both stores ---------------------------------------------------------------------


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


def listings(store: Store, *pairs: PairState) -> None:
    store.commit(CycleCommit("bl", upserts=list(pairs), seen=[p.target for p in pairs]))


def reminders_in(store: Store) -> list[Event]:
    return [e for e in store.events(limit=1000) if e.kind is EventKind.REMINDER]


def test_an_unacked_listing_is_reminded_after_repeat_interval_and_an_acked_one_is_not(
    store: Store,
) -> None:
    ops = WebhookReceiver().start()
    chat = WebhookReceiver().start()
    plain = WebhookReceiver().start()
    cfg = config(
        hook("ops", ops.url, repeat_interval=4 * HOUR),
        hook("chat", chat.url, format="slack", repeat_interval=4 * HOUR),
        hook("plain", plain.url),
    )
    rt = Runtime(cfg, store)
    listings(store, pair("192.0.2.1", since=time.time() - 5 * HOUR), pair("192.0.2.2"))
    acked = {("192.0.2.2", "bl")}
    clock = [time.time()]
    sweeper = Reminders(rt, lambda t, x: (t, x) in acked, clock=lambda: clock[0])

    async def scenario() -> None:
        async with sending(rt):
            [event] = await sweeper.sweep()
            assert (event.target, event.kind) == ("192.0.2.1", EventKind.REMINDER)
            [got] = await until("the json reminder", ops.delivered)
            [slack] = await until("the slack reminder", chat.delivered)
            assert await sweeper.sweep() == []  # reminded just now
            await asyncio.sleep(0.3)
        doc = Webhook(SECRET).verify(got.body, got.headers)
        assert doc["type"] == "listing.reminder"
        assert doc["data"]["target"] == "192.0.2.1" and doc["data"]["state"] == "listed"
        assert doc["data"]["codes"] == [{"code": "127.0.0.2", "meaning": "spam source"}]
        assert got.id == f"evt_{event.id}"
        text = json.loads(slack.body)["blocks"][0]["text"]["text"]
        assert text == "Reminder: 192.0.2.1 is still listed on bl"
        assert plain.received == []  # no repeat_interval: no reminder
        assert [e.target for e in reminders_in(store)] == ["192.0.2.1"]

    try:
        run(scenario())
    finally:
        for r in (ops, chat, plain):
            r.close()
    # a restart knows what was reminded: the history says so
    again = Reminders(
        Runtime(cfg, store), lambda t, x: (t, x) in acked, clock=lambda: clock[0] + HOUR
    )
    assert asyncio.run(again.sweep()) == []
    # four hours on, and the acknowledgement gone: both are due
    later = Reminders(Runtime(cfg, store), never, clock=lambda: clock[0] + 4 * HOUR)
    assert sorted(e.target or "" for e in asyncio.run(later.sweep())) == ["192.0.2.1", "192.0.2.2"]


def test_reminders_are_written_by_the_leader_alone(postgres_cluster: Cluster) -> None:
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    stores = [open_store(url), open_store(url)]
    cfg = config(hook("ops", "http://127.0.0.1:9", repeat_interval=HOUR))
    try:
        runtimes = [Runtime(cfg, s) for s in stores]
        for rt in runtimes:
            rt.me = new_instance("test")
            assert rt.me is not None
            rt.view = rt.store.tick(rt.me, ["bl"], 30.0)
        leader = [rt for rt in runtimes if rt.view is not None and rt.view.leader]
        follower = [rt for rt in runtimes if rt not in leader]
        assert len(leader) == len(follower) == 1
        listings(stores[0], pair("192.0.2.1"))
        assert asyncio.run(Reminders(follower[0], never).sweep()) == []
        assert len(asyncio.run(Reminders(leader[0], never).sweep())) == 1
        assert len(reminders_in(stores[0])) == 1
        assert stores[0].outbox_counts() == {"ops": 1}
    finally:
        for s in stores:
            s.close()
        postgres_cluster.drop_database(name)


def test_every_format_shows_a_reminder_as_the_listing_it_reminds_of_marked_as_such() -> None:
    [event] = due_reminders([pair("192.0.2.1")], LISTS, [CHAT], {}, T0 + HOUR, never)
    event = replace(event, id=7)
    ctx = formats.Context(dns_list=BL)
    alert = formats.event_alert(event, ctx, now=T0 + HOUR, ttl=240.0)
    assert alert["labels"]["alertname"] == formats.LISTED_ALERT
    assert (alert["startsAt"], alert["endsAt"]) == (
        formats.rfc3339(T0),
        formats.rfc3339(T0 + HOUR + 240.0),
    )
    doc = json.loads(formats.json_body(event, ctx))
    assert doc["type"] == "listing.reminder"
    assert doc["data"]["since"] == formats.rfc3339(T0)
    assert doc["data"]["previous"]["state"] == "listed"
    slack = json.loads(formats.slack_body(event, ctx))
    assert slack["text"] == ":alarm_clock: Reminder: 192.0.2.1 is still listed on bl"
    assert "Request removal from bl" in json.dumps(slack)


def test_the_daemons_sweep_reads_the_stored_acks_and_an_expired_one_no_longer_silences(
    store: Store,
) -> None:
    cfg = config(hook("ops", "http://127.0.0.1:9/", repeat_interval=4 * HOUR))
    rt = Runtime(cfg, store)
    start = time.time()
    listings(store, pair("192.0.2.1", since=start - 5 * HOUR), pair("192.0.2.2"))
    listings(store, pair("192.0.2.3", since=start - 5 * HOUR))
    store.set_ack(Ack("192.0.2.2", "bl", by="alice", at=start, note="on it"))
    store.set_ack(Ack("192.0.2.3", "bl", by="bob", at=start, until=start + HOUR))
    # no `acked`: the store's active acks, read at each sweep; .2 and .3 are acknowledged,
    # .3 only for an hour
    assert asyncio.run(swept(Reminders(rt, clock=lambda: start))) == ["192.0.2.1"]
    # two hours on: .1 was reminded (not due for two more), .2 still acked, .3's ack ran out
    assert asyncio.run(swept(Reminders(rt, clock=lambda: start + 2 * HOUR))) == ["192.0.2.3"]


async def swept(sweeper: Reminders) -> list[str | None]:
    return sorted(e.target for e in await sweeper.sweep())
