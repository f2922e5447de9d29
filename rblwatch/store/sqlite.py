"""The SQLite store: one file, WAL, a versioned schema with forward migrations.

Schema (version 6; `sqlite_schema.MIGRATIONS`):

``schema_version(version)``
    One row: how many migrations of `MIGRATIONS` have been applied. The file also carries
    ``PRAGMA application_id`` = `APPLICATION_ID`, which is how a file is recognised as ours
    before anything is written to it.
``pairs(list, target, group_name, status, since, first_seen, codes, meanings, txt, pending,
pending_codes, pending_meanings, pending_count, pending_since)``
    One row per (list, target) that is listed, was ever listed, or has a change pending.
    Primary key (list, target), WITHOUT ROWID; an index on status keeps `listed_count` cheap.
``seen(list, target)``
    The targets a list has looked up at least once. WITHOUT ROWID: it is only ever probed by key.
``pair_errors(list, target, reason, detail, at, last_good_at)``
    One row per (list, target) whose last lookup ended `error` (migration 6); target '' is a
    whole list's row (most of its last cycle failed). WITHOUT ROWID, keyed like `pairs`.
``events(id, kind, list, target, group_name, at, codes, meanings, txt, initial,
previous_codes, since, detail, hostname)``
    The history. `id` is AUTOINCREMENT so an id is never reused, even after old events are
    deleted: receivers de-duplicate deliveries by it. A new store's ids start at its creation
    time in microseconds (migration 3), so they are not reused by a store created later
    either. Indexed by at, (target, at), (list, at).
``list_status(name, health, health_detail, health_since, last_cycle_*, targets)``
    One row per list. `commit` writes the cycle fields, `record_health` the health fields;
    neither overwrites the other's.
``resolver_state(id = 1, state, since, detail)``
    One row once the resolver's state was first recorded (`record_resolver`): "ok" or
    "unreachable" since when, and why. ``list_status.last_cycle_skipped`` says why a list's
    last cycle sent no lookups.
``budget(list, day, queries)``
    Queries sent per list and UTC day, incremented by each commit.
``outbox(id, event_id → events.id, receiver, attempts, next_attempt, created, last_error)``
    Deliveries not yet done. Indexed by (receiver, next_attempt) for the sender's due query.
    A new row is due at once: `next_attempt` and `created` are the event's `at`. Deleting an
    event deletes its deliveries (ON DELETE CASCADE).

``acks(list, target, by_user, at, note, until, delisting_requested_at, delisting_note)``
    An operator's acknowledgement per listed pair (`store.acks`); gone when the listing ends.
``notes(id, target, by_user, at, text)``
    Free-text notes on targets, indexed by (target, at). Events have an ``ack`` column too:
    the pair's ack (JSON) when the event was written.

Codes and meanings are JSON arrays in TEXT columns; times are unix seconds (REAL).

Decisions:

- Connections shared by all threads (`check_same_thread=False`): one writes, under a
  `threading.Lock` around every operation, and up to three read (`sqlite_readers`), each
  read on a connection of its own. WAL lets the reads go on while a write transaction is
  open and beside each other, so a `/metrics` scrape or a status page does not wait for a
  big commit (a /14's first cycle writes 262,144 first looks in ~0.7 s) nor for another
  read; a read sees what was committed before it began. A connection per worker thread of
  `asyncio.to_thread` would buy as much at the price of connections nobody closes. An
  in-memory database (":memory:", one per connection) has the one connection for both.
- Transactions are explicit (`isolation_level=None`, `BEGIN IMMEDIATE` … `COMMIT`): the
  write lock is taken up front, so a transaction never fails half-way on a lock upgrade.
- `synchronous=FULL`, not NORMAL. In WAL mode NORMAL already survives a killed process; FULL
  also survives power loss. Commits are rare (one per list per cycle, one per delivery), so
  the fsync costs nothing that matters, while a commit lost after its alert went out would
  raise the same transition again under a new event id: a duplicate no receiver can detect.
- Migrations are tuples of single statements run with `execute`, never `executescript`,
  which would COMMIT the migration's transaction part-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from rblwatch.cluster import SHARDS, Fence, Instance, View, solo_view
from rblwatch.model import (
    UNCHAINED_KINDS,
    Ack,
    CycleCommit,
    Delivery,
    Event,
    EventKind,
    Health,
    ListStatus,
    Note,
    PairError,
    PairState,
    PairStatus,
    PairSummary,
    ReceiversFor,
    ResolverState,
)
from rblwatch.store import Fenced, Store, StoreError, transfer
from rblwatch.store import acks as working
from rblwatch.store.rows import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    EVENT_WIDTH,
    PAIR_COLUMNS,
    PAIR_ERROR_COLUMNS,
    RESOLVER_COLUMNS,
    STATUS_COLUMNS,
    batch_of,
    crossing,
    cycle_row,
    delivery_of,
    event_of,
    event_row,
    pair_error_of,
    pair_error_row,
    pair_of,
    pair_row,
    resolver_crossing,
    resolver_of,
    status_of,
)
from rblwatch.store.sqlite_readers import Readers
from rblwatch.store.sqlite_schema import (
    ADD_BUDGET,
    APPLICATION_ID,
    BUSY_TIMEOUT_S,
    MIGRATIONS,
    SCHEMA_VERSION,
    UPSERT_CYCLE_STATUS,
    UPSERT_HEALTH,
    UPSERT_RESOLVER,
)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


_UNCHAINED = json.dumps(sorted(UNCHAINED_KINDS))  # kinds never a chain head


class SqliteStore(Store):
    """The `Store` in one SQLite file. Safe to call from any thread; see the module docstring.

    Longer than the house's ~250 lines on purpose: one short method per `Store` operation,
    each one transaction on the one shared connection, so the locking and transaction rules
    are visible in one class; the schema and row mapping already live in `sqlite_schema`.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._make_parent()
        try:
            conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(f"cannot open: {_one_line(exc)}") from exc
        conn.row_factory = sqlite3.Row
        try:
            self._check_ours(conn)
            self._configure(conn)
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        self._readers: Readers | None = None  # in memory: reads share the one connection
        if path not in ("", ":memory:"):
            try:
                self._readers = Readers(self._open_reader, self._closed)
            except BaseException:
                conn.close()  # a store that failed to open holds nothing
                raise
        self._me: Instance | None = None  # the one instance, as of its last `tick`

    def _open_reader(self) -> sqlite3.Connection:
        """A connection for reads (see the module docstring)."""
        try:
            reader = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            reader.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        except sqlite3.Error as exc:
            raise self._error(f"cannot open: {_one_line(exc)}") from exc
        reader.row_factory = sqlite3.Row
        return reader

    def _closed(self) -> StoreError:
        return self._error("the store is closed")

    # -- opening ------------------------------------------------------------------------------

    def _error(self, message: str) -> StoreError:
        return StoreError(f"store {self.path}: {message}")

    def _make_parent(self) -> None:
        parent = os.path.dirname(self.path)
        if not parent:
            return
        try:
            os.makedirs(parent, mode=0o750, exist_ok=True)
        except OSError as exc:
            raise self._error(f"cannot create directory {parent}: {exc.strerror}") from exc

    def _check_ours(self, conn: sqlite3.Connection) -> None:
        """Refuse any file that is not an rblwatch database, before writing a byte to it."""
        try:
            # both read in one transaction: another process creating the schema at this very
            # moment must be seen before its commit (id 0, no tables) or after it (ours, with
            # tables), never half way, which would look like somebody else's file
            conn.execute("BEGIN")
            try:
                app_id = conn.execute("PRAGMA application_id").fetchone()[0]
                tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(f"cannot open: {_one_line(exc)}") from exc
        if app_id == APPLICATION_ID or (app_id == 0 and tables == 0):
            return
        raise self._error("not an rblwatch database (use another path)")

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            _set_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            version = _schema_version(conn)
        except sqlite3.Error as exc:
            raise self._error(f"cannot open: {_one_line(exc)}") from exc
        if version > SCHEMA_VERSION:
            raise self._error(
                f"schema version {version} is newer than this rblwatch supports"
                f" ({SCHEMA_VERSION}); upgrade rblwatch or use another path"
            )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Apply the missing migrations, one transaction each.

        The version is read again inside each transaction: another process opening the same
        file at the same moment may have migrated it while this one waited for the lock.
        """
        while True:
            try:
                with _transaction(conn):
                    version = _schema_version(conn)
                    if version >= SCHEMA_VERSION:
                        return
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    conn.execute("UPDATE schema_version SET version = ?", (version + 1,))
            except sqlite3.Error as exc:
                raise self._error(f"migration failed: {_one_line(exc)}") from exc

    # -- the shared connection ------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lent() as conn:
            try:
                yield conn
            except sqlite3.Error as exc:
                raise self._error(_one_line(exc)) from exc

    @contextlib.contextmanager
    def _lent(self) -> Iterator[sqlite3.Connection]:
        if self._readers is not None:
            with self._readers.lend() as conn:
                yield conn
            return
        with self._lock:  # in memory: the writer's connection, under its lock
            if self._conn is None:
                raise self._closed()
            yield self._conn

    @contextlib.contextmanager
    def _write(self, *, chain: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction under the lock; a database error becomes a StoreError
        (with `chain`, a transition stored already becomes `Fenced`)."""
        with self._lock:
            conn = self._open_conn()
            try:
                with _transaction(conn):
                    yield conn
            except sqlite3.IntegrityError as exc:
                # the chain key's own violation only: "UNIQUE constraint failed: events.list,
                # events.target, events.after_id"; any other (a NOT NULL) is an error
                if chain and "events.after_id" in str(exc):
                    raise Fenced(f"store {self.path}: transition stored already") from exc
                raise self._error(_one_line(exc)) from exc
            except sqlite3.Error as exc:
                raise self._error(_one_line(exc)) from exc

    def _open_conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise self._error("the store is closed")
        return self._conn

    # -- pairs and cycles -----------------------------------------------------------------------

    def pairs(self, list_name: str | None = None) -> list[PairState]:
        sql = f"SELECT {PAIR_COLUMNS} FROM pairs"
        params: tuple[str, ...] = ()
        if list_name is not None:
            sql += " WHERE list = ?"
            params = (list_name,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY list, target", params).fetchall()
        return [pair_of(row) for row in rows]

    def listings(
        self,
        lists: Collection[str],
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[PairState]:
        names = sorted(set(lists))
        if not names:
            return []
        sql = (
            f"SELECT {PAIR_COLUMNS} FROM pairs WHERE status = ? AND list IN ({_marks(len(names))})"
        )
        params: list[object] = [PairStatus.LISTED.value, *names]
        if after is not None:
            sql += " AND (target > ? OR (target = ? AND list > ?))"
            params += [after[0], after[0], after[1]]
        sql += " ORDER BY target, list"  # BINARY: byte order, which is code point order
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [pair_of(row) for row in rows]

    def pairs_of(self, list_name: str, targets: Collection[str]) -> list[PairState]:
        wanted = sorted(set(targets))
        out: list[PairState] = []
        with self._read() as conn:
            # in chunks: SQLite caps a statement's parameters (999 in older builds)
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                where = f"list = ? AND target IN ({_marks(len(chunk))})"
                sql = f"SELECT {PAIR_COLUMNS} FROM pairs WHERE {where}"
                out += [pair_of(row) for row in conn.execute(sql, (list_name, *chunk))]
        return out

    def pair_summaries(self) -> list[PairSummary]:
        status = {s.value: s for s in PairStatus}
        with self._read() as conn:
            # plain tuples, not sqlite3.Row: this read is most of a big scrape's store time
            cursor = conn.cursor()
            cursor.row_factory = None
            rows = cursor.execute("SELECT target, list, group_name, status, since FROM pairs")
            return [PairSummary(t, lst, g, status[st], since) for t, lst, g, st, since in rows]

    def pair_errors(
        self, list_name: str | None = None, target: str | None = None
    ) -> list[PairError]:
        where = [c for c, v in (("list = ?", list_name), ("target = ?", target)) if v is not None]
        params = [v for v in (list_name, target) if v is not None]
        sql = f"SELECT {PAIR_ERROR_COLUMNS} FROM pair_errors"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY list, target", params).fetchall()
        return [pair_error_of(row) for row in rows]

    def seen(self, list_name: str) -> set[str]:
        with self._read() as conn:
            rows = conn.execute("SELECT target FROM seen WHERE list = ?", (list_name,))
            return {row[0] for row in rows}

    def commit(
        self,
        commit: CycleCommit,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> list[Event]:
        # a SQLite file has one instance, which holds every lease (`tick`): no fence to check
        name = commit.list
        if commit.status is not None and commit.status.name != name:
            raise ValueError(f"commit of {name!r} carries the status of {commit.status.name!r}")
        with self._write(chain=True) as conn:
            carried, ended = working.carried(_Db(conn), commit.events)
            conn.executemany(
                "DELETE FROM pairs WHERE list = ? AND target = ?", _keyed(name, commit.deletes)
            )
            # a pair's ack goes with its row (no foreign key: INSERT OR REPLACE below would
            # cascade it away on every update of the pair)
            conn.executemany(
                "DELETE FROM acks WHERE list = ? AND target = ?", _keyed(name, commit.deletes)
            )
            conn.executemany(
                f"INSERT OR REPLACE INTO pairs ({PAIR_COLUMNS}) VALUES ({_marks(14)})",
                map(pair_row, commit.upserts),
            )
            conn.executemany(
                "INSERT OR IGNORE INTO seen (list, target) VALUES (?, ?)", _keyed(name, commit.seen)
            )
            conn.executemany(
                "DELETE FROM pair_errors WHERE list = ? AND target = ?",
                _keyed(name, commit.cleared),
            )
            conn.executemany(
                f"INSERT OR REPLACE INTO pair_errors ({PAIR_ERROR_COLUMNS}) VALUES ({_marks(6)})",
                map(pair_error_row, commit.errors),
            )
            working.end(_Db(conn), ended)
            events = _insert_events(conn, carried, receivers_for)
            if commit.status is not None:
                conn.execute(UPSERT_CYCLE_STATUS, cycle_row(commit.status))
            if commit.budget_day is not None and commit.budget_queries:
                conn.execute(ADD_BUDGET, (name, commit.budget_day, commit.budget_queries))
        return events

    def chain_heads(self, list_name: str, targets: Collection[str]) -> dict[str, int]:
        if not targets:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT target, max(id) FROM events WHERE list = ?"
                " AND kind NOT IN (SELECT value FROM json_each(?))"
                " AND target IN (SELECT value FROM json_each(?)) GROUP BY target",
                (list_name, _UNCHAINED, json.dumps(list(targets))),
            )
            return {str(t): int(i) for t, i in rows}

    def record_health(
        self,
        name: str,
        health: Health,
        detail: str,
        at: float,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT health, health_since FROM list_status WHERE name = ?", (name,)
            ).fetchone()
            event = crossing(event, Health(row[0]) if row is not None else None)
            if event is not None and event.kind is EventKind.LIST_RECOVERED and event.since is None:
                event = replace(event, since=row[1] if row is not None else None)
            conn.execute(UPSERT_HEALTH, (name, health.value, detail, at))
            written = _insert_events(conn, [event] if event is not None else [], receivers_for)
        return written[0] if written else None

    def resolver_state(self) -> ResolverState:
        with self._read() as conn:
            sql = f"SELECT {RESOLVER_COLUMNS} FROM resolver_state WHERE id = 1"
            return resolver_of(conn.execute(sql).fetchone())

    def record_resolver(
        self,
        state: ResolverState,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        with self._write() as conn:
            sql = f"SELECT {RESOLVER_COLUMNS} FROM resolver_state WHERE id = 1"
            stored = resolver_of(conn.execute(sql).fetchone())
            state, event = resolver_crossing(state, event, stored)
            conn.execute(UPSERT_RESOLVER, (state.state, state.since, state.detail))
            written = _insert_events(conn, [event] if event is not None else [], receivers_for)
        return written[0] if written else None

    # -- reading ------------------------------------------------------------------------------

    def list_statuses(self) -> list[ListStatus]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {STATUS_COLUMNS} FROM list_status ORDER BY name")
            return [status_of(row) for row in rows]

    def events(
        self,
        *,
        since: float | None = None,
        limit: int = 100,
        target: str | None = None,
        list_name: str | None = None,
        newest_first: bool = False,
    ) -> list[Event]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (("at >= ?", since), ("target = ?", target), ("list = ?", list_name)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT id, {EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?" if newest_first else " ORDER BY at, id LIMIT ?"
        params.append(limit)
        with self._read() as conn:
            return [event_of(row) for row in conn.execute(sql, params)]

    def reminders_sent(self) -> list[tuple[str, str, str, float]]:
        with self._read() as conn:
            rows = conn.execute(_REMINDERS_SENT, (EventKind.REMINDER.value,)).fetchall()
        return [(r[0], r[1], r[2], float(r[3])) for r in rows]

    def listed_count(self) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pairs WHERE status = ?", (PairStatus.LISTED.value,)
            ).fetchone()
        return int(row[0])

    # -- working a listing (`store.acks`) ---------------------------------------------------

    def set_ack(self, ack: Ack) -> Event:
        with self._write() as conn:
            return working.set_ack(_Db(conn), ack)

    def clear_ack(self, target: str, list_name: str, by: str, at: float) -> Event | None:
        with self._write() as conn:
            return working.clear_ack(_Db(conn), target, list_name, by, at)

    def request_delisting(
        self, target: str, list_name: str, by: str, note: str, at: float
    ) -> Event:
        with self._write() as conn:
            return working.request_delisting(_Db(conn), target, list_name, by, note, at)

    def acks(self, list_name: str | None = None, target: str | None = None) -> list[Ack]:
        with self._read() as conn:
            return working.read_acks(_Db(conn), list_name, target)

    def add_note(self, note: Note) -> Note:
        with self._write() as conn:
            return working.add_note(_Db(conn), note)

    def notes(self, target: str) -> list[Note]:
        with self._read() as conn:
            return working.read_notes(_Db(conn), target)

    # -- budgets ------------------------------------------------------------------------------

    def budget_used(self, list_name: str, day: str) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT queries FROM budget WHERE list = ? AND day = ?", (list_name, day)
            ).fetchone()
        return int(row[0]) if row is not None else 0

    def reserve_budget(self, list_name: str, day: str, queries: int, limit: int) -> bool:
        with self._write() as conn:  # BEGIN IMMEDIATE: no other writer between read and write
            row = conn.execute(
                "SELECT queries FROM budget WHERE list = ? AND day = ?", (list_name, day)
            ).fetchone()
            if (row[0] if row is not None else 0) + queries > limit:
                return False
            conn.execute(ADD_BUDGET, (list_name, day, queries))
        return True

    # -- the alert outbox -----------------------------------------------------------------------

    def due_deliveries(self, receiver: str, now: float, limit: int = 100) -> list[Delivery]:
        sql = f"""
            SELECT {DELIVERY_COLUMNS}
            FROM outbox AS o JOIN events AS e ON e.id = o.event_id
            WHERE o.receiver = ? AND o.next_attempt <= ?
            ORDER BY e.id, o.id
            LIMIT ?
        """
        with self._read() as conn:
            rows = conn.execute(sql, (receiver, now, limit)).fetchall()
        return [delivery_of(row) for row in rows]

    def claim_deliveries(
        self,
        receiver: str,
        owner: str,
        now: float,
        hold: float,
        limit: int = 1,
        group_wait: float = 0.0,
    ) -> list[Delivery]:
        sql = f"""
            SELECT {DELIVERY_COLUMNS}
            FROM outbox AS o JOIN events AS e ON e.id = o.event_id
            WHERE o.receiver = ?
            ORDER BY e.id, o.id
            LIMIT ?
        """
        with self._write() as conn:
            # the head alone first: while it waits (its window open), one row is read, not all
            rows = [delivery_of(r) for r in conn.execute(sql, (receiver, 1))]
            if not batch_of(rows, owner, now, 1, group_wait):
                return rows
            if limit > 1:
                rows = [delivery_of(r) for r in conn.execute(sql, (receiver, limit))]
            batch = batch_of(rows, owner, now, limit, group_wait)
            conn.executemany(
                "UPDATE outbox SET held_by = ?, held_until = ? WHERE id = ?",
                [(owner, now + hold, d.id) for d in batch],
            )
        return [replace(d, held_by=owner, held_until=now + hold) for d in batch]

    def deliveries_done(self, delivery_ids: Collection[int]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in delivery_ids])

    def deliveries_retry(
        self, delivery_ids: Collection[int], next_attempt: float, error: str
    ) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ?,"
                " held_by = NULL, held_until = NULL WHERE id = ?",
                [(next_attempt, error, i) for i in delivery_ids],
            )

    def delivery_done(self, delivery_id: int) -> None:
        self.deliveries_done((delivery_id,))

    def delivery_retry(self, delivery_id: int, next_attempt: float, error: str) -> None:
        self.deliveries_retry((delivery_id,), next_attempt, error)

    def outbox_counts(self) -> dict[str, int]:
        with self._read() as conn:
            rows = conn.execute("SELECT receiver, count(*) FROM outbox GROUP BY receiver")
            return {row[0]: int(row[1]) for row in rows}

    # -- several instances: a SQLite file has one ----------------------------------------------

    def tick(self, me: Instance, lists: Sequence[str], lease: float, shards: int = SHARDS) -> View:
        if self._me is None or self._me.id != me.id:
            # a SQLite file has one daemon at a time: a hold of another sender's is that of
            # an earlier process, stopped or killed mid-request; its row goes out again now,
            # not once the hold (a request's timeout + 30 s) has run out
            with self._write() as conn:
                conn.execute(
                    "UPDATE outbox SET held_by = NULL, held_until = NULL"
                    " WHERE held_by IS NOT NULL AND held_by != ?",
                    (me.id,),
                )
        now = time.time()
        view = solo_view(me.id, lists, now, shards)
        self._me = replace(me, heartbeat=now, shards=len(view.leases), leader=True)
        return view

    def instances(self) -> list[Instance]:
        return [self._me] if self._me is not None else []

    def leave(self, owner: str) -> None:
        with self._write() as conn:
            conn.execute(_RELEASE_HOLDS, (owner,))
        if self._me is not None and self._me.id == owner:
            self._me = None

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._readers is not None:
                self._readers.close()  # waits for the reads under way
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    # -- the raw tables, for `store.transfer` only -----------------------------------------------

    @contextlib.contextmanager
    def _tables(self, *, write: bool) -> Iterator[transfer.Tables]:
        """Writing: one BEGIN IMMEDIATE transaction (`_write`). Reading: one deferred
        transaction, a WAL snapshot that does not hold a running daemon's writes back."""

        def error(exc: Exception) -> StoreError:
            return self._error(_one_line(exc))

        if write:
            with self._write() as conn:
                yield transfer.SqliteTables(conn, error)
            return
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                yield transfer.SqliteTables(conn, error)
            finally:
                conn.execute("ROLLBACK")  # it only read


# a clean stop: the rows this sender held (abandoned mid-request) go out again at once
_REMINDERS_SENT = (
    "SELECT target, list, detail, max(at) FROM events WHERE kind = ? GROUP BY target, list, detail"
)
_RELEASE_HOLDS = "UPDATE outbox SET held_by = NULL, held_until = NULL WHERE held_by = ?"


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (then re-raised)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # a failed COMMIT can leave the transaction open or already rolled back
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out another process that is creating the same new file.

    The switch needs the file to itself, and SQLite answers "database is locked" at once rather
    than waiting (its busy handler would deadlock) while another connection is half way through
    a write, as when several instances start together on a new database; so wait here.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _schema_version(conn: sqlite3.Connection) -> int:
    """The applied migrations; 0 for a new, empty file."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if has_table is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row is not None else 0


def _insert_events(
    conn: sqlite3.Connection, events: Iterable[Event], receivers_for: ReceiversFor | None
) -> list[Event]:
    """Insert events one by one (each id is needed) and their outbox rows in bulk."""
    written: list[Event] = []
    deliveries: list[tuple[int, str, float, float]] = []
    for event in events:
        cursor = conn.execute(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({_marks(EVENT_WIDTH)})", event_row(event)
        )
        event_id = cursor.lastrowid
        assert event_id is not None  # always set after a successful INSERT
        written.append(replace(event, id=event_id))
        receivers = receivers_for(event) if receivers_for is not None else ()
        deliveries.extend((event_id, name, event.at, event.at) for name in receivers)
    conn.executemany(
        "INSERT INTO outbox (event_id, receiver, next_attempt, created) VALUES (?, ?, ?, ?)",
        deliveries,
    )
    return written


class _Db:
    """`store.acks.Db` on the connection, inside the caller's transaction."""

    for_update = ""  # BEGIN IMMEDIATE holds the whole file already

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.conn.execute(sql, params)]

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def insert_events(self, events: list[Event]) -> list[Event]:
        return _insert_events(self.conn, events, None)


def _keyed(list_name: str, targets: Iterable[str]) -> Iterator[tuple[str, str]]:
    return ((list_name, target) for target in targets)


def _marks(n: int) -> str:
    return ", ".join("?" * n)
