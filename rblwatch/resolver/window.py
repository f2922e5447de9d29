"""A run's share of the resolver's window and of its nameservers' windows, and its query rate.

How many lookups a run may start is the least of: the resolver's free places under
`max_in_flight`; the run's fair share of each nameserver's congestion window (`path.Path`),
split between the runs sending to that server at the same time; what each server's pacer lets
go now; and a list's max_qps. When the pacer or max_qps is what holds the run back, a timer
wakes it when they let more go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rblwatch.resolver.path import Path

if TYPE_CHECKING:
    from rblwatch.resolver.client import Resolver

Server = tuple[str, int]


class Window:
    """How many lookups one run may start now, and the books of those it started.

    Runs at the same time (the daemon's lists) share the resolver's max_in_flight and each
    server's window: each gets an equal share, so one list's cycle cannot starve another's.
    """

    def __init__(
        self,
        resolver: Resolver,
        loop: asyncio.AbstractEventLoop,
        max_qps: float | None,
        refill: Callable[[], object],
    ) -> None:
        self.r = resolver
        self.loop = loop
        self.max_qps = max_qps
        self.on_refill = refill  # called when max_qps or a pacer allows more queries again
        self.started = time.monotonic()
        self.in_flight = 0
        self.first_sends = 0  # queries started, for max_qps
        self.sent = 0  # datagrams sent, retries included (a list's query budget counts these)
        self.refill: asyncio.TimerHandle | None = None
        self.paths: list[Path] = []  # the servers this run sends to

    def path_to(self, server: Server) -> Path:
        """The resolver's path to `server`, this run counted among its users."""
        path = self.r.path(server)
        if path not in self.paths:
            self.paths.append(path)
            path.users += 1
        return path

    def room(self, now: float) -> int:
        """How many lookups may start now: the windows' free places, within max_qps."""
        r = self.r
        room = r.max_in_flight - r.in_flight
        if not self.paths:  # nothing sent yet (or to no server): the resolver's share
            room = min(room, -(-r.max_in_flight // max(1, len(r.runs))) - self.in_flight)
        for p in self.paths:
            share = -(-min(r.max_in_flight, int(p.cwnd)) // max(1, p.users))
            room = min(room, share - self.in_flight, p.room(now))
        if room <= 0:
            for p in self.paths:
                self.pace(p)
            return 0
        return room if self.max_qps is None else self._qps_room(room)

    def pace(self, path: Path) -> None:
        """Wake the run when `path`'s pacer lets a datagram go, if that is what holds it."""
        wait = path.wait()
        if wait > 0 and self.refill is None and int(path.cwnd) > path.in_flight:
            self.refill = self.loop.call_later(wait, self._refilled)

    def rto(self) -> float:
        """The retransmission timeout of the run's first attempts: its slowest server's."""
        return max((p.rto for p in self.paths), default=self.r.timeout)

    def _qps_room(self, room: int) -> int:
        """How many queries may start now under max_qps; arms a refill when none may."""
        assert self.max_qps is not None
        allowed = int((time.monotonic() - self.started) * self.max_qps) + 1 - self.first_sends
        if allowed <= 0 and self.refill is None:
            self.refill = self.loop.call_later(1 / self.max_qps, self._refilled)
        return min(room, allowed)

    def _refilled(self) -> None:
        self.refill = None
        self.on_refill()

    def account(self, started: int, sent: int) -> None:
        """Book a burst of first attempts: in flight here and resolver-wide, and sent."""
        r = self.r
        self.in_flight += started
        r.in_flight += started
        self.first_sends += started
        r.stats.sent += sent
        self.sent += sent

    def count_sent(self, sent: int) -> None:
        self.r.stats.sent += sent
        self.sent += sent

    def release(self, done: int) -> None:
        """Lookups that ended: their places are free again."""
        self.in_flight -= done
        self.r.in_flight -= done

    def close(self) -> None:
        """A run cancelled (a cycle past its deadline) or failed leaves lookups unanswered:
        give their places back, or the resolver, which outlives the run, stays full."""
        if self.refill is not None:
            self.refill.cancel()
        self.release(self.in_flight)
        for p in self.paths:
            p.users -= 1
        self.paths.clear()
