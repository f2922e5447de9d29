"""When things run: per-list cycles, health probes and confirmation rounds (SPEC §5).

APScheduler 3 (`AsyncIOScheduler`) drives them on the daemon's event loop. A list's cycle job
runs every `interval` (with `jitter`) and never overlaps itself (`max_instances=1`: a cycle
still running when the next is due makes that one skipped, and counted). Each cycle has a
deadline shorter than its interval; one that reaches it is cut: its run stops sending, what
was answered is committed, the rest is counted as not checked (`engine`), and the cycle is
counted as overrun (`rblwatch_cycles_overrun_total`).

A cycle skipped because its list was not healthy (or not yet known to be: a first probe that
timed out), or because the resolver was unreachable, is owed: when a later probe finds the
list healthy behind a reachable resolver, the list cycles at once rather than at the next
point of its interval, which for a new list with a long interval would leave it unwatched
for hours after one slow probe at start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
from collections.abc import Callable, Coroutine
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rblwatch.checks import subject_of, subjects
from rblwatch.engine import CycleReport, Engine
from rblwatch.model import Health, Reason, Subject
from rblwatch.plan import DEADLINE_SHARE
from rblwatch.resolverstate import SKIPPED as RESOLVER_SKIPPED
from rblwatch.runtime import Runtime
from rblwatch.store import StoreError

log = logging.getLogger("rblwatch.scheduler")

GRID_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)  # cycles fall on multiples of the interval
TAKEOVER_SLACK_S = 1.0  # a takeover due this close to the list's next cycle waits for it
FIRST_SLACK_S = 60.0  # a grid cycle this soon after start (or interval / 10) is the first
# the skips that a healthy probe later makes up for with a cycle at once
OWED_SKIPS = frozenset({Reason.LIST_UNHEALTHY.value, RESOLVER_SKIPPED})


def cycle_deadline(interval: float) -> float:
    # no floor: at the shortest interval (1s) a floor of 1s would let a cycle run into the
    # next one's start, which is then skipped as well as this one counted as overrun
    return interval * DEADLINE_SHARE


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def grid_after(now: dt.datetime, interval: float) -> dt.datetime:
    """The first point of the interval's grid (from GRID_EPOCH) after `now`."""
    since = (now - GRID_EPOCH).total_seconds()
    return GRID_EPOCH + dt.timedelta(seconds=(math.floor(since / interval) + 1) * interval)


class Scheduler:
    """Owns the APScheduler instance and the jobs derived from the current config."""

    def __init__(self, runtime: Runtime, engine: Engine) -> None:
        self.rt = runtime
        self.engine = engine
        self.aps = AsyncIOScheduler(timezone=dt.UTC)
        self.aps.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._confirm: dict[str, set[str]] = {}
        self._takeover: dict[str, set[int]] = {}  # per list, shards taken over, to cycle
        self._timings: dict[str, tuple[float, float, float]] = {}  # per list, as scheduled
        self._owed: set[str] = set()  # lists whose last cycle was skipped for their health
        engine.on_confirm = self.confirm_later

    def start(self) -> None:
        self.schedule_all()
        self.aps.start()

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    # -- jobs -------------------------------------------------------------------------------

    def schedule_all(self) -> None:
        """(Re)create the lists' jobs from the current config; used at start and on reload.

        A list whose timing is unchanged keeps its jobs: a reload must not make every list
        probe and cycle again at once (that spends query budgets for nothing). Its jobs read
        the list's other settings from the runtime's config when they run.
        """
        current = subjects(self.rt.config)
        wanted = {lst.name: self._timing(lst) for lst in current}
        for name, timing in list(self._timings.items()):
            if wanted.get(name) != timing:
                for prefix in ("cycle:", "first:", "health:"):
                    if self.aps.get_job(prefix + name) is not None:
                        self.aps.remove_job(prefix + name)
                del self._timings[name]
                self._owed.discard(name)  # a list added again starts with its first cycle
        self.rt.stats.ensure_lists(wanted)
        for lst in current:
            if lst.name not in self._timings:
                self._add_list(lst)
                self._timings[lst.name] = wanted[lst.name]

    def _timing(self, lst: Subject) -> tuple[float, float, float]:
        sched = self.rt.config.schedule
        jitter = sched.jitter if lst.jitter is None else lst.jitter
        return (lst.interval or sched.interval, jitter, sched.health_interval)

    def _add_list(self, lst: Subject) -> None:
        sched = self.rt.config.schedule
        interval = lst.interval or sched.interval
        jitter = sched.jitter if lst.jitter is None else lst.jitter
        # the first probe at once, the first cycle right after it within the jitter window
        self.aps.add_job(
            self._job(self._health, lst.name),
            IntervalTrigger(seconds=sched.health_interval),
            id=f"health:{lst.name}",
            next_run_time=_now(),
            max_instances=1,
            coalesce=True,
        )
        # cycles on a grid of the interval from a fixed epoch: instances sharing a database
        # run a list's cycle at the same moments, each over its shards, so a round of the
        # list takes one cycle's time however the work is split
        self.aps.add_job(
            self._job(self._cycle, lst.name, interval),
            IntervalTrigger(seconds=interval, jitter=jitter or None, start_date=GRID_EPOCH),
            id=f"cycle:{lst.name}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(interval)),
        )
        # and one at once (after the probe, within the jitter window), unless the grid's
        # first comes about as soon: a new list is not left unwatched for an interval
        now = _now()
        first = now + dt.timedelta(seconds=1 + random.uniform(0, jitter))
        slack = dt.timedelta(seconds=min(FIRST_SLACK_S, interval / 10))
        if grid_after(now, interval) > first + slack:
            self.aps.add_job(
                self._job(self._cycle, lst.name, interval),
                DateTrigger(run_date=first),
                id=f"first:{lst.name}",
                replace_existing=True,
                misfire_grace_time=None,
            )

    @staticmethod
    def _job(
        fn: Callable[..., Coroutine[Any, Any, None]], *args: Any
    ) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            try:
                await fn(*args)
            except asyncio.CancelledError:
                # the daemon is stopping (SIGTERM) and abandons the job mid-way, as it must:
                # no failure, so not APScheduler's "raised an exception" with a traceback
                log.debug("job %s abandoned: the daemon is stopping", fn.__name__)

        return run

    async def _cycle(self, name: str, interval: float, shards: set[int] | None = None) -> None:
        deadline = cycle_deadline(interval)
        try:
            if shards is None:
                report = await self.engine.cycle(name, deadline=deadline)
            else:
                report = await self.engine.cycle(name, deadline=deadline, shards=shards)
            if report.cut:
                self._cut(report, deadline)
            if report.skipped in OWED_SKIPS:
                self._owed.add(name)
            elif not report.skipped:
                self._owed.discard(name)
        except StoreError as exc:
            # the database is away: nothing was decided, so nothing is lost; the next cycle
            # after it is back looks again (the error is the peers' to report, once)
            self.rt.stats.list(name).store_down += 1
            log.warning("list %s: cycle not run, the store did not answer: %s", name, exc)
        except Exception:
            log.exception("list %s: cycle failed", name)

    def _cut(self, report: CycleReport, deadline: float) -> None:
        name = report.list_name
        self.rt.stats.list(name).cycles_overrun += 1
        log.warning(
            "list %s: cycle cut at its %.0fs deadline: %s of %s lookups answered and "
            "committed, %s not checked (they keep their state)",
            name,
            deadline,
            f"{report.lookups - report.unchecked:,}",
            f"{report.lookups:,}",
            f"{report.unchecked:,}",
        )

    async def _health(self, name: str) -> None:
        try:
            await self.engine.probe(name)
            await self._make_up(name)
        except StoreError as exc:
            log.warning("list %s: health probe not stored, the store did not answer: %s", name, exc)
        except Exception:
            log.exception("list %s: health probe failed", name)

    async def _make_up(self, name: str) -> None:
        """A cycle at once for a list whose last was skipped for its health, now healthy,
        unless its next cycle comes about as soon."""
        if name not in self._owed:
            return
        if not self.engine.leads():  # the leader probes: its verdict is in the store
            await self.engine.keeper.load(refresh=True)
        if self.engine.health_of(name) is not Health.HEALTHY:
            return
        found = subject_of(self.rt.config, name)
        if found is None or self.engine.resolver_down(found[1]):
            return
        self._owed.discard(name)
        interval = self._timings.get(name, (self.rt.config.schedule.interval,))[0]
        regular = self.aps.get_job(f"cycle:{name}")
        upcoming = regular.next_run_time if regular is not None else None
        slack = dt.timedelta(seconds=min(FIRST_SLACK_S, interval / 10))
        if upcoming is not None and upcoming <= _now() + slack:
            return  # the grid's cycle comes as soon: no second one beside it, on the budget
        log.info("list %s: healthy again, its skipped cycle runs now", name)
        self.aps.add_job(
            self._job(self._cycle, name, interval),
            DateTrigger(run_date=_now()),
            id=f"first:{name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        if event.job_id.startswith("cycle:"):
            name = event.job_id.removeprefix("cycle:")
            self.rt.stats.list(name).cycles_skipped += 1
            log.warning("list %s: cycle skipped (the previous one is still running)", name)

    # -- takeovers ----------------------------------------------------------------------------

    def takeover(self, name: str, shards: set[int], delay: float) -> None:
        """Cycle shards this instance has just taken (`rblwatch.peers`) in `delay` seconds,
        rather than at its next scheduled cycle of the list; batched per list."""
        run_at = _now() + dt.timedelta(seconds=delay)
        regular = self.aps.get_job(f"cycle:{name}")
        upcoming = regular.next_run_time if regular is not None else None
        if upcoming is not None and upcoming <= run_at + dt.timedelta(seconds=TAKEOVER_SLACK_S):
            return  # the list's next cycle comes as soon, over every shard held then
        self._takeover.setdefault(name, set()).update(shards)
        job = self.aps.get_job(f"takeover:{name}")
        if job is not None and job.next_run_time is not None and job.next_run_time <= run_at:
            return  # an earlier round takes these too
        self.aps.add_job(
            self._job(self._takeover_round, name),
            DateTrigger(run_date=run_at),
            id=f"takeover:{name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _takeover_round(self, name: str) -> None:
        shards = self._takeover.pop(name, set())
        timing = self._timings.get(name)
        if shards and timing is not None:
            await self._cycle(name, timing[0], shards)

    # -- confirmation rounds ----------------------------------------------------------------

    def confirm_later(self, name: str, targets: set[str]) -> None:
        """Re-query pairs with a pending change after confirm_delay (SPEC §4), batched per list."""
        waiting = self._confirm.setdefault(name, set())
        first = not waiting
        waiting.update(targets)
        if not first:
            return  # a round is already scheduled and will take these too
        delay = self.rt.config.schedule.confirm_delay
        self.aps.add_job(
            self._job(self._confirm_round, name),
            DateTrigger(run_date=_now() + dt.timedelta(seconds=delay)),
            id=f"confirm:{name}",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _confirm_round(self, name: str) -> None:
        targets = self._confirm.pop(name, set())
        if not targets:
            return
        try:
            await self.engine.cycle(name, only=targets)
        except Exception:
            log.exception("list %s: confirmation round failed", name)
