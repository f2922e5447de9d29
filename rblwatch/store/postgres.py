"""The PostgreSQL store: the same `Store` as SQLite's, on a server several hosts can share.

`store.url` is a libpq conninfo URL (`postgresql://…` or `postgres://…`) handed to libpq as
it is: several hosts with `target_session_attrs=read-write` for a primary that fails over,
every `sslmode`, `passfile` and service files all work as libpq documents them. The password
is never shown: every message names the URL with it masked, and any text libpq returns has it
masked too. The tables are described in `postgres_schema`.

Decisions:

- A small bounded pool (psycopg-pool, at most `POOL_MAX` connections): the daemon's store calls
  come from `asyncio.to_thread` workers, a few at a time; each call borrows a connection for
  one transaction (committed when the call returns, rolled back on any exception).
- Migrations run on a connection of their own under `pg_advisory_lock`, one transaction each,
  the version read again under the lock: instances starting together on an empty database
  apply each migration once. Before the first migration a database must be empty or ours
  (it has the `rblwatch_schema` table), as the SQLite store checks `application_id`.
- Batched writes: a cycle's commit is a few statements whatever its size, each set of rows
  one statement (arrays with `unnest`/`ANY`) or one pipelined `executemany`. Event ids are
  taken from the sequence in one query, so the events and their outbox rows need no
  `RETURNING` round trip per event.
- Event ids come from a sequence, so a rolled-back commit spends ids (they are unique and
  increasing, not gapless); a new database's ids start at its creation time in microseconds,
  like SQLite's.
"""

from __future__ import annotations

import contextlib
import re
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import psycopg
import psycopg_pool
from psycopg.rows import dict_row

from rblwatch.cluster import SHARDS, Fence, Instance, View
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
from rblwatch.store import postgres_cluster as cluster
from rblwatch.store import postgres_schema as q
from rblwatch.store.postgres_schema import (
    ADD_BUDGET,
    ADD_SEEN,
    DELETE_PAIRS,
    INSERT_EVENT,
    INSERT_OUTBOX,
    MARKER_TABLE,
    MIGRATION_LOCK,
    MIGRATIONS,
    NEXT_EVENT_IDS,
    SCHEMA_VERSION,
    UPSERT_CYCLE_STATUS,
    UPSERT_HEALTH,
    UPSERT_PAIR,
    UPSERT_RESOLVER,
)
from rblwatch.store.rows import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
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

POOL_MAX = 4
CONNECT_TIMEOUT_S = 10  # unless the URL sets connect_timeout: an unreachable host must not hang
POOL_WAIT_S = 5.0  # a call waits this long for a connection while the database is away
# a session idle inside a transaction this long is ended by the server, its transaction
# rolled back: a process paused mid-commit (SIGSTOP) must not hold shard rows locked
IDLE_IN_TRANSACTION_MS = 20_000


def password_of(url: str) -> str | None:
    """The password a conninfo URL carries (in its user part or as `?password=`), if any."""
    try:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        try:
            password = urllib.parse.urlsplit(url).password
        except ValueError:
            return None
    return str(password) if password else None


_USERINFO_PASSWORD = re.compile(r"(://[^/@:]*:)[^/]*@")
_PARAM_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def display(url: str) -> str:
    """A conninfo URL fit to show: its password (in the user part or a parameter) as ***."""
    url = _USERINFO_PASSWORD.sub(r"\1***@", url, count=1)
    return _PARAM_PASSWORD.sub(r"\1***", url)


def mask(text: str, password: str | None) -> str:
    """`text` with every form of `password` in it (as typed, percent-encoded) replaced by ***."""
    if not password:
        return text
    for form in (urllib.parse.quote(password, safe=""), urllib.parse.quote(password), password):
        text = text.replace(form, "***")
    return text


_UNCHAINED = sorted(UNCHAINED_KINDS)  # event kinds never a chain head


class PostgresStore(Store):
    """The `Store` on a PostgreSQL database. Safe to call from any thread (a pool).

    Longer than the house's ~250 lines on purpose, as `SqliteStore`: one short method per
    `Store` operation, each one transaction, so the transaction rules read in one class.
    """

    def __init__(self, url: str) -> None:
        self._password = password_of(url)
        self._label = mask(display(url), self._password)
        kwargs: dict[str, Any] = {}
        if "connect_timeout" not in url:
            kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
        self._url, self._kwargs = url, kwargs
        self._listeners: list[cluster.Listener] = []  # closed with the store
        self._migrate(url, kwargs)
        try:
            self._pool: psycopg_pool.ConnectionPool | None = psycopg_pool.ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_MAX,
                kwargs=kwargs,
                configure=_configure,
                timeout=POOL_WAIT_S,
                open=True,
                check=psycopg_pool.ConnectionPool.check_connection,
                name="rblwatch-store",
            )
        except psycopg.Error as exc:
            raise self._error(f"cannot connect: {self._one_line(exc)}") from exc

    # -- opening ------------------------------------------------------------------------------

    def _one_line(self, exc: BaseException) -> str:
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        text = primary or str(exc)
        return mask(" ".join(text.split()), self._password) or type(exc).__name__

    def _error(self, message: str) -> StoreError:
        return StoreError(f"store {self._label}: {message}")

    def _migrate(self, url: str, kwargs: dict[str, Any]) -> None:
        try:
            conn = psycopg.connect(url, autocommit=True, **kwargs)
        except psycopg.Error as exc:
            raise self._error(f"cannot connect: {self._one_line(exc)}") from exc
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                self._check_ours(conn)
                while self._migrate_one(conn):
                    pass
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        except psycopg.Error as exc:
            raise self._error(f"migration failed: {self._one_line(exc)}") from exc
        finally:
            conn.close()

    def _check_ours(self, conn: psycopg.Connection[Any]) -> None:
        """Refuse a database with tables of somebody else's, or of a newer rblwatch."""
        version = _schema_version(conn)
        if version is None:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            ).fetchone()
            if row is not None and row[0]:
                raise self._error("not an rblwatch database (use another database)")
        elif version > SCHEMA_VERSION:
            raise self._error(
                f"schema version {version} is newer than this rblwatch supports"
                f" ({SCHEMA_VERSION}); upgrade rblwatch or use another database"
            )

    @staticmethod
    def _migrate_one(conn: psycopg.Connection[Any]) -> bool:
        """Apply the next migration in its own transaction; False when there is none."""
        with conn.transaction():
            version = _schema_version(conn) or 0
            if version >= SCHEMA_VERSION:
                return False
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"UPDATE {MARKER_TABLE} SET version = %s", (version + 1,))
        return True

    # -- the pool -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection; a database error becomes a StoreError."""
        pool = self._pool
        if pool is None:
            raise self._error("the store is closed")
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "events_chain":
                raise Fenced(f"store {self._label}: transition stored already") from exc
            raise self._error(self._one_line(exc)) from exc
        except psycopg_pool.PoolTimeout as exc:  # before psycopg.Error: it is one
            raise self._error(f"no connection to the database: {self._one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise self._error(self._one_line(exc)) from exc

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, tuple(params)).fetchall()

    # -- pairs and cycles -----------------------------------------------------------------------

    def pairs(self, list_name: str | None = None) -> list[PairState]:
        sql = f"SELECT {PAIR_COLUMNS} FROM pairs"
        params: tuple[str, ...] = ()
        if list_name is not None:
            sql += " WHERE list = %s"
            params = (list_name,)
        # COLLATE "C": the byte order SQLite sorts by, whatever the database's locale
        rows = self._rows(sql + ' ORDER BY list COLLATE "C", target COLLATE "C"', params)
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
        sql = f"SELECT {PAIR_COLUMNS} FROM pairs WHERE status = %s AND list = ANY(%s)"
        params: list[object] = [PairStatus.LISTED.value, names]
        if after is not None:
            # COLLATE "C": the byte order SQLite and Python sort by, whatever the locale
            sql += ' AND (target COLLATE "C" > %s OR (target = %s AND list COLLATE "C" > %s))'
            params += [after[0], after[0], after[1]]
        sql += ' ORDER BY target COLLATE "C", list COLLATE "C"'
        if limit is not None:
            sql += " LIMIT %s"
            params.append(limit)
        return [pair_of(row) for row in self._rows(sql, params)]

    def pairs_of(self, list_name: str, targets: Collection[str]) -> list[PairState]:
        wanted = sorted(set(targets))
        if not wanted:
            return []
        sql = f"SELECT {PAIR_COLUMNS} FROM pairs WHERE list = %s AND target = ANY(%s)"
        return [pair_of(row) for row in self._rows(sql, (list_name, wanted))]

    def pair_summaries(self) -> list[PairSummary]:
        status = {s.value: s for s in PairStatus}
        with self._conn() as conn:
            rows = conn.execute("SELECT target, list, group_name, status, since FROM pairs")
            return [PairSummary(t, lst, g, status[st], since) for t, lst, g, st, since in rows]

    def pair_errors(
        self, list_name: str | None = None, target: str | None = None
    ) -> list[PairError]:
        where = [c for c, v in (("list = %s", list_name), ("target = %s", target)) if v is not None]
        params = [v for v in (list_name, target) if v is not None]
        sql = f"SELECT {PAIR_ERROR_COLUMNS} FROM pair_errors"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._rows(sql + ' ORDER BY list COLLATE "C", target COLLATE "C"', params)
        return [pair_error_of(row) for row in rows]

    def seen(self, list_name: str) -> set[str]:
        with self._conn() as conn:
            rows = conn.execute("SELECT target FROM seen WHERE list = %s", (list_name,))
            return {row[0] for row in rows}

    def commit(
        self,
        commit: CycleCommit,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> list[Event]:
        name = commit.list
        if commit.status is not None and commit.status.name != name:
            raise ValueError(f"commit of {name!r} carries the status of {commit.status.name!r}")
        with self._conn() as conn, conn.cursor() as cur:
            shards = self._check_fence(cur, name, fence) if fence is not None else None
            carried, ended = working.carried(_Db(cur), commit.events)
            if commit.deletes:  # their acks go with them (ON DELETE CASCADE)
                cur.execute(DELETE_PAIRS, (name, list(commit.deletes)))
            if commit.upserts:
                cur.executemany(UPSERT_PAIR, [pair_row(p) for p in commit.upserts])
            if commit.seen:
                cur.execute(ADD_SEEN, (name, list(commit.seen)))
            if commit.cleared:
                cur.execute(q.DELETE_PAIR_ERRORS, (name, list(commit.cleared)))
            if commit.errors:
                cur.executemany(q.UPSERT_PAIR_ERROR, [pair_error_row(e) for e in commit.errors])
            working.end(_Db(cur), ended)
            events = _insert_events(cur, carried, receivers_for)
            if commit.status is not None:
                cur.execute(UPSERT_CYCLE_STATUS, cycle_row(commit.status))
            if commit.budget_day is not None and commit.budget_queries:
                cur.execute(ADD_BUDGET, (name, commit.budget_day, commit.budget_queries))
            if shards:
                success = commit.status.last_cycle_success if commit.status is not None else None
                cur.execute(q.SHARDS_DONE, (shards[0], success, name, shards[1]))
            if events and receivers_for is not None:
                cur.execute(q.NOTIFY_OUTBOX)  # delivered at COMMIT: senders wake on it
        return events

    def _check_fence(
        self, cur: psycopg.Cursor[Any], name: str, fence: Fence
    ) -> tuple[float, list[int]]:
        return cluster.check_fence(cur, f"store {self._label}", name, fence)

    def chain_heads(self, list_name: str, targets: Collection[str]) -> dict[str, int]:
        if not targets:
            return {}
        with self._conn() as conn:
            rows = conn.execute(q.CHAIN_HEADS, (list_name, list(targets), _UNCHAINED))
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
        with self._conn() as conn, conn.cursor() as cur:
            if fence is not None and fence.leader:
                cluster.check_leader(cur, f"store {self._label}", fence.owner, cluster.now_of(cur))
            row = cur.execute(
                "SELECT health, health_since FROM list_status WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            event = crossing(event, Health(row[0]) if row is not None else None)
            if event is not None and event.kind is EventKind.LIST_RECOVERED and event.since is None:
                since = float(row[1]) if row is not None and row[1] is not None else None
                event = replace(event, since=since)
            cur.execute(UPSERT_HEALTH, (name, health.value, detail, at))
            written = _insert_events(cur, [event] if event is not None else [], receivers_for)
            if written and receivers_for is not None:
                cur.execute(q.NOTIFY_OUTBOX)
        return written[0] if written else None

    def resolver_state(self) -> ResolverState:
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            sql = f"SELECT {RESOLVER_COLUMNS} FROM resolver_state WHERE id = 1"
            return resolver_of(cur.execute(sql).fetchone())

    def record_resolver(
        self,
        state: ResolverState,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        with self._conn() as conn, conn.cursor() as cur:
            if fence is not None and fence.leader:
                cluster.check_leader(cur, f"store {self._label}", fence.owner, cluster.now_of(cur))
            # the row exists from here on, so FOR UPDATE orders two deciders' transactions
            cur.execute(
                "INSERT INTO resolver_state (id, state) VALUES (1, 'ok') ON CONFLICT DO NOTHING"
            )
            sql = f"SELECT {RESOLVER_COLUMNS} FROM resolver_state WHERE id = 1 FOR UPDATE"
            row = cur.execute(sql).fetchone()
            assert row is not None  # inserted just above
            stored = resolver_of(dict(zip(("state", "since", "detail"), row, strict=True)))
            state, event = resolver_crossing(state, event, stored)
            cur.execute(UPSERT_RESOLVER, (state.state, state.since, state.detail))
            written = _insert_events(cur, [event] if event is not None else [], receivers_for)
            if written and receivers_for is not None:
                cur.execute(q.NOTIFY_OUTBOX)
        return written[0] if written else None

    # -- reading ------------------------------------------------------------------------------

    def list_statuses(self) -> list[ListStatus]:
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            sql = f'SELECT {STATUS_COLUMNS} FROM list_status ORDER BY name COLLATE "C"'
            rows = cur.execute(sql).fetchall()
            success = {row["list"]: row["success"] for row in cur.execute(q.LIST_SUCCESS)}
        # a list whose shards several instances cycle: its row is the last committer's part,
        # so its last success is its oldest shard's (one instance's stuck half shows)
        return [
            replace(s, last_cycle_success=success[s.name]) if s.name in success else s
            for s in map(status_of, rows)
        ]

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
        for clause, value in (
            ("at >= %s", since),
            ("target = %s", target),
            ("list = %s", list_name),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT id, {EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += (
            " ORDER BY at DESC, id DESC LIMIT %s" if newest_first else " ORDER BY at, id LIMIT %s"
        )
        params.append(limit)
        return [event_of(row) for row in self._rows(sql, params)]

    def reminders_sent(self) -> list[tuple[str, str, str, float]]:
        sql = (
            "SELECT target, list, detail, max(at) AS at FROM events WHERE kind = %s"
            " GROUP BY target, list, detail"
        )
        rows = self._rows(sql, (EventKind.REMINDER.value,))
        return [(r["target"], r["list"], r["detail"], float(r["at"])) for r in rows]

    def listed_count(self) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT count(*) FROM pairs WHERE status = %s", (PairStatus.LISTED.value,)
            ).fetchone()
        return int(row[0]) if row is not None else 0

    # -- working a listing (`store.acks`) ---------------------------------------------------

    def set_ack(self, ack: Ack) -> Event:
        with self._conn() as conn, conn.cursor() as cur:
            return working.set_ack(_Db(cur), ack)

    def clear_ack(self, target: str, list_name: str, by: str, at: float) -> Event | None:
        with self._conn() as conn, conn.cursor() as cur:
            return working.clear_ack(_Db(cur), target, list_name, by, at)

    def request_delisting(
        self, target: str, list_name: str, by: str, note: str, at: float
    ) -> Event:
        with self._conn() as conn, conn.cursor() as cur:
            return working.request_delisting(_Db(cur), target, list_name, by, note, at)

    def acks(self, list_name: str | None = None, target: str | None = None) -> list[Ack]:
        with self._conn() as conn, conn.cursor() as cur:
            return working.read_acks(_Db(cur), list_name, target)

    def add_note(self, note: Note) -> Note:
        with self._conn() as conn, conn.cursor() as cur:
            return working.add_note(_Db(cur), note)

    def notes(self, target: str) -> list[Note]:
        with self._conn() as conn, conn.cursor() as cur:
            return working.read_notes(_Db(cur), target)

    # -- budgets ------------------------------------------------------------------------------

    def budget_used(self, list_name: str, day: str) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT queries FROM budget WHERE list = %s AND day = %s", (list_name, day)
            ).fetchone()
        return int(row[0]) if row is not None else 0

    def reserve_budget(self, list_name: str, day: str, queries: int, limit: int) -> bool:
        if queries > limit:
            return False
        with self._conn() as conn:
            row = conn.execute(q.RESERVE_BUDGET, (list_name, day, queries, limit)).fetchone()
        return row is not None

    # -- the alert outbox -----------------------------------------------------------------------

    def due_deliveries(self, receiver: str, now: float, limit: int = 100) -> list[Delivery]:
        sql = f"""
            SELECT {DELIVERY_COLUMNS}
            FROM outbox AS o JOIN events AS e ON e.id = o.event_id
            WHERE o.receiver = %s AND o.next_attempt <= %s
            ORDER BY e.id, o.id
            LIMIT %s
        """
        return [delivery_of(row) for row in self._rows(sql, (receiver, now, limit))]

    def claim_deliveries(
        self,
        receiver: str,
        owner: str,
        now: float,
        hold: float,
        limit: int = 1,
        group_wait: float = 0.0,
    ) -> list[Delivery]:
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            # the head as `claim_delivery` takes it: its lock makes this sender the only one
            # choosing a batch of the receiver until the commit
            row = cur.execute(q.OUTBOX_HEAD, (receiver,)).fetchone()
            if row is None:
                return []
            head = delivery_of(row)
            if not batch_of([head], owner, now, 1, group_wait):
                return [head]
            behind = self._behind(cur, head, limit - 1)
            batch = batch_of([head, *behind], owner, now, limit, group_wait)
            cur.execute(
                "UPDATE outbox SET held_by = %s, held_until = %s WHERE id = ANY(%s)",
                (owner, now + hold, [d.id for d in batch]),
            )
        return [replace(d, held_by=owner, held_until=now + hold) for d in batch]

    @staticmethod
    def _behind(cur: psycopg.Cursor[dict[str, Any]], head: Delivery, n: int) -> list[Delivery]:
        """Up to `n` rows right behind `head`, each locked; a row locked elsewhere (a clean
        leave freeing its holds, say) ends them: SKIP LOCKED, so two transactions locking
        rows in different orders never wait for each other."""
        if n <= 0:
            return []
        after = (head.event.id, head.id, n)
        locked = {r["id"] for r in cur.execute(q.OUTBOX_BEHIND_LOCK, (head.receiver, *after))}
        rows = [delivery_of(r) for r in cur.execute(q.OUTBOX_BEHIND, (head.receiver, *after))]
        out = []
        for d in rows:
            if d.id not in locked:
                break
            out.append(d)
        return out

    def deliveries_done(self, delivery_ids: Collection[int]) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (list(delivery_ids),))

    def deliveries_retry(
        self, delivery_ids: Collection[int], next_attempt: float, error: str
    ) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = %s, last_error = %s,"
                " held_by = NULL, held_until = NULL WHERE id = ANY(%s)",
                (next_attempt, error, list(delivery_ids)),
            )

    def delivery_done(self, delivery_id: int) -> None:
        self.deliveries_done((delivery_id,))

    def delivery_retry(self, delivery_id: int, next_attempt: float, error: str) -> None:
        self.deliveries_retry((delivery_id,), next_attempt, error)

    def outbox_counts(self) -> dict[str, int]:
        with self._conn() as conn:
            rows = conn.execute("SELECT receiver, count(*) FROM outbox GROUP BY receiver")
            return {row[0]: int(row[1]) for row in rows}

    # -- several instances --------------------------------------------------------------------

    def tick(self, me: Instance, lists: Sequence[str], lease: float, shards: int = SHARDS) -> View:
        with self._conn() as conn, conn.cursor() as cur:
            return cluster.tick(cur, me, list(lists), lease, shards)

    def instances(self) -> list[Instance]:
        with self._conn() as conn, conn.cursor() as cur:
            return cluster.instances(cur)

    def leave(self, owner: str) -> None:
        with self._conn() as conn, conn.cursor() as cur:
            cluster.leave(cur, owner)

    def outbox_waiter(self) -> Callable[[float], bool] | None:
        listener = cluster.Listener(self._url, self._kwargs)
        self._listeners.append(listener)
        return listener.wait

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- the raw tables, for `store.transfer` only -----------------------------------------------

    @contextlib.contextmanager
    def _tables(self, *, write: bool) -> Iterator[transfer.Tables]:
        """One transaction on a pooled connection (`_conn`); reading, a read-only snapshot."""

        def error(exc: Exception) -> StoreError:
            return self._error(self._one_line(exc))

        with self._conn() as conn:
            if not write:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield transfer.PostgresTables(conn, error)


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled connection: see IDLE_IN_TRANSACTION_MS."""
    conn.autocommit = True
    conn.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
    conn.autocommit = False


def _schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The applied migrations; None when the database has no marker table (not ours yet)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (MARKER_TABLE,)).fetchone()
    if row is None or not row[0]:
        return None
    version = conn.execute(f"SELECT version FROM {MARKER_TABLE}").fetchone()
    return int(version[0]) if version is not None else 0


class _Db:
    """`store.acks.Db` on a cursor, inside the caller's transaction."""

    for_update = " FOR UPDATE"

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self.cur = cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # `store.acks` writes SQLite's placeholders, and no other question mark
        return [tuple(row) for row in self.cur.execute(sql.replace("?", "%s"), tuple(params))]

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cur.execute(sql.replace("?", "%s"), tuple(params))

    def insert_events(self, events: list[Event]) -> list[Event]:
        return _insert_events(self.cur, events, None)


def _insert_events(
    cur: psycopg.Cursor[Any], events: list[Event], receivers_for: ReceiversFor | None
) -> list[Event]:
    """Insert events and their outbox rows: ids from the sequence in one query, then two
    pipelined batches, whatever the number of events."""
    if not events:
        return []
    rows = cur.execute(NEXT_EVENT_IDS, (len(events),)).fetchall()
    ids = sorted(int(row[0]) for row in rows)
    written = [replace(event, id=event_id) for event_id, event in zip(ids, events, strict=True)]
    deliveries: list[tuple[int, str, float, float]] = []
    for event in written:
        assert event.id is not None
        receivers = receivers_for(event) if receivers_for is not None else ()
        deliveries.extend((event.id, name, event.at, event.at) for name in receivers)
    cur.executemany(INSERT_EVENT, [(e.id, *event_row(e)) for e in written])
    if deliveries:
        cur.executemany(INSERT_OUTBOX, deliveries)
    return written
