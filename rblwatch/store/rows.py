"""The rows both SQL stores keep, to records and back: one mapping for SQLite and PostgreSQL.

Both stores hold the same tables with the same columns and values (codes and meanings as JSON
arrays in text, times as unix seconds), so what a row means is written once here; the SQL of
each dialect (placeholders, upserts, migrations) stays in its own `*_schema` module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from rblwatch.model import (
    Ack,
    Delivery,
    Event,
    EventKind,
    Health,
    ListStatus,
    OutcomeKind,
    PairError,
    PairState,
    PairStatus,
    Reason,
    ResolverState,
)

PAIR_COLUMNS = (
    "list, target, group_name, status, since, first_seen, codes, meanings, txt, pending,"
    " pending_codes, pending_meanings, pending_count, pending_since"
)
PAIR_ERROR_COLUMNS = "list, target, reason, detail, at, last_good_at"
EVENT_COLUMNS = (
    "kind, list, target, group_name, at, codes, meanings, txt, initial, previous_codes,"
    " since, detail, hostname, after_id, ack"
)
EVENT_COLUMNS_OF_E = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
STATUS_COLUMNS = (
    "name, health, health_detail, health_since, last_cycle_start, last_cycle_end,"
    " last_cycle_success, last_cycle_duration, last_cycle_lookups, last_cycle_errors, targets,"
    " last_cycle_skipped"
)
# what due_deliveries selects: the outbox row's fields, then the event's
DELIVERY_COLUMNS = (
    "o.id AS delivery_id, o.receiver, o.attempts, o.next_attempt, o.created, o.held_by,"
    f" o.held_until, e.id, {EVENT_COLUMNS_OF_E}"
)
EVENT_WIDTH = len(EVENT_COLUMNS.split(","))  # placeholders of an event row

# The two upserts of a list's aggregate row, in SQLite's `?` placeholders (the PostgreSQL
# store swaps them for `%s`: nothing else in these statements is a question mark).
# The cycle fields only: health belongs to record_health.
UPSERT_CYCLE_STATUS = """
    INSERT INTO list_status (name, last_cycle_start, last_cycle_end, last_cycle_success,
        last_cycle_duration, last_cycle_lookups, last_cycle_errors, targets, last_cycle_skipped)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
        last_cycle_start = excluded.last_cycle_start,
        last_cycle_end = excluded.last_cycle_end,
        -- a cycle that sent no lookups (unhealthy list, spent budget) keeps the last success
        last_cycle_success = COALESCE(excluded.last_cycle_success, list_status.last_cycle_success),
        last_cycle_duration = excluded.last_cycle_duration,
        last_cycle_lookups = excluded.last_cycle_lookups,
        last_cycle_errors = excluded.last_cycle_errors,
        targets = excluded.targets,
        last_cycle_skipped = excluded.last_cycle_skipped
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


class Row(Protocol):
    """A row read by column name (sqlite3.Row, or psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


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


def pair_of(row: Row) -> PairState:
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


def pair_error_row(e: PairError) -> tuple[Any, ...]:
    return (e.list, e.target, e.reason.value, e.detail, e.at, e.last_good_at)


def pair_error_of(row: Row) -> PairError:
    return PairError(
        target=row["target"],
        list=row["list"],
        reason=Reason(row["reason"]),
        at=row["at"],
        detail=row["detail"],
        last_good_at=row["last_good_at"],
    )


def event_row(e: Event) -> tuple[Any, ...]:
    """The values of `EVENT_COLUMNS` (the id is the store's to assign)."""
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
        e.after,
        ack_text(e.ack),
    )


def event_of(row: Row) -> Event:
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
        after=row["after_id"],
        ack=ack_of_text(row["ack"], row["target"], row["list"]),
    )


# An event's `ack` column: the pair's acknowledgement when the event was written, as a JSON
# object (NULL: none), so a delivery sent later carries what the operator knew then.
_ACK_FIELDS = ("by", "at", "note", "until", "delisting_requested_at", "delisting_note")


def ack_text(ack: Ack | None) -> str | None:
    if ack is None:
        return None
    return json.dumps({name: getattr(ack, name) for name in _ACK_FIELDS})


def ack_of_text(text: str | None, target: str | None, list_name: str) -> Ack | None:
    if text is None:
        return None
    return Ack(target=target or "", list=list_name, **json.loads(text))


def delivery_of(row: Row) -> Delivery:
    """A row of `DELIVERY_COLUMNS`."""
    return Delivery(
        id=row["delivery_id"],
        event=event_of(row),
        receiver=row["receiver"],
        attempts=row["attempts"],
        next_attempt=row["next_attempt"],
        created=row["created"],
        held_by=row["held_by"],
        held_until=row["held_until"],
    )


def status_of(row: Row) -> ListStatus:
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
        last_cycle_skipped=row["last_cycle_skipped"],
    )


def cycle_row(s: ListStatus) -> tuple[Any, ...]:
    """The cycle fields of a list's aggregate row (health belongs to record_health)."""
    return (
        s.name,
        s.last_cycle_start,
        s.last_cycle_end,
        s.last_cycle_success,
        s.last_cycle_duration,
        s.last_cycle_lookups,
        s.last_cycle_errors,
        s.targets,
        s.last_cycle_skipped,
    )


def crossing(event: Event | None, stored: Health | None) -> Event | None:
    """A list event if the health stored now (read in the writing transaction) is the one it
    leaves: `list_unhealthy` from healthy (or never probed), `list_recovered` from not. With
    no stored row at all (None) the caller's word stands: there is nothing to contradict it."""
    if event is None or stored is None:
        return event
    was_ok = stored in (Health.HEALTHY, Health.UNKNOWN)
    return event if was_ok == (event.kind is EventKind.LIST_UNHEALTHY) else None


RESOLVER_COLUMNS = "state, since, detail"


def resolver_of(row: Row | None) -> ResolverState:
    """The stored resolver state (a store without the row: ok, since never)."""
    if row is None:
        return ResolverState()
    return ResolverState(row["state"], row["since"], row["detail"])


def resolver_crossing(
    state: ResolverState, event: Event | None, stored: ResolverState
) -> tuple[ResolverState, Event | None]:
    """What to store for the resolver against what is stored now (read in the writing
    transaction): the state keeps its `since` while it stays the same, and its event is
    written only if the stored state really crosses, so two deciders raise it once. A
    recovery without `since` says when the outage began."""
    if state.reachable == stored.reachable:
        return ResolverState(state.state, stored.since or state.since, state.detail), None
    if event is not None and event.kind is EventKind.RESOLVER_RECOVERED and event.since is None:
        event = replace(event, since=stored.since)
    return state, event


def claimable(head: Delivery, owner: str, now: float) -> bool:
    """Whether `owner` may take the outbox row `head` now: due, and held by no other sender
    (a hold ends at `held_until`: a sender that died mid-request leaves it to the others)."""
    if head.next_attempt > now:
        return False
    held = head.held_by is not None and head.held_until is not None and head.held_until > now
    return not held or head.held_by == owner


def batch_of(
    rows: Sequence[Delivery], owner: str, now: float, limit: int, group_wait: float
) -> list[Delivery]:
    """Of a receiver's oldest rows in order, those `owner` may take as one batch now: none
    unless the head is claimable and `group_wait` old (from its `created`: a grouping window
    opens with its first event), then the head and the rows right behind it while each is
    claimable, at most `limit`. A row that is not (waiting for its retry, held by another)
    ends the batch: nothing is sent before an older row of its receiver."""
    if not rows or rows[0].created + group_wait > now:
        return []
    batch: list[Delivery] = []
    for row in rows[:limit]:
        if not claimable(row, owner, now):
            break
        batch.append(row)
    return batch
