"""The store contract (SPEC §4, §12): what every `Store` implementation must do.

Each test runs once per backend of `tests.store_contract.BACKENDS` (SQLite and PostgreSQL), on
a fresh database, through `open_store` and the `Store` interface only: events, pairs, seen,
list statuses, budgets, the outbox (order, retry, done), migrations from an older schema,
concurrency (threads, two stores on one database, a reader beside writers, stores
opened at once), crash safety under kill -9, the event id rule, and the async facade.
Implementation details (files, WAL, pragmas) are tested in the implementation's own module.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rblwatch import config
from rblwatch.cluster import SHARDS, Fence, Instance
from rblwatch.config import ConfigError, parse_config
from rblwatch.model import (
    CycleCommit,
    Event,
    EventKind,
    Health,
    ListStatus,
    OutcomeKind,
    PairState,
    PairStatus,
)
from rblwatch.store import (
    SCHEMES,
    Fenced,
    Store,
    StoreError,
    StoreUnavailable,
    check_url,
    open_store,
)
from rblwatch.store.aio import AsyncStore
from tests.store_contract import (
    BACKENDS,
    SEED_BUDGET,
    SEED_EVENT,
    SEED_PAIR,
    T0,
    Backend,
    snapshot,
)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    try:
        yield s
    finally:
        s.close()


def listed(target: str, list_name: str = "zen", at: float = T0) -> PairState:
    return PairState(
        target=target,
        list=list_name,
        group="mail",
        status=PairStatus.LISTED,
        since=at,
        first_seen=at,
        codes=("127.0.0.2",),
        meanings=("SBL",),
    )


def listed_event(target: str, list_name: str = "zen", at: float = T0) -> Event:
    return Event(EventKind.LISTED, list_name, at, target=target, group="mail", codes=("127.0.0.2",))


def to_ops(event: Event) -> list[str]:
    return ["ops"]


def assert_store_is_empty(store: Store) -> None:
    assert store.pairs() == []
    assert store.seen("zen") == set()
    assert store.events() == []
    assert store.outbox_counts() == {}
    assert store.list_statuses() == []
    assert store.budget_used("zen", "2027-01-15") == 0


# -- opening, closing, migrations -----------------------------------------------------------------


def test_open_store_opens_the_backends_url_as_a_store(backend: Backend) -> None:
    s = open_store(backend.url)
    try:
        assert isinstance(s, Store)
        assert s.pairs() == [] and s.events() == [] and s.outbox_counts() == {}
    finally:
        s.close()


def test_state_survives_closing_and_reopening(backend: Backend) -> None:
    s = backend.open()
    s.commit(CycleCommit("zen", upserts=[listed("192.0.2.1")], seen=["192.0.2.1"]))
    s.close()
    s = backend.open()
    try:
        assert s.pairs() == [listed("192.0.2.1")]
        assert s.seen("zen") == {"192.0.2.1"}
    finally:
        s.close()


def test_close_is_idempotent_and_later_calls_say_the_store_is_closed(backend: Backend) -> None:
    s = backend.open()
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.pairs()


def test_an_older_schema_is_migrated_and_keeps_its_data(backend: Backend) -> None:
    if not backend.old_versions:
        pytest.skip(f"{backend.name} has no older schema version yet")
    for version in backend.old_versions:
        backend.destroy()
        backend.seed(version)
        s = backend.open()
        try:
            assert s.pairs() == [SEED_PAIR]
            assert s.seen("zen") == {SEED_PAIR.target}
            assert s.budget_used(*SEED_BUDGET[:2]) == SEED_BUDGET[2]
            assert s.events() == [SEED_EVENT]
            # the outbox works after the migration, and new events get the next id
            (event,) = s.commit(CycleCommit("zen", events=[listed_event("192.0.2.2")]), to_ops)
            assert event.id == 2
            assert [d.event for d in s.due_deliveries("ops", now=T0)] == [event]
        finally:
            s.close()
        again = backend.open()  # and opening the migrated database again changes nothing
        try:
            assert [e.id for e in again.events()] == [1, 2]
        finally:
            again.close()


def test_stores_opened_at_once_on_a_new_database_all_work_on_one_schema(
    backend: Backend,
) -> None:
    # two instances starting together on an empty database must not race the migrations
    opened: list[Store] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def open_one() -> None:
        try:
            s = backend.open()
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
            return
        with lock:
            opened.append(s)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        for i, s in enumerate(opened):
            s.commit(CycleCommit("zen", events=[listed_event(f"{i}.test")]), to_ops)
        for s in opened:
            assert len(s.events()) == 4
            assert s.outbox_counts() == {"ops": 4}
    finally:
        for s in opened:
            s.close()


# -- pairs, seen and commits ----------------------------------------------------------------------


def test_a_pair_with_every_field_set_round_trips(store: Store) -> None:
    pair = PairState(
        target="2001:db8::1",
        list="zen",
        group="web",
        status=PairStatus.LISTED,
        since=T0 + 0.5,
        first_seen=T0 - 100,
        codes=("127.0.0.2", "127.0.0.4"),
        meanings=("SBL", "XBL"),
        txt="see https://example.test/2001:db8::1",
        pending=OutcomeKind.CLEAN,
        pending_codes=(),
        pending_meanings=(),
        pending_count=1,
        pending_since=T0 + 60,
    )
    changing = PairState(
        target="192.0.2.9",
        list="zen",
        group="",
        status=PairStatus.CLEAN,
        since=T0,
        first_seen=T0,
        pending=OutcomeKind.LISTED,
        pending_codes=("127.0.0.3",),
        pending_meanings=("CSS",),
        pending_count=1,
        pending_since=T0,
    )
    store.commit(CycleCommit("zen", upserts=[pair, changing]))
    assert store.pairs() == [changing, pair]  # ordered by list, then target


def test_an_upsert_replaces_a_pair_and_a_delete_removes_it(store: Store) -> None:
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1"), listed("192.0.2.2")]))
    cleared = PairState("192.0.2.1", "zen", "mail", PairStatus.CLEAN, T0 + 60, T0)
    store.commit(CycleCommit("zen", upserts=[cleared], deletes=["192.0.2.2"]))
    assert store.pairs() == [cleared]


def test_pairs_and_deletes_keep_to_their_own_list(store: Store) -> None:
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1", "zen")]))
    store.commit(CycleCommit("sorbs", upserts=[listed("192.0.2.1", "sorbs")]))
    store.commit(CycleCommit("sorbs", deletes=["192.0.2.1"]))
    assert store.pairs("zen") == [listed("192.0.2.1", "zen")]
    assert store.pairs("sorbs") == []
    assert store.pairs() == [listed("192.0.2.1", "zen")]


def test_seen_grows_per_list_and_ignores_repeats(store: Store) -> None:
    store.commit(CycleCommit("zen", seen=["192.0.2.1", "192.0.2.2"]))
    store.commit(CycleCommit("zen", seen=["192.0.2.2", "192.0.2.3"]))
    store.commit(CycleCommit("dbl", seen=["example.test"]))
    assert store.seen("zen") == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert store.seen("dbl") == {"example.test"}
    assert store.seen("other") == set()


def test_the_first_cycle_of_a_slash_16_stores_all_65536_seen_targets(store: Store) -> None:
    targets = [f"10.1.{i >> 8}.{i & 255}" for i in range(65_536)]
    store.commit(CycleCommit("zen", seen=targets))
    assert store.seen("zen") == set(targets)
    assert store.pairs() == []  # clean baselines cost no pair rows


def test_listed_count_counts_only_listed_pairs(store: Store) -> None:
    clean_but_pending = PairState("192.0.2.3", "zen", "", PairStatus.CLEAN, T0, T0)
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1"), clean_but_pending]))
    store.commit(CycleCommit("sorbs", upserts=[listed("192.0.2.1", "sorbs")]))
    assert store.listed_count() == 2


def test_pair_summaries_carry_what_metrics_need_for_every_pair(store: Store) -> None:
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1"), listed("192.0.2.2", at=T0 + 5)]))
    store.commit(
        CycleCommit("dbl", upserts=[replace(listed("a.test", "dbl"), status=PairStatus.CLEAN)])
    )
    got = sorted(store.pair_summaries())
    assert [(s.target, s.list, s.status, s.since - T0) for s in got] == [
        ("192.0.2.1", "zen", PairStatus.LISTED, 0),
        ("192.0.2.2", "zen", PairStatus.LISTED, 5),
        ("a.test", "dbl", PairStatus.CLEAN, 0),
    ]
    full = {(p.target, p.list): p for p in store.pairs()}
    assert all(full[s.target, s.list].group == s.group for s in got)


def test_a_commit_returns_its_events_with_increasing_ids(store: Store) -> None:
    first = store.commit(
        CycleCommit("zen", events=[listed_event("a.test"), listed_event("b.test")])
    )
    second = store.commit(CycleCommit("zen", events=[listed_event("c.test")]))
    base = (first[0].id or 0) - 1
    assert [e.id for e in first + second] == [base + 1, base + 2, base + 3]
    assert [e.target for e in first + second] == ["a.test", "b.test", "c.test"]
    assert store.events() == first + second


def test_an_event_with_every_field_set_round_trips(store: Store) -> None:
    event = Event(
        kind=EventKind.CHANGED,
        list="zen",
        at=T0 + 0.25,
        target="192.0.2.1",
        group="mail",
        codes=("127.0.0.4",),
        meanings=("XBL",),
        txt="https://example.test/lookup",
        initial=True,
        previous_codes=("127.0.0.2",),
        since=T0 - 3600,
        detail="odd",
        hostname="mx1.example.net",
    )
    (written,) = store.commit(CycleCommit("zen", events=[event]), lambda e: ["ops"])
    assert written.id is not None
    assert store.events() == [written]
    assert written == replace(event, id=written.id)
    (delivery,) = store.due_deliveries("ops", T0 + 10**9)
    assert delivery.event == written  # what the alert sender reads carries every field too


def test_events_are_filtered_by_since_inclusive_target_and_list_oldest_first(
    store: Store,
) -> None:
    # committed out of time order: history is ordered by when things happened
    store.commit(CycleCommit("zen", events=[listed_event("a.test", at=T0 + 20)]))
    store.commit(CycleCommit("dbl", events=[listed_event("a.test", "dbl", at=T0 + 10)]))
    store.commit(CycleCommit("zen", events=[listed_event("b.test", at=T0 + 30)]))

    def keys(events: list[Event]) -> list[tuple[str | None, str, float]]:
        return [(e.target, e.list, e.at - T0) for e in events]

    assert keys(store.events()) == [
        ("a.test", "dbl", 10),
        ("a.test", "zen", 20),
        ("b.test", "zen", 30),
    ]
    assert keys(store.events(since=T0 + 20)) == [("a.test", "zen", 20), ("b.test", "zen", 30)]
    assert keys(store.events(limit=1)) == [("a.test", "dbl", 10)]
    assert keys(store.events(target="a.test")) == [("a.test", "dbl", 10), ("a.test", "zen", 20)]
    assert keys(store.events(list_name="zen", since=T0 + 21)) == [("b.test", "zen", 30)]


def test_newest_first_gives_the_latest_events_in_reverse(store: Store) -> None:
    for i in range(5):
        store.commit(CycleCommit("zen", events=[listed_event(f"{i}.test", at=T0 + i)]))
    newest = store.events(limit=2, newest_first=True)
    assert [e.target for e in newest] == ["4.test", "3.test"]
    assert [e.target for e in store.events(limit=2)] == ["0.test", "1.test"]


def test_a_commit_writes_its_cycle_status_and_budget(store: Store) -> None:
    status = ListStatus(
        name="zen",
        last_cycle_start=T0,
        last_cycle_end=T0 + 5,
        last_cycle_success=T0 + 5,
        last_cycle_duration=5.0,
        last_cycle_lookups=1000,
        last_cycle_errors=3,
        targets=1000,
    )
    store.commit(CycleCommit("zen", status=status, budget_day="2027-01-15", budget_queries=1000))
    store.commit(CycleCommit("zen", budget_day="2027-01-15", budget_queries=500))
    store.commit(CycleCommit("zen", budget_day="2027-01-16", budget_queries=10))
    store.commit(CycleCommit("dbl", budget_day="2027-01-15", budget_queries=1))
    assert store.list_statuses() == [status]
    assert store.budget_used("zen", "2027-01-15") == 1500
    assert store.budget_used("zen", "2027-01-16") == 10
    assert store.budget_used("dbl", "2027-01-15") == 1
    assert store.budget_used("dbl", "2027-01-16") == 0


def test_a_commit_of_one_list_refuses_the_status_of_another(store: Store) -> None:
    with pytest.raises(ValueError, match="dbl"):
        store.commit(CycleCommit("zen", status=ListStatus("dbl")))


# -- health ---------------------------------------------------------------------------------------


def test_health_since_moves_only_when_the_health_changes(store: Store) -> None:
    store.record_health("zen", Health.HEALTHY, "", T0, None)
    store.record_health("zen", Health.HEALTHY, "", T0 + 60, None)
    (status,) = store.list_statuses()
    assert (status.health, status.health_since) == (Health.HEALTHY, T0)

    store.record_health("zen", Health.DEAD, "127.0.0.2 not listed", T0 + 120, None)
    store.record_health("zen", Health.DEAD, "no answer", T0 + 180, None)
    (status,) = store.list_statuses()
    assert (status.health, status.health_detail, status.health_since) == (
        Health.DEAD,
        "no answer",
        T0 + 120,
    )


def test_health_and_cycle_fields_do_not_overwrite_each_other(store: Store) -> None:
    store.record_health("zen", Health.BLOCKED, "127.255.255.254", T0, None)
    cycle = ListStatus("zen", last_cycle_end=T0 + 5, last_cycle_lookups=9, targets=9)
    store.commit(CycleCommit("zen", status=cycle))  # its health fields are the defaults
    store.record_health("zen", Health.BLOCKED, "again", T0 + 60, None)
    assert store.list_statuses() == [
        ListStatus(
            "zen",
            health=Health.BLOCKED,
            health_detail="again",
            health_since=T0,
            last_cycle_end=T0 + 5,
            last_cycle_lookups=9,
            targets=9,
        )
    ]


def test_a_health_change_writes_its_event_and_outbox_rows(store: Store) -> None:
    event = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead")
    written = store.record_health("zen", Health.DEAD, "dead", T0, event, lambda e: ["ops", "chat"])
    assert written is not None
    assert written.id is not None and written.id > 0
    assert store.events() == [written]
    assert store.outbox_counts() == {"ops": 1, "chat": 1}
    assert store.record_health("zen", Health.DEAD, "dead", T0 + 1, None) is None


# -- the outbox -----------------------------------------------------------------------------------


def test_each_event_gets_one_outbox_row_per_receiver(store: Store) -> None:
    def receivers(event: Event) -> list[str]:
        return ["ops", "chat"] if event.target == "a.test" else ["ops"]

    store.commit(
        CycleCommit("zen", events=[listed_event("a.test"), listed_event("b.test")]), receivers
    )
    store.commit(CycleCommit("zen", events=[listed_event("c.test")]))  # no receivers at all
    assert store.outbox_counts() == {"ops": 2, "chat": 1}
    (chat,) = store.due_deliveries("chat", now=T0)
    assert (chat.event.target, chat.attempts, chat.next_attempt, chat.created) == (
        "a.test",
        0,
        T0,
        T0,
    )


def test_due_deliveries_are_the_due_ones_of_one_receiver_oldest_event_first(
    store: Store,
) -> None:
    for target in ("a.test", "b.test", "c.test"):
        store.commit(CycleCommit("zen", events=[listed_event(target)]), lambda e: ["ops", "chat"])
    due = store.due_deliveries("ops", now=T0)
    assert [d.event.target for d in due] == ["a.test", "b.test", "c.test"]
    assert {d.receiver for d in due} == {"ops"}
    assert [d.event.target for d in store.due_deliveries("ops", now=T0, limit=2)] == [
        "a.test",
        "b.test",
    ]
    assert store.due_deliveries("ops", now=T0 - 1) == []  # not due before the event happened


def test_a_retried_delivery_waits_and_counts_its_attempts(store: Store) -> None:
    for target in ("a.test", "b.test"):
        store.commit(CycleCommit("zen", events=[listed_event(target)]), to_ops)
    first, _ = store.due_deliveries("ops", now=T0)

    store.delivery_retry(first.id, T0 + 10, "HTTP 503")
    assert [d.event.target for d in store.due_deliveries("ops", now=T0 + 9)] == ["b.test"]
    again = store.due_deliveries("ops", now=T0 + 10)
    assert [(d.event.target, d.attempts) for d in again] == [("a.test", 1), ("b.test", 0)]
    assert again[0].next_attempt == T0 + 10
    assert again[0].created == T0  # the age of a delivery does not reset on retry

    store.delivery_retry(first.id, T0 + 30, "timeout")
    assert store.due_deliveries("ops", now=T0 + 30)[0].attempts == 2


def test_a_done_delivery_leaves_the_outbox_but_its_event_stays(store: Store) -> None:
    store.commit(CycleCommit("zen", events=[listed_event("a.test")]), lambda e: ["ops", "chat"])
    (ops,) = store.due_deliveries("ops", now=T0)
    store.delivery_done(ops.id)
    store.delivery_done(ops.id)  # twice is harmless: at-least-once senders may repeat
    assert store.due_deliveries("ops", now=T0 + 1000) == []
    assert store.outbox_counts() == {"chat": 1}
    assert [e.target for e in store.events()] == ["a.test"]


# -- a recovery's start (issue 9) -----------------------------------------------------------------


def test_a_recovery_event_is_stored_with_the_time_the_list_became_unhealthy(store: Store) -> None:
    # issue 9: the resolve of a recovered list must start when the trouble did
    down = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead")
    store.record_health("zen", Health.DEAD, "dead", T0, down)
    store.record_health("zen", Health.DEAD, "still dead", T0 + 60, None)
    up = Event(EventKind.LIST_RECOVERED, "zen", T0 + 120)
    written = store.record_health("zen", Health.HEALTHY, "", T0 + 120, up, to_ops)
    assert written is not None and written.since == T0
    assert store.events()[-1] == written
    assert [d.event for d in store.due_deliveries("ops", now=T0 + 120)] == [written]
    (status,) = store.list_statuses()
    assert (status.health, status.health_since) == (Health.HEALTHY, T0 + 120)


def test_a_recovery_keeps_a_since_it_was_given_and_has_none_without_a_stored_health(
    store: Store,
) -> None:
    store.record_health("zen", Health.DEAD, "dead", T0, None)
    given = Event(EventKind.LIST_RECOVERED, "zen", T0 + 60, since=T0 - 5)
    kept = store.record_health("zen", Health.HEALTHY, "", T0 + 60, given)
    assert kept is not None and kept.since == T0 - 5
    first = Event(EventKind.LIST_RECOVERED, "new", T0)
    written = store.record_health("new", Health.HEALTHY, "", T0, first)
    assert written is not None and written.since is None


# -- rollbacks ------------------------------------------------------------------------------------


def test_a_failing_receivers_callback_rolls_the_whole_commit_back(
    backend: Backend, store: Store
) -> None:
    def fail_on_second(event: Event) -> list[str]:
        if event.target == "b.test":
            raise RuntimeError("boom")
        return ["ops"]

    commit = CycleCommit(
        "zen",
        upserts=[listed("a.test")],
        seen=["a.test", "b.test"],
        events=[listed_event("a.test"), listed_event("b.test")],
        status=ListStatus("zen", last_cycle_end=T0, targets=2),
        budget_day="2027-01-15",
        budget_queries=2,
    )
    base = backend.id_base() if backend.gapless_ids else None
    with pytest.raises(RuntimeError, match="boom"):
        store.commit(commit, fail_on_second)
    assert_store_is_empty(store)
    # and the store is still usable (with ids unspent by the rolled-back events, if gapless)
    (event,) = store.commit(CycleCommit("zen", events=[listed_event("c.test")]))
    assert event.id is not None and event.id > 0
    if base is not None:
        assert event.id == base + 1


def test_a_database_error_is_a_store_error_and_rolls_the_whole_commit_back(
    backend: Backend, store: Store
) -> None:
    broken = PairState("b.test", "zen", "", PairStatus.LISTED, None, T0)  # type: ignore[arg-type]
    commit = CycleCommit(
        "zen",
        seen=["a.test"],
        events=[listed_event("a.test")],
        upserts=[listed("a.test"), broken],
        budget_day="2027-01-15",
        budget_queries=2,
    )
    with pytest.raises(StoreError, match=backend.not_null_error) as exc:
        store.commit(commit, to_ops)
    assert "\n" not in str(exc.value)
    assert_store_is_empty(store)


# -- concurrency ----------------------------------------------------------------------------------


def test_commits_from_many_threads_all_land_with_unique_ids(backend: Backend, store: Store) -> None:
    def work(n: int) -> None:
        for i in range(20):
            target = f"10.0.{n}.{i}"
            store.commit(
                CycleCommit("zen", upserts=[listed(target)], events=[listed_event(target)]),
                to_ops,
            )
            store.pairs("zen")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.events(limit=1000)
    ids = sorted(e.id or 0 for e in events)
    assert len(set(ids)) == 160
    if backend.gapless_ids:
        assert ids == list(range(ids[0], ids[0] + 160))
    assert store.listed_count() == 160
    assert store.outbox_counts() == {"ops": 160}


def test_two_stores_on_one_database_write_at_once_and_a_reader_sees_only_whole_commits(
    backend: Backend,
) -> None:
    """Two writers (as two instances would be) and a reader, each its own store: every commit
    lands with its own id, and the reader never sees part of one. Commit n of a writer upserts
    10 pairs and writes one event with one outbox row."""
    writers, reader = [backend.open(), backend.open()], backend.open()
    rounds, problems = 30, []
    done = threading.Event()

    def write(w: int) -> None:
        for n in range(rounds):
            pairs = [listed(f"10.{w}.{n}.{i}", f"list{w}") for i in range(10)]
            event = listed_event(f"10.{w}.{n}.0", f"list{w}")
            writers[w].commit(CycleCommit(f"list{w}", upserts=pairs, events=[event]), to_ops)

    def read() -> None:
        while not done.is_set():
            events = len(reader.events(limit=10_000))  # read first: pairs can only be ahead
            pairs = len(reader.pairs())
            if pairs % 10 or pairs < 10 * events:
                problems.append((events, pairs))

    threads = [threading.Thread(target=write, args=(w,)) for w in (0, 1)]
    watcher = threading.Thread(target=read)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    try:
        assert problems == []
        events = reader.events(limit=10_000)
        assert len({e.id for e in events}) == 2 * rounds
        assert reader.listed_count() == 2 * rounds * 10
        assert reader.outbox_counts() == {"ops": 2 * rounds}
        for w in (0, 1):  # one writer's events keep their commit order in the outbox
            mine = [d.event.target for d in reader.due_deliveries("ops", 1e12, 1000)]
            mine = [t for t in mine if t and t.startswith(f"10.{w}.")]
            assert mine == [f"10.{w}.{n}.0" for n in range(rounds)]
    finally:
        for s in (*writers, reader):
            s.close()


def test_a_delivery_done_by_one_store_is_gone_for_another(backend: Backend) -> None:
    a, b = backend.open(), backend.open()
    try:
        a.commit(CycleCommit("zen", events=[listed_event("a.test")]), to_ops)
        (d,) = b.due_deliveries("ops", now=T0)
        b.delivery_retry(d.id, T0 + 5, "HTTP 503")
        assert a.due_deliveries("ops", now=T0) == []
        assert a.due_deliveries("ops", now=T0 + 5)[0].attempts == 1
        a.delivery_done(d.id)
        assert b.outbox_counts() == {}
    finally:
        a.close()
        b.close()


# -- crash safety ---------------------------------------------------------------------------------

# Commits in a loop until killed. Commit n upserts the 50 pairs 10.n.x.0..49 (listed), marks
# 2,000 targets seen and writes one event for 10.n.0.0 with one outbox row.
CRASH_CHILD = """
import sys
from rblwatch.model import EventKind, PairStatus
from rblwatch.model import CycleCommit, Event, PairState
from rblwatch.store import open_store

store = open_store(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    n += 1
    net = f"{n >> 8}.{n & 255}"
    pairs = [
        PairState(f"10.{net}.{i}", "zen", "", PairStatus.LISTED, 1.0, 1.0, ("127.0.0.2",))
        for i in range(50)
    ]
    event = Event(EventKind.LISTED, "zen", float(n), target=f"10.{net}.0", codes=("127.0.0.2",))
    seen = [f"s{n}.{i}" for i in range(2000)]
    store.commit(CycleCommit("zen", upserts=pairs, seen=seen, events=[event]), lambda e: ["ops"])
"""


def run_until_killed(url: str, kill_after: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        ready, _, _ = select.select([child.stdout], [], [], 20)
        assert ready, "the child did not start within 20 s"
        assert child.stdout.readline() == "ready\n", child.stderr and child.stderr.read()
        time.sleep(kill_after)
        assert child.poll() is None, child.stderr and child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kill_after", [0.2, 0.3, 0.4])
def test_kill_9_mid_commit_leaves_whole_commits_only(backend: Backend, kill_after: float) -> None:
    run_until_killed(backend.url, kill_after)
    store = backend.open()
    try:
        events = store.events(limit=1_000_000)
        pairs = {p.target for p in store.pairs("zen")}
        seen = store.seen("zen")
        due = store.due_deliveries("ops", now=1e12, limit=1_000_000)
    finally:
        store.close()

    n = len(events)
    assert n > 0, "the child never committed: the test proved nothing"
    ids = [e.id or 0 for e in events]
    assert ids == sorted(set(ids))  # commit order, no id twice
    if backend.gapless_ids:
        assert ids == list(range(ids[0], ids[0] + n))
    assert sorted(d.event.id or 0 for d in due) == ids
    expected_pairs = {f"10.{k >> 8}.{k & 255}.{i}" for k in range(1, n + 1) for i in range(50)}
    assert pairs == expected_pairs
    assert all(e.target in pairs for e in events)
    assert len(seen) == 2000 * n
    backend.check_integrity()


# -- event ids ------------------------------------------------------------------------------------


def test_a_new_store_numbers_its_events_from_its_creation_time(backend: Backend) -> None:
    # receivers de-duplicate alerts by event id: a store deleted and created anew must not
    # hand out the ids of the old one again
    old = backend.open()
    (first,) = old.commit(CycleCommit("zen", events=[listed_event("a.test")]))
    old.close()
    backend.destroy()
    time.sleep(1.1)  # the clock the ids come from may count whole seconds
    new = backend.open()
    try:
        (second,) = new.commit(CycleCommit("zen", events=[listed_event("a.test")]))
    finally:
        new.close()
    assert first.id is not None and second.id is not None
    assert abs(first.id / 1e6 - time.time()) < 60  # seconds since 1970, in microseconds
    assert second.id > first.id
    assert second.id < 2**53  # exact as a JSON number


# -- the outbox shared by several senders (claim_delivery) ----------------------------------------


def commit_for_ops(store: Store, *targets: str) -> None:
    for target in targets:
        store.commit(CycleCommit("zen", events=[listed_event(target)]), to_ops)


def test_claim_delivery_holds_the_head_of_a_receiver_for_one_sender(store: Store) -> None:
    assert store.claim_delivery("ops", "a", T0, hold=30) is None  # nothing to send
    commit_for_ops(store, "a.test", "b.test")
    mine = store.claim_delivery("ops", "a", T0, hold=30)
    assert mine is not None and mine.event.target == "a.test"
    assert (mine.held_by, mine.held_until) == ("a", T0 + 30)
    # another sender is shown the held head, never the row behind it
    theirs = store.claim_delivery("ops", "b", T0 + 1, hold=30)
    assert theirs is not None and theirs.id == mine.id
    assert (theirs.held_by, theirs.held_until) == ("a", T0 + 30)
    # the holder may take it again (its hold renewed); the others' receivers are apart
    again = store.claim_delivery("ops", "a", T0 + 2, hold=30)
    assert again is not None and (again.id, again.held_by, again.held_until) == (
        mine.id,
        "a",
        T0 + 32,
    )
    assert store.claim_delivery("chat", "b", T0, hold=30) is None
    (due, _) = store.due_deliveries("ops", now=T0)
    assert (due.held_by, due.held_until) == ("a", T0 + 32)


def test_a_held_row_goes_to_another_sender_once_its_hold_ends(store: Store) -> None:
    commit_for_ops(store, "a.test")
    first = store.claim_delivery("ops", "a", T0, hold=30)
    assert first is not None
    # a sender that died mid-request leaves its row to the others when the hold ends
    assert store.claim_delivery("ops", "b", T0 + 29.9, hold=30) == first
    taken = store.claim_delivery("ops", "b", T0 + 30, hold=30)
    assert taken is not None and (taken.id, taken.held_by, taken.held_until) == (
        first.id,
        "b",
        T0 + 60,
    )


def test_a_retry_clears_the_hold_and_the_head_waits_with_the_rows_behind_it(
    store: Store,
) -> None:
    commit_for_ops(store, "a.test", "b.test")
    head = store.claim_delivery("ops", "a", T0, hold=30)
    assert head is not None
    store.delivery_retry(head.id, T0 + 10, "HTTP 503")
    # not due: shown to any sender, held by none, and b.test is not handed out before it
    for sender in ("a", "b"):
        waiting = store.claim_delivery("ops", sender, T0 + 5, hold=30)
        assert waiting is not None
        assert (waiting.id, waiting.held_by, waiting.held_until) == (head.id, None, None)
        assert (waiting.attempts, waiting.next_attempt) == (1, T0 + 10)
    # due again, and the hold of the failed attempt does not keep the other sender out
    retried = store.claim_delivery("ops", "b", T0 + 10, hold=30)
    assert retried is not None and (retried.id, retried.held_by) == (head.id, "b")
    store.delivery_done(retried.id)
    behind = store.claim_delivery("ops", "a", T0 + 10, hold=30)
    assert behind is not None and (behind.event.target, behind.held_by) == ("b.test", "a")


def test_a_clean_leave_frees_the_rows_its_senders_held_for_the_others_at_once(
    store: Store,
) -> None:
    commit_for_ops(store, "a.test")
    held = store.claim_delivery("ops", "a", T0, hold=30)
    assert held is not None and held.held_by == "a"
    store.leave("a")  # a stop mid-request: the row goes out again without waiting 30 s
    taken = store.claim_delivery("ops", "b", T0 + 1, hold=30)
    assert taken is not None and (taken.id, taken.held_by) == (held.id, "b")
    store.leave("a")  # nobody else's hold is touched
    (due,) = store.due_deliveries("ops", now=T0 + 1)
    assert due.held_by == "b"


# -- one successor per event (the chain key) ------------------------------------------------------


def test_a_second_successor_of_an_event_is_fenced_and_nothing_of_its_commit_is_written(
    store: Store,
) -> None:
    (first,) = store.commit(
        CycleCommit(
            "zen", upserts=[listed("a.test")], events=[replace(listed_event("a.test"), after=0)]
        ),
        to_ops,
    )
    assert first.after == 0 and store.events() == [first]
    assert first.id is not None
    before = snapshot(store)
    delisted = Event(EventKind.DELISTED, "zen", T0 + 60, target="a.test", group="mail")
    # a transition stored already (another instance decided it from the same head): refused
    # whole, the other target's event and every other row of the commit included
    twice = CycleCommit(
        "zen",
        upserts=[listed("b.test")],
        deletes=["a.test"],
        seen=["b.test"],
        events=[replace(listed_event("b.test"), after=0), replace(delisted, after=0)],
        status=ListStatus("zen", last_cycle_end=T0 + 60, targets=2),
        budget_day="2027-01-15",
        budget_queries=2,
    )
    with pytest.raises(Fenced, match="stored already"):
        store.commit(twice, to_ops)
    assert snapshot(store) == before
    # the successor of the head is written, once
    (second,) = store.commit(CycleCommit("zen", events=[replace(delisted, after=first.id)]), to_ops)
    assert second.after == first.id
    with pytest.raises(Fenced):
        store.commit(CycleCommit("zen", events=[replace(delisted, after=first.id)]), to_ops)
    assert [e.id for e in store.events()] == [first.id, second.id]
    assert store.outbox_counts() == {"ops": 2}


def test_the_chain_key_is_per_target_and_list_and_only_binds_events_that_carry_one(
    store: Store,
) -> None:
    keyed = [
        replace(listed_event("a.test"), after=0),
        replace(listed_event("b.test"), after=0),
        replace(listed_event("a.test", "dbl"), after=0),
    ]
    store.commit(CycleCommit("zen", events=keyed[:2]))
    store.commit(CycleCommit("dbl", events=keyed[2:]))
    store.commit(CycleCommit("zen", events=[listed_event("a.test"), listed_event("a.test")]))
    down = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead", after=0)
    store.commit(CycleCommit("zen", events=[down, down]))  # a list event has no pair chain
    assert len(store.events()) == 7


def test_chain_heads_are_the_latest_event_of_each_target_on_one_list(store: Store) -> None:
    assert store.chain_heads("zen", ["a.test"]) == {}
    assert store.chain_heads("zen", []) == {}
    a1, b1 = store.commit(
        CycleCommit("zen", events=[listed_event("a.test"), listed_event("b.test")])
    )
    (a2,) = store.commit(CycleCommit("zen", events=[replace(listed_event("a.test"), after=a1.id)]))
    store.commit(CycleCommit("dbl", events=[listed_event("a.test", "dbl")]))
    heads = store.chain_heads("zen", ["a.test", "b.test", "c.test"])
    assert heads == {"a.test": a2.id, "b.test": b1.id}
    assert store.chain_heads("zen", {"b.test"}) == {"b.test": b1.id}
    # a bounce naming the list is no transition of the pair: the chain's head stays
    bounce = Event(EventKind.BOUNCE, "zen", T0 + 5, target="a.test", group="g", codes=("5.7.1",))
    store.commit(CycleCommit("bounces:inbox", seen=["k1"], events=[bounce]))
    assert store.chain_heads("zen", ["a.test"]) == {"a.test": a2.id}


# -- list health written once: the crossing rule -------------------------------------------------


def test_a_health_event_is_written_only_if_the_stored_health_crosses(store: Store) -> None:
    down = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead")
    up = Event(EventKind.LIST_RECOVERED, "zen", T0 + 60)
    # two probes decided from the same old health: the first crosses, the second does not
    assert store.record_health("zen", Health.DEAD, "dead", T0, down, to_ops) is not None
    assert store.record_health("zen", Health.DEAD, "dead", T0 + 1, down, to_ops) is None
    # a recovery of a list stored healthy is no crossing either; the health is still written
    store.record_health("dbl", Health.HEALTHY, "", T0, None)
    assert store.record_health("dbl", Health.HEALTHY, "fine", T0 + 1, up, to_ops) is None
    assert store.record_health("zen", Health.HEALTHY, "", T0 + 60, up, to_ops) is not None
    assert store.record_health("zen", Health.HEALTHY, "", T0 + 61, up, to_ops) is None
    # never probed (unknown) counts as healthy: an unhealthy event crosses from it
    store.record_health("new", Health.UNKNOWN, "", T0, None)
    again = replace(down, list="new")
    assert store.record_health("new", Health.DEAD, "dead", T0 + 1, again, to_ops) is not None
    assert [(e.list, e.kind) for e in store.events()] == [
        ("zen", EventKind.LIST_UNHEALTHY),
        ("new", EventKind.LIST_UNHEALTHY),
        ("zen", EventKind.LIST_RECOVERED),
    ]
    assert store.outbox_counts() == {"ops": 3}
    health = {s.name: (s.health, s.health_detail) for s in store.list_statuses()}
    assert health == {
        "dbl": (Health.HEALTHY, "fine"),
        "new": (Health.DEAD, "dead"),
        "zen": (Health.HEALTHY, ""),
    }


def test_two_stores_recording_one_crossing_at_once_write_one_event(backend: Backend) -> None:
    # two leaders for a moment (or a probe racing a reload), both deciding from "healthy":
    # the stored health is read in the writing transaction, so the second sees the first
    stores = [backend.open() for _ in range(4)]
    try:
        stores[0].record_health("zen", Health.HEALTHY, "", T0, None)
        down = Event(EventKind.LIST_UNHEALTHY, "zen", T0 + 1, detail="dead")
        barrier = threading.Barrier(len(stores), timeout=30)
        written: list[Event | None] = []

        def probe(s: Store) -> None:
            barrier.wait()
            written.append(s.record_health("zen", Health.DEAD, "dead", T0 + 1, down, to_ops))

        threads = [threading.Thread(target=probe, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(written) == len(stores) and sum(w is not None for w in written) == 1
        assert len(stores[0].events()) == 1 and stores[0].outbox_counts() == {"ops": 1}
    finally:
        for s in stores:
            s.close()


# -- several instances: what a lone instance sees on either store ---------------------------------


def test_a_lone_instance_holds_every_shard_and_leads_and_its_fenced_writes_land(
    store: Store,
) -> None:
    me = Instance("me", "host-a", 4242, "1.0", T0, 0.0)
    view = store.tick(me, ["zen", "dbl"], lease=30.0)
    assert (view.owner, view.leader, view.live) == ("me", True, 1)
    assert view.shards_of("zen") == view.shards_of("dbl") == frozenset(range(SHARDS))
    assert abs(view.now - time.time()) < 60  # the store's clock, in unix seconds
    (seen,) = store.instances()
    assert (seen.id, seen.host, seen.pid, seen.version, seen.started) == (
        "me",
        "host-a",
        4242,
        "1.0",
        T0,
    )
    assert (seen.shards, seen.leader) == (2 * SHARDS, True)
    (event,) = store.commit(
        CycleCommit("zen", events=[listed_event("a.test")]), fence=view.fence("zen")
    )
    assert store.events() == [event]
    down = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead")
    lead = Fence("me", leader=True)
    assert store.record_health("zen", Health.DEAD, "dead", T0, down, fence=lead) is not None
    store.leave("me")
    assert store.instances() == []


def test_an_event_missing_a_required_value_is_a_store_error_not_a_stored_transition(
    backend: Backend, store: Store
) -> None:
    # the chain key's refusal must not swallow other errors of the events table: the engine
    # takes `Fenced` for "stored already" and would drop the cycle's results without a word
    broken = replace(listed_event("a.test"), at=None, after=0)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match=backend.not_null_error) as exc:
        store.commit(CycleCommit("zen", events=[broken]), to_ops)
    assert not isinstance(exc.value, Fenced)
    assert_store_is_empty(store)


# -- the async facade -----------------------------------------------------------------------------


def test_the_async_facade_has_an_awaitable_twin_of_every_store_method() -> None:
    for name in Store.__abstractmethods__:
        twin = getattr(AsyncStore, name, None)
        assert twin is not None, f"AsyncStore.{name} is missing"
        assert inspect.iscoroutinefunction(twin), name
        sync_params = list(inspect.signature(getattr(Store, name)).parameters.values())
        async_params = list(inspect.signature(twin).parameters.values())
        assert [(p.name, p.kind, p.default) for p in async_params] == [
            (p.name, p.kind, p.default) for p in sync_params
        ], name


def test_every_async_method_gives_what_the_store_gives(backend: Backend) -> None:
    store = backend.open()
    db = AsyncStore(store)
    unhealthy = Event(EventKind.LIST_UNHEALTHY, "dbl", T0, detail="dead")
    commit = CycleCommit(
        "zen",
        upserts=[listed("192.0.2.1")],
        seen=["192.0.2.1"],
        events=[listed_event("192.0.2.1")],
        status=ListStatus("zen", last_cycle_end=T0, targets=1),
        budget_day="2027-01-15",
        budget_queries=3,
    )

    async def scenario() -> None:
        (event,) = await db.commit(commit, to_ops)
        assert store.events() == [event]
        down = await db.record_health("dbl", Health.DEAD, "dead", T0, unhealthy, to_ops)
        assert down is not None and store.events()[-1] == down
        reads: list[tuple[Any, Any]] = [
            (await db.pairs(), store.pairs()),
            (await db.pairs("zen"), store.pairs("zen")),
            (await db.pair_summaries(), store.pair_summaries()),
            (await db.seen("zen"), store.seen("zen")),
            (await db.list_statuses(), store.list_statuses()),
            (await db.events(newest_first=True, limit=1), store.events(newest_first=True, limit=1)),
            (await db.events(target="192.0.2.1"), store.events(target="192.0.2.1")),
            (await db.listed_count(), store.listed_count()),
            (await db.budget_used("zen", "2027-01-15"), 3),
            (await db.outbox_counts(), {"ops": 2}),
            (await db.read(lambda s: len(s.events())), 2),
        ]
        for got, want in reads:
            assert got == want
        due = await db.due_deliveries("ops", T0, 1)
        assert due == store.due_deliveries("ops", T0, 1) and len(due) == 1
        await db.delivery_retry(due[0].id, T0 + 9, "HTTP 503")
        assert store.due_deliveries("ops", T0 + 9)[0].attempts == 1
        await db.delivery_done(due[0].id)
        assert store.outbox_counts() == {"ops": 1}
        claimed = await db.claim_delivery("ops", "me", T0, 30)
        assert claimed is not None and claimed.held_by == "me"
        assert claimed == store.claim_delivery("ops", "me", T0, 30)
        heads = await db.chain_heads("zen", ["192.0.2.1"])
        assert heads == store.chain_heads("zen", ["192.0.2.1"]) == {"192.0.2.1": event.id}
        me = Instance("me", "host", 1, "1.0", T0, 0.0)
        view = await db.tick(me, ["zen"], 30.0)
        assert view.leader and view.shards_of("zen") == frozenset(range(SHARDS))
        assert [i.id for i in await db.instances()] == [i.id for i in store.instances()] == ["me"]
        await db.leave("me")
        assert store.instances() == []
        await db.close()

    asyncio.run(scenario())
    with pytest.raises(StoreError, match="closed"):
        store.pairs()


# -- store URLs (not per backend: the one map from a scheme to its implementation) -------------


def test_every_backend_under_test_is_a_scheme_open_store_knows() -> None:
    assert set(BACKENDS) <= set(SCHEMES)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "mysql stores are not available"),
        ("/var/lib/rblwatch/state.db", "not a store URL"),
    ],
)
def test_a_url_of_no_available_store_is_refused_in_one_line_naming_the_ones_there_are(
    url: str, message: str
) -> None:
    for call in (check_url, open_store):
        with pytest.raises(StoreUnavailable, match=message) as exc:
            call(url)
        assert str(exc.value).startswith("store.url: ")
        assert str(exc.value).endswith("(use sqlite:///PATH or postgresql://USER@HOST/DB)")
        assert "\n" not in str(exc.value)


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://relative.db", "sqlite:/x.db"])
def test_a_malformed_url_of_a_known_scheme_says_what_it_should_look_like(url: str) -> None:
    with pytest.raises(StoreError, match=r"store.url: .*sqlite:///PATH"):
        open_store(url)


def test_check_url_accepts_what_open_store_opens_without_opening_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/never/created.db"
    check_url(url)
    assert not (tmp_path / "never").exists()


def test_config_names_the_store_schemes_the_store_package_has() -> None:
    # config cannot import the store package (layering), so it keeps its own list
    assert config.STORE_SCHEMES == SCHEMES


@pytest.mark.parametrize("scheme", ["sqlite", "postgresql", "postgres", "mysql"])
def test_config_accepts_exactly_the_store_urls_that_run_can_open(
    scheme: str, tmp_path: Path
) -> None:
    url = f"{scheme}:///{tmp_path}/state.db" if scheme == "sqlite" else f"{scheme}://u@h/db"
    try:
        parse_config({"store": {"url": url}})
    except ConfigError:
        config_ok = False
    else:
        config_ok = True
    try:
        check_url(url)
    except StoreError:
        store_ok = False
    else:
        store_ok = True
    assert config_ok == store_ok
    assert config_ok == (scheme != "mysql")


# -- the daily budget shared by every instance: reservations ----------------------------------
# A cycle reserves its lookups before sending them and its commit counts the difference to
# what it sent, so instances sharing one database never spend a list's budget twice.

BUDGET_DAY = "2027-01-15"


def test_a_reservation_that_fits_is_counted_at_once_and_one_that_does_not_is_not(
    store: Store,
) -> None:
    assert store.reserve_budget("zen", BUDGET_DAY, 60, 100)
    assert store.budget_used("zen", BUDGET_DAY) == 60
    assert not store.reserve_budget("zen", BUDGET_DAY, 41, 100)
    assert store.budget_used("zen", BUDGET_DAY) == 60  # refused: nothing counted
    assert store.reserve_budget("zen", BUDGET_DAY, 40, 100)  # exactly to the limit
    assert store.budget_used("zen", BUDGET_DAY) == 100
    assert not store.reserve_budget("zen", BUDGET_DAY, 1, 100)
    assert not store.reserve_budget("other", BUDGET_DAY, 101, 100)  # too big even for a fresh day
    assert store.budget_used("other", BUDGET_DAY) == 0
    assert store.budget_used("zen", "2027-01-16") == 0  # a day of its own


def test_a_commit_corrects_a_reservation_by_what_was_really_sent(store: Store) -> None:
    assert store.reserve_budget("zen", BUDGET_DAY, 50, 1000)
    # 50 reserved, 62 sent (retries): the commit adds the 12 more
    store.commit(CycleCommit("zen", budget_day=BUDGET_DAY, budget_queries=12))
    assert store.budget_used("zen", BUDGET_DAY) == 62
    assert store.reserve_budget("zen", BUDGET_DAY, 50, 1000)
    # 50 reserved, 30 sent (the list went unhealthy mid-way): the commit gives 20 back
    store.commit(CycleCommit("zen", budget_day=BUDGET_DAY, budget_queries=-20))
    assert store.budget_used("zen", BUDGET_DAY) == 92


def test_instances_reserving_at_once_never_spend_more_than_the_budget(
    backend: Backend,
) -> None:
    stores = [backend.open() for _ in range(4)]
    try:
        granted: list[bool] = []
        lock = threading.Lock()
        start = threading.Barrier(len(stores))

        def reserve(s: Store) -> None:
            start.wait()
            for _ in range(25):
                ok = s.reserve_budget("zen", BUDGET_DAY, 7, 500)
                with lock:
                    granted.append(ok)

        threads = [threading.Thread(target=reserve, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # 100 attempts of 7 against 500: exactly 71 fit, and the count says so
        assert sum(granted) == 500 // 7
        assert stores[0].budget_used("zen", BUDGET_DAY) == 7 * (500 // 7)
    finally:
        for s in stores:
            s.close()


def test_listings_pages_the_listed_pairs_of_the_lists_asked_by_target_then_list(
    store: Store,
) -> None:
    # issue 14: the status's listings are read a page at a time, in the order it shows them
    targets = ["192.0.2.10", "192.0.2.9", "192.0.2.1", "example.test", "Z.test"]
    clean_but_pending = PairState("192.0.2.5", "zen", "", PairStatus.CLEAN, T0, T0)
    store.commit(CycleCommit("zen", upserts=[*map(listed, targets), clean_but_pending]))
    store.commit(CycleCommit("sorbs", upserts=[listed(t, "sorbs") for t in targets[:2]]))
    store.commit(CycleCommit("gone", upserts=[listed("192.0.2.1", "gone")]))
    lists = ["zen", "sorbs"]
    every = [(p.target, p.list) for p in store.listings(lists)]
    assert every == sorted((t, n) for t in targets for n in lists if n == "zen" or t in targets[:2])
    pages, after = [], None
    while True:
        page = store.listings(lists, after=after, limit=2)
        if not page:
            break
        assert len(page) <= 2
        pages.append(page)
        after = (page[-1].target, page[-1].list)
    assert [(p.target, p.list) for page in pages for p in page] == every
    assert len(pages) == 4
    [first] = store.listings(["zen"], limit=1)
    assert first == listed("192.0.2.1")  # the whole row, as `pairs` reads it
    assert store.listings([]) == []
