"""A run's retransmissions and timeouts: what happens to an attempt that is not answered.

Mixed into `loop.Batch` (which owns the state) rather than an object of its own: the expiry
and the retries read and change the pending table and the lookups' entries as the send and
receive loops do, and a separate object would put an attribute hop on each of those reads.

First attempts wait the run's current RTO (`path.Path`), all of them the same, so the
pending dict, in send order, is their deadline queue: the expiry reads it from the oldest
entry and stops at the first still running. A retry waits its own backed-off, jittered
timeout and is kept in a heap instead (lazily: an entry answered meanwhile is simply not
pending any more when its deadline comes). Neither costs the receive path anything. Expired
attempts are queued for retransmission and sent by the fill, paced with the first attempts
and before them, so a loss costs its lookup one RTO and never stalls the run. An attempt sent
again is still listened to until `resolver.timeout` after it left (`older`), and the last
attempt waits until `resolver.timeout` after the first: the RTO decides when to send again,
never that a lookup ends sooner than the configured timeout.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rblwatch import wire
from rblwatch.resolver.path import Path
from rblwatch.resolver.sockets import Sockets
from rblwatch.resolver.tcp import Ending
from rblwatch.resolver.vocab import (
    ATTEMPT,
    NO_RDATA,
    QUESTION,
    SENT,
    TEMPLATE,
    WIRE_KEY,
    Entry,
    Status,
)
from rblwatch.resolver.window import Window

if TYPE_CHECKING:
    from rblwatch.resolver.client import Resolver

_JITTER = 0.25  # a retry's timeout is stretched by up to this share, at random


class Retries:
    """The retransmission and expiry half of `loop.Batch` (see the module docstring)."""

    r: Resolver
    loop: asyncio.AbstractEventLoop
    window: Window
    sockets: Sockets
    pending: dict[int, Entry]
    done: asyncio.Future[None]
    timer: asyncio.TimerHandle | None

    def _init_retries(self) -> None:
        self.resend: deque[Entry] = deque()  # timed out, to be sent again (paced)
        # retries in flight by deadline: (deadline, seq, wire key, entry, attempt, sent at)
        self.retries: list[tuple[float, int, int, Entry, int, float]] = []
        self.seq = itertools.count()
        # attempts timed out and sent again, still listened to until `resolver.timeout` after
        # they left: wire key -> (until, entry); the order they timed out in, for purging
        self.older: dict[int, tuple[float, Entry]] = {}
        self.older_order: deque[int] = deque()

    # what Batch provides
    def _step(self, work: Callable[..., object] | None = None, *args: Any) -> bool:
        raise NotImplementedError

    def _drain(self, si: int) -> None:
        raise NotImplementedError

    def _transmit(self, e: Entry, bases: tuple[int, ...]) -> int:
        raise NotImplementedError

    def _finish(self, e: Entry, ending: Ending) -> None:
        raise NotImplementedError

    # -- sending again --------------------------------------------------------------------------

    def _resend(self) -> None:
        """Send the retries due, each to the next server in turn, as its server's window and
        pacer allow; the rest wait for the next fill."""
        resend, now = self.resend, time.monotonic()
        while resend:
            e = resend[0]
            servers = e[TEMPLATE].servers
            idxs = self.sockets.to(servers[e[ATTEMPT] % len(servers)])
            if idxs is None:
                resend.popleft()
                self._retry_or_finish(e, Status.NETWORK)
                continue
            path = self.sockets.paths[idxs[0]]
            if path.room(now) <= 0:
                self.window.pace(path)
                return
            resend.popleft()
            self._send(e, tuple(si << 16 for si in idxs), path, now)

    def _send(self, e: Entry, bases: tuple[int, ...], path: Path, now: float) -> None:
        """Send a retry, and queue its deadline: its server's RTO backed off, and jittered so
        that the retries of one loss do not all expire (and go again) at once.

        The last attempt waits until `resolver.timeout` after the first at least: a lookup
        ends as a timeout no sooner than the configured timeout, so a server slow to answer
        one name (a resolver recursing) still gets that long, while a loss costs one RTO.
        """
        sent = self._transmit(e, bases)
        self.window.count_sent(sent)
        key, attempt = e[WIRE_KEY], e[ATTEMPT]
        if self.pending.get(key) is e:
            path.retransmissions += 1
            deadline = now + path.retry_timeout(attempt) * (1 + _JITTER * random.random())
            if attempt == self.r.attempts - 1:
                deadline = max(deadline, e[SENT] + self.r.timeout)
            heapq.heappush(self.retries, (deadline, next(self.seq), key, e, attempt, now))

    def _older(self, key: int, data: bytes) -> Entry | None:
        """The lookup an earlier attempt of which `data` answers, made its current attempt so
        that the reply settles it; None if there is none, or it ended, or `data` is no reply
        to it. Retransmitting at the RTO does not make the first attempt's answer unwelcome:
        a reply is taken until `resolver.timeout` after its attempt left (RFC 6298's timer
        decides when to send again, not when to stop listening)."""
        item = self.older.pop(key, None)
        if item is None:
            return None
        until, e = item
        if until <= time.monotonic() or wire.answer_offset(data, e[QUESTION]) < 0:
            return None
        current, paths = e[WIRE_KEY], self.sockets.paths
        if self.pending.get(current) is e:  # the retry in flight is abandoned
            del self.pending[current]
            paths[current >> 16].in_flight -= 1
        elif not _remove(self.resend, e):  # ended already, or gone to TCP
            return None
        paths[key >> 16].in_flight += 1  # out of flight again as the reply is booked
        e[WIRE_KEY] = key
        self.pending[key] = e
        return e

    def _retry_or_finish(self, e: Entry, status: int) -> None:
        """An attempt failed: queue the next (sent by the fill, paced), or end the lookup."""
        e[ATTEMPT] += 1
        if e[ATTEMPT] < self.r.attempts:
            self.resend.append(e)
        else:
            self._finish(e, (status, 0, NO_RDATA, None))

    # -- timeouts -------------------------------------------------------------------------------

    def _first_timeout(self) -> float:
        """How long a first attempt waits: the RTO, unless it is also the last attempt (then
        `resolver.timeout`: an early timeout would only end the lookup early)."""
        return self.window.rto() if self.r.attempts > 1 else self.r.timeout

    def _arm_timer(self) -> None:
        tick = max(0.001, min(self.r.tick, self._first_timeout() / 4))
        self.timer = self.loop.call_later(tick, self._on_timer)

    def _on_timer(self) -> None:
        if self._step(self._expire) and not self.done.done():
            self._arm_timer()

    def _due(self, now: float) -> bool:
        """Whether an attempt is past its timeout (the oldest first attempt, or a retry)."""
        if self.retries and self.retries[0][0] <= now:
            return True
        for e in self.pending.values():
            if not e[ATTEMPT]:
                return bool(e[SENT] <= now - self._first_timeout())
        return False

    def _expire(self) -> None:
        if not self._due(time.monotonic()):
            return
        # replies already waiting are read first: a loop running late (a busy process) must
        # not take what is merely unread for lost
        for si in range(len(self.sockets.fds)):
            self._drain(si)
        now = time.monotonic()
        pending = self.pending
        # every first attempt waits the same RTO and the dict keeps send order, so the oldest
        # are the first to expire: stop at the first one still running (retries: the heap)
        sent_by = now - self._first_timeout()
        expired: list[tuple[Entry, float]] = []  # and when the expired attempt was sent
        for e in pending.values():
            if e[ATTEMPT]:
                continue
            if e[SENT] > sent_by:
                break
            expired.append((e, e[SENT]))
        retries = self.retries
        while retries and retries[0][0] <= now:
            _deadline, _seq, key, e, attempt, sent_at = heapq.heappop(retries)
            if pending.get(key) is e and e[ATTEMPT] == attempt:
                expired.append((e, sent_at))
        paths, older, timeout = self.sockets.paths, self.older, self.r.timeout
        for e, sent_at in expired:
            key = e[WIRE_KEY]
            del pending[key]
            self.r.stats.timeouts += 1
            paths[key >> 16].lost(sent_at, now, retry=e[ATTEMPT] > 0)
            if sent_at + timeout > now and e[ATTEMPT] + 1 < self.r.attempts:
                older[key] = (sent_at + timeout, e)
                self.older_order.append(key)
            self._retry_or_finish(e, Status.TIMEOUT)
        self._purge(now)

    def _purge(self, now: float) -> None:
        """Stop listening to earlier attempts past `resolver.timeout` (roughly in order: one
        that timed out late is kept until those before it go)."""
        order, older = self.older_order, self.older
        while order:
            key = order[0]
            item = older.get(key)
            if item is not None and item[0] > now:
                return
            order.popleft()
            if item is not None:
                del older[key]


def _remove(queue: deque[Entry], e: Entry) -> bool:
    """Take `e` itself (not an equal list) out of `queue`; whether it was there."""
    for i, other in enumerate(queue):
        if other is e:
            del queue[i]
            return True
    return False
