"""The alert sender (SPEC §12) against real HTTP receivers on 127.0.0.1 and a real SQLite outbox.

Each test commits events through the store (so the outbox rows are the ones the daemon writes),
runs the senders in the test's event loop and watches what the receivers get. Backoffs are
scaled down to tenths of seconds; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from standardwebhooks import Webhook

from rblwatch.alerts import formats
from rblwatch.alerts.routing import receivers_for
from rblwatch.alerts.sender import (
    Alerts,
    Attempt,
    Verdict,
    backoff,
    parse_retry_after,
    retry_delay,
    verdict,
)
from rblwatch.config import AlertsConfig, Config, Receiver, TargetGroup
from rblwatch.model import (
    CycleCommit,
    DnsList,
    Event,
    EventKind,
    Health,
    PairState,
    PairStatus,
    Purpose,
    frozen_map,
)
from rblwatch.peers import new_instance
from rblwatch.runtime import Runtime
from rblwatch.store import open_store
from rblwatch.store.sqlite import SqliteStore
from tests.postgres import Cluster
from tests.webhooks import Received, Reply, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
BL = DnsList(
    name="bl",
    zone="bl.test",
    codes=frozen_map({"127.0.0.2": "spam source"}),
    delist_url="https://bl.example/remove",
)
AL = DnsList(name="al", zone="al.test", purpose=Purpose.ALLOW)
GROUPS = (
    TargetGroup(group="mail", addresses=("192.0.2.0/24",), labels=frozen_map({"team": "ops"})),
    TargetGroup(group="web", addresses=("198.51.100.0/24",)),
)


def hook(name: str, url: str, **kw: Any) -> Receiver:
    settings: dict[str, Any] = {
        "format": "json",
        "secret": SECRET,
        "timeout": 1.0,
        "backoff_initial": 0.05,
        "backoff_max": 0.4,
    }
    settings.update(kw)
    if settings["format"] != "json":
        settings["secret"] = None
    return Receiver(name=name, url=url, **settings)


def config(*receivers: Receiver) -> Config:
    return Config(lists=(BL, AL), targets=GROUPS, alerts=AlertsConfig(receivers=receivers))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


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


def listed(target: str, *, at: float | None = None, group: str = "mail", lst: str = "bl") -> Event:
    return Event(
        kind=EventKind.LISTED,
        list=lst,
        at=time.time() if at is None else at,
        target=target,
        group=group,
        codes=("127.0.0.2",),
        meanings=("spam source",),
    )


def commit(rt: Runtime, *events: Event) -> list[Event]:
    lst = BL if events[0].list == "bl" else AL
    batch = CycleCommit(list=lst.name, events=list(events))
    return rt.store.commit(batch, receivers_for(rt.config.alerts.receivers, lst))


@contextlib.asynccontextmanager
async def sending(rt: Runtime, **options: Any) -> AsyncIterator[Alerts]:
    alerts = Alerts(rt, **{"poll": 0.05, **options})
    rt.on_events = alerts.wake
    await alerts.apply(rt.config)
    try:
        yield alerts
    finally:
        await alerts.stop()


async def until(what: str, check: Callable[[], Any], timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(scenario, 30))  # type: ignore[arg-type]


async def drained(rt: Runtime) -> None:
    """Wait for the outbox to empty: a receiver sees a request before the sender has heard
    the answer, and a sender stopped in between leaves the row (to be sent again)."""
    await until("an empty outbox", lambda: rt.store.outbox_counts() == {})


def ids(got: list[Received]) -> list[str]:
    return [r.id for r in got]


# -- pure pieces ----------------------------------------------------------------------------------


def test_only_2xx_is_success_and_only_408_429_5xx_and_silence_are_retried() -> None:
    assert verdict(Attempt(200)) is verdict(Attempt(204)) is Verdict.DELIVERED
    for status in (None, 408, 429, 500, 502, 503, 504):
        assert verdict(Attempt(status)) is Verdict.RETRY, status
    for status in (301, 302, 400, 401, 403, 404, 410, 422):
        assert verdict(Attempt(status)) is Verdict.FAILED, status


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = time.time()
    assert parse_retry_after("7", now) == 7.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert 29 <= (parse_retry_after(date, now) or 0) <= 30
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_doubles_from_initial_to_max_with_jitter_between_half_and_all() -> None:
    steps = [backoff(n, 1.0, 300.0, 0.999999) for n in range(12)]
    assert [round(s) for s in steps] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert backoff(3, 1.0, 300.0, 0.0) == 4.0  # half of the 8 s step
    assert backoff(10_000, 1.0, 300.0, 0.5) == 225.0  # no overflow after many attempts


def test_retry_after_wins_over_backoff_up_to_backoff_max() -> None:
    r = hook("ops", "http://127.0.0.1:9", backoff_initial=10.0, backoff_max=60.0)
    assert retry_delay(0, r, 2.0, 0.5) == 2.0
    assert retry_delay(0, r, 3600.0, 0.5) == 60.0
    assert retry_delay(0, r, None, 0.0) == 5.0


# -- deliveries -----------------------------------------------------------------------------------


def test_a_delivery_arrives_signed_and_leaves_the_outbox(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    rt = Runtime(config(hook("ops", ops.url + "/hook")), store)

    async def scenario() -> None:
        async with sending(rt):
            [event] = commit(rt, listed("192.0.2.1"))
            [got] = await until("the delivery", ops.delivered)
            assert got.path == "/hook"
            doc = Webhook(SECRET).verify(got.body, got.headers)
            assert doc["type"] == "listing.created"
            assert doc["data"]["labels"] == {"team": "ops"}
            assert got.id == f"evt_{event.id}"
            await drained(rt)
        assert rt.stats.alert_deliveries == {"ops": 1}
        assert rt.stats.alert_failures == {"ops": 0}

    run(scenario())


def test_a_new_event_is_sent_within_moments_of_its_commit(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    rt = Runtime(config(hook("ops", ops.url)), store)

    async def scenario() -> None:
        # a slow poll: only the wake-up after the commit can make it fast
        async with sending(rt, poll=30.0):
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            commit(rt, listed("192.0.2.1"))
            assert rt.on_events is not None
            rt.on_events()  # what the engine does after a commit
            [got] = await until("the delivery", ops.delivered)
            assert got.at - t0 < 1.0

    run(scenario())


def test_503_with_retry_after_is_retried_when_the_receiver_says_then_delivered_once(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    soon = email.utils.formatdate(time.time() + 1, usegmt=True)
    ops.answer(
        Reply(503, {"Retry-After": "1"}),
        Reply(429, {"Retry-After": soon}),
        Reply(503, {"Retry-After": "0"}),
    )
    # a backoff far longer than the test: only Retry-After can bring the retries this soon
    rt = Runtime(config(hook("ops", ops.url, backoff_initial=30.0, backoff_max=60.0)), store)

    async def scenario() -> None:
        async with sending(rt):
            commit(rt, listed("192.0.2.1"))
            await until("the delivery", ops.delivered)
            await drained(rt)
        got = ops.received
        assert [r.status for r in got] == [503, 429, 503, 200]
        assert len(set(ids(got))) == 1 and len({r.body for r in got}) == 1
        assert got[1].at - got[0].at >= 0.9
        for r in got:
            Webhook(SECRET).verify(r.body, r.headers)
        assert rt.stats.alert_deliveries == {"ops": 1}
        assert rt.stats.alert_failures == {"ops": 0}
        assert store.outbox_counts() == {}

    run(scenario())


def test_a_2xx_with_a_retry_after_of_unicode_digits_is_delivered_once(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    # "²".isdigit() is true and float("²") raises: the 200 was read as a failure, logged with
    # a traceback, and the same event went out again every second
    ops = receivers().start()
    ops.answer(Reply(200, {"Retry-After": "²"}))
    rt = Runtime(config(hook("ops", ops.url)), store)

    async def scenario() -> None:
        async with sending(rt):
            commit(rt, listed("192.0.2.1"))
            await until("the delivery", ops.delivered)
            await drained(rt)
            await asyncio.sleep(1.5)  # a resend loop would have posted again by now
        assert [r.status for r in ops.received] == [200]
        assert rt.stats.alert_deliveries == {"ops": 1}

    run(scenario())
    assert parse_retry_after("²", time.time()) is None


def test_a_receiver_that_is_down_gets_everything_in_order_once_it_comes_up(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers()  # not started: connection refused
    rt = Runtime(config(hook("ops", ops.url)), store)

    async def scenario() -> None:
        async with sending(rt):
            events = commit(rt, *(listed(f"192.0.2.{i}") for i in range(1, 6)))
            await asyncio.sleep(0.8)
            assert store.outbox_counts() == {"ops": 5}
            ops.start()
            await until("five deliveries", lambda: len(ops.delivered()) == 5)
            await drained(rt)
        assert ids(ops.delivered()) == [f"evt_{e.id}" for e in events]
        assert store.outbox_counts() == {}

    run(scenario())


def test_400_fails_for_good_is_counted_and_does_not_hold_up_the_next_event(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    ops.answer(Reply(400))
    rt = Runtime(config(hook("ops", ops.url)), store)

    async def scenario() -> None:
        async with sending(rt):
            first, second = commit(rt, listed("192.0.2.1"), listed("192.0.2.2"))
            [got] = await until("the second event", ops.delivered)
            assert got.id == f"evt_{second.id}"
            await drained(rt)
        assert ids(ops.received) == [f"evt_{first.id}", f"evt_{second.id}"]  # never retried
        assert rt.stats.alert_failures == {"ops": 1}
        assert rt.stats.alert_deliveries == {"ops": 1}
        assert store.outbox_counts() == {}

    run(scenario())


def test_a_slow_receiver_times_out_and_gets_the_event_again(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    ops.answer(Reply(200, delay=2.0))
    rt = Runtime(config(hook("ops", ops.url, timeout=0.3)), store)

    async def scenario() -> None:
        async with sending(rt):
            [event] = commit(rt, listed("192.0.2.1"))
            await until("a second attempt", lambda: len(ops.received) >= 2)
            await drained(rt)
        assert set(ids(ops.received)) == {f"evt_{event.id}"}
        assert rt.stats.alert_deliveries == {"ops": 1}

    run(scenario())


def test_a_failing_oldest_delivery_holds_its_receivers_line_but_no_other_receiver(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops, chat = receivers().start(), receivers().start()
    ops.answer(Reply(503), Reply(503), Reply(503))
    rt = Runtime(config(hook("ops", ops.url), hook("chat", chat.url, format="slack")), store)

    async def scenario() -> None:
        async with sending(rt):
            first, second = commit(rt, listed("192.0.2.1"), listed("192.0.2.2"))
            await until("chat's two messages", lambda: len(chat.delivered()) == 2)
            await until("ops' two deliveries", lambda: len(ops.delivered()) == 2)
            await drained(rt)
        order = ids(ops.received)
        assert order == [f"evt_{first.id}"] * 4 + [f"evt_{second.id}"]
        assert "blocks" in json.loads(chat.received[0].body)

    run(scenario())


def test_deliveries_older_than_max_age_are_dropped_unsent_and_counted(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    rt = Runtime(config(hook("ops", ops.url, max_age=60.0)), store)

    async def scenario() -> None:
        async with sending(rt):
            _old, new = commit(rt, listed("192.0.2.1", at=time.time() - 61), listed("192.0.2.2"))
            await until("the fresh event", ops.delivered)
            await drained(rt)
        assert ids(ops.received) == [f"evt_{new.id}"]
        assert rt.stats.alert_failures == {"ops": 1}
        assert store.outbox_counts() == {}

    run(scenario())


def test_a_delivery_retried_past_max_age_is_given_up(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops = receivers().start()
    ops.default = Reply(503)
    rt = Runtime(config(hook("ops", ops.url, max_age=0.6, backoff_initial=0.1)), store)

    async def scenario() -> None:
        async with sending(rt):
            commit(rt, listed("192.0.2.1"))
            # counted as the row is given up, which then leaves the outbox (in a thread)
            await until("the drop", lambda: rt.stats.alert_failures.get("ops") == 1)
            await until("the row gone", lambda: store.outbox_counts() == {})
        assert rt.stats.alert_failures == {"ops": 1}
        assert 2 <= len(ops.received) <= 6

    run(scenario())


def test_logs_name_the_receiver_never_its_url_or_secret(
    store: SqliteStore,
    receivers: Callable[[], WebhookReceiver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ops = receivers()  # down first, then 400, then fine: every kind of outcome is logged
    rt = Runtime(config(hook("ops", ops.url + "/T0KEN-in-path")), store)
    caplog.set_level(logging.DEBUG, logger="rblwatch")

    async def scenario() -> None:
        async with sending(rt):
            commit(rt, listed("192.0.2.1"), listed("192.0.2.2"))
            await until("a failed attempt", lambda: "failed" in caplog.text)
            ops.answer(Reply(400)).start()
            await drained(rt)

    run(scenario())
    text = caplog.text
    assert "to ops failed" in text and "to ops given up" in text and "delivered to ops" in text
    for secret in ("T0KEN", SECRET, SECRET.removeprefix("whsec_"), str(ops.port)):
        assert secret not in text


def test_a_reload_adds_changes_and_removes_receivers(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops, moved, chat = receivers().start(), receivers().start(), receivers().start()
    rt = Runtime(config(hook("ops", ops.url)), store)

    async def scenario() -> None:
        async with sending(rt) as alerts:
            commit(rt, listed("192.0.2.1"))
            await until("the first delivery", ops.delivered)
            rt.config = config(hook("ops", moved.url), hook("chat", chat.url, format="slack"))
            await alerts.apply(rt.config)
            commit(rt, listed("192.0.2.2"))
            await until("ops at its new URL", moved.delivered)
            await until("the new receiver", chat.delivered)
            rt.config = config(hook("chat", chat.url, format="slack"))
            await alerts.apply(rt.config)
            assert set(alerts.senders) == {"chat"}
            commit(rt, listed("192.0.2.3"))
            await until("chat's second message", lambda: len(chat.delivered()) == 2)
            await drained(rt)
        assert len(ops.received) == 1 and len(moved.received) == 1
        assert store.outbox_counts() == {}
        assert set(rt.stats.alert_deliveries) == {"ops", "chat"}

    run(scenario())


def test_filters_decide_the_rows_and_allow_list_hits_go_nowhere(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    ops, web = receivers().start(), receivers().start()
    rt = Runtime(
        config(
            hook("ops", ops.url, events=("delisted",)),
            hook("web", web.url, groups=("web",)),
        ),
        store,
    )

    async def scenario() -> None:
        async with sending(rt):
            commit(rt, listed("192.0.2.1"), listed("198.51.100.1", group="web"))
            commit(rt, listed("198.51.100.2", group="web", lst="al"))
            [got] = await until("web's delivery", web.delivered)
            await asyncio.sleep(0.3)
        assert json.loads(got.body)["data"]["target"] == "198.51.100.1"
        assert ops.received == []

    run(scenario())


# -- Alertmanager re-posts ----------------------------------------------------------------------


def _listed_pair(target: str, lst: str = "bl", group: str = "mail") -> PairState:
    return PairState(
        target=target,
        list=lst,
        group=group,
        status=PairStatus.LISTED,
        since=time.time() - 3600,
        first_seen=time.time() - 7200,
        codes=("127.0.0.2",),
        meanings=("spam source",),
    )


def test_alertmanager_gets_every_current_listing_again_and_again(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    am = receivers().start()
    rt = Runtime(config(hook("am", am.url, format="alertmanager", groups=("mail",))), store)
    rt.store.commit(CycleCommit(list="bl", upserts=[_listed_pair("192.0.2.1")]))
    rt.store.commit(CycleCommit(list="bl", upserts=[_listed_pair("198.51.100.1", group="web")]))
    rt.store.commit(CycleCommit(list="al", upserts=[_listed_pair("192.0.2.7", lst="al")]))
    rt.store.record_health("bl", Health.DEAD, "127.0.0.2 not listed", time.time(), None)

    async def scenario() -> None:
        async with sending(rt, resend_interval=0.3, ttl=5.0):
            await until("three re-posts", lambda: len(am.delivered()) >= 3)
        for got in am.delivered():
            assert got.path == "/api/v2/alerts"
            alerts = json.loads(got.body)
            names = sorted((a["labels"]["alertname"], a["labels"].get("target")) for a in alerts)
            # the web group is not this receiver's, and allow-list hits are never alerts
            assert names == [("RblwatchListUnhealthy", None), ("RblwatchListed", "192.0.2.1")]
            for alert in alerts:
                ends = formats.rfc3339(time.time() + 5.5)
                assert alert["startsAt"] < alert["endsAt"] <= ends
        assert rt.stats.alert_deliveries == {"am": 0}  # re-posts are not deliveries

    run(scenario())


def test_alertmanager_gets_a_delisting_as_a_resolved_alert_after_the_firing_one(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    am = receivers().start()
    rt = Runtime(config(hook("am", am.url, format="alertmanager")), store)

    async def scenario() -> None:
        async with sending(rt, resend_interval=3600.0):
            at = time.time()
            gone = replace(listed("192.0.2.1", at=at + 1), kind=EventKind.DELISTED, since=at)
            commit(rt, listed("192.0.2.1", at=at), gone)
            await until("two posts", lambda: len(am.delivered()) == 2)
            await drained(rt)
        firing, resolved = (json.loads(r.body)[0] for r in am.delivered())
        assert firing["labels"] == resolved["labels"]
        assert firing["endsAt"] > formats.rfc3339(time.time())
        assert resolved["endsAt"] == formats.rfc3339(at + 1)

    run(scenario())


# -- a receiver outage, scaled down ---------------------------------------------------------------


def test_a_receiver_outage_loses_nothing_and_ends_within_backoff_max_of_recovery(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    """A 10-minute outage under the default backoff (1 s doubling to 5 min), scaled by 1/300:
    down for 2 s with backoff 1/300 s doubling to 1 s. Once the receiver is back, the queue
    must be delivered within about one backoff_max, complete and in order."""
    scale = 1 / 300
    outage, backoff_max = 600 * scale, 300 * scale
    ops = receivers()
    receiver = hook("ops", ops.url, backoff_initial=1 * scale, backoff_max=backoff_max)
    rt = Runtime(config(receiver), store)
    n = 40

    async def scenario() -> None:
        async with sending(rt):
            for i in range(n):  # events keep coming during the outage
                commit(rt, listed(f"192.0.2.{i + 1}"))
                await asyncio.sleep(outage / n)
            back = time.monotonic()
            ops.start()
            await until("the whole queue", lambda: len(ops.delivered()) == n, timeout=10)
            await drained(rt)
            first = ops.delivered()[0].at - back
            last = ops.delivered()[-1].at - back
            print(
                f"\noutage {outage:g} s, backoff_max {backoff_max:g} s: after recovery the first"
                f" delivery took {first:.2f} s (unscaled: {first / scale:.0f} s), all {n}"
                f" {last:.2f} s (the drain itself: {(last - first) * 1000:.0f} ms, not scaled)"
            )
            assert last < backoff_max + 0.5
        got = ids(ops.delivered())
        assert len(got) == len(set(got)) == n  # nothing lost, nothing twice
        assert got == sorted(got, key=lambda x: int(x.removeprefix("evt_")))
        assert store.outbox_counts() == {}
        assert rt.stats.alert_failures == {"ops": 0}

    run(scenario())


def test_alertmanager_gets_a_recovery_resolving_from_when_the_list_became_unhealthy(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    # issue 9: the resolve had startsAt = endsAt and the description "test points: -."
    am = receivers().start()
    rt = Runtime(config(hook("am", am.url, format="alertmanager")), store)
    pick = receivers_for(rt.config.alerts.receivers, BL)
    down_at = time.time() - 600
    down = Event(EventKind.LIST_UNHEALTHY, "bl", down_at, detail="127.0.0.2 not listed")
    rt.store.record_health("bl", Health.DEAD, "127.0.0.2 not listed", down_at, down, pick)
    up = Event(EventKind.LIST_RECOVERED, "bl", down_at + 300)
    rt.store.record_health("bl", Health.HEALTHY, "", down_at + 300, up, pick)

    async def scenario() -> None:
        async with sending(rt, resend_interval=3600.0):
            await until("two posts", lambda: len(am.delivered()) == 2)
            await drained(rt)

    run(scenario())
    firing, resolved = (json.loads(r.body)[0] for r in am.delivered())
    assert (
        firing["labels"]
        == resolved["labels"]
        == {
            "alertname": "RblwatchListUnhealthy",
            "list": "bl",
        }
    )
    assert resolved["startsAt"] == firing["startsAt"] == formats.rfc3339(down_at)
    assert resolved["endsAt"] == formats.rfc3339(down_at + 300)
    assert "passes its RFC 5782 test points again" in resolved["annotations"]["description"]


def test_a_delivery_cut_off_by_a_restart_goes_out_again_at_once_after_it(
    store: SqliteStore, receivers: Callable[[], WebhookReceiver]
) -> None:
    # SQLite: one process at a time, each a new instance id. A stop mid-request leaves the
    # row held under the old id; the next process must not wait out that hold (the
    # receiver's timeout + 30 s) before sending its oldest row again
    ops = receivers().start()
    ops.answer(Reply(200, delay=3.0))
    rt = Runtime(config(hook("ops", ops.url, timeout=5.0)), store)
    rt.me = new_instance("test")

    async def first_run() -> None:
        async with sending(rt):
            commit(rt, listed("192.0.2.1"))
            await until("the first attempt", lambda: ops.received)
        # stopped mid-request, as a SIGTERM or kill does

    run(first_run())
    again = Runtime(rt.config, store)
    again.me = new_instance("test")

    async def second_run() -> None:
        await again.db.tick(again.me, ["bl", "al"], 30.0)  # what the daemon does at its start
        t0 = time.monotonic()
        async with sending(again):
            await until("the attempt after the restart", lambda: len(ops.received) >= 2, timeout=20)
        assert time.monotonic() - t0 < 3.0

    run(second_run())


def test_a_delivery_whose_removal_failed_is_not_sent_again_once_the_store_is_back(
    postgres_cluster: Cluster, receivers: Callable[[], WebhookReceiver]
) -> None:
    # the receiver has the alert, then the store fails to remove its row (an outage, a
    # failover): once it answers again the row must leave the outbox, not go out again
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    shared = open_store(url)
    ops = receivers().start()
    rt = Runtime(config(hook("ops", ops.url)), shared)
    rt.me = new_instance("test")
    admin = psycopg.connect(url, autocommit=True)
    try:
        admin.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'the database is away'; END$$"
        )
        admin.execute(
            "CREATE TRIGGER away BEFORE DELETE ON outbox FOR EACH ROW EXECUTE FUNCTION refuse()"
        )

        async def scenario() -> None:
            async with sending(rt):
                commit(rt, listed("192.0.2.1"))
                await until("the delivery", ops.delivered)
                await asyncio.sleep(2.5)  # the sender meets the failing store meanwhile
                admin.execute("DROP TRIGGER away ON outbox")
                await drained(rt)
                await asyncio.sleep(0.3)

        run(scenario())
        assert len(ops.received) == 1, [r.id for r in ops.received]
    finally:
        admin.close()
        shared.close()
        postgres_cluster.drop_database(name)
