"""Copying one store's contents into another: `rblwatch store migrate` (moving up from SQLite).

What moves: the data tables `TABLES`, that is the state (pairs, seen, pair_errors), the
history (events), the list aggregates (list_status), the query budgets (budget), the pending
outbox and the operators' work on listings (acks, notes). Nothing else: the schema markers
belong to each store's own migrations, and coordination tables (instances, shards, leases) and
the outbox rows' holds (`RUNTIME_COLUMNS`) are the runtime state of one deployment, not data.

Rules:

- Both stores are opened with `open_store`, so both are migrated to this rblwatch's schema
  first and a database that is not rblwatch's is refused as always.
- Ids are kept: receivers de-duplicate alerts by webhook-id, which is made from the event id,
  and an outbox row points at its event by id. Afterwards each id sequence of the target
  (events, outbox) is above the largest id copied, so a new event never takes an old one's id.
- Columns by name: of each table, the columns both sides have (read from each database's
  catalogue), so the copy goes on working as migrations add columns; a column only the target
  has gets its default.
- The target must be empty (no data table holds a row), checked inside the copy's transaction.
- The whole copy into the target is ONE transaction: a failure, or a kill, half way leaves the
  target empty, and running the command again starts over.
- The source is read in one read transaction (a consistent snapshot: what a running daemon
  writes after it began is not copied) in batches of `BATCH_ROWS` rows, so memory stays
  bounded however long the history is.

How a store lends its tables: `Store._tables`, the one method of the `Store` interface for
this, gives a `Tables` inside one transaction of its own connection. The two dialects'
`Tables` are below, so that all the SQL of copying reads in one module; they take the
connection the store hands them, and psycopg is not loaded unless a store uses it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from rblwatch.store import StoreError, check_url, open_store

if TYPE_CHECKING:
    import psycopg

# Parents before children: outbox rows point at events.
TABLES = (
    "pairs",
    "seen",
    "pair_errors",
    "events",
    "list_status",
    "budget",
    "outbox",
    "acks",
    "notes",
)
# Tables whose `id` comes from a sequence: copied in id order, the sequence raised afterwards.
ID_TABLES = frozenset({"events", "outbox", "notes"})
BATCH_ROWS = 5000
# Columns that are the runtime state of one deployment, like the coordination tables: an
# outbox row's hold is a sender's of the old deployment, which must not delay the new one's.
RUNTIME_COLUMNS = {"outbox": frozenset({"held_by", "held_until"})}

Row = tuple[Any, ...]
Batches = Generator[list[Row], None, None]
ToStoreError = Callable[[Exception], StoreError]


class Tables(Protocol):
    """A store's tables, row by row, inside one transaction of the store's (`Store._tables`)."""

    def columns(self, table: str) -> list[str]:
        """The table's writable columns, from the database's catalogue, in table order."""

    def has_rows(self, table: str) -> bool: ...

    def read(self, table: str, columns: Sequence[str], size: int) -> Batches:
        """The rows (of those columns) in batches of at most `size`; by id in `ID_TABLES`."""

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None: ...

    def lock(self, tables: Sequence[str]) -> None:
        """Keep every other writer out of these tables until the transaction ends."""

    def ids_above(self, table: str, largest: int) -> None:
        """Make the table's id sequence hand out ids above `largest` from now on."""


@dataclass(frozen=True, slots=True)
class Copied:
    """What a migration copied: rows per table (in `TABLES` order) and how long it took."""

    rows: dict[str, int]
    seconds: float


def migrate(from_url: str, to_url: str, *, batch_rows: int = BATCH_ROWS) -> Copied:
    """Copy the source store's data tables into the empty target store (see the module).

    Raises StoreError, one line naming the side at fault (passwords masked), for a bad URL, a
    missing source file, the same store on both sides, a store that cannot be opened, a target
    that is not empty or a copy that failed; the target is then as it was.
    """
    start = time.monotonic()
    _check_urls(from_url, to_url)
    with contextlib.ExitStack() as stack:
        source = open_store(from_url)
        stack.callback(source.close)
        target = open_store(to_url)
        stack.callback(target.close)
        with source._tables(write=False) as src, target._tables(write=True) as dst:
            dst.lock(TABLES)
            held = [table for table in TABLES if dst.has_rows(table)]
            if held:
                raise StoreError(
                    f"store migrate: the target {shown(to_url)} is not empty (it has rows in"
                    f" {', '.join(held)}); migrate into a new, empty database"
                )
            copied = {table: _copy_table(src, dst, table, batch_rows) for table in TABLES}
            # last: PostgreSQL's setval is not undone by a rollback, so only a copy that got
            # this far moves the target's sequences (and only ever upwards)
            for table, (_, largest) in copied.items():
                if largest:
                    dst.ids_above(table, largest)
    return Copied({table: count for table, (count, _) in copied.items()}, time.monotonic() - start)


def _check_urls(from_url: str, to_url: str) -> None:
    for flag, url in (("--from", from_url), ("--to", to_url)):
        try:
            check_url(url)
        except StoreError as exc:
            problem = str(exc).removeprefix("store.url: ")
            raise StoreError(f"{flag} {shown(url)}: {problem}") from None
    source = _sqlite_path(from_url)
    # open_store would create a missing SQLite file: an empty source is a typo, not a store
    if source is not None and not os.path.exists(source):
        raise StoreError(f"--from {from_url}: {source} does not exist")
    if _same_place(from_url, to_url):
        raise StoreError(f"store migrate: --from and --to are the same store ({shown(to_url)})")


def _sqlite_path(url: str) -> str | None:
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None


def _same_place(a: str, b: str) -> bool:
    """Whether two URLs surely name one store. A database reached by two spellings of its URL
    is not caught here, but by the target check: it holds the source's rows, so it is not
    empty (and an empty store copied onto itself changes nothing)."""
    path_a, path_b = _sqlite_path(a), _sqlite_path(b)
    if path_a is None or path_b is None:
        return a == b
    if os.path.exists(path_a) and os.path.exists(path_b):
        return os.path.samefile(path_a, path_b)
    return os.path.realpath(path_a) == os.path.realpath(path_b)


def shown(url: str) -> str:
    """A store URL fit to show: a PostgreSQL URL with its password masked."""
    if _sqlite_path(url) is not None:
        return url
    from rblwatch.store.postgres import display, mask, password_of

    return mask(display(url), password_of(url))


def _copy_table(src: Tables, dst: Tables, table: str, batch_rows: int) -> tuple[int, int]:
    """Copy one table; (rows copied, the largest id among them or 0)."""
    theirs = set(dst.columns(table)) - RUNTIME_COLUMNS.get(table, frozenset())
    columns = [column for column in src.columns(table) if column in theirs]
    id_at = columns.index("id") if table in ID_TABLES and "id" in columns else None
    count, largest = 0, 0
    with contextlib.closing(src.read(table, columns, batch_rows)) as batches:
        for batch in batches:
            dst.write(table, columns, batch)
            count += len(batch)
            if id_at is not None:
                largest = max(largest, int(batch[-1][id_at]))  # read in id order
    return count, largest


def _quoted(name: str) -> str:
    """An identifier of the catalogue, quoted the same way in both dialects."""
    return '"' + name.replace('"', '""') + '"'


def _select(table: str, columns: Sequence[str]) -> str:
    order = " ORDER BY id" if table in ID_TABLES else ""
    return f"SELECT {', '.join(map(_quoted, columns))} FROM {_quoted(table)}{order}"


class SqliteTables:
    """`Tables` on a SQLite connection inside a transaction (`SqliteStore._tables`)."""

    def __init__(self, conn: sqlite3.Connection, error: ToStoreError) -> None:
        self._conn = conn
        self._error = error

    def columns(self, table: str) -> list[str]:
        # table_info leaves out generated columns, which cannot be written
        return [str(row[1]) for row in self._conn.execute(f"PRAGMA table_info({_quoted(table)})")]

    def has_rows(self, table: str) -> bool:
        query = f"SELECT 1 FROM {_quoted(table)} LIMIT 1"
        return self._conn.execute(query).fetchone() is not None

    def read(self, table: str, columns: Sequence[str], size: int) -> Batches:
        cursor = self._conn.cursor()
        cursor.row_factory = None
        try:
            cursor.execute(_select(table, columns))
            while batch := cursor.fetchmany(size):
                yield batch
        except sqlite3.Error as exc:  # here, not in the target's transaction around the loop
            raise self._error(exc) from exc
        finally:
            cursor.close()

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        marks = ", ".join("?" * len(columns))
        names = ", ".join(map(_quoted, columns))
        self._conn.executemany(f"INSERT INTO {_quoted(table)} ({names}) VALUES ({marks})", rows)

    def lock(self, tables: Sequence[str]) -> None:
        pass  # the store's write transaction is BEGIN IMMEDIATE: the whole file is ours

    def ids_above(self, table: str, largest: int) -> None:
        # AUTOINCREMENT already keeps sqlite_sequence above every id inserted; said anyway, so
        # the rule does not rest on that
        self._conn.execute(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?",
            (largest, table, largest),
        )
        self._conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
            (table, largest, table),
        )


class PostgresTables:
    """`Tables` on a psycopg connection inside a transaction (`PostgresStore._tables`)."""

    def __init__(self, conn: psycopg.Connection[Any], error: ToStoreError) -> None:
        self._conn = conn
        self._error = error

    def columns(self, table: str) -> list[str]:
        rows = self._conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s"
            " AND is_generated = 'NEVER' ORDER BY ordinal_position",
            (table,),
        )
        return [str(row[0]) for row in rows]

    def has_rows(self, table: str) -> bool:
        query = f"SELECT 1 FROM {_quoted(table)} LIMIT 1"
        return self._conn.execute(query).fetchone() is not None

    def read(self, table: str, columns: Sequence[str], size: int) -> Batches:
        import psycopg

        try:
            # a server-side cursor: the rows come `size` at a time, never the whole table
            with self._conn.cursor(name=f"rblwatch_copy_{table}") as cursor:
                cursor.execute(_select(table, columns))
                while batch := cursor.fetchmany(size):
                    yield batch
        except psycopg.Error as exc:  # here, not in the target's transaction around the loop
            raise self._error(exc) from exc

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        names = ", ".join(map(_quoted, columns))
        # COPY writes identity columns as given (as OVERRIDING SYSTEM VALUE does): ids are kept
        with (
            self._conn.cursor() as cursor,
            cursor.copy(f"COPY {_quoted(table)} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def lock(self, tables: Sequence[str]) -> None:
        # EXCLUSIVE: reads go on, but a daemon started on the target meanwhile waits for the
        # copy to commit (and then finds it full) instead of writing into it half way
        names = ", ".join(map(_quoted, tables))
        self._conn.execute(f"LOCK TABLE {names} IN EXCLUSIVE MODE")

    def ids_above(self, table: str, largest: int) -> None:
        found = self._conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        if found is None or found[0] is None:
            return
        sequence = str(found[0])  # from the catalogue, already quoted as need be
        state = self._conn.execute(f"SELECT last_value, is_called FROM {sequence}").fetchone()
        assert state is not None  # a sequence has exactly one row
        following = int(state[0]) + 1 if state[1] else int(state[0])
        # never lowered: a new database's ids start at its creation time, above older ones'
        if following <= largest:
            self._conn.execute("SELECT setval(%s, %s)", (sequence, largest))
