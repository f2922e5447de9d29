"""The pairs view's inputs and counts for the console, kept while the store has not moved.

The overview's counts (listed, unknown, errors, acknowledged) are the pairs view's
(`views.pairs.pair_counts`) over every configured pair: 262,144 of them for a /16 on four
lists, ~50 ms to count. They change only when a cycle commits, an ack is written or time
makes a pair stale; so the count is kept under the snapshot's marks (every commit and every
ack moves them) and the daemon's targets, for at most `MAX_AGE` seconds, which bounds how
late a pair's turning stale (after two intervals: minutes at least) or a change no mark
shows is counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rblwatch.config import Config
from rblwatch.console.snapshot import Marks, Snapshot
from rblwatch.inventory import Found
from rblwatch.pairsource import PairsSource, acks_by_pair
from rblwatch.store import Store
from rblwatch.views.pairs import Acks, ListPairs, pair_counts
from rblwatch.views.status import PairCounts

MAX_AGE = 10.0  # seconds a count is kept while no mark moves


@dataclass(frozen=True, slots=True)
class Counted:
    """The pairs view's inputs at one moment, and its counts (in total and per list)."""

    lists: Sequence[ListPairs]
    acks: Acks
    total: PairCounts
    per_list: Mapping[str, PairCounts]
    now: float


def count(
    store: Store, snap: Snapshot, config: Config, found: Found | None, source: PairsSource
) -> Counted:
    now = time.time()
    statuses = snap.marks.lists
    lists = source.lists(config, found, snap.pairs, store.pair_errors(), statuses)
    acks = acks_by_pair(store)
    per_list = {lp.name: pair_counts([lp], now, acks) for lp in lists}
    return Counted(lists, acks, _sum(per_list.values()), per_list, now)


def _sum(counts: Iterable[PairCounts]) -> PairCounts:
    total = PairCounts(0, 0, 0, 0)
    for c in counts:
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


class CountsCache:
    """The last `Counted`, kept under the marks, config and targets it was counted for.
    Thread-safe: pages are built in worker threads."""

    def __init__(self, source: PairsSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._last: tuple[Marks, Config, Found | None, float, Counted] | None = None

    def get(self, store: Store, snap: Snapshot, config: Config, found: Found | None) -> Counted:
        with self._lock:
            last = self._last
        # identities for the config and targets: a reload makes a new Config, a cycle a new Found
        if (
            last is not None
            and last[0] == snap.marks
            and last[1] is config
            and last[2] is found
            and time.monotonic() - last[3] < MAX_AGE
        ):
            return last[4]
        counted = count(store, snap, config, found, self.source)
        with self._lock:
            self._last = (snap.marks, config, found, time.monotonic(), counted)
        return counted


__all__ = ["MAX_AGE", "Counted", "CountsCache", "count"]
