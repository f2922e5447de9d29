"""Working a listing in the store: acknowledgements, "delisting requested" and notes.

Both SQL stores keep the same `acks` and `notes` tables (SQLite's migration 8, PostgreSQL's 6),
so the rules are written once here, against a `Db`: one transaction of the calling store, in
SQLite's `?` placeholders (the PostgreSQL store swaps them for `%s`). Each operation writes its
history event in the same transaction, and never an outbox row: these are the operator's own
actions, not news for the receivers.

Rules:

- Only a listed pair (a failing hygiene pair) can be acknowledged or marked "delisting
  requested" (`Refused` otherwise). The pair's row is read `FOR UPDATE` where the dialect
  has it, and a commit locks its events' pair rows before it reads their acks (`carried`),
  so a concurrent cycle that delists the pair either comes first (and the ack is refused)
  or waits for the ack and then carries and deletes it.
- A re-acknowledgement replaces the ack's who, when, note and expiry but keeps a delisting
  request already made; a delisting request acknowledges a pair that has no active ack.
- A cycle's events carry the pair's ack if it is active at the event's time (`carried`), and
  the event that ends a listing (`delisted`, `check_passed`) deletes it: a pair listed again
  later starts without one (`end`). A pair's row deleted by a commit (a delisting, or a
  target no longer configured) takes its ack with it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from rblwatch.model import Ack, Event, EventKind, Note, PairStatus
from rblwatch.store import Refused

ACK_COLUMNS = "target, list, by_user, at, note, until, delisting_requested_at, delisting_note"
NOTE_COLUMNS = "id, target, by_user, at, text"

UPSERT_ACK = f"""
    INSERT INTO acks ({ACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (list, target) DO UPDATE SET
        by_user = excluded.by_user,
        at = excluded.at,
        note = excluded.note,
        until = excluded.until,
        delisting_requested_at = excluded.delisting_requested_at,
        delisting_note = excluded.delisting_note
"""

# the events that end a listing: the pair's ack goes with it
_ENDINGS = frozenset({EventKind.DELISTED, EventKind.CHECK_PASSED})
# the events that start one: the pair was not listed, so it has no ack (an ack is only ever
# set on a listed pair, and goes when the listing ends or the pair's row is deleted), and a
# cycle of new listings reads nothing more for them
_STARTS = frozenset({EventKind.LISTED, EventKind.CHECK_FAILED})


class Db(Protocol):
    """One transaction of a SQL store, as these rules use it."""

    # " FOR UPDATE" where the dialect locks a row read in a transaction, "" in SQLite (whose
    # write transactions already hold the whole file)
    for_update: str

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement that returns rows; the rows as tuples."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement that returns none."""

    def insert_events(self, events: list[Event]) -> list[Event]:
        """Write events (no outbox rows); them with their ids."""


def ack_row(a: Ack) -> tuple[Any, ...]:
    return (a.target, a.list, a.by, a.at, a.note, a.until, a.delisting_requested_at,
            a.delisting_note)  # fmt: skip


def ack_of(row: Sequence[Any]) -> Ack:
    target, list_name, by, at, note, until, requested, delisting_note = row
    return Ack(target, list_name, by, at, note, until, requested, delisting_note)


def note_of(row: Sequence[Any]) -> Note:
    note_id, target, by, at, text = row
    return Note(target=target, by=by, at=at, text=text, id=int(note_id))


def detail(by: str, text: str, until: float | None = None) -> str:
    """An operator event's `detail`: "by alice until 2026-12-08T12:00:00Z: asked on #123"."""
    out = f"by {by}"
    if until is not None:
        moment = datetime.datetime.fromtimestamp(int(until), datetime.UTC)
        out += " until " + moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{out}: {text}" if text else out


# -- reading ------------------------------------------------------------------------------------


def read_acks(db: Db, list_name: str | None = None, target: str | None = None) -> list[Ack]:
    where, params = [], []
    for clause, value in (("list = ?", list_name), ("target = ?", target)):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = f"SELECT {ACK_COLUMNS} FROM acks"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [ack_of(row) for row in db.rows(sql + " ORDER BY target, list", params)]


def read_notes(db: Db, target: str) -> list[Note]:
    sql = f"SELECT {NOTE_COLUMNS} FROM notes WHERE target = ? ORDER BY at, id"
    return [note_of(row) for row in db.rows(sql, (target,))]


def _ack(db: Db, list_name: str, target: str) -> Ack | None:
    found = read_acks(db, list_name, target)
    return found[0] if found else None


def _listed_group(db: Db, target: str, list_name: str) -> str:
    """The group of a listed pair, its row locked for the transaction; Refused if none."""
    rows = db.rows(
        "SELECT group_name FROM pairs WHERE list = ? AND target = ? AND status = ?" + db.for_update,
        (list_name, target, PairStatus.LISTED.value),
    )
    if not rows:
        raise Refused(f"{target} is not listed on {list_name} (only a listing can be acknowledged)")
    return str(rows[0][0])


# -- writing ------------------------------------------------------------------------------------


def _write(db: Db, kind: EventKind, ack: Ack, group: str, text: str) -> Event:
    db.run(UPSERT_ACK, ack_row(ack))
    event = Event(kind, ack.list, ack.at, target=ack.target, group=group, detail=text, ack=ack)
    return db.insert_events([event])[0]


def set_ack(db: Db, ack: Ack) -> Event:
    group = _listed_group(db, ack.target, ack.list)
    old = _ack(db, ack.list, ack.target)
    if old is not None and ack.delisting_requested_at is None:
        ack = replace(
            ack,
            delisting_requested_at=old.delisting_requested_at,
            delisting_note=old.delisting_note,
        )
    return _write(db, EventKind.ACKNOWLEDGED, ack, group, detail(ack.by, ack.note, ack.until))


def request_delisting(db: Db, target: str, list_name: str, by: str, note: str, at: float) -> Event:
    group = _listed_group(db, target, list_name)
    old = _ack(db, list_name, target)
    if old is None or not old.active(at):
        ack = Ack(target, list_name, by, at, delisting_requested_at=at, delisting_note=note)
    else:
        ack = replace(old, delisting_requested_at=at, delisting_note=note)
    return _write(db, EventKind.DELISTING_REQUESTED, ack, group, detail(by, note))


def clear_ack(db: Db, target: str, list_name: str, by: str, at: float) -> Event | None:
    old = _ack(db, list_name, target)
    if old is None:
        return None
    db.run("DELETE FROM acks WHERE list = ? AND target = ?", (list_name, target))
    group = db.rows(
        "SELECT group_name FROM pairs WHERE list = ? AND target = ?", (list_name, target)
    )
    event = Event(
        EventKind.UNACKNOWLEDGED,
        list_name,
        at,
        target=target,
        group=str(group[0][0]) if group else None,
        detail=detail(by, ""),
    )
    return db.insert_events([event])[0]


def add_note(db: Db, note: Note) -> Note:
    known = db.rows(
        "SELECT 1 FROM pairs WHERE target = ?"
        " UNION ALL SELECT 1 FROM seen WHERE target = ? LIMIT 1",
        (note.target, note.target),
    )
    if not known:
        raise Refused(f"{note.target}: rblwatch has never looked this target up")
    (row,) = db.rows(
        "INSERT INTO notes (target, by_user, at, text) VALUES (?, ?, ?, ?) RETURNING id",
        (note.target, note.by, note.at, note.text),
    )
    text = detail(note.by, note.text)
    event = Event(EventKind.NOTE, "", note.at, target=note.target, detail=text)
    db.insert_events([event])
    return replace(note, id=int(row[0]))


def carried(db: Db, events: Sequence[Event]) -> tuple[list[Event], list[tuple[str, str]]]:
    """A commit's events, each carrying its pair's ack if one is active at its time, and the
    (list, target) of the acks whose listing one of them ends (for `end`).

    Read before the commit writes its pairs: a pair whose row the commit deletes loses its
    ack with the row (a foreign key's cascade, or the store's own delete), and its event must
    still carry it.

    Where the dialect locks rows, the events' pair rows are locked first, and only then are
    the acks read. `set_ack` and `request_delisting` lock the pair row before they write the
    ack, so one of them racing this commit either committed before the read below (whose
    statement sees it: READ COMMITTED) or waits for this commit and then finds the pair no
    longer listed. Reading the acks first instead would miss an ack committed between that
    read and this commit's write of the pair, which would then outlive the listing; and
    locking the ack rows (pairs after acks, the opposite order of `set_ack`) could deadlock
    with a re-acknowledgement of a pair this commit also writes."""
    pairs = [e for e in events if e.target is not None and e.kind not in _STARTS]
    if not pairs:
        return list(events), []
    lists = sorted({e.list for e in pairs})
    if db.for_update:  # PostgreSQL (SQLite's write transaction holds the whole file)
        for list_name in lists:
            targets = sorted({e.target for e in pairs if e.list == list_name and e.target})
            db.rows(
                "SELECT 1 FROM pairs WHERE list = ? AND target = ANY(?) ORDER BY target"
                + db.for_update,
                (list_name, targets),
            )
    marks = ", ".join("?" * len(lists))
    rows = db.rows(f"SELECT {ACK_COLUMNS} FROM acks WHERE list IN ({marks})", lists)
    if not rows:
        return list(events), []
    acks = {(a.list, a.target): a for a in map(ack_of, rows)}
    out, ended = [], []
    for event in events:
        ack = acks.get((event.list, event.target or ""))
        if ack is not None and event.kind in _ENDINGS:
            ended.append((ack.list, ack.target))
        carries = ack is not None and ack.active(event.at) and event.ack is None
        out.append(replace(event, ack=ack) if carries else event)
    return out, ended


def end(db: Db, ended: Sequence[tuple[str, str]]) -> None:
    """Delete the acks of listings a commit ends, after it has written its pairs (so that an
    ack set meanwhile was either read by `carried` or refused for a pair no longer listed)."""
    for list_name, target in ended:
        db.run("DELETE FROM acks WHERE list = ? AND target = ?", (list_name, target))


__all__ = [
    "ACK_COLUMNS",
    "Db",
    "add_note",
    "carried",
    "clear_ack",
    "detail",
    "end",
    "read_acks",
    "read_notes",
    "request_delisting",
    "set_ack",
]
