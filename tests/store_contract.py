"""The store implementations the contract suite (`test_store_contract.py`) runs against.

Every `Store` implementation must pass that whole suite. Each one is described here by a
`Backend`: a fresh, empty database of its own for one test (`url`, opened through `open_store`,
as the daemon does), and the few things a test cannot do through the `Store` interface itself:
destroy the database, write one at an older schema version, check it for damage. To add an
implementation, write its `Backend` and add it to `BACKENDS`; its
factory gets the pytest request, so it can ask for a fixture of its own (a throwaway cluster).

The few rules where implementations may differ are attributes of the backend, so the suite
states them rather than hiding them: whether event ids are gapless (SQLite's AUTOINCREMENT
spends no id on a rolled-back commit; a PostgreSQL sequence does), and the wording of a
database's NOT NULL error.
"""

from __future__ import annotations

import abc
import os
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from rblwatch.model import Event, EventKind, PairState, PairStatus
from rblwatch.store import Store, open_store
from rblwatch.store.postgres_schema import MARKER_TABLE as PG_MARKER
from rblwatch.store.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from rblwatch.store.sqlite import APPLICATION_ID
from tests.postgres import Cluster

T0 = 1_800_000_000.0

# What `Backend.seed` writes at an older schema version, and what the migrated store must hold.
SEED_PAIR = PairState(
    target="192.0.2.1",
    list="zen",
    group="mail",
    status=PairStatus.LISTED,
    since=T0,
    first_seen=T0,
    codes=("127.0.0.2",),
    meanings=("SBL",),
)
SEED_EVENT = Event(
    EventKind.LISTED, "zen", T0, target="192.0.2.1", group="mail", codes=("127.0.0.2",), id=1
)
SEED_BUDGET = ("zen", "2027-01-15", 7)


def snapshot(store: Store) -> tuple[Any, ...]:
    """Everything a commit can write (of the list "zen" and the receiver "ops" of the tests):
    to compare before and after one that must write nothing."""
    return (
        store.pairs(),
        store.seen("zen"),
        store.events(limit=1000),
        store.outbox_counts(),
        store.due_deliveries("ops", now=1e12, limit=1000),
        store.list_statuses(),
        store.budget_used("zen", "2027-01-15"),
        store.pair_errors(),
        store.resolver_state(),
    )


class Backend(abc.ABC):
    """One implementation under test, with one fresh database."""

    name: ClassVar[str]
    gapless_ids: ClassVar[bool]  # a rolled-back (or killed) commit spends no event id
    not_null_error: ClassVar[str]  # what its error for a missing required value says
    old_versions: ClassVar[tuple[int, ...]]  # the older schema versions `seed` can write

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The `store.url` of this test's database."""

    def open(self) -> Store:
        """Another store on this database (as another thread, process or instance would)."""
        return open_store(self.url)

    @abc.abstractmethod
    def destroy(self) -> None:
        """Remove the database, so that the next `open` creates it anew."""

    @abc.abstractmethod
    def seed(self, version: int) -> None:
        """Write the database at schema `version` (one of `old_versions`), holding the SEED_
        records: as a store of that version would have left it."""

    @abc.abstractmethod
    def id_base(self) -> int:
        """What event ids count up from now (only asked when `gapless_ids`)."""

    @abc.abstractmethod
    def check_integrity(self) -> None:
        """Assert the database is undamaged (its own consistency checks)."""


class SqliteBackend(Backend):
    name = "sqlite"
    gapless_ids = True
    not_null_error = "NOT NULL"
    old_versions = (1,)

    def __init__(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "state" / "rblwatch.db")

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def destroy(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(self.path + suffix).unlink(missing_ok=True)

    def seed(self, version: int) -> None:
        assert version in self.old_versions
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        conn = sqlite3.connect(self.path)
        try:
            conn.executescript(SQLITE_V1_SCHEMA)
        finally:
            conn.close()

    def id_base(self) -> int:
        with sqlite3.connect(self.path) as db:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0])

    def check_integrity(self) -> None:
        conn = sqlite3.connect(self.path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        finally:
            conn.close()


# The schema as version 1 shipped it, written out by hand: migrations must carry such a file on.
SQLITE_V1_SCHEMA = f"""
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


class PostgresBackend(Backend):
    """A database of its own on the session's throwaway cluster (`tests.postgres`), dropped
    when the test ends."""

    name = "postgresql"
    gapless_ids = False  # a sequence spends the ids of a rolled-back commit
    not_null_error = "not-null constraint"
    old_versions = (1,)

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.cluster: Cluster = request.getfixturevalue("postgres_cluster")
        self.database = self.cluster.create_database()
        request.addfinalizer(lambda: self.cluster.drop_database(self.database))

    @property
    def url(self) -> str:
        return self.cluster.url(self.database)

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def destroy(self) -> None:
        self.cluster.drop_database(self.database)
        self.database = self.cluster.create_database()

    def seed(self, version: int) -> None:
        assert version in self.old_versions
        with self.connect() as conn, conn.transaction():
            for statement in PG_MIGRATIONS[0]:
                conn.execute(statement)
            conn.execute(f"UPDATE {PG_MARKER} SET version = 1")
            conn.execute(PG_V1_SEED)

    def id_base(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT last_value FROM events_id_seq").fetchone()
        assert row is not None
        return int(row[0])

    def check_integrity(self) -> None:
        with self.connect() as conn:
            orphans = conn.execute(
                "SELECT count(*) FROM outbox o LEFT JOIN events e ON e.id = o.event_id"
                " WHERE e.id IS NULL"
            ).fetchone()
            assert orphans == (0,)
            unique = conn.execute(
                "SELECT count(*) = count(DISTINCT (list, target)) FROM pairs"
            ).fetchone()
            assert unique == (True,)


# The rows a version 1 PostgreSQL store would hold (its tables are migration 1 itself).
PG_V1_SEED = f"""
INSERT INTO pairs (list, target, group_name, status, since, first_seen, codes, meanings)
    VALUES ('zen', '192.0.2.1', 'mail', 'listed', {T0}, {T0}, '["127.0.0.2"]', '["SBL"]');
INSERT INTO seen VALUES ('zen', '192.0.2.1');
INSERT INTO events (kind, list, target, group_name, at, codes)
    VALUES ('listed', 'zen', '192.0.2.1', 'mail', {T0}, '["127.0.0.2"]');
INSERT INTO budget VALUES ('zen', '2027-01-15', 7);
"""

BackendFactory = Callable[[pytest.FixtureRequest, Path], Backend]

# name → how to make a fresh backend for one test; the suite runs once per entry
BACKENDS: Mapping[str, BackendFactory] = {
    "sqlite": lambda request, tmp_path: SqliteBackend(tmp_path),
    "postgresql": lambda request, tmp_path: PostgresBackend(request),
}
