"""This instance among its peers: the heartbeat, takeovers, and the store's health as seen here.

Every `tick_every(lease)` seconds the instance ticks (`Store.tick`, see `rblwatch.cluster`):
its row and leases are renewed, shards are released or claimed towards a fair share, and the
leader's lease is taken or renewed. The view it returns is `Runtime.view`, which the engine's
cycles (the shards to look up, the fence of their commit), the health probes and the
Alertmanager re-posts (the leader's) read.

Shards newly taken on a later tick (a dead peer's, or a rebalance's) whose cycle is due run
at once, or when due, through `on_taken`: a list never waits a whole interval more because
its shard changed hands.

A tick that fails means the store does not answer: `Runtime.store_ok` goes false (`/-/ready`
answers 503) until one succeeds. Past a lease without a successful tick this instance no
longer counts on its leases or on leading: another instance may hold them by now (its commits
would be refused anyway; this keeps it from probing and re-posting meanwhile).

With PostgreSQL, a thread LISTENs for the commits' NOTIFY and wakes the alert senders, so a
row committed by any instance is sent at once; polling remains the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from rblwatch.checks import subjects
from rblwatch.cluster import Instance, View, takeovers, tick_every
from rblwatch.runtime import Runtime
from rblwatch.store import StoreError

log = logging.getLogger("rblwatch.peers")

# (list, shards, delay in seconds): run a cycle of these shards of the list after the delay
OnTaken = Callable[[str, set[int], float], None]


def new_instance(version: str, *, host: str | None = None) -> Instance:
    """This process as its peers see it: an id unique across hosts and restarts."""
    host = host or socket.gethostname()
    pid = os.getpid()
    now = time.time()
    return Instance(f"{host}-{pid}-{secrets.token_hex(3)}", host, pid, version, now, now)


class Peers:
    """The heartbeat task and the outbox listener of one daemon."""

    def __init__(self, runtime: Runtime, me: Instance, on_taken: OnTaken | None = None) -> None:
        self.rt = runtime
        self.me = me
        self.on_taken = on_taken
        self.on_outbox: Callable[[], None] | None = None
        runtime.me = me
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None

    @property
    def lease(self) -> float:
        return self.rt.config.store.lease

    async def join(self) -> View:
        """The first tick, before the first cycle: a store that does not answer now fails the
        start (StoreError), as opening it would have."""
        view = await self._tick()
        self._settle(view, first=True)
        return view

    async def run(self) -> None:
        """Tick until cancelled; a failed tick is logged once per outage, never fatal."""
        while True:
            await asyncio.sleep(tick_every(self.lease))
            try:
                view = await self._tick()
            except StoreError as exc:
                self._store_failed(exc)
                continue
            except Exception:  # a bug must not end the heartbeat (the peers would take over)
                log.exception("heartbeat failed")
                continue
            self._settle(view, first=False)

    async def _tick(self) -> View:
        names = [x.name for x in subjects(self.rt.config)]
        return await self.rt.db.tick(self.me, names, self.lease)

    def _settle(self, view: View, *, first: bool) -> None:
        if not self.rt.store_ok:
            log.warning("store answers again; ready")
        self.rt.store_ok = True
        self._last_ok = time.monotonic()
        old = self.rt.view
        self.rt.view = view
        if old is not None and old.leader != view.leader:
            log.info("this instance %s leads", "now" if view.leader else "no longer")
        if view.taken and not first:
            log.info(
                "took %d shard(s) (%d instances alive)",
                len(view.taken),
                view.live,
            )
        if first or self.on_taken is None:
            return  # the first cycles are the scheduler's own
        intervals = self._intervals()
        for name, (delay, shards) in takeovers(view.taken, intervals, view.now).items():
            self.on_taken(name, shards, delay)

    def _intervals(self) -> dict[str, float]:
        sched = self.rt.config.schedule
        return {x.name: x.interval or sched.interval for x in subjects(self.rt.config)}

    def _store_failed(self, exc: StoreError) -> None:
        if self.rt.store_ok:
            log.error("store unreachable, not ready until it answers: %s", exc)
        self.rt.store_ok = False
        view = self.rt.view
        if view is not None and time.monotonic() - self._last_ok > self.lease:
            if view.leases or view.leader:
                log.warning("no heartbeat for a lease: counting on no shard and not leading")
            self.rt.view = dataclasses.replace(view, leases=(), leader=False, taken=())

    async def leave(self) -> None:
        """A clean stop: hand the leases back so the peers take them at once."""
        self._stop.set()
        with contextlib.suppress(StoreError):
            await self.rt.db.leave(self.me.id)

    # -- the outbox listener (PostgreSQL's NOTIFY) ---------------------------------------------

    def listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the listener thread if the store can notify; `on_outbox` runs on `loop`."""
        wait = self.rt.store.outbox_waiter()
        if wait is None:
            return

        def run() -> None:
            while not self._stop.is_set():
                if wait(1.0) and self.on_outbox is not None:
                    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                        loop.call_soon_threadsafe(self.on_outbox)

        self._listener = threading.Thread(target=run, name="rblwatch-outbox", daemon=True)
        self._listener.start()


__all__ = ["OnTaken", "Peers", "new_instance"]
