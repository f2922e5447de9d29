"""The stored pairs the console's pages read, kept between requests while nothing changed.

Reading and decoding every stored pair (10,000 listings: ~100 ms on SQLite) and sorting them
by address is most of a listings page's cost, and it changes only when a cycle commits. So
the console keeps the last read, in listing order, and brings it up to date when the store's
cheap marks say something moved: the newest event (every transition writes one), the listed
count and the list rows (every full cycle rewrites its list's row, TXT updates included).
Only the lists that moved are read again (their row changed, or they have events since the
newest one of the last read). Several instances on one store see each other's commits
through the same marks. A change no mark shows (a sharded instance's partial cycle writes
no list row; a confirmation round moves only a pending count; an event stamped before the
newest one, from a host whose clock is behind) is picked up by the next full read, at most
`MAX_AGE` later.

The overview reads the same snapshot: its counts (`console.counting`) and newest listings
come from it, so a page whose store has not moved costs no read of the pairs at all.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from rblwatch.model import ListStatus, PairState
from rblwatch.store import Store
from rblwatch.views.ui import target_order

MAX_AGE = 60.0  # seconds between full reads of the stored pairs
INCREMENT_MAX = 1000  # more events than this since the last read: read everything


@dataclass(frozen=True, slots=True)
class Marks:
    newest_event: int
    newest_at: float | None
    listed: int
    lists: tuple[ListStatus, ...]

    @property
    def live(self) -> str:
        """What the page's live refresh compares: a new event or listing changes it."""
        return f"{self.newest_event}-{self.listed}"


def marks(store: Store) -> Marks:
    newest = store.events(limit=1, newest_first=True)
    newest_id = (newest[0].id or 0) if newest else 0
    newest_at = newest[0].at if newest else None
    return Marks(newest_id, newest_at, store.listed_count(), tuple(store.list_statuses()))


Keyed = tuple[tuple[tuple[int, int, str], str], PairState]  # (listing order key, pair)


def _keyed(pairs: Iterable[PairState]) -> list[Keyed]:
    return sorted(((target_order(p.target), p.list), p) for p in pairs)


@dataclass(frozen=True, slots=True)
class Snapshot:
    marks: Marks
    pairs: list[PairState]  # every stored pair, in listing order
    read_at: float = 0.0  # time.monotonic() of the last full read
    # each list's pairs with their order keys, in order: a list's change re-reads that list
    by_list: Mapping[str, list[Keyed]] = field(default_factory=dict)

    def listings(self, lists: Collection[str]) -> list[PairState]:
        """The pairs of configured lists (a removed list's old rows are not shown)."""
        return [p for p in self.pairs if p.list in lists]


def _full(store: Store, m: Marks) -> Snapshot:
    runs: dict[str, list[PairState]] = {}
    for p in store.pairs():
        runs.setdefault(p.list, []).append(p)
    return _joined(m, {name: _keyed(run) for name, run in runs.items()}, time.monotonic())


def _joined(m: Marks, by_list: Mapping[str, list[Keyed]], read_at: float) -> Snapshot:
    # order keys are unique across lists (the list is in the key): pairs are never compared
    pairs = [p for _, p in heapq.merge(*by_list.values())]
    return Snapshot(m, pairs, read_at, by_list)


def changed_lists(store: Store, last: Marks, now: Marks) -> set[str] | None:
    """The lists whose pairs may differ between two marks (their row changed, or they have
    events since), None when only a full read can tell."""
    old = {r.name: r for r in last.lists}
    changed = {r.name for r in now.lists if old.get(r.name) != r}
    if now.newest_event != last.newest_event:
        if last.newest_at is None:
            return None
        news = store.events(since=last.newest_at, limit=INCREMENT_MAX)
        if len(news) >= INCREMENT_MAX:
            return None
        # `since` is inclusive: the newest event of the last read comes back, and its list
        # need not be read again for it
        changed |= {e.list for e in news if e.target is not None and e.id != last.newest_event}
    if not changed and now.listed != last.listed:
        return None  # a change no mark names: read everything
    return changed


class SnapshotCache:
    """The last snapshot, brought up to date when the store's marks moved (re-reading the
    lists that changed), read in full when it is `MAX_AGE` old. Thread-safe: pages are built
    in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: Snapshot | None = None
        # each list's `seen` set, with the list row it was read under: the set grows only in
        # that list's cycle commits, and each of those rewrites the row
        self._seen: dict[str, tuple[ListStatus | None, float, frozenset[str]]] = {}

    def get(self, store: Store, m: Marks | None = None) -> Snapshot:
        now = marks(store) if m is None else m
        with self._lock:
            last = self._last
            if last is None or time.monotonic() - last.read_at >= MAX_AGE:
                snap = _full(store, now)
            elif last.marks == now:
                return last
            else:
                snap = self._updated(store, last, now)
            self._last = snap
            return snap

    @staticmethod
    def _updated(store: Store, last: Snapshot, now: Marks) -> Snapshot:
        changed = changed_lists(store, last.marks, now)
        if changed is None:
            return _full(store, now)
        by_list = dict(last.by_list)
        for name in changed:
            by_list[name] = _keyed(store.pairs(name))
        return _joined(now, by_list, last.read_at)

    def seen(self, store: Store, list_name: str, marks: Marks) -> frozenset[str]:
        """The targets a list has looked up (a /16's 65,536: ~50 ms to read), read again
        only after that list's row changed."""
        row = next((r for r in marks.lists if r.name == list_name), None)
        with self._lock:
            kept = self._seen.get(list_name)
        if kept is not None and kept[0] == row and time.monotonic() - kept[1] < MAX_AGE:
            return kept[2]
        found = frozenset(store.seen(list_name))
        with self._lock:
            self._seen[list_name] = (row, time.monotonic(), found)
        return found


class _WithPairs:
    """A store whose `pairs()` answers from given rows; every other method is the store's."""

    def __init__(self, store: Store, pairs: Sequence[PairState]) -> None:
        self._store = store
        self._pairs = pairs

    def pairs(self, list_name: str | None = None) -> list[PairState]:
        if list_name is None:
            return list(self._pairs)
        return [p for p in self._pairs if p.list == list_name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def with_pairs(store: Store, snap: Snapshot) -> Store:
    """`store` reading its pairs from `snap`: for `web.read_status`, which reads them all."""
    return cast(Store, _WithPairs(store, snap.pairs))


__all__ = [
    "MAX_AGE",
    "Marks",
    "Snapshot",
    "SnapshotCache",
    "marks",
    "with_pairs",
]
