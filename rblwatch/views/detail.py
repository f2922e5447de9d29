"""The console's per-target and per-list pages as pure functions of stored records.

A target page says, for every configured list, what rblwatch knows: listed (codes, TXT,
since), clean, or not checked (the list does not take this kind of target, or has not looked
it up yet) — never "clean" for a pair nobody asked about. A list page gives its health
history, its last cycle's figures and error rate, and the codes its listings carry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

from rblwatch.model import (
    Ack,
    DnsList,
    Event,
    EventKind,
    ListStatus,
    Note,
    PairState,
    PairStatus,
    TargetKind,
    kinds_taken,
)
from rblwatch.views.eventlog import EventRow, event_rows
from rblwatch.views.pairs import PairItem
from rblwatch.views.status import Budget
from rblwatch.views.ui import Stamp, delist_href, stamp, unicode_name

HEALTH_KINDS = frozenset({EventKind.LIST_UNHEALTHY, EventKind.LIST_RECOVERED})


def kind_of_target(target: str) -> TargetKind:
    if ":" in target:
        return TargetKind.IPV6
    parts = target.split(".")
    if len(parts) == 4 and all(p.isdigit() for p in parts):
        return TargetKind.IPV4
    return TargetKind.DOMAIN


@dataclass(frozen=True, slots=True)
class ListState:
    """One configured list's state for a target."""

    list: str
    state: str  # "listed", "clean", "pending" or "not checked"
    why: str  # for "not checked": why not; for "pending": what is being confirmed
    since: Stamp | None
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: str | None = None
    delist: str | None = None
    answer: Answer | None = None  # the pair's last lookup (the pairs view's), if looked up
    ack: AckRow | None = None  # its acknowledgement, expired or not


@dataclass(frozen=True, slots=True)
class Answer:
    """A pair's last lookup as the pairs view has it (`views.pairs.PairItem`)."""

    outcome: str  # "listed", "clean", "error", or "never" (never looked up)
    reason: str  # the error's reason ("timeout", "blocked", …), "" otherwise
    checked: Stamp | None
    good: Stamp | None  # its last good answer
    stale: bool  # no good answer for two intervals: whatever its state, not known now


def answer(item: PairItem, now: float | None) -> Answer:
    reason = item.last_reason.value if item.last_reason is not None else ""
    return Answer(
        item.last_outcome or "never",
        reason,
        stamp(item.last_checked, now),
        stamp(item.last_good_at, now),
        item.stale,
    )


@dataclass(frozen=True, slots=True)
class AckRow:
    """An acknowledgement as the target page shows it."""

    list: str
    by: str
    at: Stamp | None
    note: str
    until: Stamp | None  # None: until the listing ends
    active: bool
    delisting_requested: Stamp | None
    delisting_note: str


@dataclass(frozen=True, slots=True)
class NoteRow:
    by: str
    at: Stamp | None
    text: str


@dataclass(frozen=True, slots=True)
class TargetPage:
    target: str
    unicode: str | None
    states: list[ListState]
    listed: int
    history: list[EventRow]  # newest first
    acks: list[AckRow] = field(default_factory=list)
    notes: list[NoteRow] = field(default_factory=list)  # newest first


def ack_row(a: Ack, now: float | None) -> AckRow:
    return AckRow(
        a.list,
        a.by,
        stamp(a.at, now),
        a.note,
        stamp(a.until, now),
        now is None or a.active(now),
        stamp(a.delisting_requested_at, now),
        a.delisting_note,
    )


def _state(
    lst: DnsList, pair: PairState | None, seen: bool, kind: TargetKind, now: float | None
) -> ListState:
    """What a list says of the target, from its stored row (the last answer comes after)."""
    delist = delist_href(lst.delist_url)
    if pair is None:
        if kind not in kinds_taken(lst):
            return ListState(lst.name, "not checked", f"takes no {kind.value} targets", None)
        if not seen:
            return ListState(lst.name, "not checked", "not looked up yet", None)
        return ListState(lst.name, "clean", "", None, delist=delist)
    why = ""
    if pair.pending is not None:
        why = f"{pair.pending.value} seen {pair.pending_count}x, being confirmed"
    return ListState(
        lst.name,
        pair.status.value,
        why,
        stamp(pair.since, now),
        pair.codes,
        pair.meanings,
        pair.txt,
        delist,
    )


def target_page(
    target: str,
    lists: Sequence[DnsList],
    pairs: Sequence[PairState],
    seen_by: Collection[str],
    history: Sequence[Event],
    now: float | None,
    acks: Sequence[Ack] = (),
    notes: Sequence[Note] = (),
    items: Mapping[tuple[str, str], PairItem] | None = None,
) -> TargetPage:
    """The page of one target: `pairs` are its stored rows, `seen_by` the lists that have
    looked it up, `history` its events newest first, `acks` and `notes` the store's for it
    (`Store.acks(target=…)`, `Store.notes(target)`), `items` the pairs view's items of its
    pairs by (target, list) (`views.pairs.pair_items`): each list's last answer."""
    mine = {p.list: p for p in pairs if p.target == target}
    kind = kind_of_target(target)
    rows = [ack_row(a, now) for a in acks if a.target == target]
    by_list = {a.list: a for a in rows}
    states = []
    for lst in lists:
        state = _state(lst, mine.get(lst.name), lst.name in seen_by, kind, now)
        item = (items or {}).get((target, lst.name))
        if item is not None and state.state != "not checked":
            state = replace(state, answer=answer(item, now))
        states.append(replace(state, ack=by_list.get(lst.name)))
    listed = sum(1 for s in states if s.state == "listed")
    return TargetPage(
        target,
        unicode_name(target),
        states,
        listed,
        event_rows(history, now),
        rows,
        [NoteRow(n.by, stamp(n.at, now), n.text) for n in sorted(notes, key=lambda n: -n.at)],
    )


@dataclass(frozen=True, slots=True)
class CodeSeen:
    code: str
    meaning: str
    pairs: int


@dataclass(frozen=True, slots=True)
class ListPage:
    name: str
    description: str
    status: ListStatus
    health_since: Stamp | None
    last_cycle_end: Stamp | None
    last_cycle_success: Stamp | None
    next_cycle: Stamp | None
    error_rate: str  # "0.5 %" of the last cycle's lookups, or "" with no lookups
    budget: Budget | None
    listed: int
    codes: list[CodeSeen]
    delist: str | None
    health_history: list[EventRow]  # newest first


def error_rate(status: ListStatus) -> str:
    if status.last_cycle_lookups <= 0:
        return ""
    rate = 100 * status.last_cycle_errors / status.last_cycle_lookups
    if 0 < rate < 0.1:
        return "< 0.1 %"  # 3 errors in 65,536 lookups are not "0.0 %"
    return f"{rate:.1f} %"


def next_cycle(status: ListStatus, interval: float | None) -> float | None:
    """When the next cycle is due: the last one's start plus the list's interval."""
    if interval is None or status.last_cycle_start is None:
        return None
    return status.last_cycle_start + interval


def codes_seen(pairs: Sequence[PairState]) -> list[CodeSeen]:
    """Each answer code among a list's current listings, with its meaning and how many."""
    counts: Counter[str] = Counter()
    meaning: dict[str, str] = {}
    for p in pairs:
        if p.status is not PairStatus.LISTED:
            continue
        for i, code in enumerate(p.codes):
            counts[code] += 1
            if i < len(p.meanings):
                meaning.setdefault(code, p.meanings[i])
    return [CodeSeen(c, meaning.get(c, ""), n) for c, n in sorted(counts.items())]


def list_page(
    lst: DnsList,
    status: ListStatus,
    interval: float | None,
    pairs: Sequence[PairState],
    events: Sequence[Event],
    budgets: Mapping[str, Budget],
    now: float | None,
) -> ListPage:
    """The page of one list: `pairs` its stored rows, `events` its recent events (newest
    first; the health ones are kept)."""
    health = [e for e in events if e.kind in HEALTH_KINDS]
    listed = sum(1 for p in pairs if p.status is PairStatus.LISTED)
    return ListPage(
        name=lst.name,
        description=lst.description,
        status=status,
        health_since=stamp(status.health_since, now),
        last_cycle_end=stamp(status.last_cycle_end, now),
        last_cycle_success=stamp(status.last_cycle_success, now),
        next_cycle=stamp(next_cycle(status, interval), now),
        error_rate=error_rate(status),
        budget=budgets.get(lst.name),
        listed=listed,
        codes=codes_seen(pairs),
        delist=delist_href(lst.delist_url),
        health_history=event_rows(health, now),
    )


__all__ = [
    "AckRow",
    "Answer",
    "CodeSeen",
    "ListPage",
    "ListState",
    "NoteRow",
    "TargetPage",
    "ack_row",
    "answer",
    "codes_seen",
    "error_rate",
    "kind_of_target",
    "list_page",
    "next_cycle",
    "target_page",
]
