"""A cycle: one list's targets → outcomes → transitions → events, written through the store.

The scan reports only what is not clean, so a cycle looks at few pairs: those with a stored
row (listed, once listed or pending) and those the scan reported. Every other target was
clean and believed clean, and costs nothing beyond its lookup. Health is probed separately
(`probe`); while a list is not healthy its cycles send no lookups and change nothing.

Writes per cycle: the changed rows, new targets' `seen` entries, events (with their outbox
rows), one aggregate row and the day's query count — in one transaction.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rblwatch import health, hostnames, lookup, targets, transitions
from rblwatch.alerts.routing import receivers_for
from rblwatch.config import Config, ResolverConfig
from rblwatch.model import (
    CLEAN,
    CycleCommit,
    DnsList,
    Event,
    EventKind,
    Health,
    ListStatus,
    Outcome,
    PairState,
    PairStatus,
    Reason,
    Target,
    TargetKind,
)
from rblwatch.resolver import Durations, Resolver, normalize_server, system_nameservers
from rblwatch.runtime import Runtime
from rblwatch.scan import Plan, fetch_txt, plans_for, probe_health, scan
from rblwatch.stats import DURATION_BUCKETS

log = logging.getLogger("rblwatch.engine")

ConfirmCallback = Callable[[str, set[str]], None]


class CycleOverrun(Exception):
    """A cycle's lookups ran past its deadline: abandoned, nothing decided or written."""


@dataclass(slots=True)
class CycleReport:
    """What one cycle did (for logs, tests and the scheduler)."""

    list_name: str
    lookups: int = 0
    errors: int = 0
    events: list[Event] = field(default_factory=list)
    confirm: set[str] = field(default_factory=set)
    skipped: str = ""  # why no lookups were sent, if none were


def _is_news(row: PairState | None, outcome: Outcome) -> bool:
    """A listing that is not already stored as such: new, pending, or with other codes."""
    if row is None or row.status is not PairStatus.LISTED or row.pending is not None:
        return True
    return set(row.codes) != set(outcome.codes)


def utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


@dataclass(frozen=True, slots=True)
class _Mine:
    """The targets of the kinds some lists take, with what every cycle needs of them."""

    found: list[Target]  # every target, which these were taken from
    targets: list[Target]
    values: frozenset[str]
    labels: list[bytes]  # query labels, in the order of `targets`


def _kinds_of(lst: DnsList) -> tuple[TargetKind, ...]:
    """The kinds of target a list is asked about, in a fixed order."""
    return tuple(k for k in TargetKind if lst.checks(k))


def _add_new(out: list[Target], values: set[str], found: Iterable[Target]) -> None:
    """Append the targets whose value is not in `values` yet (and record it there).

    One target per value, whatever the groups or hostnames it is reached through (the first
    wins): a cycle decides once per pair, and a value met twice would raise its events twice.
    """
    for t in found:
        if t.value not in values:
            values.add(t.value)
            out.append(t)


class Engine:
    """Runs cycles and health probes for the daemon, against the runtime's current config."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.time) -> None:
        self.rt = runtime
        self.clock = clock
        self.on_confirm: ConfirmCallback | None = None
        self._seen: dict[str, set[str]] = {}
        # the config's addresses and domains, expanded once, and their values
        self._static: tuple[Config, list[Target], set[str]] | None = None
        self._counted: list[Target] | None = None  # the target list targets_per_group counts
        self._locks: dict[str, asyncio.Lock] = {}
        self._probe_locks: dict[str, asyncio.Lock] = {}
        self._health: dict[str, Health] | None = None
        self._plans: dict[str, tuple[DnsList, ResolverConfig, Plan]] = {}
        self._resolver: tuple[ResolverConfig, Resolver] | None = None
        self._dropped_seen = 0
        # per set of target kinds a list takes: the targets of those kinds with their values
        # and query labels, valid while built from the same target list; lists of the same
        # kinds share them
        self._per_kinds: dict[tuple[TargetKind, ...], _Mine] = {}
        # query labels by target value: every list asks the same targets every cycle
        self._labels: dict[str, bytes] = {}
        self._complete_targets = True  # every configured target is known (hostnames resolved)

    # -- configuration-derived pieces -----------------------------------------------------------

    def list_named(self, name: str) -> DnsList | None:
        return next((lst for lst in self.rt.config.lists if lst.name == name), None)

    def resolver(self) -> Resolver:
        """One resolver per configuration: the lists' concurrent cycles share its window."""
        cfg = self.rt.config
        if self._resolver is None or self._resolver[0] is not cfg.resolver:
            r = cfg.resolver
            # one socket per run: the lists' concurrent cycles are several runs (so several
            # random ports already), and fewer sockets give bigger bursts per wake-up
            res = Resolver(
                timeout=r.timeout, attempts=r.attempts, max_in_flight=r.max_in_flight, sockets=1
            )
            self._resolver = (r, res)
            self._dropped_seen = 0
        return self._resolver[1]

    def _count_dropped(self, resolver: Resolver) -> None:
        """Carry the resolver's dropped replies into the process counter (runs overlap, so by
        difference from what was counted before, not per run)."""
        self.rt.stats.replies_dropped += resolver.stats.dropped - self._dropped_seen
        self._dropped_seen = resolver.stats.dropped

    def plan(self, lst: DnsList) -> Plan:
        """How to ask a list: built once per list and resolver config (its decoder keeps a
        cache of decoded answers), not re-read from resolv.conf every cycle."""
        resolver_cfg = self.rt.config.resolver
        cached = self._plans.get(lst.name)
        if cached is not None and cached[0] is lst and cached[1] is resolver_cfg:
            return cached[2]
        configured = resolver_cfg.nameservers or system_nameservers()
        servers = tuple(normalize_server(h, p) for h, p in configured)
        plan = plans_for([lst], servers)[0]
        self._plans[lst.name] = (lst, resolver_cfg, plan)
        return plan

    async def targets(self) -> list[Target]:
        """Every configured target: addresses and domains (expanded once per config) plus
        hostnames, resolved again every time (SPEC §6)."""
        cfg = self.rt.config
        if self._static is None or self._static[0] is not cfg:
            static: list[Target] = []
            values: set[str] = set()
            for g in cfg.targets:
                expanded = targets.expand(
                    g.addresses,
                    g.exclude,
                    g.domains,
                    group=g.group,
                    ipv4_min_prefix=cfg.limits.ipv4_min_prefix,
                )
                _add_new(static, values, expanded)
            self._static = (cfg, static, values)
            self._labels = {}  # targets may have gone: start the labels afresh
        _, found, static_values = self._static
        self._complete_targets = True
        if any(g.hostnames for g in cfg.targets):
            # a new list each time: hostnames resolve afresh every cycle
            found = list(found)
            resolved: set[str] = set()
            for g in cfg.targets:
                if g.hostnames:
                    got = await self._resolve(g.hostnames, g.group)
                    _add_new(found, resolved, (t for t in got if t.value not in static_values))
        if found is not self._counted:  # counted once per target list, not every cycle
            self._counted = found
            self.rt.targets_per_group = dict(collections.Counter(t.group for t in found))
        return found

    def _targets_of(self, lst: DnsList, found: list[Target]) -> list[Target]:
        """The targets a list takes, cached while the target list is the same object."""
        kinds = _kinds_of(lst)
        cached = self._per_kinds.get(kinds)
        if cached is not None and cached.found is found:
            return cached.targets
        mine = [t for t in found if t.kind in kinds]
        values = frozenset(t.value for t in mine)
        if len(self._labels) > 2 * len(found) + 1024:
            # hostnames' addresses come and go between cycles: start the labels kept afresh
            # once they are well over what is configured, so they cannot grow without end
            self._labels = {}
        self._per_kinds[kinds] = _Mine(found, mine, values, self._labels_of(mine))
        return mine

    def _mine(self, lst: DnsList, mine: list[Target]) -> _Mine | None:
        """What is cached with `mine`, a list's targets, unless `mine` is not the cached list."""
        cached = self._per_kinds.get(_kinds_of(lst))
        return cached if cached is not None and cached.targets is mine else None

    def _labels_of(self, targets: list[Target]) -> list[bytes]:
        """The query labels of `targets`, from those kept since the config was last loaded."""
        labels, out = self._labels, []
        for t in targets:
            label = labels.get(t.value)
            if label is None:
                label = labels[t.value] = lookup.prefix_wire(t.value, t.kind)
            out.append(label)
        return out

    async def _resolve(self, names: Sequence[str], group: str) -> list[Target]:
        r = self.rt.config.resolver
        got, failed = await hostnames.resolve_hostnames(
            names, nameservers=r.nameservers, timeout=r.timeout, group=group
        )
        for name, why in failed:
            self._complete_targets = False
            log.warning("hostname %s (group %s) not resolved: %s", name, group, why)
        return got

    # -- health -----------------------------------------------------------------------------

    async def probe(self, name: str) -> health.Verdict | None:
        """Probe a list's test points, store its health, raise list_unhealthy/list_recovered."""
        # the health job and a cycle's first probe may run at once: one at a time per list,
        # so each compares against the other's stored result and an event is raised once
        async with self._probe_locks.setdefault(name, asyncio.Lock()):
            return await self._probe(name)

    async def _probe(self, name: str) -> health.Verdict | None:
        lst = self.list_named(name)
        if lst is None:
            return None
        plan = self.plan(lst)
        sent = await probe_health(self.resolver(), [plan])
        verdict = plan.verdict
        if sent and lst.daily_query_limit:
            # test-point queries are queries too: they count against the day's budget
            budget = CycleCommit(list=name, budget_day=utc_day(self.clock()), budget_queries=sent)
            await self.rt.db.commit(budget)
        before = self._stored_health(name)
        event = self._health_event(lst, before, verdict)
        stored = await self.rt.db.record_health(
            name,
            verdict.health,
            verdict.detail,
            self.clock(),
            event,
            receivers_for(self.rt.config.alerts.receivers, lst),
        )
        if self._health is not None:
            self._health[name] = verdict.health
        if stored is not None:
            self._count_events([stored])
            log.warning("list %s: %s %s", name, stored.kind.value, verdict.detail)
        return verdict

    def _stored_health(self, name: str) -> Health:
        """A list's health as last stored: read from the store once, then kept here (every
        change goes through `_probe`), so cycles never wait on the store for it."""
        if self._health is None:
            self._health = {s.name: s.health for s in self.rt.store.list_statuses()}
        return self._health.get(name, Health.UNKNOWN)

    def _health_event(self, lst: DnsList, before: Health, verdict: health.Verdict) -> Event | None:
        was_ok = before in (Health.HEALTHY, Health.UNKNOWN)
        if was_ok == verdict.healthy:
            return None
        kind = EventKind.LIST_RECOVERED if verdict.healthy else EventKind.LIST_UNHEALTHY
        return Event(kind=kind, list=lst.name, at=self.clock(), detail=verdict.detail)

    def health_of(self, name: str) -> Health:
        return self._stored_health(name)

    # -- cycles -----------------------------------------------------------------------------

    async def cycle(
        self, name: str, only: set[str] | None = None, deadline: float | None = None
    ) -> CycleReport:
        """Look up every target of a list (or just `only`, a confirmation round) and commit.

        `deadline` (seconds from now) bounds the lookups: past it they are abandoned and
        `CycleOverrun` is raised before anything is decided or written. It never interrupts
        the transitions and the commit, which are quick and must run whole (a commit cut off
        half way would still land in the store while its bookkeeping here was skipped).
        """
        until = None if deadline is None else time.monotonic() + deadline
        # one list's cycles and confirmation rounds never interleave: both read the rows,
        # decide and write, and two deciders on one row could raise the same event twice
        async with self._locks.setdefault(name, asyncio.Lock()):
            return await self._cycle(name, only, until)

    async def _cycle(self, name: str, only: set[str] | None, until: float | None) -> CycleReport:
        report = CycleReport(name)
        lst = self.list_named(name)
        if lst is None:
            report.skipped = "list no longer configured"
            return report
        if self.health_of(name) is Health.UNKNOWN:
            await self.probe(name)  # never trust a list's answers before its test points
        start = self.clock()
        mine = self._targets_of(lst, await self.targets())
        if only is not None:
            mine = [t for t in mine if t.value in only]
        reason = await self._why_not(lst, len(mine), start)
        if reason is not None:
            return await self._skip(lst, mine, reason, start, report, full=only is None)
        return await self._run(lst, mine, start, report, full=only is None, until=until)

    async def _why_not(self, lst: DnsList, n: int, at: float) -> Reason | None:
        """Why this cycle must not send lookups: an unhealthy list or a spent budget."""
        if self.health_of(lst.name) is not Health.HEALTHY:
            return Reason.LIST_UNHEALTHY
        limit = lst.daily_query_limit
        if limit:
            used = await self.rt.db.budget_used(lst.name, utc_day(at))
            if used + n > limit:
                return Reason.BUDGET_EXHAUSTED
        return None

    async def _skip(
        self,
        lst: DnsList,
        mine: list[Target],
        reason: Reason,
        start: float,
        report: CycleReport,
        *,
        full: bool,
    ) -> CycleReport:
        """A cycle without lookups: every one counts as an error; no state changes."""
        report.skipped = reason.value
        report.errors = len(mine)
        self.rt.stats.list(lst.name).errors[reason] += len(mine)
        log.warning("list %s: cycle skipped (%s), %d lookups not sent", lst.name, reason, len(mine))
        if full:
            end = self.clock()
            status = self._status(lst, start, end, 0, len(mine), len(mine), completed=False)
            commit = CycleCommit(list=lst.name, status=status)
            await self.rt.db.commit(commit)
        return report

    async def _run(
        self,
        lst: DnsList,
        mine: list[Target],
        start: float,
        report: CycleReport,
        *,
        full: bool,
        until: float | None,
    ) -> CycleReport:
        resolver = self.resolver()
        durations = Durations(DURATION_BUCKETS)
        plan = self.plan(lst)
        lookups = scan(
            resolver,
            mine,
            [plan],
            durations=durations,
            max_qps=lst.max_qps,
            prefixes=cached.labels if (cached := self._mine(lst, mine)) else None,
        )
        try:
            result = await asyncio.wait_for(
                lookups, None if until is None else max(0.0, until - time.monotonic())
            )
        except TimeoutError:
            self._count_dropped(resolver)
            raise CycleOverrun(
                f"list {lst.name}: lookups not done by the cycle's deadline"
            ) from None
        if self.health_of(lst.name) is not Health.HEALTHY:
            # a probe during the scan found the list unhealthy (say, listing everything):
            # its answers of this cycle are not to be believed either
            return await self._skip(lst, mine, Reason.LIST_UNHEALTHY, start, report, full=full)
        rows = {p.target: p for p in await self.rt.db.pairs(lst.name)}
        # TXT (the list's reason and removal link) for listings that are new or changed: they
        # are few, and the events and alerts about them should carry it
        await fetch_txt(resolver, result, lambda r: _is_news(rows.get(r.target.value), r.outcome))
        self._count_dropped(resolver)
        outcomes = {r.target.value: r.outcome for r in result.results}
        report.lookups = result.summary.lookups
        report.errors = result.summary.error
        self._count_lookups(lst.name, result.queries, durations, result.results)
        commit = await self._transitions(lst, mine, outcomes, rows, start, report, full=full)
        end = self.clock()
        if full:
            commit.status = self._status(
                lst, start, end, report.lookups, report.errors, len(mine), completed=True
            )
        commit.budget_day = utc_day(start)
        commit.budget_queries = result.queries
        events = await self.rt.db.commit(
            commit, receivers_for(self.rt.config.alerts.receivers, lst)
        )
        self._seen.setdefault(lst.name, set()).update(commit.seen)
        report.events = events
        self._count_events(events)
        for e in events:
            log.warning(
                "%s %s on %s: %s%s",
                e.kind.value,
                e.target,
                e.list,
                ",".join(e.codes) or "-",
                " (initial)" if e.initial else "",
            )
        if report.confirm and self.on_confirm is not None:
            self.on_confirm(lst.name, report.confirm)
        return report

    async def _transitions(
        self,
        lst: DnsList,
        mine: list[Target],
        outcomes: dict[str, Outcome],
        rows: dict[str, PairState],
        now: float,
        report: CycleReport,
        *,
        full: bool,
    ) -> CycleCommit:
        seen = await self._seen_of(lst.name)
        commit = CycleCommit(list=lst.name)
        if full and self._complete_targets:
            # a target no longer configured leaves the status page and /metrics quietly: it
            # was not delisted, it is no longer watched (no event). Not when a hostname failed
            # to resolve this cycle: its addresses are missing only for now.
            cached = self._mine(lst, mine)
            current = cached.values if cached else frozenset(t.value for t in mine)
            commit.deletes.extend(t for t in rows if t not in current)
        confirm = self.rt.config.schedule.confirm
        # only targets with something to decide: a stored row, an outcome other than clean,
        # or no clean look yet. The rest, clean and believed clean, are the bulk of a cycle.
        news = rows.keys() | outcomes.keys()
        for t in [t for t in mine if t.value in news or t.value not in seen]:
            prev = rows.get(t.value)
            outcome = outcomes.get(t.value, CLEAN)
            d = transitions.step(
                prev,
                outcome,
                target=t.value,
                list_name=lst.name,
                group=t.group,
                now=now,
                confirm=confirm,
                first_lookup=t.value not in seen,
            )
            self._collect(commit, t.value, d, report)
            if t.value not in seen and not outcome.is_error:
                commit.seen.append(t.value)  # an error is no first look: the baseline waits
        return commit

    @staticmethod
    def _collect(
        commit: CycleCommit, target: str, d: transitions.Decision, report: CycleReport
    ) -> None:
        if d.write:
            if d.row is None:
                commit.deletes.append(target)
            else:
                commit.upserts.append(d.row)
        if d.event is not None:
            commit.events.append(d.event)
        if d.confirm:
            report.confirm.add(target)

    async def _seen_of(self, name: str) -> set[str]:
        seen = self._seen.get(name)
        if seen is None:
            seen = await self.rt.db.seen(name)
            self._seen[name] = seen
        return seen

    def _status(
        self,
        lst: DnsList,
        start: float,
        end: float,
        lookups: int,
        errors: int,
        n_targets: int,
        *,
        completed: bool,
    ) -> ListStatus:
        """The list's aggregate row. A cycle counts as a success when it completed its lookups,
        whatever some of them answered: on a /16 a timeout or two is routine, errors have their
        own counters, and "no successful cycle for hours" must mean the cycles stopped."""
        h = self.health_of(lst.name)
        return ListStatus(
            name=lst.name,
            health=h,
            last_cycle_start=start,
            last_cycle_end=end,
            last_cycle_success=end if completed else None,
            last_cycle_duration=end - start,
            last_cycle_lookups=lookups,
            last_cycle_errors=errors,
            targets=n_targets,
        )

    # -- counters ---------------------------------------------------------------------------

    def _count_lookups(
        self, name: str, queries: int, durations: Durations, results: Sequence[object]
    ) -> None:
        c = self.rt.stats.list(name)
        c.queries += queries
        c.duration.add(durations.counts, durations.total)
        for r in results:
            outcome = getattr(r, "outcome", None)
            if isinstance(outcome, Outcome) and outcome.reason is not None:
                c.errors[outcome.reason] += 1

    def _count_events(self, events: Sequence[Event]) -> None:
        for e in events:
            self.rt.stats.events[e.kind] += 1
        if events and self.rt.on_events is not None:
            self.rt.on_events()  # wake the alert senders: these events have outbox rows
