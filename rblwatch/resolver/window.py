"""A run's share of the resolver's window, and its query rate (a list's max_qps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rblwatch.resolver.client import Resolver


class Window:
    """How many lookups one run may start now, and the books of those it started.

    Runs at the same time (the daemon's lists) share the resolver's max_in_flight: each gets
    an equal share of it, so one list's cycle cannot starve another's.
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
        self.on_refill = refill  # called when max_qps allows more queries again
        self.started = time.monotonic()
        self.in_flight = 0
        self.first_sends = 0  # queries started, for max_qps
        self.sent = 0  # datagrams sent, retries included (a list's query budget counts these)
        self.refill: asyncio.TimerHandle | None = None

    def room(self) -> int:
        """How many lookups may start now: the window's free places, within max_qps."""
        r = self.r
        share = -(-r.max_in_flight // max(1, len(r.runs)))
        room = min(r.max_in_flight - r.in_flight, share - self.in_flight)
        if room <= 0:
            return 0
        return room if self.max_qps is None else self._qps_room(room)

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
