"""The DNSBL check kind: a target looked up on a DNS list (SPEC §2, §3).

A subject is a `DnsList`. Its run is one batched resolver run over all of the list's targets
(`scan.scan`, with the query labels the inventory keeps), reporting only what is not clean;
its probe asks the RFC 5782 test points; `annotate` fetches TXT for listings that make news.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rblwatch.checks.base import CheckIO, CheckRun, IsNews, Probed, States
from rblwatch.config import Config, ResolverConfig
from rblwatch.inventory import Found, Inventory, Slice
from rblwatch.model import DnsList, TargetKind, kinds_taken
from rblwatch.resolver import Durations, normalize_server, system_nameservers
from rblwatch.scan import Plan, Report, fetch_txt, plans_for, probe_health, scan

RTT_BUCKETS = (1.0,)  # a probe's round trips are only summed: one bucket will do


@dataclass(slots=True)
class DnsblRun(CheckRun):
    """A DNSBL run keeps its scan report: `annotate` adds TXT to its results."""

    report: Report | None = field(default=None, repr=False)


class DnsblCheck:
    """Lookups on DNS lists, with one `Plan` per list kept while its config is the same."""

    name = "dnsbl"
    states = States(bad="listed", good="clean")
    probes = True

    def __init__(self) -> None:
        self._plans: dict[str, tuple[DnsList, ResolverConfig, Plan]] = {}

    def takes(self, subject: DnsList) -> tuple[TargetKind, ...]:
        return kinds_taken(subject)

    def targets(self, cfg: Config, subject: DnsList, found: Found, inventory: Inventory) -> Slice:
        return inventory.slice(found, kinds_taken(subject))

    def plan(self, lst: DnsList, resolver_cfg: ResolverConfig) -> Plan:
        """How to ask a list: built once per list and resolver config (its decoder keeps a
        cache of decoded answers), not re-read from resolv.conf every cycle."""
        cached = self._plans.get(lst.name)
        if cached is not None and cached[0] is lst and cached[1] is resolver_cfg:
            return cached[2]
        configured = resolver_cfg.nameservers or system_nameservers()
        servers = tuple(normalize_server(h, p) for h, p in configured)
        plan = plans_for([lst], servers)[0]
        self._plans[lst.name] = (lst, resolver_cfg, plan)
        return plan

    async def probe(self, io: CheckIO, subject: DnsList) -> Probed:
        plan = self.plan(subject, io.config)
        took = Durations(RTT_BUCKETS)
        sent = await probe_health(io.resolver, [plan], took)
        answered = sum(took.counts)
        return Probed(plan.verdict, sent, took.total / answered if answered else None)

    async def run(
        self,
        io: CheckIO,
        subject: DnsList,
        targets: Slice,
        durations: Durations,
        until: float | None = None,
    ) -> DnsblRun:
        report = await scan(
            io.resolver,
            targets.targets,
            [self.plan(subject, io.config)],
            durations=durations,
            max_qps=subject.max_qps * io.share if subject.max_qps else None,
            prefixes=targets.prefixes,
            until=until,
        )
        return self._run_of(report)

    async def annotate(self, io: CheckIO, subject: DnsList, run: CheckRun, news: IsNews) -> None:
        assert isinstance(run, DnsblRun) and run.report is not None
        report = run.report
        # a cut run is past its deadline already: its TXT gets one attempt's time, no more
        until = time.monotonic() + io.config.timeout if run.cut else None
        await fetch_txt(io.resolver, report, lambda r: news(r.target.value, r.outcome), until)
        run.outcomes = {r.target.value: r.outcome for r in report.results}
        run.queries = report.queries

    @staticmethod
    def _run_of(report: Report) -> DnsblRun:
        return DnsblRun(
            outcomes={r.target.value: r.outcome for r in report.results},
            lookups=report.summary.lookups,
            errors=report.summary.error,
            queries=report.queries,
            cut=report.cut,
            unchecked=report.unchecked,
            report=report,
        )


__all__ = ["DnsblCheck", "DnsblRun"]
