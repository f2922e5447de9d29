"""The pairs view: every configured (target, list) pair, its state and its last outcome, filtered
and paged, and the counts of each state (`GET /api/v1/pairs`, `rblwatch status`).

Most pairs have no stored row: a pair that answered clean at its list's last cycle has neither a
state row (`PairState`) nor an error row (`PairError`). So the pairs are enumerated from each
list's configured targets (an `Ordered`, built once per set of targets and kept by the caller,
so a request never sorts a /16), and the few with rows are looked up by value. What a pair
without a row of its own shows is the same for the whole list (`_Defaults`): answered at the
list's last completed cycle, or as the list's own error row (target "", `commitplan`) says —
except for the targets that cycle did not look up (`Unchecked`: added since, a hostname's new
address), which were never checked.

A pair is `stale` (`views.status.pair_stale`, the status listings' rule too) when it has had
no good answer for more than `STALE_INTERVALS` of its list's intervals (or never one), or its
list is stopped now (not healthy, or behind an unreachable resolver: its cycles send nothing).
A stale pair is never counted as clean (state `unknown`), and a listed pair stays `listed`,
marked stale. Order: by list name, then target in address order (IPv4, IPv6, domains:
`model.TARGET_KINDS`); a page ends with an opaque cursor where the next one starts.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType

from rblwatch.model import (
    KIND_RANK,
    Ack,
    Kind,
    ListStatus,
    PairError,
    PairState,
    PairStatus,
    PairSummary,
    Reason,
    Target,
    kind_of_value,
)
from rblwatch.views.pairsquery import (
    PAIRS_LIMIT_DEFAULT,
    PAIRS_LIMIT_MAX,
    STATES,
    Key,
    PairsQuery,
    decode_cursor,
    encode_cursor,
    pairs_query,
    target_key,
    target_range,
)
from rblwatch.views.status import (
    STALE_INTERVALS,
    PairCounts,
    ack_json,
    counts_json,
    pair_stale,
    rfc3339,
)

Acks = Mapping[tuple[str, str], Ack]
# a stored pair as the view reads it: the whole row, or (to count, and to find a page's
# pairs) its summary, whose item's outcome and codes the whole row fills in (`pairsource`)
Row = PairState | PairSummary
_NO_ACKS: Acks = MappingProxyType({})


class Ordered:
    """One set of targets in display order, with their keys (for bisect) and positions."""

    __slots__ = ("index", "keys", "targets")

    def __init__(self, targets: Iterable[Target]) -> None:
        keyed = sorted(((target_key(t.value, t.kind), t) for t in targets), key=lambda p: p[0])
        self.keys: list[Key] = [k for k, _ in keyed]
        self.targets: list[Target] = [t for _, t in keyed]
        self.index: dict[str, int] = {t.value: i for i, t in enumerate(self.targets)}

    def __len__(self) -> int:
        return len(self.targets)


class Unchecked:
    """The targets of an `Ordered` not among those a list's last full cycle looked up
    (`covered`), in order: configured since, or a hostname's new address. Built once per
    change of either set and kept by the caller (`pairsource`): a /16 is not walked per
    request."""

    __slots__ = ("keyed", "values")

    def __init__(self, ordered: Ordered, covered: AbstractSet[str]) -> None:
        keys = ordered.keys
        self.keyed: list[tuple[Key, str]] = [
            (keys[i], t.value) for i, t in enumerate(ordered.targets) if t.value not in covered
        ]
        self.values: frozenset[str] = frozenset(v for _, v in self.keyed)

    def __len__(self) -> int:
        return len(self.keyed)


NONE_UNCHECKED = Unchecked(Ordered(()), frozenset())


@dataclass(frozen=True, slots=True)
class ListPairs:
    """One list's inputs: its targets in order, its stored rows and error rows, its last cycle,
    whether it is stopped now (`views.status.list_stopped`) and which of its targets that
    cycle did not look up."""

    name: str
    kind: Kind
    interval: float
    ordered: Ordered
    status: ListStatus | None = None
    rows: Mapping[str, Row] = field(default_factory=dict)
    errors: Mapping[str, PairError] = field(default_factory=dict)  # "" is the list's own
    stopped: bool = False
    unchecked: Unchecked = NONE_UNCHECKED


@dataclass(frozen=True, slots=True)
class PairItem:
    target: str
    list: str
    group: str
    state: str  # listed | clean | unknown
    last_outcome: str | None  # listed | clean | error; None: never looked up
    last_reason: Reason | None
    last_checked: float | None
    last_good_at: float | None
    stale: bool
    since: float | None = None  # when the state began (pairs with a row)
    codes: tuple[str, ...] = ()
    ack: Ack | None = None


@dataclass(frozen=True, slots=True)
class PairsPage:
    items: list[PairItem]
    next_cursor: str | None


# -- one list's pairs ----------------------------------------------------------------------


def _outcome(d: _Defaults) -> str | None:
    """The last outcome of a pair without a row of its own: its list's (or the list-wide
    row's error); None when it was never looked up."""
    if d.error is not None:
        return "error"
    return None if d.checked is None else "clean"


class _Defaults:
    """What a pair without a row of its own shows: answered at the list's last completed
    cycle, or as the list's own error row says; never checked, for a target that cycle did
    not look up (`Unchecked`)."""

    __slots__ = ("checked", "error", "good", "stale")

    def __init__(
        self, checked: float | None, error: PairError | None, good: float | None, stale: bool
    ) -> None:
        self.checked, self.error, self.good, self.stale = checked, error, good, stale

    @property
    def state(self) -> str:
        return "unknown" if self.stale else "clean"


def _stored_key(value: str, kind: Kind) -> Key:
    """A stored target's place; one no target kind parses (a row from an older version, or
    a hostile one) goes last rather than failing the whole view."""
    try:
        return target_key(value, kind_of_value(value, kind))
    except (OSError, ValueError):
        return len(KIND_RANK), (0, value)


class _List:
    """One list's pairs as the view shows them, at one moment."""

    __slots__ = ("_extras", "acks", "d", "extra_values", "lp", "never", "now")

    def __init__(self, lp: ListPairs, now: float, acks: Acks) -> None:
        self.lp, self.now, self.acks = lp, now, acks
        # most of its last cycle failed: the list's own error row says for every pair
        whole = lp.errors.get("")
        success = lp.status.last_cycle_success if lp.status is not None else None
        good = whole.last_good_at if whole is not None else success
        self.d = _Defaults(
            whole.at if whole is not None else success,
            whole,
            good,
            pair_stale(good, lp.interval, now, lp.stopped),
        )
        # a target that cycle did not look up: never answered there (the list's row, if any,
        # still says why its lookups fail)
        self.never = _Defaults(self.d.checked if whole else None, whole, None, True)
        index = lp.ordered.index
        # stored pairs whose target is not configured now (a hostname's address, unresolved
        # here): shown too, in order, so no listing is hidden
        self.extra_values = {t for t in (*lp.rows, *lp.errors) if t and t not in index}
        self._extras: list[tuple[Key, str]] | None = None

    @property
    def extras(self) -> list[tuple[Key, str]]:
        """The extras in order: sorted when a walk first needs them, never to count."""
        if self._extras is None:
            self._extras = sorted((_stored_key(t, self.lp.kind), t) for t in self.extra_values)
        return self._extras

    @property
    def d_state(self) -> str:
        return self.d.state

    def _defaults(self, value: str) -> _Defaults:
        return self.never if value in self.lp.unchecked.values else self.d

    def total(self) -> int:
        return len(self.lp.ordered) + len(self.extra_values)

    def specials(self) -> list[tuple[Key, str]]:
        """The pairs with a row of their own, in order (few: listings, errors)."""
        lp, index, keys = self.lp, self.lp.ordered.index, self.lp.ordered.keys
        mine = {t for t in (*lp.rows, *lp.errors) if t and t in index}
        out = [(keys[index[t]], t) for t in mine]
        out.extend(self.extras)
        out.sort()
        return out

    def item(self, value: str, group: str) -> PairItem:
        lp = self.lp
        row = lp.rows.get(value)
        err = lp.errors.get(value)
        ack = self.acks.get((value, lp.name)) if self.acks else None
        d = self._defaults(value)
        if err is None and row is None:
            return PairItem(
                value,
                lp.name,
                group,
                d.state,
                # never looked up: no outcome at all, not "clean"
                _outcome(d),
                None if d.error is None else d.error.reason,
                d.checked,
                d.good,
                d.stale,
                ack=ack,
            )
        checked: float | None
        good: float | None
        if err is not None:
            outcome, reason, checked, good = "error", err.reason, err.at, err.last_good_at
            stale = pair_stale(good, lp.interval, self.now, lp.stopped)
        else:
            assert row is not None
            pending = row.pending if isinstance(row, PairState) else None
            answer = pending if pending is not None else row.status
            outcome, reason = answer.value, None
            checked, good, stale = d.checked, d.good, d.stale
            if d.error is not None:
                outcome, reason = "error", d.error.reason
        listed = row is not None and row.status is PairStatus.LISTED
        return PairItem(
            value,
            lp.name,
            row.group if row is not None else group,
            "listed" if listed else ("unknown" if stale else "clean"),
            outcome,
            reason,
            checked,
            good,
            stale,
            since=row.since if row is not None else None,
            codes=row.codes if isinstance(row, PairState) and listed else (),
            ack=ack,
        )

    def group_of(self, value: str) -> str:
        i = self.lp.ordered.index.get(value)
        if i is not None:
            return self.lp.ordered.targets[i].group
        row = self.lp.rows.get(value)
        return row.group if row is not None else ""

    def walk(self, lo: Key | None, hi: Key | None, state: str | None) -> Iterator[PairItem]:
        """The list's pairs from key `lo` (inclusive) to `hi` (inclusive), of `state`."""
        if state is not None and state != self.d_state:
            # no pair without a row of its own is of that state, but for the never checked
            # (unknown): only the few with rows, and those
            few: Iterable[tuple[Key, str]] = self.specials()
            if state == "unknown" and self.lp.unchecked.keyed:
                few = _merged(few, self.lp.unchecked.keyed)
            for key, value in few:
                if (lo is None or key >= lo) and (hi is None or key <= hi):
                    item = self.item(value, self.group_of(value))
                    if item.state == state:
                        yield item
            return
        for item in self._all(lo, hi):
            if state is None or item.state == state:
                yield item

    def _all(self, lo: Key | None, hi: Key | None) -> Iterator[PairItem]:
        """Every pair in the key range: the configured targets and the extras, merged."""
        ordered = self.lp.ordered
        keys, targets = ordered.keys, ordered.targets
        i = 0 if lo is None else bisect.bisect_left(keys, lo)
        end = len(keys) if hi is None else bisect.bisect_right(keys, hi)
        extras = [
            (k, v) for k, v in self.extras if (lo is None or k >= lo) and (hi is None or k <= hi)
        ]
        j = 0
        while i < end or j < len(extras):
            if j < len(extras) and (i >= end or extras[j][0] < keys[i]):
                value = extras[j][1]
                j += 1
                yield self.item(value, self.group_of(value))
            else:
                t = targets[i]
                i += 1
                yield self.item(t.value, t.group)

    def _tally(self, value: str) -> tuple[bool, bool, bool]:
        """(listed, stale, last outcome error) of a pair with a row of its own, as `item`
        says them, without making the item: a count goes through every listing."""
        lp = self.lp
        row, err = lp.rows.get(value), lp.errors.get(value)
        listed = row is not None and row.status is PairStatus.LISTED
        if err is not None:
            return listed, pair_stale(err.last_good_at, lp.interval, self.now, lp.stopped), True
        # the list-wide error row, if any, says for those that cycle did not look up too
        return listed, self._defaults(value).stale, self.d.error is not None

    def counts(self, stale_listed: set[tuple[str, str]]) -> PairCounts:
        """This list's counts: the pairs with rows one by one, the rest all alike (those its
        last cycle looked up, and those it did not). Adds its stale listings to
        `stale_listed`."""
        listed = clean = unknown = errors = stale = acked = 0
        # in no order: counting needs no keys (a /16's extras are not sorted to count them)
        specials = {t for t in (*self.lp.rows, *self.lp.errors) if t}
        never = self.lp.unchecked.values
        acks, name, now = self.acks, self.lp.name, self.now
        for value in specials:
            is_listed, is_stale, is_error = self._tally(value)
            errors += is_error
            stale += is_stale
            if is_listed:
                listed += 1
                ack = acks.get((value, name)) if acks else None
                acked += ack is not None and ack.active(now)
                if is_stale:
                    stale_listed.add((value, name))
            elif is_stale:
                unknown += 1
            else:
                clean += 1
        unchecked = len(never) - sum(1 for v in specials if v in never)
        rest = self.total() - len(specials) - unchecked
        d = self.d
        clean += rest if d.state == "clean" else 0
        unknown += unchecked + (rest if d.state == "unknown" else 0)
        errors += rest + unchecked if d.error is not None else 0
        stale += unchecked + (rest if d.stale else 0)
        return PairCounts(self.total(), listed, clean, unknown, errors, stale, acked)


def _merged(
    a: Iterable[tuple[Key, str]], b: Iterable[tuple[Key, str]]
) -> Iterator[tuple[Key, str]]:
    """Two sorted runs of (key, value) as one, each value once."""
    last: str | None = None
    for key, value in heapq.merge(a, b):
        if value != last:
            yield key, value
        last = value


# -- the view ------------------------------------------------------------------------------


def pairs_page(
    lists: Sequence[ListPairs], query: PairsQuery, now: float, acks: Acks = _NO_ACKS
) -> PairsPage:
    """One page of the pairs `query` selects, in order, and where the next page starts."""
    items: list[PairItem] = []
    want = query.limit + 1  # one more: whether there is a next page, and where it starts
    for lp in sorted(lists, key=lambda lp: lp.name):
        if query.list_name is not None and lp.name != query.list_name:
            continue
        lo, hi = query.target if query.target is not None else (None, None)
        if query.cursor is not None:
            c_list, c_target = query.cursor
            if lp.name < c_list:
                continue
            if lp.name == c_list:
                start = _cursor_key(lp, c_target)
                lo = start if lo is None else max(lo, start)
        for item in _List(lp, now, acks).walk(lo, hi, query.state):
            items.append(item)
            if len(items) >= want:
                last = items.pop()
                return PairsPage(items, encode_cursor(last.list, last.target))
    return PairsPage(items, None)


def _cursor_key(lp: ListPairs, target: str) -> Key:
    try:
        return target_key(target, kind_of_value(target, lp.kind))
    except (OSError, ValueError):
        raise ValueError("cursor: not a cursor this API gave (start without one)") from None


def pair_counts(lists: Sequence[ListPairs], now: float, acks: Acks = _NO_ACKS) -> PairCounts:
    """How many of the lists' pairs are in each state: cheap, from the rows alone."""
    return pair_summary(lists, now, acks)[0]


def pair_summary(
    lists: Sequence[ListPairs], now: float, acks: Acks = _NO_ACKS
) -> tuple[PairCounts, set[tuple[str, str]]]:
    """The counts (`pair_counts`), and the listed pairs that are stale, by (target, list):
    what the status listings mark stale (`StatusView.stale_pairs`)."""
    total = PairCounts(0, 0, 0, 0)
    stale_listed: set[tuple[str, str]] = set()
    for lp in lists:
        total += _List(lp, now, acks).counts(stale_listed)
    return total, stale_listed


def pair_items(
    lists: Sequence[ListPairs],
    wanted: Iterable[tuple[str, str]],
    now: float,
    acks: Acks = _NO_ACKS,
) -> dict[tuple[str, str], PairItem]:
    """The items of some (target, list) pairs (a page's rows), by pair, without walking the
    lists: what a console row shows of its pair's last outcome, staleness and ack."""
    by_name = {lp.name: lp for lp in lists}
    views: dict[str, _List] = {}
    out: dict[tuple[str, str], PairItem] = {}
    for target, name in wanted:
        lp = by_name.get(name)
        if lp is None:
            continue
        view = views.get(name)
        if view is None:
            view = views[name] = _List(lp, now, acks)
        out[(target, name)] = view.item(target, view.group_of(target))
    return out


# -- JSON ----------------------------------------------------------------------------------


def pair_json(p: PairItem) -> dict[str, object]:
    return {
        "target": p.target,
        "list": p.list,
        "group": p.group,
        "state": p.state,
        "last_outcome": p.last_outcome,
        "last_reason": p.last_reason.value if p.last_reason is not None else None,
        "last_checked": rfc3339(p.last_checked),
        "last_good_at": rfc3339(p.last_good_at),
        "stale": p.stale,
        "since": rfc3339(p.since),
        "codes": list(p.codes),
        "ack": ack_json(p.ack),
    }


def page_json(page: PairsPage) -> dict[str, object]:
    """The `"pairs"` object of `/api/v1/status`: the first page."""
    return {"items": [pair_json(p) for p in page.items], "next_cursor": page.next_cursor}


def pairs_json(page: PairsPage, counts: PairCounts) -> dict[str, object]:
    """The object `GET /api/v1/pairs` serves."""
    return {
        "pairs": [pair_json(p) for p in page.items],
        "next_cursor": page.next_cursor,
        "counts": counts_json(counts),
    }


__all__ = [
    "NONE_UNCHECKED",
    "PAIRS_LIMIT_DEFAULT",
    "PAIRS_LIMIT_MAX",
    "STALE_INTERVALS",
    "STATES",
    "ListPairs",
    "Ordered",
    "PairItem",
    "PairsPage",
    "PairsQuery",
    "Unchecked",
    "counts_json",
    "decode_cursor",
    "encode_cursor",
    "page_json",
    "pair_counts",
    "pair_items",
    "pair_json",
    "pair_summary",
    "pairs_json",
    "pairs_page",
    "pairs_query",
    "target_key",
    "target_range",
]
