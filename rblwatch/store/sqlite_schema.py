"""The SQLite store's schema: its migrations and its SQL (rows to records: `store.rows`).

Apart from `sqlite.py` so that the store's behaviour (transactions, locking, the `Store`
methods) reads on its own; the tables are described in that module's docstring. Append a
migration, never edit a released one.
"""

from __future__ import annotations

from rblwatch.store import rows

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

# Several senders must not send one row at once, and one transition must not be stored twice
# (see `Store.commit` and `Store.claim_delivery`): the same columns as PostgreSQL's, although
# one process alone uses a SQLite file.
_V5_CHAIN_AND_HOLDS = (
    "ALTER TABLE events ADD COLUMN after_id INTEGER",
    """CREATE UNIQUE INDEX events_chain ON events (list, target, after_id)
        WHERE after_id IS NOT NULL AND target IS NOT NULL""",
    "ALTER TABLE outbox ADD COLUMN held_by TEXT",
    "ALTER TABLE outbox ADD COLUMN held_until REAL",
)

# Each pair's last outcome (issue 11): the pairs whose last lookup ended `error`, with the
# reason and when, and when the pair last answered. Like `pairs`, a pair that answered at its
# list's last cycle has no row; target '' is the row of a whole list (`commitplan`).
_V6_PAIR_ERRORS = (
    """CREATE TABLE pair_errors (
        list TEXT NOT NULL,
        target TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL,
        last_good_at REAL,
        PRIMARY KEY (list, target)
    ) WITHOUT ROWID""",
)

# Issue 11's truthful signals: whether the resolver answers at all (one row, written by the
# leader's probes like list health), and why a list's last cycle sent no lookups.
_V7_RESOLVER_AND_SKIPS = (
    """CREATE TABLE resolver_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        state TEXT NOT NULL,
        since REAL,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "ALTER TABLE list_status ADD COLUMN last_cycle_skipped TEXT",
)

# Working a listing (`store.acks`): an operator's acknowledgement per listed pair (gone when
# the listing ends), free-text notes per target, and on every event the pair's ack as it was
# when the event was written (JSON), so an alert sent later still says who is on it.
_V8_ACKS_AND_NOTES = (
    """CREATE TABLE acks (
        list TEXT NOT NULL,
        target TEXT NOT NULL,
        by_user TEXT NOT NULL,
        at REAL NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        until REAL,
        delisting_requested_at REAL,
        delisting_note TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (list, target)
    ) WITHOUT ROWID""",
    """CREATE TABLE notes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        by_user TEXT NOT NULL,
        at REAL NOT NULL,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX notes_target ON notes (target, at)",
    "ALTER TABLE events ADD COLUMN ack TEXT",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1_STATE_AND_HISTORY,
    _V2_OUTBOX,
    _V3_EVENT_IDS_FROM_CREATION,
    _V4_EVENT_HOSTNAME,
    _V5_CHAIN_AND_HOLDS,
    _V6_PAIR_ERRORS,
    _V7_RESOLVER_AND_SKIPS,
    _V8_ACKS_AND_NOTES,
)
SCHEMA_VERSION = len(MIGRATIONS)

# the columns and the row mapping are the same in both SQL stores: `store.rows`

UPSERT_CYCLE_STATUS = rows.UPSERT_CYCLE_STATUS
UPSERT_HEALTH = rows.UPSERT_HEALTH
UPSERT_RESOLVER = """
    INSERT INTO resolver_state (id, state, since, detail) VALUES (1, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        state = excluded.state, since = excluded.since, detail = excluded.detail
"""

ADD_BUDGET = """
    INSERT INTO budget (list, day, queries) VALUES (?, ?, ?)
    ON CONFLICT (list, day) DO UPDATE SET queries = queries + excluded.queries
"""
