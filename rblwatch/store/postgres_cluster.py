"""The PostgreSQL store's part in several instances: heartbeats, leases, fences, NOTIFY.

What the leases mean is `rblwatch.cluster`'s; this module writes them, each function one step
of a transaction the store holds (a cursor of it), times always in the database's clock.
Apart from `postgres.py` so that the store's `Store` methods read on their own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import psycopg

from rblwatch.cluster import Fence, Instance, Lease, View, fair_share
from rblwatch.store import Fenced
from rblwatch.store import postgres_schema as q

FORGET_AFTER_S = 3600.0  # an instance silent this long leaves the instances table

Cursor = psycopg.Cursor[Any]


def now_of(cur: Cursor) -> float:
    """The database's clock: leases expire by it, whatever the hosts' clocks say."""
    return float(_one(cur, q.NOW, ()))


def tick(cur: Cursor, me: Instance, names: list[str], lease: float, shards: int) -> View:
    """`Store.tick` in the caller's transaction."""
    now = now_of(cur)
    until = now + lease
    row = (me.id, me.host, me.pid, me.version, me.started, now, names)
    cur.execute(q.UPSERT_INSTANCE, row)
    cur.execute(q.ENSURE_SHARDS, (names, shards))
    live = int(_one(cur, q.LIVE_INSTANCES, (now - lease,)))
    watchers = {str(n): int(c) for n, c in cur.execute(q.LIVE_WATCHERS, (now - lease,))}
    cur.execute(q.RELEASE_UNLISTED, (me.id, names))
    held = _leases(cur.execute(q.RENEW_SHARDS, (until, me.id, names)))
    share = {name: fair_share(shards, watchers.get(name, 1)) for name in names}
    kept, taken = _rebalance(cur, me.id, names, held, share, (now, until))
    leader = _lead(cur, me.id, now, until)
    if leader:
        cur.execute(q.FORGET_INSTANCES, (now - FORGET_AFTER_S,))
    return View(me.id, tuple(sorted(kept + taken)), leader, live, now, tuple(taken))


def _rebalance(
    cur: Cursor,
    owner: str,
    names: list[str],
    held: list[Lease],
    shares: dict[str, int],
    times: tuple[float, float],
) -> tuple[list[Lease], list[Lease]]:
    """Per list: release the shards above its share, claim free or expired ones up to it.
    `times`: the database's now and the new leases' expiry."""
    now, until = times
    kept: list[Lease] = []
    taken: list[Lease] = []
    for name in names:
        share = shares[name]
        mine = sorted(x for x in held if x.list == name)
        if len(mine) > share:
            extra = [x.shard for x in mine[share:]]
            cur.execute(q.RELEASE_SHARDS, (owner, name, extra))
            mine = mine[:share]
        elif len(mine) < share:
            claimed = cur.execute(q.CLAIM_SHARDS, (owner, until, name, now, share - len(mine)))
            taken.extend(_leases(claimed))
        kept.extend(mine)
    return kept, taken


def _lead(cur: Cursor, owner: str, now: float, until: float) -> bool:
    """Take or renew the leader's lease; True if `owner` leads (see TAKE_LEADER)."""
    cur.execute(q.ENSURE_LEADER)
    taken = cur.execute(q.TAKE_LEADER, {"me": owner, "until": until, "now": now}).fetchone()
    if taken is not None:
        return True
    return cur.execute(q.STILL_LEADER, (owner, now)).fetchone() is not None


def instances(cur: Cursor) -> list[Instance]:
    now = now_of(cur)
    rows = cur.execute(q.INSTANCES, (now, now)).fetchall()
    return [
        Instance(str(i), str(h), int(p), str(v), float(st), float(hb), int(n), bool(lead))
        for i, h, p, v, st, hb, n, lead in rows
    ]


def leave(cur: Cursor, owner: str) -> None:
    cur.execute(q.LEAVE_SHARDS, (owner,))
    cur.execute(q.LEAVE_LEADER, (owner,))
    cur.execute(q.LEAVE_INSTANCE, (owner,))
    cur.execute(q.LEAVE_HOLDS, (owner,))


def check_fence(cur: Cursor, label: str, name: str, fence: Fence) -> tuple[float, list[int]]:
    """Lock the fence's shard rows of this list; Fenced unless all are still held under the
    same epochs (and the leader's lease, if the fence asks). Returns the database's time and
    the shards, whose `last_done` the commit then sets."""
    now = now_of(cur)
    want = {x.shard: x.epoch for x in fence.leases if x.list == name}
    if fence.leader:
        check_leader(cur, label, fence.owner, now)
    if not want:
        if fence.leases or not fence.leader:  # a fence that holds nothing of this list
            raise Fenced(f"{label}: list {name}: no shard of it held by this instance")
        return now, []
    rows = cur.execute(q.FENCE_SHARDS, (name, fence.owner, now, list(want))).fetchall()
    held = {int(shard): int(epoch) for shard, epoch in rows}
    lost = sorted(s for s, e in want.items() if held.get(s) != e)
    if lost:
        raise Fenced(
            f"{label}: list {name}: shard(s) {', '.join(map(str, lost))}"
            " no longer held by this instance; its results are not written",
            lost,
        )
    return now, sorted(want)


def check_leader(cur: Cursor, label: str, owner: str, now: float) -> None:
    if cur.execute(q.FENCE_LEADER, (owner, now)).fetchone() is None:
        raise Fenced(f"{label}: this instance no longer leads")


class Listener:
    """LISTEN on a connection of its own, reconnecting after any failure (a restart)."""

    def __init__(self, url: str, kwargs: dict[str, Any]) -> None:
        self._url, self._kwargs = url, kwargs
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds for a NOTIFY on the outbox channel."""
        if self._closed:
            return False
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True, **self._kwargs)
                self._conn.execute(f"LISTEN {q.OUTBOX_CHANNEL}")
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                return True
            return False
        except psycopg.Error:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
            self._conn = None
            time.sleep(timeout)  # the database is away: the senders poll meanwhile
            return False

    def close(self) -> None:
        """Close the connection (the store's `close` does, once its listener thread is told
        to stop: a wait in progress ends with its timeout)."""
        self._closed = True  # a wait that comes after never connects again
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()


def _one(cur: Cursor, sql: str, params: tuple[Any, ...]) -> Any:
    row = cur.execute(sql, params).fetchone()
    assert row is not None  # an aggregate or a scalar select: always one row
    return row[0]


def _leases(rows: Iterable[tuple[Any, ...]]) -> list[Lease]:
    return [
        Lease(str(name), int(shard), int(epoch), None if done is None else float(done))
        for name, shard, epoch, done in rows
    ]
