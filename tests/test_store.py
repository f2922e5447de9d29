"""The SQLite store (SPEC §4, §12): round trips, atomic commits, migrations, the outbox, kill -9."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

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
from rblwatch.store import StoreError, open_store
from rblwatch.store.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteStore

T0 = 1_800_000_000.0


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "rblwatch.db")


@pytest.fixture
def store(db_path: str) -> Iterator[SqliteStore]:
    s = SqliteStore(db_path)
    try:
        yield s
    finally:
        s.close()


def id_base(path: str) -> int:
    """What a store's event ids count up from: its creation time in microseconds."""
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return int(row[0])


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


# -- opening --------------------------------------------------------------------------------------


def test_a_new_store_creates_its_directory_private_to_the_group(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "rblwatch.db"
    SqliteStore(str(path)).close()
    umask = os.umask(0)
    os.umask(umask)
    assert path.is_file()
    assert path.parent.stat().st_mode & 0o777 == 0o750 & ~umask


def test_a_new_store_is_in_wal_mode_at_the_current_schema_version(db_path: str) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


def test_open_store_opens_a_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    try:
        assert isinstance(store, SqliteStore)
        assert store.pairs() == []
    finally:
        store.close()


def test_state_survives_closing_and_reopening(db_path: str) -> None:
    s = SqliteStore(db_path)
    s.commit(CycleCommit("zen", upserts=[listed("192.0.2.1")], seen=["192.0.2.1"]))
    s.close()
    s = SqliteStore(db_path)
    try:
        assert s.pairs() == [listed("192.0.2.1")]
        assert s.seen("zen") == {"192.0.2.1"}
    finally:
        s.close()


def test_close_is_idempotent_and_later_calls_say_the_store_is_closed(db_path: str) -> None:
    s = SqliteStore(db_path)
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.pairs()


def assert_one_line_naming(exc: pytest.ExceptionInfo[StoreError], path: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert path in message


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match="cannot open") as exc:
        SqliteStore(str(path))
    assert_one_line_naming(exc, str(path))


def test_another_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an rblwatch database") as exc:
        SqliteStore(str(path))
    assert_one_line_naming(exc, str(path))
    assert path.read_bytes() == before
    assert not (tmp_path / "other.db-wal").exists()


def test_a_database_from_a_newer_rblwatch_is_refused_in_one_line(db_path: str) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer") as exc:
        SqliteStore(db_path)
    assert_one_line_naming(exc, db_path)


def test_a_directory_that_cannot_be_created_is_refused_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = str(blocker / "sub" / "rblwatch.db")
    with pytest.raises(StoreError, match="cannot create directory") as exc:
        SqliteStore(path)
    assert_one_line_naming(exc, path)


# The schema as version 1 shipped it, written out by hand: migrations must carry such a file on.
V1_SCHEMA = f"""
PRAGMA application_id = {APPLICATION_ID};
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
CREATE TABLE pairs (
    list TEXT NOT NULL, target TEXT NOT NULL, group_name TEXT NOT NULL, status TEXT NOT NULL,
    since REAL NOT NULL, first_seen REAL NOT NULL, codes TEXT NOT NULL DEFAULT '[]',
    meanings TEXT NOT NULL DEFAULT '[]', txt TEXT, pending TEXT,
    pending_codes TEXT NOT NULL DEFAULT '[]', pending_meanings TEXT NOT NULL DEFAULT '[]',
    pending_count INTEGER NOT NULL DEFAULT 0, pending_since REAL,
    PRIMARY KEY (list, target)) WITHOUT ROWID;
CREATE INDEX pairs_status ON pairs (status);
CREATE TABLE seen (list TEXT NOT NULL, target TEXT NOT NULL, PRIMARY KEY (list, target))
    WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, list TEXT NOT NULL, target TEXT,
    group_name TEXT, at REAL NOT NULL, codes TEXT NOT NULL DEFAULT '[]',
    meanings TEXT NOT NULL DEFAULT '[]', txt TEXT, initial INTEGER NOT NULL DEFAULT 0,
    previous_codes TEXT NOT NULL DEFAULT '[]', since REAL, detail TEXT NOT NULL DEFAULT '');
CREATE INDEX events_at ON events (at);
CREATE INDEX events_target ON events (target, at);
CREATE INDEX events_list ON events (list, at);
CREATE TABLE list_status (
    name TEXT PRIMARY KEY, health TEXT NOT NULL DEFAULT 'unknown',
    health_detail TEXT NOT NULL DEFAULT '', health_since REAL, last_cycle_start REAL,
    last_cycle_end REAL, last_cycle_success REAL, last_cycle_duration REAL,
    last_cycle_lookups INTEGER NOT NULL DEFAULT 0, last_cycle_errors INTEGER NOT NULL DEFAULT 0,
    targets INTEGER NOT NULL DEFAULT 0);
CREATE TABLE budget (list TEXT NOT NULL, day TEXT NOT NULL, queries INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (list, day)) WITHOUT ROWID;
INSERT INTO pairs (list, target, group_name, status, since, first_seen, codes, meanings)
    VALUES ('zen', '192.0.2.1', 'mail', 'listed', {T0}, {T0}, '["127.0.0.2"]', '["SBL"]');
INSERT INTO seen VALUES ('zen', '192.0.2.1');
INSERT INTO events (kind, list, target, group_name, at, codes)
    VALUES ('listed', 'zen', '192.0.2.1', 'mail', {T0}, '["127.0.0.2"]');
INSERT INTO budget VALUES ('zen', '2027-01-15', 7);
"""


def test_a_version_1_database_is_migrated_and_keeps_its_data(db_path: str) -> None:
    os.makedirs(os.path.dirname(db_path))
    conn = sqlite3.connect(db_path)
    conn.executescript(V1_SCHEMA)
    conn.close()

    s = SqliteStore(db_path)
    try:
        assert s.pairs() == [listed("192.0.2.1")]
        assert s.seen("zen") == {"192.0.2.1"}
        assert s.budget_used("zen", "2027-01-15") == 7
        assert [e.id for e in s.events()] == [1]
        # the outbox arrived with version 2, and new events get the next id
        (event,) = s.commit(CycleCommit("zen", events=[listed_event("192.0.2.2")]), to_ops)
        assert event.id == 2
        assert [d.event for d in s.due_deliveries("ops", now=T0)] == [event]
    finally:
        s.close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


# -- pairs, seen and commits ----------------------------------------------------------------------


def test_a_pair_with_every_field_set_round_trips(store: SqliteStore) -> None:
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


def test_an_upsert_replaces_a_pair_and_a_delete_removes_it(store: SqliteStore) -> None:
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1"), listed("192.0.2.2")]))
    cleared = PairState("192.0.2.1", "zen", "mail", PairStatus.CLEAN, T0 + 60, T0)
    store.commit(CycleCommit("zen", upserts=[cleared], deletes=["192.0.2.2"]))
    assert store.pairs() == [cleared]


def test_pairs_and_deletes_keep_to_their_own_list(store: SqliteStore) -> None:
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1", "zen")]))
    store.commit(CycleCommit("sorbs", upserts=[listed("192.0.2.1", "sorbs")]))
    store.commit(CycleCommit("sorbs", deletes=["192.0.2.1"]))
    assert store.pairs("zen") == [listed("192.0.2.1", "zen")]
    assert store.pairs("sorbs") == []
    assert store.pairs() == [listed("192.0.2.1", "zen")]


def test_seen_grows_per_list_and_ignores_repeats(store: SqliteStore) -> None:
    store.commit(CycleCommit("zen", seen=["192.0.2.1", "192.0.2.2"]))
    store.commit(CycleCommit("zen", seen=["192.0.2.2", "192.0.2.3"]))
    store.commit(CycleCommit("dbl", seen=["example.test"]))
    assert store.seen("zen") == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert store.seen("dbl") == {"example.test"}
    assert store.seen("other") == set()


def test_the_first_cycle_of_a_slash_16_stores_all_65536_seen_targets(store: SqliteStore) -> None:
    targets = [f"10.1.{i >> 8}.{i & 255}" for i in range(65_536)]
    store.commit(CycleCommit("zen", seen=targets))
    assert store.seen("zen") == set(targets)
    assert store.pairs() == []  # clean baselines cost no pair rows


def test_listed_count_counts_only_listed_pairs(store: SqliteStore) -> None:
    clean_but_pending = PairState("192.0.2.3", "zen", "", PairStatus.CLEAN, T0, T0)
    store.commit(CycleCommit("zen", upserts=[listed("192.0.2.1"), clean_but_pending]))
    store.commit(CycleCommit("sorbs", upserts=[listed("192.0.2.1", "sorbs")]))
    assert store.listed_count() == 2


def test_a_commit_returns_its_events_with_increasing_ids(store: SqliteStore) -> None:
    first = store.commit(
        CycleCommit("zen", events=[listed_event("a.test"), listed_event("b.test")])
    )
    second = store.commit(CycleCommit("zen", events=[listed_event("c.test")]))
    base = (first[0].id or 0) - 1
    assert [e.id for e in first + second] == [base + 1, base + 2, base + 3]
    assert [e.target for e in first + second] == ["a.test", "b.test", "c.test"]
    assert store.events() == first + second


def test_an_event_with_every_field_set_round_trips(store: SqliteStore) -> None:
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
    )
    (written,) = store.commit(CycleCommit("zen", events=[event]))
    assert written.id is not None
    assert store.events() == [written]
    assert written == replace(event, id=written.id)


def test_events_are_filtered_by_since_inclusive_target_and_list_oldest_first(
    store: SqliteStore,
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


def test_a_commit_writes_its_cycle_status_and_budget(store: SqliteStore) -> None:
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


def test_a_commit_of_one_list_refuses_the_status_of_another(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="dbl"):
        store.commit(CycleCommit("zen", status=ListStatus("dbl")))


def test_a_failing_receivers_callback_rolls_the_whole_commit_back(
    store: SqliteStore, db_path: str
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
    with pytest.raises(RuntimeError, match="boom"):
        store.commit(commit, fail_on_second)
    assert_store_is_empty(store)
    # and the store is still usable, with ids unspent by the rolled-back events
    base = id_base(db_path)
    (event,) = store.commit(CycleCommit("zen", events=[listed_event("c.test")]))
    assert event.id == base + 1


def test_a_database_error_is_a_store_error_and_rolls_the_whole_commit_back(
    store: SqliteStore,
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
    with pytest.raises(StoreError, match="NOT NULL") as exc:
        store.commit(commit, to_ops)
    assert "\n" not in str(exc.value)
    assert_store_is_empty(store)


def assert_store_is_empty(store: SqliteStore) -> None:
    assert store.pairs() == []
    assert store.seen("zen") == set()
    assert store.events() == []
    assert store.outbox_counts() == {}
    assert store.list_statuses() == []
    assert store.budget_used("zen", "2027-01-15") == 0


def test_commits_from_many_threads_all_land_with_unique_ids(store: SqliteStore) -> None:
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
    assert ids == list(range(ids[0], ids[0] + 160))
    assert store.listed_count() == 160
    assert store.outbox_counts() == {"ops": 160}


# -- health ---------------------------------------------------------------------------------------


def test_health_since_moves_only_when_the_health_changes(store: SqliteStore) -> None:
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


def test_health_and_cycle_fields_do_not_overwrite_each_other(store: SqliteStore) -> None:
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


def test_a_health_change_writes_its_event_and_outbox_rows(store: SqliteStore) -> None:
    event = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead")
    written = store.record_health("zen", Health.DEAD, "dead", T0, event, lambda e: ["ops", "chat"])
    assert written is not None
    assert written.id is not None and written.id > 0
    assert store.events() == [written]
    assert store.outbox_counts() == {"ops": 1, "chat": 1}
    assert store.record_health("zen", Health.DEAD, "dead", T0 + 1, None) is None


# -- the outbox -----------------------------------------------------------------------------------


def test_each_event_gets_one_outbox_row_per_receiver(store: SqliteStore) -> None:
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
    store: SqliteStore,
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


def test_a_retried_delivery_waits_and_counts_its_attempts(store: SqliteStore) -> None:
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


def test_a_done_delivery_leaves_the_outbox_but_its_event_stays(store: SqliteStore) -> None:
    store.commit(CycleCommit("zen", events=[listed_event("a.test")]), lambda e: ["ops", "chat"])
    (ops,) = store.due_deliveries("ops", now=T0)
    store.delivery_done(ops.id)
    store.delivery_done(ops.id)  # twice is harmless: at-least-once senders may repeat
    assert store.due_deliveries("ops", now=T0 + 1000) == []
    assert store.outbox_counts() == {"chat": 1}
    assert [e.target for e in store.events()] == ["a.test"]


# -- crash safety ---------------------------------------------------------------------------------

# Commits in a loop until killed. Commit n upserts the 50 pairs 10.n.x.0..49 (listed), marks
# 2,000 targets seen and writes one event for 10.n.0.0 with one outbox row.
CRASH_CHILD = """
import sys
from rblwatch.model import EventKind, PairStatus
from rblwatch.model import CycleCommit, Event, PairState
from rblwatch.store.sqlite import SqliteStore

store = SqliteStore(sys.argv[1])
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


@pytest.mark.parametrize("kill_after", [0.2, 0.3, 0.4])
def test_kill_9_mid_commit_leaves_whole_commits_only(db_path: str, kill_after: float) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, db_path],
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

    store = SqliteStore(db_path)
    try:
        events = store.events(limit=1_000_000)
        pairs = {p.target for p in store.pairs("zen")}
        seen = store.seen("zen")
        due = store.due_deliveries("ops", now=1e12, limit=1_000_000)
    finally:
        store.close()

    n = len(events)
    assert n > 0, "the child never committed: the test proved nothing"
    first = events[0].id or 0
    assert [e.id for e in events] == list(range(first, first + n))
    assert sorted(d.event.id or 0 for d in due) == list(range(first, first + n))
    expected_pairs = {f"10.{k >> 8}.{k & 255}.{i}" for k in range(1, n + 1) for i in range(50)}
    assert pairs == expected_pairs
    assert all(e.target in pairs for e in events)
    assert len(seen) == 2000 * n

    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_pair_summaries_carry_what_metrics_need_for_every_pair(store: SqliteStore) -> None:
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


def test_newest_first_gives_the_latest_events_in_reverse(store: SqliteStore) -> None:
    for i in range(5):
        store.commit(CycleCommit("zen", events=[listed_event(f"{i}.test", at=T0 + i)]))
    newest = store.events(limit=2, newest_first=True)
    assert [e.target for e in newest] == ["4.test", "3.test"]
    assert [e.target for e in store.events(limit=2)] == ["0.test", "1.test"]


def test_a_new_store_numbers_its_events_from_its_creation_time(tmp_path: Path) -> None:
    # receivers de-duplicate alerts by event id: a store deleted and created anew must not
    # hand out the ids of the old one again
    path = str(tmp_path / "a.db")
    old = SqliteStore(path)
    (first,) = old.commit(CycleCommit("zen", events=[listed_event("a.test")]))
    old.close()
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    time.sleep(1.1)  # the clock the ids come from counts whole seconds
    new = SqliteStore(path)
    try:
        (second,) = new.commit(CycleCommit("zen", events=[listed_event("a.test")]))
    finally:
        new.close()
    assert first.id is not None and second.id is not None
    assert abs(first.id / 1e6 - time.time()) < 60  # seconds since 1970, in microseconds
    assert second.id > first.id
    assert second.id < 2**53  # exact as a JSON number
