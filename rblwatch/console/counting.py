"""The pairs view's inputs and counts for the console, counted again only where the store moved.

The overview's counts (listed, unknown, errors, acknowledged) are the pairs view's
(`views.pairs.pair_counts`) over every configured pair: 262,144 of them for a /16 on four
lists, ~50 ms to count. A list's count changes only when its rows, its error rows, its list
row or its acks change, or when time makes its pairs stale; so each list's count is kept
under those (its rows as the snapshot holds them: the same object until that list is read
again) and the config and daemon targets it was counted for, for at most `MAX_AGE` seconds,
which bounds how late a pair's turning stale (after two intervals: minutes at least) is
counted. A cycle's commit recounts its own list, not the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rblwatch.config import Config
from rblwatch.console.snapshot import Snapshot
from rblwatch.inventory import Found
from rblwatch.model import Ack, ListStatus, PairError
from rblwatch.pairsource import PairsRead, PairsSource, acks_by_pair
from rblwatch.runtime import Runtime
from rblwatch.store import Store
from rblwatch.views.pairs import Acks, ListPairs, pair_counts
from rblwatch.views.status import PairCounts

MAX_AGE = 10.0  # seconds a list's count is kept while nothing of it moves


@dataclass(frozen=True, slots=True)
class Inputs:
    """The pairs view's inputs at one moment: each configured list's pairs, and the acks."""

    lists: Sequence[ListPairs]
    acks: Acks
    now: float


def total(counts: Iterable[PairCounts]) -> PairCounts:
    out = PairCounts(0, 0, 0, 0)
    for c in counts:
        out += c
    return out


@dataclass(slots=True)
class _Kept:
    """What one list's count was made from (compared to tell whether it still holds)."""

    rows: object  # the snapshot's rows of the list (compared by identity), None: no rows
    config: Config
    found: Found | None
    status: ListStatus | None
    errors: Mapping[str, PairError]
    acks: Mapping[tuple[str, str], Ack]
    at: float  # time.monotonic() when counted
    # the list's cycles send nothing now (resolver unreachable, list unhealthy): its pairs
    # are stale at once, so a change of it is a recount; and the targets never looked up
    stopped: bool = False
    unchecked: object = None
    counts: PairCounts | None = None  # None: not counted yet

    def holds(self, other: _Kept) -> bool:
        return (
            self.rows is other.rows
            and self.config is other.config
            and self.found is other.found
            and self.status == other.status
            and self.stopped == other.stopped
            and self.unchecked is other.unchecked
            and self.errors == other.errors
            and self.acks == other.acks
            and other.at - self.at < MAX_AGE
        )


class CountsCache:
    """The pairs view's inputs from a snapshot, and each list's count, kept while its inputs
    stand. Thread-safe: pages are built in worker threads."""

    def __init__(self, source: PairsSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._kept: dict[str, _Kept] = {}

    def inputs(self, store: Store, snap: Snapshot, config: Config, rt: Runtime) -> Inputs:
        """Each configured list's pairs (a few ms: dictionaries of the stored rows), with the
        daemon's targets and its record of what each list's last cycle covered (`rt`)."""
        now = time.time()
        read = PairsRead(self.source, rt.found, now, covered=rt.covered, found_for=rt.found_for)
        lists = self.source.lists(store, config, read, snap.pairs, snap.marks.lists)
        return Inputs(lists, acks_by_pair(store), now)

    def counts(
        self, store: Store, snap: Snapshot, config: Config, rt: Runtime
    ) -> tuple[PairCounts, dict[str, PairCounts]]:
        """The counts in total and per list; only the lists that moved are counted again."""
        found = rt.found
        got = self.inputs(store, snap, config, rt)
        per_list: dict[str, PairCounts] = {}
        now = time.monotonic()
        for lp in got.lists:
            mine = {k: a for k, a in got.acks.items() if k[1] == lp.name}
            made = _Kept(
                snap.by_list.get(lp.name),
                config,
                found,
                lp.status,
                dict(lp.errors),
                mine,
                now,
                stopped=lp.stopped,
                unchecked=lp.unchecked,
            )
            with self._lock:
                kept = self._kept.get(lp.name)
            if kept is None or not kept.holds(made):
                made.counts = pair_counts([lp], got.now, got.acks)
                kept = made
                with self._lock:
                    self._kept[lp.name] = kept
            assert kept.counts is not None
            per_list[lp.name] = kept.counts
        return total(per_list.values()), per_list


__all__ = ["MAX_AGE", "CountsCache", "Inputs", "total"]
