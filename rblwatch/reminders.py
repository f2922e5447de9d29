"""Reminders (`receivers[].repeat_interval`): a listing nobody works on is not forgotten.

Once a minute the leader (alone: `Engine.leads`; several instances write one reminder, not one
each) looks at every pair listed now on a block list and not acknowledged, and for each
receiver with a `repeat_interval` that takes the pair's listings (the rule that picks a listing's
outbox rows, `alerts.routing`) asks whether `repeat_interval` has passed since the listing
began or since that receiver's last reminder of it. The receivers due for a pair share one
`reminder` event: in the history, with an outbox row for each of them, written in one
transaction per list and fenced by the leader's lease. So reminders are durable like every
event (retried, grouped, sent after a crash) and a crash between sweeps loses none: the next
sweep finds them due still.

Which receivers a reminder went to is its `detail` ("to ops, chat"; receiver names hold no
comma or space): the history is the only record of what was reminded, read once when this
instance starts leading (`Store.reminders_sent`) and kept in memory while it leads.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from rblwatch.alerts.routing import receivers_for
from rblwatch.cluster import Fence
from rblwatch.config import Receiver
from rblwatch.model import CycleCommit, DnsList, Event, EventKind, PairState, PairStatus, Purpose
from rblwatch.runtime import Runtime
from rblwatch.store import Fenced, StoreError

log = logging.getLogger("rblwatch.reminders")

SWEEP_INTERVAL = 60.0  # seconds; config's shortest repeat_interval is one minute
_PREFIX = "to "

# (target, list, receiver) → when that receiver was last reminded of the pair
Last = dict[tuple[str, str, str], float]
Acked = Callable[[str, str], bool]  # (target, list) → whether an active ack silences it


def detail_of(names: Iterable[str]) -> str:
    return _PREFIX + ", ".join(names)


def receivers_in(detail: str) -> list[str]:
    """The receivers a reminder's `detail` names."""
    return [n for n in detail.removeprefix(_PREFIX).split(", ") if n]


def last_of(sent: Iterable[tuple[str, str, str, float]]) -> Last:
    """`Store.reminders_sent` rows as each receiver's last reminder of each pair."""
    last: Last = {}
    for target, list_name, detail, at in sent:
        for name in receivers_in(detail):
            key = (target, list_name, name)
            last[key] = max(at, last.get(key, -math.inf))
    return last


def due_reminders(
    pairs: Iterable[PairState],
    lists: Mapping[str, DnsList],
    receivers: Sequence[Receiver],
    last: Last,
    now: float,
    acked: Acked,
) -> list[Event]:
    """The reminder events due at `now`: one per listed, unacknowledged pair of a configured
    block list with at least one receiver due, naming those receivers."""
    reminded = [r for r in receivers if r.repeat_interval is not None]
    pick = {name: receivers_for(reminded, lst) for name, lst in lists.items()}
    every = {r.name: r.repeat_interval or math.inf for r in reminded}
    out = []
    for pair in pairs:
        lst = lists.get(pair.list)
        if pair.status is not PairStatus.LISTED or lst is None or lst.purpose is Purpose.ALLOW:
            continue
        if acked(pair.target, pair.list):
            continue
        listing = Event(EventKind.LISTED, pair.list, now, target=pair.target, group=pair.group)
        due = [
            name
            for name in pick[pair.list](listing)
            if now
            >= max(pair.since, last.get((pair.target, pair.list, name), -math.inf)) + every[name]
        ]
        if due:
            out.append(_reminder(pair, now, due))
    return out


def _reminder(pair: PairState, now: float, names: Sequence[str]) -> Event:
    """The listing as it stands, `since` when it began."""
    return Event(
        EventKind.REMINDER,
        pair.list,
        now,
        target=pair.target,
        group=pair.group,
        codes=pair.codes,
        meanings=pair.meanings,
        txt=pair.txt,
        since=pair.since,
        detail=detail_of(names),
    )


class Reminders:
    """The sweep, run by the daemon. `acked` says whether a pair's listing is acknowledged;
    None: by the store's active acks, read at each sweep."""

    def __init__(
        self,
        runtime: Runtime,
        acked: Acked | None = None,
        *,
        clock: Callable[[], float] = time.time,
        interval: float = SWEEP_INTERVAL,
    ) -> None:
        self.rt = runtime
        self.acked = acked
        self.clock = clock
        self.interval = interval
        self._last: Last | None = None  # None: read from the history when next leading

    def leads(self) -> bool:
        view = self.rt.view
        return view is None or view.leader

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # one bad sweep must not end reminders
                log.exception("reminders: a sweep failed")
                self._last = None
            await asyncio.sleep(self.interval)

    async def sweep(self) -> list[Event]:
        """Write the reminders due now; the events written."""
        receivers = [r for r in self.rt.config.alerts.receivers if r.repeat_interval is not None]
        if not self.leads():
            self._last = None  # another leads: what it reminds of is read when this one does
            return []
        if not receivers:
            return []
        if self._last is None:
            self._last = last_of(await self.rt.db.reminders_sent())
        lists = {x.name: x for x in self.rt.config.lists}
        now = self.clock()
        pairs = await self.rt.db.pairs()
        acked = self.acked
        if acked is None:
            active = {(a.target, a.list) for a in await self.rt.db.acks() if a.active(now)}

            def acked(target: str, list_name: str) -> bool:
                return (target, list_name) in active

        due = due_reminders(pairs, lists, receivers, self._last, now, acked)
        written: list[Event] = []
        for name in dict.fromkeys(e.list for e in due):
            written += await self._write(name, [e for e in due if e.list == name])
        for event in written:
            for receiver in receivers_in(event.detail):
                self._last[(event.target or "", event.list, receiver)] = event.at
        if written:
            log.info("reminders: %d open listings reminded of", len(written))
            if self.rt.on_events is not None:
                self.rt.on_events()
        return written

    async def _write(self, list_name: str, events: list[Event]) -> list[Event]:
        view = self.rt.view
        fence = None if view is None or view.solo else Fence(view.owner, leader=True)
        commit = CycleCommit(list=list_name, events=events)
        try:
            return await self.rt.db.commit(commit, lambda e: receivers_in(e.detail), fence)
        except (StoreError, Fenced) as exc:  # due still: the next sweep writes them
            log.warning("reminders: %s: not written: %s", list_name, exc)
            return []


__all__ = [
    "SWEEP_INTERVAL",
    "Reminders",
    "detail_of",
    "due_reminders",
    "last_of",
    "receivers_in",
]
