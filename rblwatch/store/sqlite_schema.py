"""The SQLite store's schema: its migrations, its SQL, and rows to records and back.

Apart from `sqlite.py` so that the store's behaviour (transactions, locking, the `Store`
methods) reads on its own; the tables are described in that module's docstring. Append a
migration, never edit a released one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from rblwatch.model import (
    Event,
    EventKind,
    Health,
    ListStatus,
    OutcomeKind,
    PairState,
    PairStatus,
)

APPLICATION_ID = int.from_bytes(b"rblw", "big")
BUSY_TIMEOUT_S = 10.0

# Each migration takes the schema from version i to i + 1; append, never edit a released one.
_V1_STATE_AND_HISTORY = (
    f"PRAGMA application_id = {APPLICATION_ID}",
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "INSERT INTO schema_version (version) VALUES (0)",
    """CREATE TABLE pairs (
        list TEXT NOT NULL,
        target TEXT NOT NULL,
        group_name TEXT NOT NULL,
        status TEXT NOT NULL,
        since REAL NOT NULL,
        first_seen REAL NOT NULL,
        codes TEXT NOT NULL DEFAULT '[]',
        meanings TEXT NOT NULL DEFAULT '[]',
        txt TEXT,
        pending TEXT,
        pending_codes TEXT NOT NULL DEFAULT '[]',
        pending_meanings TEXT NOT NULL DEFAULT '[]',
        pending_count INTEGER NOT NULL DEFAULT 0,
        pending_since REAL,
        PRIMARY KEY (list, target)
    ) WITHOUT ROWID""",
    "CREATE INDEX pairs_status ON pairs (status)",
    """CREATE TABLE seen (
        list TEXT NOT NULL,
        target TEXT NOT NULL,
        PRIMARY KEY (list, target)
    ) WITHOUT ROWID""",
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        list TEXT NOT NULL,
        target TEXT,
        group_name TEXT,
        at REAL NOT NULL,
        codes TEXT NOT NULL DEFAULT '[]',
        meanings TEXT NOT NULL DEFAULT '[]',
        txt TEXT,
        initial INTEGER NOT NULL DEFAULT 0,
        previous_codes TEXT NOT NULL DEFAULT '[]',
        since REAL,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX events_at ON events (at)",
    "CREATE INDEX events_target ON events (target, at)",
    "CREATE INDEX events_list ON events (list, at)",
    """CREATE TABLE list_status (
        name TEXT PRIMARY KEY,
        health TEXT NOT NULL DEFAULT 'unknown',
        health_detail TEXT NOT NULL DEFAULT '',
        health_since REAL,
        last_cycle_start REAL,
        last_cycle_end REAL,
        last_cycle_success REAL,
        last_cycle_duration REAL,
        last_cycle_lookups INTEGER NOT NULL DEFAULT 0,
        last_cycle_errors INTEGER NOT NULL DEFAULT 0,
        targets INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE budget (
        list TEXT NOT NULL,
        day TEXT NOT NULL,
        queries INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (list, day)
    ) WITHOUT ROWID""",
)

_V2_OUTBOX = (
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        receiver TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        created REAL NOT NULL,
        last_error TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX outbox_due ON outbox (receiver, next_attempt)",
    "CREATE INDEX outbox_event ON outbox (event_id)",  # for the cascade from events
)

# Event ids are what receivers de-duplicate alerts by (webhook-id evt_<id>). A store that is
# deleted and created anew would hand out 1, 2, 3 … again, and a receiver that remembers them
# would drop new alerts as repeats. So a new store's ids start at its creation time in
# microseconds: a later store's ids are always above an earlier one's (and stay below 2**53,
# exact as JSON numbers). A store that already has events keeps its numbering.
_V3_EVENT_IDS_FROM_CREATION = (
    """INSERT INTO sqlite_sequence (name, seq)
        SELECT 'events', CAST(strftime('%s', 'now') AS INTEGER) * 1000000
        WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')""",
)

# the hostname (of `hostnames:`) an event's address was found through, so alerts can name it
_V4_EVENT_HOSTNAME = ("ALTER TABLE events ADD COLUMN hostname TEXT",)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1_STATE_AND_HISTORY,
    _V2_OUTBOX,
    _V3_EVENT_IDS_FROM_CREATION,
    _V4_EVENT_HOSTNAME,
)
SCHEMA_VERSION = len(MIGRATIONS)

PAIR_COLUMNS = (
    "list, target, group_name, status, since, first_seen, codes, meanings, txt, pending,"
    " pending_codes, pending_meanings, pending_count, pending_since"
)
EVENT_COLUMNS = (
    "kind, list, target, group_name, at, codes, meanings, txt, initial, previous_codes,"
    " since, detail, hostname"
)
EVENT_COLUMNS_OF_E = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
STATUS_COLUMNS = (
    "name, health, health_detail, health_since, last_cycle_start, last_cycle_end,"
    " last_cycle_success, last_cycle_duration, last_cycle_lookups, last_cycle_errors, targets"
)

# The cycle fields only: health belongs to record_health.
UPSERT_CYCLE_STATUS = """
    INSERT INTO list_status (name, last_cycle_start, last_cycle_end, last_cycle_success,
        last_cycle_duration, last_cycle_lookups, last_cycle_errors, targets)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        last_cycle_start = excluded.last_cycle_start,
        last_cycle_end = excluded.last_cycle_end,
        -- a cycle that sent no lookups (unhealthy list, spent budget) keeps the last success
        last_cycle_success = COALESCE(excluded.last_cycle_success, list_status.last_cycle_success),
        last_cycle_duration = excluded.last_cycle_duration,
        last_cycle_lookups = excluded.last_cycle_lookups,
        last_cycle_errors = excluded.last_cycle_errors,
        targets = excluded.targets
"""

# SET expressions see the row as it was, so the CASE compares against the old health.
UPSERT_HEALTH = """
    INSERT INTO list_status (name, health, health_detail, health_since) VALUES (?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        health_since = CASE
            WHEN list_status.health = excluded.health AND list_status.health_since IS NOT NULL
            THEN list_status.health_since ELSE excluded.health_since END,
        health = excluded.health,
        health_detail = excluded.health_detail
"""

ADD_BUDGET = """
    INSERT INTO budget (list, day, queries) VALUES (?, ?, ?)
    ON CONFLICT (list, day) DO UPDATE SET queries = queries + excluded.queries
"""


def codes_text(value: Sequence[str]) -> str:
    return json.dumps(list(value))


def codes_of_text(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def pair_row(p: PairState) -> tuple[Any, ...]:
    return (
        p.list,
        p.target,
        p.group,
        p.status.value,
        p.since,
        p.first_seen,
        codes_text(p.codes),
        codes_text(p.meanings),
        p.txt,
        p.pending.value if p.pending is not None else None,
        codes_text(p.pending_codes),
        codes_text(p.pending_meanings),
        p.pending_count,
        p.pending_since,
    )


def pair_of(row: sqlite3.Row) -> PairState:
    return PairState(
        target=row["target"],
        list=row["list"],
        group=row["group_name"],
        status=PairStatus(row["status"]),
        since=row["since"],
        first_seen=row["first_seen"],
        codes=codes_of_text(row["codes"]),
        meanings=codes_of_text(row["meanings"]),
        txt=row["txt"],
        pending=OutcomeKind(row["pending"]) if row["pending"] is not None else None,
        pending_codes=codes_of_text(row["pending_codes"]),
        pending_meanings=codes_of_text(row["pending_meanings"]),
        pending_count=row["pending_count"],
        pending_since=row["pending_since"],
    )


def event_row(e: Event) -> tuple[Any, ...]:
    return (
        e.kind.value,
        e.list,
        e.target,
        e.group,
        e.at,
        codes_text(e.codes),
        codes_text(e.meanings),
        e.txt,
        int(e.initial),
        codes_text(e.previous_codes),
        e.since,
        e.detail,
        e.hostname,
    )


def event_of(row: sqlite3.Row) -> Event:
    return Event(
        kind=EventKind(row["kind"]),
        list=row["list"],
        at=row["at"],
        target=row["target"],
        group=row["group_name"],
        codes=codes_of_text(row["codes"]),
        meanings=codes_of_text(row["meanings"]),
        txt=row["txt"],
        initial=bool(row["initial"]),
        previous_codes=codes_of_text(row["previous_codes"]),
        since=row["since"],
        detail=row["detail"],
        hostname=row["hostname"],
        id=row["id"],
    )


def status_of(row: sqlite3.Row) -> ListStatus:
    return ListStatus(
        name=row["name"],
        health=Health(row["health"]),
        health_detail=row["health_detail"],
        health_since=row["health_since"],
        last_cycle_start=row["last_cycle_start"],
        last_cycle_end=row["last_cycle_end"],
        last_cycle_success=row["last_cycle_success"],
        last_cycle_duration=row["last_cycle_duration"],
        last_cycle_lookups=row["last_cycle_lookups"],
        last_cycle_errors=row["last_cycle_errors"],
        targets=row["targets"],
    )
