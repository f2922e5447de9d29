"""The PostgreSQL store's schema: its migrations and its SQL (rows to records: `store.rows`).

Apart from `postgres.py` so that the store's behaviour (the pool, transactions, the `Store`
methods) reads on its own. The tables are those of the SQLite store (see `store.sqlite`) with
PostgreSQL types: times are `double precision` unix seconds, codes and meanings JSON arrays in
`text` (the same rows as SQLite's, so the two stores write the same values), event ids `bigint`
from the sequence `events_id_seq`. The table `rblwatch_schema` (one row: the applied version)
is the marker by which a database is recognised as ours before anything is written to it.
Append a migration, never edit a released one.
"""

from __future__ import annotations

from rblwatch.store import rows
from rblwatch.store.rows import EVENT_COLUMNS, EVENT_WIDTH, PAIR_COLUMNS, PAIR_ERROR_COLUMNS

MARKER_TABLE = "rblwatch_schema"
# pg_advisory_lock key under which migrations run: the bytes "rblwatch" as a signed bigint
MIGRATION_LOCK = int.from_bytes(b"rblwatch", "big", signed=True)

_V1_TABLES = (
    f"CREATE TABLE {MARKER_TABLE} (version integer NOT NULL)",
    f"INSERT INTO {MARKER_TABLE} (version) VALUES (0)",
    """CREATE TABLE pairs (
        list text NOT NULL,
        target text NOT NULL,
        group_name text NOT NULL,
        status text NOT NULL,
        since double precision NOT NULL,
        first_seen double precision NOT NULL,
        codes text NOT NULL DEFAULT '[]',
        meanings text NOT NULL DEFAULT '[]',
        txt text,
        pending text,
        pending_codes text NOT NULL DEFAULT '[]',
        pending_meanings text NOT NULL DEFAULT '[]',
        pending_count integer NOT NULL DEFAULT 0,
        pending_since double precision,
        PRIMARY KEY (list, target)
    )""",
    "CREATE INDEX pairs_status ON pairs (status)",
    """CREATE TABLE seen (
        list text NOT NULL,
        target text NOT NULL,
        PRIMARY KEY (list, target)
    )""",
    "CREATE SEQUENCE events_id_seq",
    """CREATE TABLE events (
        id bigint PRIMARY KEY DEFAULT nextval('events_id_seq'),
        kind text NOT NULL,
        list text NOT NULL,
        target text,
        group_name text,
        at double precision NOT NULL,
        codes text NOT NULL DEFAULT '[]',
        meanings text NOT NULL DEFAULT '[]',
        txt text,
        initial integer NOT NULL DEFAULT 0,
        previous_codes text NOT NULL DEFAULT '[]',
        since double precision,
        detail text NOT NULL DEFAULT '',
        hostname text
    )""",
    "ALTER SEQUENCE events_id_seq OWNED BY events.id",
    "CREATE INDEX events_at ON events (at)",
    "CREATE INDEX events_target ON events (target, at)",
    "CREATE INDEX events_list ON events (list, at)",
    """CREATE TABLE list_status (
        name text PRIMARY KEY,
        health text NOT NULL DEFAULT 'unknown',
        health_detail text NOT NULL DEFAULT '',
        health_since double precision,
        last_cycle_start double precision,
        last_cycle_end double precision,
        last_cycle_success double precision,
        last_cycle_duration double precision,
        last_cycle_lookups integer NOT NULL DEFAULT 0,
        last_cycle_errors integer NOT NULL DEFAULT 0,
        targets integer NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE budget (
        list text NOT NULL,
        day text NOT NULL,
        queries bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (list, day)
    )""",
    """CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        receiver text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt double precision NOT NULL,
        created double precision NOT NULL,
        last_error text NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX outbox_due ON outbox (receiver, next_attempt)",
    "CREATE INDEX outbox_event ON outbox (event_id)",
)

# As in SQLite (migration 3 there): receivers de-duplicate alerts by event id, so a new
# database's ids start at its creation time in microseconds, above those of any database
# created before it; a database that has already handed out ids keeps its numbering.
_V2_EVENT_IDS_FROM_CREATION = (
    """SELECT setval('events_id_seq', (extract(epoch FROM now()) * 1000000)::bigint)
        FROM events_id_seq WHERE NOT is_called""",
)

# Several instances: who is alive, who holds which shard of which list, who leads (see
# `rblwatch.cluster`); times in the database's clock. An event names the pair's previous
# event (`after_id`), and one event has one successor: a transition is never stored twice,
# even by two instances that both believed they held its shard. Outbox rows carry the
# sender that holds them for now.
_V3_SEVERAL_INSTANCES = (
    """CREATE TABLE instances (
        id text PRIMARY KEY,
        host text NOT NULL,
        pid integer NOT NULL,
        version text NOT NULL,
        started double precision NOT NULL,
        heartbeat double precision NOT NULL,
        lists text[] NOT NULL DEFAULT '{}'
    )""",
    """CREATE TABLE shards (
        list text NOT NULL,
        shard integer NOT NULL,
        owner text,
        epoch bigint NOT NULL DEFAULT 0,
        expires double precision NOT NULL DEFAULT 0,
        last_done double precision,
        last_success double precision,
        PRIMARY KEY (list, shard)
    )""",
    "CREATE INDEX shards_owner ON shards (owner)",
    """CREATE TABLE leases (
        name text PRIMARY KEY,
        owner text,
        epoch bigint NOT NULL DEFAULT 0,
        expires double precision NOT NULL DEFAULT 0
    )""",
    "ALTER TABLE events ADD COLUMN after_id bigint",
    """CREATE UNIQUE INDEX events_chain ON events (list, target, after_id)
        WHERE after_id IS NOT NULL AND target IS NOT NULL""",
    "ALTER TABLE outbox ADD COLUMN held_by text",
    "ALTER TABLE outbox ADD COLUMN held_until double precision",
)

# Each pair's last outcome (issue 11; SQLite's migration 6): the pairs whose last lookup
# ended `error`. A pair that answered at its list's last cycle has no row; target '' is the
# row of a whole list (`commitplan`).
_V4_PAIR_ERRORS = (
    """CREATE TABLE pair_errors (
        list text NOT NULL,
        target text NOT NULL,
        reason text NOT NULL,
        detail text NOT NULL DEFAULT '',
        at double precision NOT NULL,
        last_good_at double precision,
        PRIMARY KEY (list, target)
    )""",
)

# As in SQLite (see there): the resolver's state, and why a list's last cycle was skipped.
_V5_RESOLVER_AND_SKIPS = (
    """CREATE TABLE resolver_state (
        id integer PRIMARY KEY CHECK (id = 1),
        state text NOT NULL,
        since double precision,
        detail text NOT NULL DEFAULT ''
    )""",
    "ALTER TABLE list_status ADD COLUMN last_cycle_skipped text",
)

# Working a listing (`store.acks`), as SQLite's migration 8: acks per listed pair, notes per
# target, and each event's ack as it was when the event was written (JSON text). An ack goes
# with its pair's row by a foreign key (no statement of the commit's, whatever it deletes);
# SQLite's store, whose pair writes are INSERT OR REPLACE, deletes it itself.
_V6_ACKS_AND_NOTES = (
    """CREATE TABLE acks (
        list text NOT NULL,
        target text NOT NULL,
        by_user text NOT NULL,
        at double precision NOT NULL,
        note text NOT NULL DEFAULT '',
        until double precision,
        delisting_requested_at double precision,
        delisting_note text NOT NULL DEFAULT '',
        PRIMARY KEY (list, target),
        FOREIGN KEY (list, target) REFERENCES pairs (list, target) ON DELETE CASCADE
    )""",
    """CREATE TABLE notes (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target text NOT NULL,
        by_user text NOT NULL,
        at double precision NOT NULL,
        text text NOT NULL
    )""",
    "CREATE INDEX notes_target ON notes (target, at)",
    "ALTER TABLE events ADD COLUMN ack text",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _V1_TABLES,
    _V2_EVENT_IDS_FROM_CREATION,
    _V3_SEVERAL_INSTANCES,
    _V4_PAIR_ERRORS,
    _V5_RESOLVER_AND_SKIPS,
    _V6_ACKS_AND_NOTES,
)
SCHEMA_VERSION = len(MIGRATIONS)

# the columns and the row mapping are the same in both SQL stores: `store.rows`


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


UPSERT_PAIR = f"""
    INSERT INTO pairs ({PAIR_COLUMNS}) VALUES ({_marks(14)})
    ON CONFLICT (list, target) DO UPDATE SET
    {", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in PAIR_COLUMNS.split(",")[2:])}
"""
DELETE_PAIRS = "DELETE FROM pairs WHERE list = %s AND target = ANY(%s)"
UPSERT_PAIR_ERROR = f"""
    INSERT INTO pair_errors ({PAIR_ERROR_COLUMNS}) VALUES ({_marks(6)})
    ON CONFLICT (list, target) DO UPDATE SET reason = excluded.reason,
        detail = excluded.detail, at = excluded.at, last_good_at = excluded.last_good_at
"""
DELETE_PAIR_ERRORS = "DELETE FROM pair_errors WHERE list = %s AND target = ANY(%s)"
ADD_SEEN = "INSERT INTO seen (list, target) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING"
INSERT_EVENT = f"INSERT INTO events (id, {EVENT_COLUMNS}) VALUES ({_marks(EVENT_WIDTH + 1)})"
INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, receiver, next_attempt, created) VALUES (%s, %s, %s, %s)"
)
NEXT_EVENT_IDS = "SELECT nextval('events_id_seq') FROM generate_series(1, %s)"

UPSERT_CYCLE_STATUS = rows.UPSERT_CYCLE_STATUS.replace("?", "%s")
UPSERT_RESOLVER = """
    INSERT INTO resolver_state (id, state, since, detail) VALUES (1, %s, %s, %s)
    ON CONFLICT (id) DO UPDATE SET
        state = excluded.state, since = excluded.since, detail = excluded.detail
"""
UPSERT_HEALTH = rows.UPSERT_HEALTH.replace("?", "%s")

ADD_BUDGET = """
    INSERT INTO budget (list, day, queries) VALUES (%s, %s, %s)
    ON CONFLICT (list, day) DO UPDATE SET queries = budget.queries + excluded.queries
"""

# -- several instances (times in the database's clock) ----------------------------------------

NOW = "SELECT extract(epoch FROM clock_timestamp())::double precision"
NOTIFY_OUTBOX = "SELECT pg_notify('rblwatch_outbox', '')"
OUTBOX_CHANNEL = "rblwatch_outbox"

UPSERT_INSTANCE = """
    INSERT INTO instances (id, host, pid, version, started, heartbeat, lists)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (id) DO UPDATE SET
        heartbeat = excluded.heartbeat, version = excluded.version, lists = excluded.lists
"""
# the rows there are already are left out before the insert, not by ON CONFLICT alone: a
# conflict with a row that another transaction is updating (a commit's last_done, another
# tick's claim) waits for that transaction, and a tick must not wait for another instance
ENSURE_SHARDS = """
    INSERT INTO shards (list, shard)
    SELECT name, s FROM unnest(%s::text[]) AS name, generate_series(0, %s - 1) AS s
    WHERE NOT EXISTS (SELECT 1 FROM shards AS x WHERE x.list = name AND x.shard = s)
    ON CONFLICT DO NOTHING
"""
LIVE_INSTANCES = "SELECT count(*) FROM instances WHERE heartbeat > %s"
# per list, the live instances that watch it: a list's shards are shared among those only
# (while a reload that adds a list reaches the instances one by one, or their configs differ,
# counting the others would leave part of it to nobody)
LIVE_WATCHERS = """
    SELECT name, count(*) FROM instances, unnest(lists) AS name WHERE heartbeat > %s
    GROUP BY name
"""
# every lease of mine on a list still configured, renewed (even one past its expiry that
# nobody took: the epoch is the same, so nobody wrote under another)
RENEW_SHARDS = """
    UPDATE shards SET expires = %s
    WHERE owner = %s AND list = ANY(%s)
    RETURNING list, shard, epoch, last_done
"""
_FREE = "UPDATE shards SET owner = NULL, expires = 0 WHERE owner = %s"
RELEASE_UNLISTED = _FREE + " AND NOT list = ANY(%s)"
RELEASE_SHARDS = _FREE + " AND list = %s AND shard = ANY(%s)"
# free or expired shards of a list, up to a number: SKIP LOCKED, so two instances claiming
# at once take different shards, and a shard in a commit's transaction is not taken under it
CLAIM_SHARDS = """
    UPDATE shards SET owner = %s, epoch = epoch + 1, expires = %s
    WHERE (list, shard) IN (
        SELECT list, shard FROM shards
        WHERE list = %s AND (owner IS NULL OR expires <= %s)
        ORDER BY shard LIMIT %s
        FOR UPDATE SKIP LOCKED)
    RETURNING list, shard, epoch, last_done
"""
# the leader's row, made once; taken (or renewed) only if free, expired or ours, and
# SKIP LOCKED: the leader's health write locks it for its transaction (FENCE_LEADER), and a
# tick must not wait for another instance (one paused there would hold up every heartbeat)
ENSURE_LEADER = """
    INSERT INTO leases (name, owner, epoch, expires) VALUES ('leader', NULL, 0, 0)
    ON CONFLICT DO NOTHING
"""
TAKE_LEADER = """
    UPDATE leases SET
        epoch = CASE WHEN owner = %(me)s THEN epoch ELSE epoch + 1 END,
        owner = %(me)s,
        expires = %(until)s
    WHERE name IN (
        SELECT name FROM leases
        WHERE name = 'leader' AND (owner = %(me)s OR owner IS NULL OR expires <= %(now)s)
        FOR UPDATE SKIP LOCKED)
    RETURNING epoch
"""
# the row locked meanwhile: leading still if the lease, as last committed, is ours and runs
STILL_LEADER = "SELECT 1 FROM leases WHERE name = 'leader' AND owner = %s AND expires > %s"
# the leader's housekeeping: instances silent for an hour leave the page
FORGET_INSTANCES = "DELETE FROM instances WHERE heartbeat < %s"
INSTANCES = """
    SELECT i.id, i.host, i.pid, i.version, i.started, i.heartbeat,
        (SELECT count(*) FROM shards AS s WHERE s.owner = i.id AND s.expires > %s) AS shards,
        EXISTS (SELECT 1 FROM leases AS l
                WHERE l.name = 'leader' AND l.owner = i.id AND l.expires > %s) AS leader
    FROM instances AS i ORDER BY i.started, i.id
"""
LEAVE_SHARDS = _FREE
LEAVE_LEADER = "UPDATE leases SET owner = NULL, expires = 0 WHERE owner = %s"
LEAVE_INSTANCE = "DELETE FROM instances WHERE id = %s"
# a clean stop: the outbox rows its senders held (abandoned mid-request) go out again at once
LEAVE_HOLDS = "UPDATE outbox SET held_by = NULL, held_until = NULL WHERE held_by = %s"
# a fenced commit: the shards it needs, locked for its transaction, if still held
FENCE_SHARDS = """
    SELECT shard, epoch FROM shards
    WHERE list = %s AND owner = %s AND expires > %s AND shard = ANY(%s)
    FOR UPDATE
"""
# last_done: any cycle's commit (the takeover's clock); last_success: a completed full cycle's
# end, as its list row has it (the list's success is its oldest shard's: see LIST_SUCCESS)
SHARDS_DONE = """
    UPDATE shards SET last_done = %s, last_success = COALESCE(%s, last_success)
    WHERE list = %s AND shard = ANY(%s)
"""
# per list with shards, when its every shard last had a completed cycle (NULL: one never had)
LIST_SUCCESS = """
    SELECT list, CASE WHEN count(last_success) = count(*) THEN min(last_success) END AS success
    FROM shards GROUP BY list
"""
FENCE_LEADER = """
    SELECT 1 FROM leases WHERE name = 'leader' AND owner = %s AND expires > %s FOR UPDATE
"""
# a receiver's head only (no older row), and SKIP LOCKED: while another sender is taking it,
# this one gets nothing rather than the row behind it (order per receiver)
OUTBOX_HEAD = f"""
    SELECT {rows.DELIVERY_COLUMNS}
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE o.receiver = %s AND NOT EXISTS (
        SELECT 1 FROM outbox AS p
        WHERE p.receiver = o.receiver AND (p.event_id, p.id) < (o.event_id, o.id))
    ORDER BY o.event_id, o.id
    LIMIT 1
    FOR UPDATE OF o SKIP LOCKED
"""
# the rows right behind a head (receiver, head's event id, head's id, how many): locked
# first, then read whole (no join under the lock: FOR UPDATE OF o is what matters)
OUTBOX_BEHIND_LOCK = """
    SELECT id FROM outbox
    WHERE receiver = %s AND (event_id, id) > (%s, %s)
    ORDER BY event_id, id LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
OUTBOX_BEHIND = f"""
    SELECT {rows.DELIVERY_COLUMNS}
    FROM outbox AS o JOIN events AS e ON e.id = o.event_id
    WHERE o.receiver = %s AND (o.event_id, o.id) > (%s, %s)
    ORDER BY o.event_id, o.id LIMIT %s
"""
# a bounce, an acknowledgement, a note or a reminder is about a pair but no transition of it:
# never a chain's head (`model.UNCHAINED_KINDS`, the third parameter)
CHAIN_HEADS = """
    SELECT target, max(id) FROM events
    WHERE list = %s AND target = ANY(%s) AND kind <> ALL(%s) GROUP BY target
"""
# one atomic statement: the row is counted up only if the reservation fits (RETURNING nothing
# otherwise), so two instances reserving at once cannot both pass a nearly spent budget
RESERVE_BUDGET = """
    INSERT INTO budget (list, day, queries) VALUES (%s, %s, %s)
    ON CONFLICT (list, day) DO UPDATE SET queries = budget.queries + excluded.queries
    WHERE budget.queries + excluded.queries <= %s
    RETURNING queries
"""
