"""The hygiene check kind: sender checks (fcrdns, spf, dkim, dmarc, mta-sts, tls-rpt) as
pairs of the same state machine as the DNSBL lookups (`rblwatch.hygiene`).

A subject is one check (`HygieneSubject`), over every group whose `hygiene:` section asks for
it. Its targets are the pairs' keys (`model.hygiene_key`: "example.com 192.0.2.10" for
SPF), built each cycle from the groups and the sending IPs known now (hostnames resolve
afresh). A run is one hygiene pass in worker threads on a `CachingDns` over the configured
nameservers and timeout. `fail` is the bad state (codes: the result word; meanings: the
reason), `error` changes nothing, and there are no test points: a DNS outage is each pair's
error, never a transition.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from rblwatch.checks.base import CheckIO, CheckRun, IsNews, Probed, States
from rblwatch.config import Config
from rblwatch.health import HEALTHY
from rblwatch.hygiene.dns import CachingDns, Dns
from rblwatch.hygiene.result import CheckResult
from rblwatch.hygiene.runner import WORKERS, Item, items_for, run_kept
from rblwatch.inventory import Found, Inventory, Slice
from rblwatch.model import (
    CHECK_EVENTS,
    HygieneSubject,
    Outcome,
    OutcomeKind,
    Reason,
    Target,
    TargetKind,
    error,
)
from rblwatch.resolver import Durations
from rblwatch.scan import NOT_CHECKED


def items_of(cfg: Config, check: str, found: Found) -> list[Item]:
    """The pairs of one check over every group that asks for it, one per key (first wins)."""
    out: list[Item] = []
    keys: set[str] = set()
    for g in cfg.targets:
        h = g.hygiene
        if h is None or check not in h.checks:
            continue
        ips: Sequence[str] | None = h.sending_ips
        if ips is None:  # the group's addresses, and its hostnames' as resolved now (not
            # `found.targets`: there an address of two groups is the first group's only)
            ips = found.addresses.get(g.group, ())
        for item in items_for((check,), g.domains, ips, h.selectors_of, group=g.group, helo=h.helo):
            if item.key not in keys:
                keys.add(item.key)
                out.append(item)
    return out


def outcome_of(result: CheckResult) -> Outcome | None:
    """A result in the state machine's words; None for a pass (the good state)."""
    if result.outcome == "pass":
        return None
    if result.outcome == "fail":
        return Outcome(OutcomeKind.LISTED, codes=(result.result,), meanings=(result.reason,))
    return error(_reason_of(result.reason), result.reason)


def _reason_of(text: str) -> Reason:
    low = text.lower()
    if "timeout" in low or "timed out" in low:
        return Reason.TIMEOUT
    if "servfail" in low or "refused" in low:
        return Reason.SERVFAIL
    return Reason.NETWORK


class HygieneCheck:
    """Sender hygiene pairs; keeps the last cycle's items by key for its run."""

    name = "hygiene"
    states = States(bad="fail", good="pass", events=CHECK_EVENTS)
    probes = False  # no RFC 5782 test points: nothing to trust or distrust as a whole

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Item]] = {}

    def takes(self, subject: HygieneSubject) -> tuple[TargetKind, ...]:
        return ()

    def targets(
        self, cfg: Config, subject: HygieneSubject, found: Found, inventory: Inventory
    ) -> Slice:
        items = items_of(cfg, subject.name, found)
        self._items[subject.name] = {i.key: i for i in items}
        kinds = {t.value: t for t in found.targets}
        targets: list[Target] = []
        for i in items:
            known = kinds.get(i.ip or i.target)
            kind = known.kind if known is not None and i.check == "fcrdns" else _kind_of(i)
            source = known.source if known is not None else i.key
            targets.append(Target(i.key, kind, i.group, source))
        return Slice(targets, [b""] * len(targets), frozenset(t.value for t in targets))

    async def probe(self, io: CheckIO, subject: HygieneSubject) -> Probed:
        return Probed(HEALTHY)

    async def run(
        self,
        io: CheckIO,
        subject: HygieneSubject,
        targets: Slice,
        durations: Durations,
        until: float | None = None,
    ) -> CheckRun:
        by_key = self._items.get(subject.name, {})
        items = [by_key[t.value] for t in targets.targets if t.value in by_key]
        r = io.config
        dns = CachingDns(r.nameservers, r.timeout, r.attempts)
        # each result reduced to its outcome as it is made; once the pass is cut, results
        # made after (their lookups abandoned, or begun before and ended after) are not kept
        got: dict[str, Outcome | None] = {}
        cut = threading.Event()

        def keep(result: CheckResult) -> None:
            if not cut.is_set():
                got[result.key] = outcome_of(result)

        # a thread of its own, not asyncio.to_thread's: the loop's default executor (a few
        # threads) serves the store, /metrics and the lease ticks, and a pass may wait on a
        # slow DNS for many minutes
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hygiene-{subject.name}")
        try:
            # the resolver's in-flight limit bounds the pass's lookups at once too
            workers = min(WORKERS, r.max_in_flight)
            work = asyncio.wrap_future(pool.submit(run_kept, dns, items, keep, workers))
            wait = None if until is None else max(0.0, until - time.monotonic())
            await asyncio.wait_for(asyncio.shield(work), wait)
        except TimeoutError:
            cut.set()
            dns.abandon()  # past the deadline: the pass's threads stop at their next lookup
            return _cut_run(items, dict(got), dns.queries)
        except asyncio.CancelledError:
            dns.abandon()
            raise
        finally:
            pool.shutdown(wait=False)
        return _run_of([None if o is None else (k, o) for k, o in got.items()], dns.queries)

    async def annotate(
        self, io: CheckIO, subject: HygieneSubject, run: CheckRun, news: IsNews
    ) -> None:
        return None  # the reason is in the outcome already


def run_pass(dns: Dns, items: Sequence[Item], workers: int = WORKERS) -> CheckRun:
    """A pass of `items` on `dns` (in threads) as the engine takes it: each result reduced
    to its outcome as it is made (`run_kept`), not all of them held with their traces."""
    return _run_of(run_kept(dns, items, _decided, workers), dns.queries)


def run_of(results: Sequence[CheckResult], queries: int) -> CheckRun:
    return _run_of([_decided(r) for r in results], queries)


def _decided(result: CheckResult) -> tuple[str, Outcome] | None:
    outcome = outcome_of(result)
    return None if outcome is None else (result.key, outcome)


def _run_of(decided: Sequence[tuple[str, Outcome] | None], queries: int) -> CheckRun:
    run = CheckRun(lookups=len(decided), queries=queries)
    for d in decided:
        if d is not None:
            run.outcomes[d[0]] = d[1]
            run.errors += d[1].is_error
    return run


def _cut_run(items: Sequence[Item], got: dict[str, Outcome | None], queries: int) -> CheckRun:
    """A pass cut at its deadline: what it decided, and every other pair `NOT_CHECKED`."""
    decided: list[tuple[str, Outcome] | None] = []
    for item in items:
        key = item.key
        if key in got:
            outcome = got[key]
            decided.append(None if outcome is None else (key, outcome))
        else:
            decided.append((key, NOT_CHECKED))
    run = _run_of(decided, queries)
    run.cut, run.unchecked = True, len(items) - len(got)
    return run


def _kind_of(item: Item) -> TargetKind:
    if item.check == "fcrdns":
        return TargetKind.IPV6 if ":" in item.target else TargetKind.IPV4
    return TargetKind.DOMAIN


__all__ = ["HygieneCheck", "items_of", "outcome_of", "run_of", "run_pass"]
