"""The pairs view: every configured (target, list) pair, its state and its last outcome, filtered
and paged, and the counts of each state (`GET /api/v1/pairs`, `rblwatch status`).

Most pairs have no stored row: a pair that answered clean at its list's last cycle has neither a
state row (`PairState`) nor an error row (`PairError`). So the pairs are enumerated from each
list's configured targets (an `Ordered`, built once per set of targets and kept by the caller,
so a request never sorts a /16), and the few with rows are looked up by value. What a pair
without a row of its own shows is the same for the whole list (`_Default`): answered at the
list's last completed cycle, or as the list's own error row (target "", `commitplan`) says.

A pair is `stale` when it has had no good answer for more than `STALE_INTERVALS` of its list's
intervals (or never one): it is never counted as clean (state `unknown`), and a listed pair
stays `listed`, marked stale. Order: by list name, then target in address order (IPv4, IPv6,
domains: `model.TARGET_KINDS`); a page ends with an opaque cursor where the next one starts.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import ipaddress
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from rblwatch.model import (
    KIND_RANK,
    TARGET_KINDS,
    Ack,
    Kind,
    ListStatus,
    PairError,
    PairState,
    PairStatus,
    Reason,
    Target,
    TargetKind,
    kind_of_value,
)
from rblwatch.targets import TargetError, canonical_target
from rblwatch.views.status import PairCounts, ack_json, counts_json, rfc3339

STATES = ("listed", "clean", "unknown")
PAIRS_LIMIT_DEFAULT = 100
PAIRS_LIMIT_MAX = 1000
STALE_INTERVALS = 2  # no good answer for more than this many intervals: stale

Key = tuple[int, tuple[int, str]]  # a target's place: its kind's rank, then its sort key
Acks = Mapping[tuple[str, str], Ack]
_NO_ACKS: Acks = MappingProxyType({})


def target_key(value: str, kind: TargetKind) -> Key:
    return KIND_RANK[kind], TARGET_KINDS[kind].sort_key(value)


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


@dataclass(frozen=True, slots=True)
class ListPairs:
    """One list's inputs: its targets in order, its stored rows and error rows, its last cycle."""

    name: str
    kind: Kind
    interval: float
    ordered: Ordered
    status: ListStatus | None = None
    rows: Mapping[str, PairState] = field(default_factory=dict)
    errors: Mapping[str, PairError] = field(default_factory=dict)  # "" is the list's own


@dataclass(frozen=True, slots=True)
class PairItem:
    target: str
    list: str
    group: str
    state: str  # listed | clean | unknown
    last_outcome: str  # listed | clean | error
    last_reason: Reason | None
    last_checked: float | None
    last_good_at: float | None
    stale: bool
    since: float | None = None  # when the state began (pairs with a row)
    codes: tuple[str, ...] = ()
    ack: Ack | None = None


@dataclass(frozen=True, slots=True)
class PairsQuery:
    """Filters and paging; build one from user text with `pairs_query`."""

    target: tuple[Key, Key] | None = None  # inclusive key range (one target, or a network)
    list_name: str | None = None
    state: str | None = None
    limit: int = PAIRS_LIMIT_DEFAULT
    cursor: tuple[str, str] | None = None  # (list, target) the page starts at


@dataclass(frozen=True, slots=True)
class PairsPage:
    items: list[PairItem]
    next_cursor: str | None


# -- parsing the query ---------------------------------------------------------------------


def pairs_query(
    *,
    target: str | None = None,
    list_name: str | None = None,
    state: str | None = None,
    limit: str | int | None = None,
    cursor: str | None = None,
) -> PairsQuery:
    """The query user text asks for; ValueError (one line naming the parameter) if bad."""
    if state is not None and state not in STATES:
        raise ValueError(f"state: must be one of {', '.join(STATES)}, got {state!r}")
    return PairsQuery(
        target=None if target is None else target_range(target),
        list_name=list_name,
        state=state,
        limit=_limit(limit),
        cursor=None if cursor is None else decode_cursor(cursor),
    )


def _limit(text: str | int | None) -> int:
    if text is None:
        return PAIRS_LIMIT_DEFAULT
    try:
        limit = int(text)
    except ValueError:
        raise ValueError(f"limit: not a whole number: {text!r}") from None
    if limit < 1:
        raise ValueError(f"limit: must be at least 1, got {limit}")
    return min(limit, PAIRS_LIMIT_MAX)  # capped, not refused: page with the cursor


def target_range(text: str) -> tuple[Key, Key]:
    """The keys of one target, or of the first and last address of a network (CIDR)."""
    if "/" in text:
        try:
            net = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"target: {text!r} is neither a target nor a network") from None
        kind = TargetKind.IPV4 if net.version == 4 else TargetKind.IPV6
        first, last = int(net.network_address), int(net.broadcast_address)
        return (KIND_RANK[kind], (first, "")), (KIND_RANK[kind], (last, ""))
    try:
        value = canonical_target(text)
    except TargetError as e:
        raise ValueError(f"target: {e}") from None
    key = target_key(value, _kind_of(value))
    return key, key


def _kind_of(value: str) -> TargetKind:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return TargetKind.DOMAIN
    return TargetKind.IPV4 if address.version == 4 else TargetKind.IPV6


def encode_cursor(list_name: str, target: str) -> str:
    raw = f"{list_name}\n{target}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    name, sep, target = raw.partition("\n")
    if not sep or not name:
        raise ValueError(f"cursor: {text!r} is not a cursor this API gave (start without one)")
    return name, target


# -- one list's pairs ----------------------------------------------------------------------


def _stale(last_good: float | None, interval: float, now: float) -> bool:
    return last_good is None or now - last_good > STALE_INTERVALS * interval


def _stored_key(value: str, kind: Kind) -> Key:
    """A stored target's place; one no target kind parses (a row from an older version, or
    a hostile one) goes last rather than failing the whole view."""
    try:
        return target_key(value, kind_of_value(value, kind))
    except (OSError, ValueError):
        return len(KIND_RANK), (0, value)


class _List:
    """One list's pairs as the view shows them, at one moment."""

    __slots__ = ("acks", "d_checked", "d_error", "d_good", "d_stale", "extras", "lp", "now")

    def __init__(self, lp: ListPairs, now: float, acks: Acks) -> None:
        self.lp, self.now, self.acks = lp, now, acks
        # a pair without a row of its own: answered at the list's last completed cycle, or
        # as the list's own error row says (most of its last cycle failed)
        whole = lp.errors.get("")
        success = lp.status.last_cycle_success if lp.status is not None else None
        self.d_error = whole
        self.d_checked = whole.at if whole is not None else success
        self.d_good = whole.last_good_at if whole is not None else success
        self.d_stale = _stale(self.d_good, lp.interval, now)
        index = lp.ordered.index
        # stored pairs whose target is not configured now (a hostname's address, unresolved
        # here): shown too, in order, so no listing is hidden
        extras = {t for t in (*lp.rows, *lp.errors) if t and t not in index}
        self.extras = sorted((_stored_key(t, lp.kind), t) for t in extras)

    @property
    def d_state(self) -> str:
        return "unknown" if self.d_stale else "clean"

    def total(self) -> int:
        return len(self.lp.ordered) + len(self.extras)

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
        if err is None and row is None:
            whole = self.d_error
            return PairItem(
                value,
                lp.name,
                group,
                self.d_state,
                "clean" if whole is None else "error",
                None if whole is None else whole.reason,
                self.d_checked,
                self.d_good,
                self.d_stale,
                ack=ack,
            )
        checked: float | None
        good: float | None
        if err is not None:
            outcome, reason, checked, good = "error", err.reason, err.at, err.last_good_at
            stale = _stale(good, lp.interval, self.now)
        else:
            assert row is not None
            answer = row.pending if row.pending is not None else row.status
            outcome, reason = answer.value, None
            checked, good, stale = self.d_checked, self.d_good, self.d_stale
            if self.d_error is not None:
                outcome, reason = "error", self.d_error.reason
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
            codes=row.codes if row is not None and listed else (),
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
            # no pair without a row of its own is of that state: only the few with rows
            for key, value in self.specials():
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

    def counts(self) -> PairCounts:
        """This list's counts: the pairs with rows one by one, the rest all alike."""
        listed = clean = unknown = errors = stale = acked = 0
        specials = self.specials()
        for _, value in specials:
            item = self.item(value, "")
            listed += item.state == "listed"
            clean += item.state == "clean"
            unknown += item.state == "unknown"
            errors += item.last_outcome == "error"
            stale += item.stale
            acked += item.state == "listed" and item.ack is not None and item.ack.active(self.now)
        rest = self.total() - len(specials)
        clean += rest if self.d_state == "clean" else 0
        unknown += rest if self.d_state == "unknown" else 0
        errors += rest if self.d_error is not None else 0
        stale += rest if self.d_stale else 0
        return PairCounts(self.total(), listed, clean, unknown, errors, stale, acked)


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
    total = PairCounts(0, 0, 0, 0)
    for lp in lists:
        c = _List(lp, now, acks).counts()
        total = PairCounts(
            total.total + c.total,
            total.listed + c.listed,
            total.clean + c.clean,
            total.unknown + c.unknown,
            total.errors + c.errors,
            total.stale + c.stale,
            total.acknowledged + c.acknowledged,
        )
    return total


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
    "PAIRS_LIMIT_DEFAULT",
    "PAIRS_LIMIT_MAX",
    "STALE_INTERVALS",
    "STATES",
    "ListPairs",
    "Ordered",
    "PairItem",
    "PairsPage",
    "PairsQuery",
    "counts_json",
    "decode_cursor",
    "encode_cursor",
    "page_json",
    "pair_counts",
    "pair_items",
    "pair_json",
    "pairs_json",
    "pairs_page",
    "pairs_query",
    "target_key",
    "target_range",
]
