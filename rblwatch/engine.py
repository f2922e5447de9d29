"""A cycle: one list's targets → outcomes → the commit, written through the store.

The orchestration only; each job lives in its own module: the targets and their query labels
(`inventory`), list health (`listhealth`), what to look up and how to read it (the check
kinds in `checks/`), and what the outcomes do to the stored state (`commitplan`, pure).
While a list is not healthy, or the resolver it is asked through is unreachable
(`resolverstate`), its cycles send no lookups and change nothing.

Writes per cycle: the changed rows, new targets' `seen` entries, events (with their outbox
rows), one aggregate row and the day's query count — in one transaction, through `rt.db`.

A cycle that reaches its deadline is cut, not thrown away: its run stops sending, and what
was answered by then is decided and committed like any cycle's. The targets not answered
keep their state and are counted (and have error rows) as not checked (`Reason.DEADLINE`);
the list's row says the cycle was cut (`last_cycle_skipped` "deadline") and its last
successful cycle does not move; nothing is pruned. Every query sent is charged to the day's
budget and `rblwatch_queries_total`, whether the answers are used or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rblwatch import health, hostnames, plan, resolverstate
from rblwatch.alerts.routing import receivers_for
from rblwatch.checks import CHECK_KINDS, CheckIO, CheckKind, CheckRun, Probed, subject_of
from rblwatch.cluster import SHARDS, Fence, shard_of
from rblwatch.commitplan import CycleInput, PlannedCommit, is_news, list_status, plan_steps
from rblwatch.cyclelog import log_events
from rblwatch.inventory import Found, Inventory, Slice
from rblwatch.listhealth import HealthKeeper, utc_day
from rblwatch.model import (
    CycleCommit,
    DnsList,
    Event,
    EventKind,
    Health,
    ListStatus,
    PairError,
    PairState,
    Reason,
    Subject,
    Target,
    TargetKind,
)
from rblwatch.resolver import Durations, Resolver, system_nameservers
from rblwatch.resolvercache import ResolverCache
from rblwatch.runtime import Runtime
from rblwatch.stats import DURATION_BUCKETS
from rblwatch.store import Fenced, Store
from rblwatch.targetlist import ValueSet

log = logging.getLogger("rblwatch.engine")

ConfirmCallback = Callable[[str, set[str]], None]
FOLLOWER_WAIT_S = 10.0  # for the leader's first verdict on a list, before skipping a cycle
DECIDE_SLICE_S = 0.005  # of a big cycle's decisions on the loop between its other callbacks


@dataclass(slots=True)
class CycleReport:
    """What one cycle did (for logs, tests and the scheduler)."""

    list_name: str
    lookups: int = 0
    errors: int = 0
    events: list[Event] = field(default_factory=list)
    confirm: set[str] = field(default_factory=set)
    skipped: str = ""  # why no lookups were sent, if none were
    cut: bool = False  # stopped at its deadline: `unchecked` targets not answered by then
    unchecked: int = 0


@dataclass(slots=True)
class _Cycle:
    """One cycle under way: its list and kind, its targets, when it began."""

    lst: Subject
    kind: CheckKind[Any]
    found: Found
    mine: Slice
    start: float
    full: bool  # every target of the list, not a confirmation round's few
    report: CycleReport
    # with several instances: the shards this cycle covers, and the leases its commit needs
    held: frozenset[int] | None = None
    fence: Fence | None = None
    reserved: int = 0  # queries counted against the day's budget before they were sent


class Engine:
    """Runs cycles and health probes for the daemon, against the runtime's current config.

    Longer than the house's ~250 lines on purpose: a cycle's steps (health, targets, shards,
    budget, lookups, decisions, the fenced commit) read in order in one class; what each step
    does lives in its own module.
    """

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.time) -> None:
        self.rt = runtime
        self.clock = clock
        self.on_confirm: ConfirmCallback | None = None
        self.inventory = Inventory(self._resolve)
        self.keeper = HealthKeeper(runtime, clock, self._count_events, self._control)
        self.kinds: dict[str, CheckKind[Any]] = {n: make() for n, make in CHECK_KINDS.items()}
        self._resolvers = ResolverCache()
        runtime.stats.nameservers = self._resolvers.gauges
        self._seen: dict[str, ValueSet] = {}
        # per list, the (shard, epoch) leases of its last cycle
        self._held: dict[str, frozenset[tuple[int, int]]] = {}
        self._parts: dict[str, tuple[Slice, frozenset[int], Slice]] = {}  # (slice, held, part)
        self._locks: dict[str, asyncio.Lock] = {}
        self._deciding = asyncio.Lock()  # one cycle's decisions at a time (`_run`)
        self._timed: dict[str, tuple[object, float]] = {}  # per list: (config, RTT) judged at
        self._counts: tuple[object, dict[TargetKind, int]] | None = None  # per config

    # -- configuration-derived pieces -----------------------------------------------------------

    def resolver(self) -> Resolver:
        """One resolver per configuration: the lists' concurrent cycles share its window."""
        return self._resolvers.get(self.rt.config.resolver)

    def _io(self) -> CheckIO:
        return CheckIO(self.resolver(), self.rt.config.resolver)

    async def _found(self) -> Found:
        cfg = self.rt.config
        found = await self.inventory.current(cfg)
        self.rt.targets_per_group = found.per_group
        self.rt.found, self.rt.found_for = found, cfg
        self.rt.unresolved = list(found.unresolved)
        return found

    async def _resolve(
        self, names: Sequence[str], group: str
    ) -> tuple[list[Target], list[tuple[str, str]]]:
        r = self.rt.config.resolver
        return await hostnames.resolve_hostnames(
            names, nameservers=r.nameservers, timeout=r.timeout, group=group
        )

    # -- health -----------------------------------------------------------------------------

    def leads(self) -> bool:
        """Whether this instance runs what runs once (probes): alone, or the leader."""
        view = self.rt.view
        return view is None or view.leader

    async def probe(self, name: str) -> health.Verdict | None:
        """Probe a list's test points, store its health, raise list_unhealthy/list_recovered.
        Only the leader probes (None elsewhere): the others read the health it stores."""
        found = subject_of(self.rt.config, name)
        if found is None or not self.leads() or not self.kinds[found[0]].probes:
            return None
        kind, lst = self.kinds[found[0]], found[1]
        assert isinstance(lst, DnsList)

        async def probed() -> Probed:
            p = await kind.probe(self._io(), lst)
            if p.rtt is not None:
                self._check_timing(lst.name, p.rtt)
            return p

        return await self.keeper.probe(lst, probed)

    def _check_timing(self, name: str, rtt: float) -> None:
        """Warn, once per config and list, when the list's cycle cannot fit its interval at
        the RTT its test points were just answered in (`plan.cycle_estimates`)."""
        cfg = self.rt.config
        timed = self._timed.get(name)
        if timed is not None and timed[0] is cfg:
            return
        self._timed[name] = (cfg, rtt)
        if self._counts is None or self._counts[0] is not cfg:
            self._counts = (cfg, plan.target_counts(cfg))
        for e in plan.cycle_estimates(cfg, {name: rtt}, self._counts[1]):
            if e.list == name and not e.fits:
                log.warning("%s", e.line())

    async def _control(self) -> str | None:
        """Whether the default resolver answers at all (`resolverstate.control`)."""
        servers = self.rt.config.resolver.nameservers or system_nameservers()
        return await resolverstate.control(self.resolver(), servers)

    def _probe_due(self, lst: Subject) -> bool:
        """Whether a cycle should probe its list first while the resolver is down: when the
        health job has not done so within the list's interval (nor is doing it now)."""
        interval = lst.interval or self.rt.config.schedule.interval
        return self.keeper.probe_due(lst.name, self.clock() - interval)

    def resolver_down(self, lst: Subject) -> bool:
        """Whether the list is asked through the default resolver, and that is unreachable."""
        return not self.keeper.resolver.reachable and resolverstate.behind_resolver(lst)

    def health_of(self, name: str) -> Health:
        found = subject_of(self.rt.config, name)
        if found is not None and not self.kinds[found[0]].probes:
            return Health.HEALTHY  # no test points: a DNS failure is each pair's error
        return self.keeper.health_of(name)

    # -- cycles -----------------------------------------------------------------------------

    async def cycle(
        self,
        name: str,
        only: set[str] | None = None,
        deadline: float | None = None,
        shards: set[int] | None = None,
    ) -> CycleReport:
        """Look up every target of a list (or just `only`, a confirmation round) and commit.

        With several instances (`rt.view` set), only the targets of the shards this instance
        holds (of `shards` only, if given: a takeover's), and the commit is fenced by their
        leases: a lease lost meanwhile writes nothing (the shard's new holder redoes it).

        `deadline` (seconds from now) bounds the lookups: at it the run stops sending, the
        lookups still out are abandoned, and the cycle commits what was answered (the report
        is `cut`; see the module docstring). It never interrupts the transitions and the
        commit, which must run whole (a commit cut off half way would still land in the
        store while its bookkeeping here was skipped).
        """
        until = None if deadline is None else time.monotonic() + deadline
        # one list's cycles and confirmation rounds never interleave: both read the rows,
        # decide and write, and two deciders on one row could raise the same event twice
        async with self._locks.setdefault(name, asyncio.Lock()):
            return await self._cycle(name, only, until, shards)

    async def _cycle(
        self, name: str, only: set[str] | None, until: float | None, shards: set[int] | None
    ) -> CycleReport:
        report = CycleReport(name)
        found = subject_of(self.rt.config, name)
        if found is None:
            report.skipped = "list no longer configured"
            return report
        kind, lst = self.kinds[found[0]], found[1]
        # the leader stores the health; the others read it afresh for each cycle
        await self.keeper.load(refresh=not self.leads())
        if self.leads() and self.resolver_down(lst) and self._probe_due(lst):
            # a list's test points are the cheapest way to learn the resolver is back
            await self.probe(name)
        if self.health_of(name) is Health.UNKNOWN and not self.resolver_down(lst):
            # never trust a list's answers before its test points: the leader probes them,
            # and another instance waits a little for its verdict rather than an interval
            if self.leads():
                await self.probe(name)
            else:
                await self.keeper.wait_known(name, FOLLOWER_WAIT_S)
        start = self.clock()
        targets = await self._found()
        mine = kind.targets(self.rt.config, lst, targets, self.inventory)
        c = _Cycle(lst, kind, targets, mine, start, only is None, report)
        if not self._shard(c, shards):
            report.skipped = "no shard of this list held"
            return report
        if only is not None:
            c.mine = c.mine.only(only)
        reason = await self._why_not(c)
        if reason is not None:
            return await self._skip(c, reason)
        return await self._run(c, until)

    def _shard(self, c: _Cycle, shards: set[int] | None) -> bool:
        """Narrow the cycle to the shards held (False: none); alone, it keeps every target."""
        view = self.rt.view
        if view is None or view.solo:
            return True
        name = c.lst.name
        held = view.shards_of(name)
        if shards is not None:
            held &= shards
        if not held:
            return False
        c.held, c.fence = held, view.fence(name, held)
        holding = frozenset((x.shard, x.epoch) for x in c.fence.leases)
        if holding != self._held.get(name):
            # other instances wrote the first looks of shards new to this one, or of shards
            # that were theirs for a while (the same shards under other epochs)
            self._seen.pop(name, None)
            self._held[name] = holding
        cached = self._parts.get(name)
        if cached is None or cached[0] is not c.mine or cached[1] != held:
            # kept while the list's slice and the shards held are: a /16's hashes cost more
            # than a cycle's bookkeeping
            cached = self._parts[name] = (c.mine, held, c.mine.in_shards(held))
        c.mine = cached[2]
        return True

    async def _why_not(self, c: _Cycle) -> Reason | str | None:
        """Why this cycle must not send lookups: the resolver unreachable, an unhealthy
        list or a spent budget. The
        lookups to send are reserved from the day's budget at once (atomically, against the
        other instances' too); the commit counts the difference to what was really sent."""
        lst = c.lst
        if self.resolver_down(lst):
            return resolverstate.SKIPPED
        if self.health_of(lst.name) is not Health.HEALTHY:
            return Reason.LIST_UNHEALTHY
        limit = lst.daily_query_limit
        if limit:
            if not await self.rt.db.reserve_budget(lst.name, utc_day(c.start), len(c.mine), limit):
                return Reason.BUDGET_EXHAUSTED
            c.reserved = len(c.mine)
        return None

    async def _skip(self, c: _Cycle, reason: Reason | str, sent: int = 0) -> CycleReport:
        """A cycle whose answers count for nothing: every lookup is an error, no state
        changes. `sent`: queries that went out all the same (a list found unhealthy during
        the scan); the day's budget counts them, as the list did. The list's row says why
        (`last_cycle_skipped`). A resolver outage counts no lookup errors: none was sent,
        and the outage has its own signals (the event, `rblwatch_resolver_up`)."""
        name, n = c.lst.name, len(c.mine)
        c.report.skipped = str(reason)
        c.report.errors = n
        if isinstance(reason, Reason):
            self.rt.stats.list(name).errors[reason] += n
        self.rt.stats.list(name).queries += sent  # they went out: rblwatch_queries_total
        if sent:
            log.warning("list %s: cycle's answers not used (%s)", name, reason)
        else:
            log.warning("list %s: cycle skipped (%s), %d lookups not sent", name, reason, n)
        commit = CycleCommit(list=name)
        if c.full:
            status = self._status(c, self.clock(), 0, n, completed=False)
            commit.status = dataclasses.replace(status, last_cycle_skipped=str(reason))
        if sent - c.reserved:
            commit.budget_day, commit.budget_queries = utc_day(c.start), sent - c.reserved
        if commit.status is not None or commit.budget_queries:
            with contextlib.suppress(Fenced):  # a late instance's status: nothing to keep
                await self.rt.db.commit(commit, fence=c.fence)
        return c.report

    async def _lookups(self, c: _Cycle, until: float | None) -> tuple[CheckRun, Durations]:
        """The kind's run over the cycle's targets, stopped at `until` (then `cut`)."""
        io, durations = self._io(), Durations(DURATION_BUCKETS)
        if c.held is not None:  # the list's rate limit is shared as its shards are
            io = dataclasses.replace(io, share=len(c.held) / SHARDS)
        run = await c.kind.run(io, c.lst, c.mine, durations, until)
        return run, durations

    async def _run(self, c: _Cycle, until: float | None) -> CycleReport:
        lst, report = c.lst, c.report
        run, durations = await self._lookups(c, until)
        looked = self.clock()
        if not self.leads():
            # the leader's probes during the scan are in the store, not here: read them now
            await self.keeper.load(refresh=True)
        if self.health_of(lst.name) is not Health.HEALTHY:
            # a probe during the scan found the list unhealthy (say, listing everything):
            # its answers of this cycle are not to be believed either
            return await self._skip(c, Reason.LIST_UNHEALTHY, sent=run.queries)
        rows, heads, (errors, last_good) = await self._stored(c, run)
        io = self._io()
        # detail (TXT: the list's reason and removal link) for listings that are new or
        # changed: they are few, and the events and alerts about them should carry it
        await c.kind.annotate(io, lst, run, lambda t, o: is_news(rows.get(t), o))
        self._resolvers.count_dropped(io.resolver, self.rt.stats)
        report.lookups, report.errors = run.lookups, run.errors
        report.cut, report.unchecked = run.cut, run.unchecked
        every = c.held is None or len(c.held) >= SHARDS  # may write the list's own error row
        cycle = CycleInput(
            list_name=lst.name,
            targets=c.mine.targets,
            values=c.mine.values,
            outcomes=run.outcomes,
            rows=rows,
            seen=await self._seen_of(lst.name),
            confirm=self.rt.config.schedule.confirm,
            now=c.start,
            # not when a hostname failed to resolve: its addresses are missing only for now;
            # nor after a cut cycle, which did not look at every target
            prune=c.full and c.found.complete and not run.cut,
            errors=errors,
            last_good_at=last_good,
            full=c.full,
            all_shards=every,
            others=self._others(c) if c.full and not every and "" in errors else (),
        )
        # O(targets) at a first cycle (every target is decided, none was seen): a slice at a
        # time on the loop, so that the loop (lookups of other lists, a /metrics scrape) keeps
        # running. Not in a worker thread: that held the GIL for seconds, and the loop's thread,
        # which gives the GIL up at every socket call, waited up to a switch interval at each
        # (a /14 x 4: stalls of a second, scrapes of more). The planner is pure over its inputs,
        # which nothing changes meanwhile: a list's cycles hold its lock (its seen set changes
        # only at its own commit, below), and a slice is replaced, never mutated. One list's at
        # a time: lists whose first cycles end together take turns, not slices of each other.
        async with self._deciding:
            planned, reasons = await _decide(c.kind, cycle, heads)
        self._count_lookups(lst.name, run, durations, reasons)
        commit, report.confirm = planned.commit, planned.confirm
        if c.full:
            status = self._status(
                c, self.clock(), report.lookups, report.errors, completed=not run.cut
            )
            if run.cut:  # the row says so, and its last successful cycle stays where it was
                status = dataclasses.replace(status, last_cycle_skipped=Reason.DEADLINE.value)
            commit.status = status
        commit.budget_day = utc_day(c.start)
        commit.budget_queries = run.queries - c.reserved  # a correction: may be negative
        if not await self._commit(c, commit):
            return report
        if c.full and (c.held is None or len(c.held) >= SHARDS):
            # what the pairs view may call answered at this cycle (`pairsource`): the slice
            # itself, kept while it is the inventory's, never copied
            self.rt.covered[lst.name] = c.mine.values
        elif c.full:  # other instances cover the rest: the view reads the store's `seen`
            self.rt.covered.pop(lst.name, None)
        log.debug(
            "list %s: %d lookups, %d errors, %d events in %.2fs (lookups %.2fs) from %.3f",
            lst.name,
            report.lookups,
            report.errors,
            len(report.events),
            self.clock() - c.start,
            looked - c.start,
            c.start,
        )
        if report.confirm and self.on_confirm is not None:
            self.on_confirm(lst.name, report.confirm)
        return report

    async def _stored(
        self, c: _Cycle, run: CheckRun
    ) -> tuple[dict[str, PairState], dict[str, int], tuple[dict[str, PairError], float | None]]:
        """What the decisions read from the store: the list's rows (of the shards held), each
        event's predecessor and the error rows. Each read, and its sifting (a /16's rows, a cut
        cycle's outcomes), runs in a worker thread, off the loop."""
        name, held = c.lst.name, c.held

        def rows_of(store: Store) -> dict[str, PairState]:
            return {
                p.target: p for p in store.pairs(name) if held is None or shard_of(p.target) in held
            }

        rows = await self.rt.db.read(rows_of)
        errors = await self._errors_of(c)

        # each event names the pair's previous one, as read now under the leases: should two
        # instances ever decide one transition, the store keeps only the first
        def heads_of(store: Store) -> dict[str, int]:
            answered = {t for t, o in run.outcomes.items() if not o.is_error}
            return store.chain_heads(name, rows.keys() | answered)

        return rows, await self.rt.db.read(heads_of), errors

    def _others(self, c: _Cycle) -> list[str]:
        """The list's targets outside the shards this cycle covers (its list-wide row split)."""
        whole = c.kind.targets(self.rt.config, c.lst, c.found, self.inventory)
        return [v for v in whole.values if v not in c.mine.values]

    async def _errors_of(self, c: _Cycle) -> tuple[dict[str, PairError], float | None]:
        """The list's error rows (of the shards held) and when its last completed cycle
        ended: what the planner needs to say when a pair that fails now last answered."""
        name, held = c.lst.name, c.held

        def errors_of(store: Store) -> dict[str, PairError]:
            # the list's own row ("") is every shard's: kept whichever shards are held
            return {
                e.target: e
                for e in store.pair_errors(name)
                if held is None or not e.target or shard_of(e.target) in held
            }

        errors = await self.rt.db.read(errors_of)
        statuses = await self.rt.db.list_statuses()
        return errors, next((s.last_cycle_success for s in statuses if s.name == name), None)

    async def _commit(self, c: _Cycle, commit: CycleCommit) -> bool:
        """Write the cycle; False if its fence refused it (nothing written). Refused for
        shards given back meanwhile (a newcomer's share), the rest of it is written: those
        shards must not wait a whole interval more for the ones their new holder redoes."""
        lst, report = c.lst, c.report
        events: list[Event] | None = None
        try:
            events = await self._write(c, commit)
        except Fenced as exc:
            kept = _kept(c, commit, exc.lost)
            if kept is not None:
                with contextlib.suppress(Fenced):
                    events, commit = await self._write(c, kept), kept
            if events is None:
                self.rt.stats.list(lst.name).commits_refused += 1
                report.skipped, report.confirm = "lease lost", set()
                log.warning("list %s: cycle not written: %s", lst.name, exc)
                return False
            log.info("list %s: cycle written for the shards still held: %s", lst.name, exc)
        assert events is not None
        # a first cycle's first looks are every target: added off the loop too
        seen = self._seen.setdefault(lst.name, ValueSet())
        await asyncio.to_thread(seen.update, commit.seen)
        report.events = events
        self._count_events(events)
        log_events(log, lst.name, events)
        return True

    async def _write(self, c: _Cycle, commit: CycleCommit) -> list[Event]:
        to = receivers_for(self.rt.config.alerts.receivers, c.lst)
        for hook in self.rt.before_commit:
            hook()
        try:
            return await self.rt.db.commit(commit, to, c.fence)
        finally:
            for hook in self.rt.on_commit:
                hook()  # e.g. /metrics rebuilding its pair families now, not on a scrape

    async def _seen_of(self, name: str) -> ValueSet:
        seen = self._seen.get(name)
        if seen is None:
            seen = await asyncio.to_thread(ValueSet, await self.rt.db.seen(name))
            self._seen[name] = seen
        return seen

    def _status(
        self, c: _Cycle, end: float, lookups: int, errors: int, *, completed: bool = True
    ) -> ListStatus:
        return list_status(
            c.lst.name,
            self.health_of(c.lst.name),
            c.start,
            end,
            lookups=lookups,
            errors=errors,
            targets=len(c.mine),
            completed=completed,
        )

    # -- counters ---------------------------------------------------------------------------

    def _count_lookups(
        self, name: str, run: CheckRun, durations: Durations, reasons: Counter[Reason]
    ) -> None:
        c = self.rt.stats.list(name)
        c.queries += run.queries
        c.duration.add(durations.counts, durations.total)
        for reason, n in reasons.items():
            c.errors[reason] += n

    def _count_events(self, events: Sequence[Event]) -> None:
        for e in events:
            self.rt.stats.events[e.kind] += 1
        if events and self.rt.on_events is not None:
            self.rt.on_events()  # wake the alert senders: these events have outbox rows


async def _decide(
    kind: CheckKind[Any], cycle: CycleInput, heads: dict[str, int]
) -> tuple[PlannedCommit, Counter[Reason]]:
    """The cycle's commit (its events in the kind's words) and its lookup errors by reason:
    the O(targets) part of a cycle, DECIDE_SLICE_S of it at a time (see `Engine._run`)."""
    steps = plan_steps(cycle)
    until = time.monotonic() + DECIDE_SLICE_S
    while True:
        try:
            next(steps)
        except StopIteration as done:
            planned: PlannedCommit = done.value
            break
        if time.monotonic() >= until:
            await asyncio.sleep(0)  # the loop's other callbacks run, then the next slice
            until = time.monotonic() + DECIDE_SLICE_S
    rows = cycle.rows
    planned.commit.events = [
        _renamed(kind, e, rows, after=heads.get(e.target or "", 0)) for e in planned.commit.events
    ]
    reasons = Counter(o.reason for o in cycle.outcomes.values() if o.reason is not None)
    return planned, reasons


def _renamed(kind: CheckKind[Any], e: Event, rows: Mapping[str, PairState], *, after: int) -> Event:
    """An event in its kind's words (a hygiene pair's `check_failed`), naming the pair's
    previous event; a changed failure says what it was before."""
    named = kind.states.events.get(e.kind, e.kind)
    detail = e.detail
    prev = rows.get(e.target or "")
    if named is EventKind.CHECK_CHANGED and prev is not None and prev.meanings:
        detail = f"before: {'; '.join(prev.meanings)}"
    return dataclasses.replace(e, kind=named, after=after, detail=detail)


def _kept(c: _Cycle, commit: CycleCommit, lost: frozenset[int]) -> CycleCommit | None:
    """The part of a refused commit in its shards still held (`c` narrowed to them), if the
    refusal named lost shards and some are left; None otherwise. Each pair's rows and
    events depend on that pair alone, so the part is what a cycle of those shards writes.
    The list's own error row, of a cycle over every shard, is kept: the lost shards' new
    holder, a cycle of some shards, finds it and splits it (`commitplan`)."""
    if c.held is None or c.fence is None or not lost or not c.held - lost:
        return None
    held = c.held - lost
    c.held = held
    c.fence = dataclasses.replace(
        c.fence, leases=tuple(x for x in c.fence.leases if x.shard in held)
    )
    c.report.confirm = {t for t in c.report.confirm if shard_of(t) in held}
    return dataclasses.replace(
        commit,
        upserts=[p for p in commit.upserts if shard_of(p.target) in held],
        deletes=[t for t in commit.deletes if shard_of(t) in held],
        seen=[t for t in commit.seen if shard_of(t) in held],
        events=[e for e in commit.events if e.target is None or shard_of(e.target) in held],
        # not `in held`: a split list-wide row's copies are of shards never held (commitplan)
        errors=[e for e in commit.errors if not e.target or shard_of(e.target) not in lost],
        cleared=[t for t in commit.cleared if not t or shard_of(t) in held],
    )


__all__ = ["CycleReport", "Engine", "utc_day"]
