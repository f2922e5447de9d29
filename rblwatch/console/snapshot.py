"""The stored pairs the console's pages read, kept between requests while nothing changed.

Reading and decoding every stored pair (10,000 listings: ~100 ms on SQLite) and sorting them
by address is most of a listings page's cost, and it changes only when a cycle commits. So
the console keeps the last read, in listing order, and reads again when the store's cheap
marks say something moved: the newest event id (every transition writes one), the listed
count and the list rows (every cycle commit rewrites its list's row, TXT updates included).
Several instances on one store see each other's commits through the same marks.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from rblwatch.model import ListStatus, PairState
from rblwatch.store import Store
from rblwatch.views.listings import listing_order


@dataclass(frozen=True, slots=True)
class Marks:
    newest_event: int
    listed: int
    lists: tuple[ListStatus, ...]

    @property
    def live(self) -> str:
        """What the page's live refresh compares: a new event or listing changes it."""
        return f"{self.newest_event}-{self.listed}"


def marks(store: Store) -> Marks:
    newest = store.events(limit=1, newest_first=True)
    newest_id = (newest[0].id or 0) if newest else 0
    return Marks(newest_id, store.listed_count(), tuple(store.list_statuses()))


@dataclass(frozen=True, slots=True)
class Snapshot:
    marks: Marks
    pairs: list[PairState]  # every stored pair, in listing order

    def listings(self, lists: Collection[str]) -> list[PairState]:
        """The pairs of configured lists (a removed list's old rows are not shown)."""
        return [p for p in self.pairs if p.list in lists]


class SnapshotCache:
    """The last snapshot, read again only when the store's marks moved. Thread-safe: pages
    are built in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: Snapshot | None = None

    def get(self, store: Store) -> Snapshot:
        now = marks(store)
        with self._lock:
            last = self._last
            if last is not None and last.marks == now:
                return last
            snap = Snapshot(now, listing_order(store.pairs()))
            self._last = snap
            return snap


class _WithPairs:
    """A store whose `pairs()` answers from a snapshot; every other method is the store's."""

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


__all__ = ["Marks", "Snapshot", "SnapshotCache", "marks", "with_pairs"]
