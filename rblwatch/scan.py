"""A scan: every target on every list that takes it, with list health probed first.

This is what `rblwatch check` runs and what a daemon cycle is built on. It wires the pure
parts (`lookup.Decoder`, `health.evaluate`) to the resolver and keeps only what matters: the
counts of every outcome, and the results that are not `clean` (all of them with
`keep_clean`), so a /16 on a dozen lists stays small in memory.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from rblwatch import health, lookup, wire
from rblwatch.model import (
    CLEAN,
    KIND_RANK,
    TARGET_KINDS,
    DnsList,
    Outcome,
    OutcomeKind,
    Reason,
    Target,
    TargetKind,
    error,
)
from rblwatch.resolver import QTYPE_TXT, Durations, Job, Resolver, Status, Template
from rblwatch.targetlist import TargetList

Servers = tuple[tuple[str, int], ...]
ProgressCallback = Callable[[int, int], None]  # done, total

# a lookup a cut scan never finished (or never sent): it says nothing, like any error
NOT_CHECKED = error(Reason.DEADLINE, "not checked: the cycle's deadline came first")
_STATUS_ERRORS = {
    Status.TIMEOUT: error(Reason.TIMEOUT),
    Status.NETWORK: error(Reason.NETWORK),
    Status.BAD_REPLY: error(Reason.BAD_ANSWER, "unparsable reply"),
    Status.ABANDONED: NOT_CHECKED,
}


@dataclass(slots=True)
class Plan:
    """One list prepared for a scan: how to ask it and how to read its answers."""

    lst: DnsList
    decoder: lookup.Decoder
    template: Template
    verdict: health.Verdict = health.HEALTHY

    @staticmethod
    def build(lst: DnsList, servers: Servers) -> Plan:
        return Plan(lst, lookup.Decoder(lst), Template.build(lst.zone, servers))


@dataclass(frozen=True, slots=True)
class Result:
    target: Target
    lst: DnsList
    outcome: Outcome


@dataclass(slots=True)
class Summary:
    lookups: int = 0
    listed: int = 0
    clean: int = 0
    error: int = 0
    allowlisted: int = 0

    def add(self, kind: OutcomeKind) -> None:
        self.lookups += 1
        if kind is OutcomeKind.LISTED:
            self.listed += 1
        elif kind is OutcomeKind.CLEAN:
            self.clean += 1
        elif kind is OutcomeKind.ERROR:
            self.error += 1
        else:
            self.allowlisted += 1


@dataclass(slots=True, repr=False)
class Report:
    plans: list[Plan]
    queries: int = 0  # datagrams sent for the lookups, retries included
    results: list[Result] = field(default_factory=list)
    summary: Summary = field(default_factory=Summary)
    # a scan stopped at its `until`: its lookups not answered by then are `NOT_CHECKED`
    # errors (counted in `summary.error` too)
    cut: bool = False
    unchecked: int = 0

    def __repr__(self) -> str:
        # short on purpose: asyncio.run() ends by restoring SIGINT, and signal.signal() formats
        # the old handler, which holds the main task and so this result; the full dataclass
        # repr of a /16's results cost ~75 ms of every big `check`
        return f"<Report: {len(self.plans)} lists, {self.summary}, {len(self.results)} results>"


def combine(plans: list[Plan], reports: Sequence[Report]) -> Report:
    """One report of scans of the same targets over different plans (in `plans`' order)."""
    out = Report(plans)
    for r in reports:
        out.queries += r.queries
        out.cut |= r.cut
        out.unchecked += r.unchecked
        out.results.extend(r.results)
        for f in dataclasses.fields(Summary):
            setattr(out.summary, f.name, getattr(out.summary, f.name) + getattr(r.summary, f.name))
    out.results.sort(key=result_order)
    return out


def plans_for(
    lists: Sequence[DnsList], default_servers: Servers, override: Servers | None = None
) -> list[Plan]:
    """Plans for lists, each asking its own nameservers unless `override` (--nameserver) is set."""
    plans = []
    for lst in lists:
        servers = override or lst.nameservers or default_servers
        plans.append(Plan.build(lst, servers))
    return plans


async def probe_health(
    resolver: Resolver, plans: Sequence[Plan], durations: Durations | None = None
) -> int:
    """Probe every plan's test points and set its verdict; the number of queries sent.
    `durations` collects the answers' round trips (a list's measured RTT)."""
    points = [(pi, tp) for pi, plan in enumerate(plans) for tp in health.test_points(plan.lst)]
    outcomes: dict[int, Outcome] = {}

    def on_result(
        key: object, _i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        assert isinstance(key, int)
        plan = plans[points[key][0]]
        outcomes[key] = _decode(plan.decoder, status, rcode, rdatas, ttl)

    jobs: list[Job] = [
        (i, (plans[pi].template,), lookup.prefix_wire(tp.value, tp.kind))
        for i, (pi, tp) in enumerate(points)
    ]
    run = await resolver.run(jobs, on_result, durations=durations)
    for pi, plan in enumerate(plans):
        mine = [(tp, outcomes[i]) for i, (ppi, tp) in enumerate(points) if ppi == pi]
        plan.verdict = health.evaluate(mine) if mine else health.HEALTHY
    return run.sent


def _decode(
    decoder: lookup.Decoder, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
) -> Outcome:
    if status != Status.OK:
        return _STATUS_ERRORS[status]
    return decoder.decode(rcode, rdatas, ttl)


def count_lookups(targets: Sequence[Target], plans: Sequence[Plan]) -> int:
    return _lookups(_kinds(targets), plans)


def lookups_per_list(targets: Sequence[Target], plans: Sequence[Plan]) -> dict[str, int]:
    """How many lookups each plan's list gets, the targets counted by kind once for all."""
    kinds = _kinds(targets)
    return {p.lst.name: _lookups(kinds, [p]) for p in plans}


def _kinds(targets: Sequence[Target]) -> collections.Counter[TargetKind]:
    if isinstance(targets, TargetList):
        return targets.kinds()
    return collections.Counter(map(operator.attrgetter("kind"), targets))


def _lookups(kinds: collections.Counter[TargetKind], plans: Sequence[Plan]) -> int:
    return sum(n * sum(1 for p in plans if p.lst.checks(k)) for k, n in kinds.items())


class _Scan:
    """The bookkeeping of one scan: which lookups to send and what to keep of their outcomes."""

    def __init__(
        self,
        targets: Sequence[Target],
        plans: Sequence[Plan],
        keep_clean: bool,
        prefixes: Sequence[bytes] | None = None,
        share: Iterable[range] | None = None,
    ) -> None:
        self.prefixes = prefixes
        self.targets = targets
        self.share = share
        self.plans = plans
        self.keep_clean = keep_clean
        self.report = Report(list(plans))
        self.kinds = _kinds(targets)
        self.total = _lookups(self.kinds, plans)
        # per target kind: the healthy plans a target of that kind is looked up on (a job's
        # template i is plan asked[kind][i]) and the unhealthy ones its lookups fail on
        self.asked = {
            k: [p for p in plans if p.lst.checks(k) and p.verdict.healthy] for k in TargetKind
        }
        self.skipped = {
            k: [p for p in plans if p.lst.checks(k) and not p.verdict.healthy] for k in TargetKind
        }
        # how far the jobs were taken (a cut scan's unsent lookups are the rest): the fast
        # path's index counter, or the last target index handed out and the ranges claimed
        self.counter: Iterator[int] | None = None
        self.at = -1
        self.claimed: list[range] = []

    def record(self, target: Target, plan: Plan, outcome: Outcome) -> None:
        if outcome is NOT_CHECKED:
            self.report.unchecked += 1
        summary = self.report.summary
        summary.add(outcome.kind)
        if self.keep_clean or outcome.kind is not OutcomeKind.CLEAN:
            self.report.results.append(Result(target, plan.lst, outcome))

    def on_result(
        self, key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        assert isinstance(key, int)
        target = self.targets[key]
        plan = self.asked[target.kind][i]
        self.record(target, plan, _decode(plan.decoder, status, rcode, rdatas, ttl))

    def jobs(self) -> Iterator[Job]:
        """A job per target over the healthy lists that take it; the others are recorded unsent."""
        templates = {k: tuple(p.template for p in plans) for k, plans in self.asked.items()}
        if self.share is None and not any(self.skipped.values()):
            asked = {templates[k] for k in self.kinds}
            prefixes: Iterable[bytes] | None = self.prefixes
            if prefixes is None and isinstance(self.targets, TargetList):
                prefixes = self.targets.labels()  # made as the resolver takes them
            if prefixes is not None and len(asked) == 1 and (tpls := asked.pop()):
                # one tuple of templates for every target, the query labels built already
                # or made in C from numbers: the jobs are made with no Python run per target
                self.counter = itertools.count()
                return zip(self.counter, itertools.repeat(tpls), prefixes)
        if self.prefixes is None and isinstance(self.targets, TargetList):
            return self._list_jobs(self.targets, templates)
        return self._jobs(templates)

    def _jobs(self, templates: dict[TargetKind, tuple[Template, ...]]) -> Iterator[Job]:
        targets, prefixes = self.targets, self.prefixes
        # a kind's label builder, called directly: one call per target, no dispatch on kind
        wire = {k: info.wire for k, info in TARGET_KINDS.items()}
        mine: Iterable[tuple[int, Target]] = enumerate(targets)
        if self.share is not None:  # ranges claimed one at a time, as the resolver asks
            claimed = self._claiming(self.share)
            mine = ((ti, targets[ti]) for ti in itertools.chain.from_iterable(claimed))
        if prefixes is None and not any(self.skipped.values()):  # all healthy: lean
            for ti, (value, kind, _group, _source) in mine:
                self.at = ti
                tpls = templates[kind]
                if tpls:
                    yield ti, tpls, wire[kind](value)
            return
        for ti, t in mine:
            self.at = ti
            for plan in self.skipped[t.kind]:
                self.record(t, plan, _unhealthy(plan))
            if templates[t.kind]:
                labels = wire[t.kind](t.value) if prefixes is None else prefixes[ti]
                yield (ti, templates[t.kind], labels)

    def _list_jobs(
        self, targets: TargetList, templates: dict[TargetKind, tuple[Template, ...]]
    ) -> Iterator[Job]:
        """`_jobs` over a compact list: its runs' labels made a piece at a time."""
        whole: Iterable[range] = (range(len(targets)),)
        ranges = whole if self.share is None else self._claiming(self.share)
        skipped = any(self.skipped.values())
        for r in ranges:
            for start, run, a, b in targets.pieces(r.start, r.stop):
                tpls = templates[run.kind]
                indices = range(start, start + b - a)
                if skipped:
                    yield from self._checked_jobs(indices, run.targets(a, b), tpls)
                elif not tpls:
                    self.at = indices[-1]
                else:
                    for ti, label in zip(indices, run.labels(a, b), strict=True):
                        self.at = ti
                        yield ti, tpls, label

    def _checked_jobs(
        self, indices: range, targets: Iterable[Target], tpls: tuple[Template, ...]
    ) -> Iterator[Job]:
        wire = TARGET_KINDS
        for ti, t in zip(indices, targets, strict=True):
            self.at = ti
            for plan in self.skipped[t.kind]:
                self.record(t, plan, _unhealthy(plan))
            if tpls:
                yield ti, tpls, wire[t.kind].wire(t.value)

    def _claiming(self, share: Iterable[range]) -> Iterator[range]:
        for r in share:
            self.claimed.append(r)
            yield r

    def unsent(self) -> Iterator[int]:
        """The indices of the targets whose jobs were never taken (a scan stopped early)."""
        n = len(self.targets)
        if self.counter is not None:
            return iter(range(min(next(self.counter), n), n))
        if self.share is None:
            return iter(range(self.at + 1, n))
        if not self.claimed:
            return iter(())
        last = self.claimed[-1]
        return iter(range(max(self.at + 1, last.start), last.stop))

    def record_unsent(self) -> None:
        """Each lookup a stopped scan never sent is `NOT_CHECKED` on the lists it was for."""
        for ti in self.unsent():
            target = self.targets[ti]
            for plan in self.asked[target.kind]:
                self.record(target, plan, NOT_CHECKED)


async def scan(
    resolver: Resolver,
    targets: Sequence[Target],
    plans: Sequence[Plan],
    *,
    keep_clean: bool = False,
    fetch_txt: bool = False,
    progress: ProgressCallback | None = None,
    durations: Durations | None = None,
    max_qps: float | None = None,
    prefixes: Sequence[bytes] | None = None,
    share: Iterable[range] | None = None,
    until: float | None = None,
) -> Report:
    """Look up every target on every plan that takes it. Health must have been probed.

    At `until` (`time.monotonic()`) the scan stops sending, and what it has is its report:
    every lookup not answered by then (sent or not) is a `NOT_CHECKED` error, `cut` is set,
    and `queries` still counts every query that went out.

    `prefixes`, if given, are the targets' query labels (`lookup.prefix_wire`), in the same
    order: the daemon keeps them, since it asks the same targets on every list, every cycle.
    `share` limits the scan to ranges of target indices, taken one at a time as lookups go
    out (processes splitting one scan share them this way); progress still counts against
    all the targets.
    """
    state = _Scan(targets, plans, keep_clean, prefixes, share)
    report = state.report
    if progress is not None:
        # plain NXDOMAINs are only counted by the resolver, so progress reads its live count
        start = resolver.nxdomain_so_far()
        ticker = asyncio.get_running_loop().create_task(
            _tick(
                lambda: report.summary.lookups + resolver.nxdomain_so_far() - start,
                state.total,
                progress,
            )
        )
    try:
        run = await resolver.run(
            state.jobs(),
            state.on_result,
            count_nxdomain=not keep_clean,
            durations=durations,
            max_qps=max_qps,
            until=until,
        )
    finally:
        if progress is not None:
            ticker.cancel()
    report.summary.lookups += run.nxdomain
    report.summary.clean += run.nxdomain
    report.queries = run.sent
    if until is not None:
        state.record_unsent()
        report.cut = report.unchecked > 0
    if progress is not None:
        progress(report.summary.lookups, state.total)
    if fetch_txt:
        await _fetch_txt(resolver, report)
    report.results.sort(key=result_order)
    return report


async def _tick(done: Callable[[], int], total: int, progress: ProgressCallback) -> None:
    while True:
        await asyncio.sleep(0.1)
        progress(done(), total)


def result_order(r: Result) -> tuple[int, int, str, str]:
    """Results in the order people read them: by target kind (the table's order), then by
    value within a kind (addresses numerically), then by list."""
    t = r.target
    number, text = TARGET_KINDS[t.kind].sort_key(t.value)
    return (KIND_RANK[t.kind], number, text, r.lst.name)


def _unhealthy(plan: Plan) -> Outcome:
    v = plan.verdict
    return error(Reason.LIST_UNHEALTHY, f"list is {v.health.value}: {v.detail}" if v.detail else "")


async def _fetch_txt(resolver: Resolver, report: Report) -> None:
    await fetch_txt(resolver, report)


async def fetch_txt(
    resolver: Resolver,
    report: Report,
    only: Callable[[Result], bool] | None = None,
    until: float | None = None,
) -> None:
    """Ask TXT for every listed result (or those `only` picks): a second, small batch, since
    listings are few. Its queries are added to `report.queries`."""
    wanted = [
        i
        for i, r in enumerate(report.results)
        if r.outcome.kind in (OutcomeKind.LISTED, OutcomeKind.ALLOWLISTED)
        and (only is None or only(r))
    ]
    if not wanted:
        return
    templates: dict[str, Template] = {}
    for p in report.plans:
        templates[p.lst.name] = Template.build(p.lst.zone, p.template.servers, QTYPE_TXT)
    texts: dict[int, str | None] = {}

    def on_result(
        key: object, _i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        assert isinstance(key, int)
        if status == Status.OK and rcode == wire.RCODE_NOERROR:
            texts[key] = lookup.parse_txt_rdata(rdatas)

    jobs: list[Job] = []
    for i in wanted:
        r = report.results[i]
        jobs.append(
            (i, (templates[r.lst.name],), lookup.prefix_wire(r.target.value, r.target.kind))
        )
    report.queries += (await resolver.run(jobs, on_result, until=until)).sent
    for i, text in texts.items():
        r = report.results[i]
        report.results[i] = Result(r.target, r.lst, dataclasses.replace(r.outcome, txt=text))


__all__ = [
    "CLEAN",
    "NOT_CHECKED",
    "Plan",
    "Report",
    "Result",
    "Summary",
    "fetch_txt",
    "plans_for",
    "probe_health",
    "scan",
]
