"""The health keeper: each list's health as stored, and the probes that change it (SPEC §3).

A probe's verdict is stored, and raises `list_unhealthy` / `list_recovered` when it crosses
between healthy and not (`health.event_for`). The health is read from the store once and then
kept here (every change goes through `probe`), so cycles never wait on the store for it. What
a probe asks is the check kind's business: the keeper is handed the probe to run.

A probe of a list behind the default resolver that heard nothing at all may be the
resolver's failure, not the list's: the keeper then asks the resolver directly (`control`)
and changes the list's health only if the resolver answers; otherwise the resolver's state
(`resolverstate`, whose docstring has the rule) records the outage once for every list.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from rblwatch import health
from rblwatch.alerts.routing import receivers_for
from rblwatch.checks.base import Probed
from rblwatch.cluster import Fence
from rblwatch.logs import EVENT_LINE
from rblwatch.model import CycleCommit, DnsList, Event, Health
from rblwatch.resolverstate import ResolverKeeper, behind_resolver
from rblwatch.runtime import Runtime
from rblwatch.store import Fenced

log = logging.getLogger("rblwatch.engine")

# asks the default resolver whether it answers at all: None if it does, else why not
Control = Callable[[], Awaitable[str | None]]


def utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


class HealthKeeper:
    """Stored list health, one probe at a time per list."""

    def __init__(
        self,
        runtime: Runtime,
        clock: Callable[[], float],
        on_events: Callable[[Sequence[Event]], None],
        control: Control | None = None,
    ) -> None:
        self.rt = runtime
        self.clock = clock
        self._on_events = on_events
        self._control = control
        self.resolver = ResolverKeeper(runtime, clock, on_events)
        self._locks: dict[str, asyncio.Lock] = {}
        self._health: dict[str, Health] | None = None
        self._probed: dict[str, float] = {}  # when each list's last probe ended (clock)

    async def load(self, *, refresh: bool = False) -> None:
        """Read the stored health once (a no-op after that), or again with `refresh`: an
        instance that does not lead learns the leader's verdicts from the store."""
        await self.resolver.load(refresh=refresh)
        if refresh:
            self._health = {s.name: s.health for s in await self.rt.db.list_statuses()}
        elif self._health is None:
            stored = {s.name: s.health for s in await self.rt.db.list_statuses()}
            # two first cycles may read at once: the first read wins, and any probe since
            # has updated it, so a later (older) read must not replace it
            if self._health is None:
                self._health = stored

    async def wait_known(self, name: str, timeout: float, step: float = 0.5) -> None:
        """Read the stored health again until the list's is known, for up to `timeout`."""
        deadline = time.monotonic() + timeout
        while self.health_of(name) is Health.UNKNOWN and time.monotonic() < deadline:
            await asyncio.sleep(step)
            await self.load(refresh=True)

    def probe_due(self, name: str, after: float) -> bool:
        """Whether no probe of the list is under way and none ended since `after`."""
        lock = self._locks.get(name)
        return (lock is None or not lock.locked()) and self._probed.get(name, 0.0) <= after

    def health_of(self, name: str) -> Health:
        """A list's health as last stored (UNKNOWN until `load` or a probe)."""
        return Health.UNKNOWN if self._health is None else self._health.get(name, Health.UNKNOWN)

    async def probe(self, lst: DnsList, run: Callable[[], Awaitable[Probed]]) -> health.Verdict:
        """Run a list's probe, store its health, raise list_unhealthy/list_recovered."""
        # the health job and a cycle's first probe may run at once: one at a time per list,
        # so each compares against the other's stored result and an event is raised once
        async with self._locks.setdefault(lst.name, asyncio.Lock()):
            # with several instances, another (the leader before this one) may have stored
            # verdicts since this one last read: the event is decided from what is stored
            view = self.rt.view
            await self.load(refresh=view is not None and not view.solo)
            try:
                return await self._probe(lst, await run())
            finally:
                self._probed[lst.name] = self.clock()

    async def _probe(self, lst: DnsList, probed: Probed) -> health.Verdict:
        name, verdict = lst.name, probed.verdict
        if probed.queries and lst.daily_query_limit:
            # test-point queries are queries too: they count against the day's budget
            budget = CycleCommit(
                list=name, budget_day=utc_day(self.clock()), budget_queries=probed.queries
            )
            await self.rt.db.commit(budget)
        if behind_resolver(lst) and not await self._resolver_answers(verdict):
            return verdict  # the resolver's silence, not the list's: its health stays
        event = health.event_for(name, self.health_of(name), verdict, self.clock())
        view = self.rt.view
        try:
            stored = await self.rt.db.record_health(
                name,
                verdict.health,
                verdict.detail,
                self.clock(),
                event,
                receivers_for(self.rt.config.alerts.receivers, lst),
                None if view is None else Fence(view.owner, leader=True),
            )
        except Fenced:
            log.info("list %s: probe not stored: this instance no longer leads", name)
            return verdict
        assert self._health is not None
        self._health[name] = verdict.health
        if stored is not None:
            self._on_events([stored])
            log.warning("list %s: %s %s", name, stored.kind.value, verdict.detail, extra=EVENT_LINE)
        return verdict

    async def _resolver_answers(self, verdict: health.Verdict) -> bool:
        """Whether the list's verdict stands: the probe heard an answer, or it heard nothing
        while the resolver answers (a control query) and answered already before — a
        resolver just back may have missed the probe's queries, sent while it was away.
        What was heard is recorded as the resolver's state."""
        if not verdict.transport:
            await self.resolver.heard(True, "a list's test points answered")
            return True
        # without a control query to ask (a keeper for one-off use), the list's verdict stands
        why = None if self._control is None else await self._control()
        if why is None:
            was_up = self.resolver.reachable
            await self.resolver.heard(True, "a control query was answered")
            return was_up
        await self.resolver.heard(False, f"{verdict.detail}; control query: {why}")
        return False


__all__ = ["Control", "HealthKeeper", "utc_day"]
