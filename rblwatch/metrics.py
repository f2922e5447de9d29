"""The /metrics collector (SPEC §11): stored state and in-process counters as Prometheus families.

A scrape never does a lookup. It reads the store once (list rows, outbox counts, and the pairs
when a commit may have moved them: `PairFamilies`) and the counters of `runtime.stats`, and
builds every family from those snapshots, so a scrape sees one consistent picture even while a
cycle is committing. The label of a list is always its `name`:
zones may hold access keys.

Cardinality is bounded and known in advance: every configured (list, group), every `Reason`,
every `EventKind` and every configured receiver is exported (0 included) from the first scrape,
so alert rules never meet a series that appears only after the first problem. The per-target
families (`listed`, `listed_since_timestamp_seconds`) follow `metrics.per_target`.

Several instances on one database: everything read from the store (the per-target families,
`listings`, `list_healthy`, the cycle gauges, `alert_queue`: the outbox is shared too) is the
shared state, so every instance exports the same series and the shipped rules aggregate the
`instance` label away, one alert per listing or list that survives the loss of an instance.
The in-process counters (queries, errors, durations, events raised, deliveries, reloads) are
each instance's own, and so are the `instance_*` gauges of its last heartbeat (`rt.view`):
the leader's lease and the shards it holds. README: "Metrics with several instances".

Speed: a provider watching a /16 can have tens of thousands of current listings, and
prometheus_client's generic `generate_latest` spends several microseconds formatting each
sample. The per-target families are therefore `PairGauge`s, which `render` writes with a
specialised loop; every other family goes through `generate_latest` itself, so the output is
byte-for-byte what prometheus_client would produce (a test pins that).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import platform
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from rblwatch import __version__
from rblwatch.bounces.model import CAUSES
from rblwatch.config import Config
from rblwatch.model import (
    EventKind,
    Health,
    ListStatus,
    PairStatus,
    PairSummary,
    Purpose,
    Reason,
    ResolverState,
)
from rblwatch.runtime import Runtime
from rblwatch.stats import ListCounters, Stats
from rblwatch.store import StoreError

log = logging.getLogger("rblwatch.metrics")

# the text format generate_latest writes (prometheus_client >= 0.22 calls 1.0.0 "latest")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_PAIR_LABELS = ("target", "list", "group")
# prometheus_client's own value formatting (Go style), typed for mypy
_format_value: Callable[[float], str] = floatToGoString


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One read of the store: all a scrape needs from it (read once, in the scraping thread)
    but the pairs, which are read again only when `marks` moved (`PairFamilies`)."""

    lists: dict[str, ListStatus]
    outbox: dict[str, int]
    resolver: ResolverState = field(default_factory=ResolverState)
    marks: tuple[int, int] = (0, 0)  # the newest event's id, the listed pairs' count


def _snapshot_if_up(runtime: Runtime) -> Snapshot | None:
    """The store's part of a scrape; None while the store is away (known from the heartbeat,
    so a scrape does not wait for it, or found now)."""
    if not runtime.store_ok:
        return None
    try:
        return read_snapshot(runtime)
    except StoreError:
        return None


def read_snapshot(runtime: Runtime) -> Snapshot:
    store = runtime.store
    newest = store.events(limit=1, newest_first=True)
    # read first: pairs read after them are at least as new as they say
    marks = ((newest[0].id or 0) if newest else 0, store.listed_count())
    return Snapshot(
        lists={row.name: row for row in store.list_statuses()},
        outbox=store.outbox_counts(),
        resolver=store.resolver_state(),
        marks=marks,
    )


MAX_AGE = 60.0  # seconds a read of the pairs is used at most, whatever the marks say


def _key(snap: Snapshot) -> tuple[object, ...]:
    """What the pair families are kept for: the store's marks and the list rows."""
    return (snap.marks, tuple(snap.lists.values()))


@dataclass(frozen=True, slots=True)
class PairFamilies:
    """The families built from the stored pairs (per-target, `listings`, hygiene), kept from
    one scrape to the next while nothing they show can have changed.

    Reading and formatting 21,000 listings is most of a big scrape's cost, and they change
    only when a cycle commits: every transition writes an event, and every full cycle
    rewrites its list's row. So the families are kept while the newest event, the listed
    count, the list rows and the config are the same; a change no mark shows (a target's
    group moved by a confirmation round, say) is picked up at most `MAX_AGE` later.
    """

    config: Config
    key: tuple[object, ...]
    read_at: float
    listing: tuple[Metric, ...]  # per-target families and `listings`
    hygiene: tuple[Metric, ...]

    @staticmethod
    def build(
        store_pairs: list[PairSummary], config: Config, key: tuple[object, ...]
    ) -> PairFamilies:
        list_names = [lst.name for lst in config.subjects]
        configured = set(list_names)
        pairs = [p for p in store_pairs if p.list in configured]
        allow = {lst.name for lst in config.subjects if lst.purpose is Purpose.ALLOW}
        listing = (
            *_per_target(pairs, config.metrics.per_target, allow),
            _listings(pairs, list_names, [g.group for g in config.targets]),
        )
        hygiene = tuple(_hygiene(config, store_pairs))
        return PairFamilies(config, key, time.monotonic(), listing, hygiene)


Row = tuple[str, str, str, float]  # target, list, group, value


class PairGauge(GaugeMetricFamily):
    """A per-(target, list, group) gauge kept as plain rows, which `render` formats directly.

    `samples` is built only when something generic reads it (registry.get_sample_value,
    generate_latest): a scrape through `render` never makes tens of thousands of Sample
    objects and label dicts only to take them apart again.
    """

    def __init__(self, name: str, documentation: str, rows: list[Row]) -> None:
        self._samples: list[Sample] | None = None
        self._text: bytes | None = None
        super().__init__(name, documentation, labels=_PAIR_LABELS)
        self.rows = rows

    def text(self) -> bytes:
        """The family in the text format, formatted once (a kept family is scraped again)."""
        if self._text is None:
            self._text = _render_pairs(self)
        return self._text

    @property
    def samples(self) -> list[Sample]:
        if self._samples is None:
            name = self.name
            self._samples = [
                Sample(name, {"target": t, "list": li, "group": g}, v) for t, li, g, v in self.rows
            ]
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        # Metric.__init__ assigns [] here; the rows are the truth, so only a real list sticks
        self._samples = value or None


class RblwatchCollector(Collector):
    """Every rblwatch_ family, built on each scrape from the runtime it was given."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._kept: PairFamilies | None = None
        self._building = threading.Lock()  # one build of the pair families at a time
        self._warm_asked = False
        self._committing = 0  # cycles' commits under way (`runtime.before_commit`)

    def describe(self) -> Iterable[Metric]:
        # Nothing: registering must not read the store, and names never clash in our registry.
        return []

    @staticmethod
    def _usable(kept: PairFamilies | None, config: Config) -> bool:
        return (
            kept is not None
            and kept.config is config  # a reload: other lists, groups or per_target
            and time.monotonic() - kept.read_at < MAX_AGE
        )

    def _fresh(self, kept: PairFamilies | None, config: Config, key: tuple[object, ...]) -> bool:
        return self._usable(kept, config) and kept is not None and kept.key == key

    def _pair_families(self, config: Config, snap: Snapshot) -> PairFamilies:
        """The pair families, kept while nothing they show moved (`PairFamilies`).

        While another thread builds them anew, or a build is asked for (`warm`, just after a
        commit; the worker threads may all be busy with the cycle a while), a scrape takes
        the ones kept, of the config in force and younger than MAX_AGE, rather than build or
        wait: the pairs as they were a moment before the commit, where building would cost
        the scrape several hundred ms at a /14's first commit, sharing the GIL with the cycle.
        """
        key = _key(snap)
        kept = self._kept
        if self._fresh(kept, config, key):
            assert kept is not None
            return kept
        usable = self._usable(kept, config)
        soon = self._committing or self._warm_asked
        if usable and (soon or not self._building.acquire(blocking=False)):
            assert kept is not None  # a build under way or to come: these meanwhile
            return kept
        if not usable:
            self._building.acquire()
        try:
            return self._built(config, key)
        finally:
            self._building.release()

    def _built(self, config: Config, key: tuple[object, ...]) -> PairFamilies:
        """The families for `key`, built now unless another thread just did (the caller
        holds `_building`)."""
        kept = self._kept
        if self._fresh(kept, config, key):
            assert kept is not None
            return kept
        pairs = self._runtime.store.pair_summaries()
        kept = self._kept = PairFamilies.build(pairs, config, key)
        return kept

    def committing(self) -> None:
        """Before a commit, on the event loop: until its `warm`, scrapes take the kept
        families (a scrape that read the commit's marks would build them itself)."""
        self._committing += 1

    def warm_soon(self) -> None:
        """After a commit, on the event loop: `warm` in a worker thread (one asked at a
        time), so that the next scrape finds the pair families built."""
        self._committing = max(0, self._committing - 1)
        if self._warm_asked:
            return
        self._warm_asked = True
        asyncio.get_running_loop().run_in_executor(None, self.warm)

    def warm(self) -> None:
        """Build the pair families now if a commit moved them. The build is claimed before
        the store is read: a scrape that sees the commit's marks meanwhile takes the kept
        families rather than build them a second time beside this one."""
        self._warm_asked = False  # before the read: a commit after it asks again
        runtime = self._runtime
        with self._building:
            try:
                snap = _snapshot_if_up(runtime)
                if snap is not None:
                    self._built(runtime.config, _key(snap))
            except StoreError:
                pass  # the store is away: the next scrape says so
            except Exception:  # a worker thread's failure has nobody else to report it
                log.exception("metrics: building the pair families failed")

    def collect(self) -> Iterator[Metric]:
        runtime = self._runtime
        config = runtime.config  # read once: a reload mid-scrape must not mix two configs
        list_names = [lst.name for lst in config.subjects]
        snap = _snapshot_if_up(runtime)
        pairs: PairFamilies | None = None
        if snap is not None:
            try:
                pairs = self._pair_families(config, snap)
            except StoreError:
                snap = None
        yield GaugeMetricFamily(
            "rblwatch_store_up",
            "1 if the store answered this scrape's read (and the last heartbeat), else 0.",
            value=1.0 if snap is not None else 0.0,
        )
        if snap is not None and pairs is not None:
            # what only the store knows is left out while it is away, never shown as zero
            yield from pairs.listing
            yield _list_healthy(config, snap.lists)
            yield from _list_cycles(list_names, snap.lists)
            yield from pairs.hygiene
            yield GaugeMetricFamily(
                "rblwatch_resolver_up",
                "1 while the default resolver answers (the leader's probes hear it), else 0.",
                value=1.0 if snap.resolver.reachable else 0.0,
            )
        yield _gauge(
            "targets",
            "Targets per group after expansion.",
            "group",
            _sorted(runtime.targets_per_group),
        )
        yield from _query_counters(runtime.stats, list_names)
        yield from _nameservers(runtime.stats)
        yield from _event_and_alert_families(
            runtime.stats, config, None if snap is None else snap.outbox
        )
        yield from _build_and_reload(runtime)
        yield from _cluster(runtime, list_names)


def build_registry(runtime: Runtime, *, warm: bool = False) -> CollectorRegistry:
    """A fresh registry holding the rblwatch collector and this process's own metrics.

    Never the global default registry: a test (or a second daemon in one process) gets its
    own. The process collector adds process_* (CPU, memory, file descriptors) on Linux.
    `warm`: the collector rebuilds its pair families after each cycle's commit
    (`runtime.before_commit`, `on_commit`), off the scrapes' path: the daemon's registry.
    """
    registry = CollectorRegistry()
    collector = RblwatchCollector(runtime)
    registry.register(collector)
    if warm:
        runtime.before_commit.append(collector.committing)
        runtime.on_commit.append(collector.warm_soon)
    ProcessCollector(registry=registry)
    return registry


# --- the text exposition -------------------------------------------------------------------


class _One(Collector):
    """A collector of one already-built family, so generate_latest can format it alone."""

    def __init__(self, family: Metric) -> None:
        self._family = family

    def collect(self) -> Iterable[Metric]:
        return (self._family,)


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text format 0.0.4, exactly as generate_latest writes it."""
    out: list[bytes] = []
    for family in registry.collect():
        if isinstance(family, PairGauge):
            out.append(family.text())
        else:
            out.append(generate_latest(_One(family)))
    return b"".join(out)


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def _render_pairs(family: PairGauge) -> bytes:
    """Lines of a PairGauge: labels in sorted order (group, list, target), as generate_latest.

    Rows come in runs of one (list, group) (the store reads pairs in list order), and a run's
    lines share their prefix: a run whose values are all 1 (rblwatch_listed, the bulk of a big
    scrape) is one `str.join` of its targets, and any other run is joined in C from its
    parts, its values' texts kept from one scrape to the next (a listing's start time does
    not change while it lasts).
    """
    name = family.name
    doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    out = [f"# HELP {name} {doc}\n# TYPE {name} gauge\n"]
    for (lst, group), run in itertools.groupby(family.rows, key=_LIST_AND_GROUP):
        rows = list(run)
        prefix = f'{name}{{group="{_escape(group)}",list="{_escape(lst)}",target="'
        targets = list(map(_TARGET, rows))
        joined = "".join(targets)
        if "\\" in joined or '"' in joined or "\n" in joined:
            targets = [_escape(t) for t in targets]
        values = list(map(_VALUE, rows))
        if values.count(1.0) == len(values):
            end = '"} 1.0\n'
            out.append(prefix + (end + prefix).join(targets) + end)
        else:
            r = itertools.repeat
            texts = map(_VALUE_TEXT.__getitem__, values)
            parts = zip(r(prefix), targets, r('"} '), texts, r("\n"), strict=False)  # r: endless
            out.append("".join(map("".join, parts)))
    return "".join(out).encode()


_LIST_AND_GROUP = operator.itemgetter(1, 2)
_TARGET = operator.itemgetter(0)
_VALUE = operator.itemgetter(3)


class _ValueTexts(dict[float, str]):
    """Sample values as text (`floatToGoString`), each formatted once; bounded."""

    def __missing__(self, value: float) -> str:
        if len(self) > 1 << 18:  # listings come and go: start afresh past ~260,000 values
            self.clear()
        text = self[value] = _format_value(value)
        return text


_VALUE_TEXT = _ValueTexts()


# --- the families -----------------------------------------------------------------------------


def _sorted(values: dict[str, int] | dict[str, float]) -> list[tuple[str, float]]:
    return sorted(values.items())


def _gauge(
    name: str, doc: str, label: str, values: Iterable[tuple[str, float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"rblwatch_{name}", doc, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


def _counter(
    name: str, doc: str, label: str, values: Iterable[tuple[str, float]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(f"rblwatch_{name}", doc, labels=[label])
    for key, value in values:
        family.add_metric([key], value)
    return family


def _per_target(pairs: Sequence[PairSummary], per_target: str, allow: set[str]) -> Iterator[Metric]:
    """rblwatch_listed and rblwatch_listed_since_timestamp_seconds, per `metrics.per_target`;
    hits on allow-lists go to rblwatch_allowlisted instead: exported, never alerted (SPEC §2).

    Rows, not samples: see PairGauge.
    """
    if per_target == "none":
        return
    listed: list[Row] = []
    since: list[Row] = []
    allowed: list[Row] = []
    export_clean = per_target == "all"
    for p in pairs:
        if p.status is PairStatus.LISTED:
            if p.list in allow:
                allowed.append((p.target, p.list, p.group, 1.0))
                continue
            listed.append((p.target, p.list, p.group, 1.0))
            since.append((p.target, p.list, p.group, p.since))
        elif export_clean and p.list not in allow:
            listed.append((p.target, p.list, p.group, 0.0))
    yield PairGauge("rblwatch_listed", "1 while the target is listed on the list.", listed)
    yield PairGauge(
        "rblwatch_listed_since_timestamp_seconds",
        "When the current listing was confirmed (unix seconds).",
        since,
    )
    yield PairGauge(
        "rblwatch_allowlisted", "1 while the target is on the allow-list (good news).", allowed
    )


def _listings(
    pairs: Sequence[PairSummary], list_names: Sequence[str], groups: Sequence[str]
) -> GaugeMetricFamily:
    """Listed targets per list and group: every configured (list, group), zeros included."""
    counts: Counter[tuple[str, str]] = Counter(
        (p.list, p.group) for p in pairs if p.status is PairStatus.LISTED
    )
    for lst in list_names:
        for group in groups:
            counts.setdefault((lst, group), 0)
    family = GaugeMetricFamily(
        "rblwatch_listings",
        "Targets currently listed, per list and group.",
        labels=["list", "group"],
    )
    for (lst, group), n in sorted(counts.items()):
        family.add_metric([lst, group], n)
    return family


def _hygiene(config: Config, pairs: Sequence[PairSummary]) -> Iterator[GaugeMetricFamily]:
    """The sender checks: per failing pair a 0 (bounded as the listings are: a check that
    passes has no series, a fixed pair keeps none), and the failing count per configured
    (check, group), zeros included, for rules that must not wait for a first failure."""
    wanted = {
        (c, g.group) for g in config.targets if g.hygiene is not None for c in g.hygiene.checks
    }
    checks = {c for c, _ in wanted}
    failing = (
        [
            p
            for p in pairs
            if p.list in checks and p.status is PairStatus.LISTED and (p.list, p.group) in wanted
        ]
        if checks
        else []  # no group asks for a check: a scrape of 10,000 listings looks at none of them
    )
    ok = GaugeMetricFamily(
        "rblwatch_check_ok",
        "0 while a sender hygiene check (fcrdns, spf, dkim, dmarc, ...) fails for a target.",
        labels=["check", "target", "group"],
    )
    if config.metrics.per_target != "none":
        for p in failing:
            ok.add_metric([p.list, p.target, p.group], 0.0)
    yield ok
    counts: Counter[tuple[str, str]] = Counter((p.list, p.group) for p in failing)
    family = GaugeMetricFamily(
        "rblwatch_checks_failing",
        "Sender hygiene pairs failing now, per check and group.",
        labels=["check", "group"],
    )
    for check, group in sorted(wanted):
        family.add_metric([check, group], counts.get((check, group), 0))
    yield family


def _healthy(health_check: bool, row: ListStatus | None) -> float:
    """1 only when the list is known to be usable.

    A list whose health checks are off is never probed, but nothing stops its lookups, so it
    counts as healthy unless a verdict was stored. A list not probed yet (the first probe runs
    at start) is 0: not known to be healthy. Alert rules should use `for:` to ride that out.
    """
    health = row.health if row is not None else Health.UNKNOWN
    if health is Health.UNKNOWN:
        return 0.0 if health_check else 1.0
    return 1.0 if health is Health.HEALTHY else 0.0


def _list_healthy(config: Config, rows: dict[str, ListStatus]) -> GaugeMetricFamily:
    return _gauge(
        "list_healthy",
        "1 if the list answered its RFC 5782 test points correctly, else 0.",
        "list",
        ((lst.name, _healthy(lst.health_check, rows.get(lst.name))) for lst in config.subjects),
    )


def _list_cycles(list_names: Sequence[str], rows: dict[str, ListStatus]) -> Iterator[Metric]:
    """Cycle gauges from the stored list rows; a list with no cycle yet has no series."""
    present = [rows[name] for name in list_names if name in rows]
    yield _gauge(
        "cycle_duration_seconds",
        "Duration of the list's last complete cycle.",
        "list",
        ((r.name, r.last_cycle_duration) for r in present if r.last_cycle_duration is not None),
    )
    yield _gauge(
        "last_cycle_success_timestamp_seconds",
        "End of the list's last cycle without lookup errors (unix seconds).",
        "list",
        ((r.name, r.last_cycle_success) for r in present if r.last_cycle_success is not None),
    )


def _list_counters(stats: Stats, list_names: Sequence[str]) -> list[tuple[str, ListCounters]]:
    """Counters of every configured list (zero if it has none yet) and of earlier lists.

    Copied first: the event loop may add a list (reload) while this thread iterates.
    """
    known = dict(stats.lists)
    for name in list_names:
        known.setdefault(name, ListCounters())
    return sorted(known.items())


def _query_counters(stats: Stats, list_names: Sequence[str]) -> Iterator[Metric]:
    lists = _list_counters(stats, list_names)
    yield _counter(
        "queries", "Lookups sent to the list.", "list", ((n, c.queries) for n, c in lists)
    )
    errors = CounterMetricFamily(
        "rblwatch_query_errors",
        "Lookups that ended in error, by reason.",
        labels=["list", "reason"],
    )
    for name, c in lists:
        for reason in Reason:
            errors.add_metric([name, reason.value], c.errors.get(reason, 0))
    yield errors
    durations = HistogramMetricFamily(
        "rblwatch_query_duration_seconds",
        "Time from sending a lookup to its answer.",
        labels=["list"],
    )
    for name, c in lists:
        h = c.duration
        buckets = h.cumulative()
        # the count is the +Inf bucket, so the two agree even if a lookup lands mid-read
        durations.add_metric([name], buckets=buckets, sum_value=h.total)
    yield durations
    yield _counter(
        "cycles_skipped",
        "Cycles not started because the previous one of the list was still running.",
        "list",
        ((n, c.cycles_skipped) for n, c in lists),
    )
    yield _counter(
        "cycles_overrun",
        "Cycles cut at their deadline (what they had answered was committed).",
        "list",
        ((n, c.cycles_overrun) for n, c in lists),
    )
    yield _counter(
        "cycles_store_down",
        "Cycles not run because the store did not answer.",
        "list",
        ((n, c.store_down) for n, c in lists),
    )
    yield _counter(
        "commits_refused",
        "Cycles whose commit was refused: a lease of theirs was lost meanwhile (several"
        " instances), so their results were not written.",
        "list",
        ((n, c.commits_refused) for n, c in lists),
    )
    dropped = CounterMetricFamily(
        "rblwatch_replies_dropped",
        "DNS replies that matched no query in flight (wrong ID or question, late, garbage).",
    )
    dropped.add_metric([], stats.replies_dropped)
    yield dropped


def _nameservers(stats: Stats) -> Iterator[Metric]:
    """The resolver's view of each nameserver it sends to (`rblwatch.resolver.path`)."""
    gauges = sorted(stats.nameservers(), key=lambda g: g.nameserver)
    live = [g for g in gauges if g.rto is not None]
    yield _gauge(
        "resolver_rtt_seconds",
        "Smoothed round-trip time of the nameserver's answers (SRTT, RFC 6298).",
        "nameserver",
        ((g.nameserver, g.rtt) for g in live if g.rtt is not None),
    )
    yield _gauge(
        "resolver_rto_seconds",
        "Retransmission timeout of a first attempt to the nameserver now.",
        "nameserver",
        ((g.nameserver, g.rto) for g in live if g.rto is not None),
    )
    yield _gauge(
        "resolver_window",
        "Queries the nameserver may have in flight now (its congestion window).",
        "nameserver",
        ((g.nameserver, g.window) for g in live if g.window is not None),
    )
    yield _counter(
        "resolver_retransmissions",
        "Queries sent again to the nameserver after an attempt timed out.",
        "nameserver",
        ((g.nameserver, g.retransmissions) for g in gauges),
    )


def _event_and_alert_families(
    stats: Stats, config: Config, outbox: dict[str, int] | None
) -> Iterator[Metric]:
    events = dict(stats.events)
    yield _counter(
        "events",
        "Events raised, by kind.",
        "kind",
        ((k.value, events.get(k, 0)) for k in EventKind),
    )
    receivers = {r.name for r in config.alerts.receivers}
    deliveries = {name: 0 for name in receivers} | dict(stats.alert_deliveries)
    failures = {name: 0 for name in receivers} | dict(stats.alert_failures)
    # configured receivers only: a removed receiver's rows wait in the outbox for its return
    # (see alerts.Alerts.apply) and must not keep a "queue growing" alert firing meanwhile
    queue = {name: outbox.get(name, 0) for name in receivers} if outbox is not None else {}
    yield _counter("alert_deliveries", "Alerts delivered (2xx).", "receiver", _sorted(deliveries))
    yield _counter(
        "alert_delivery_failures",
        "Alert deliveries that failed for good (4xx, or older than max_age).",
        "receiver",
        _sorted(failures),
    )
    yield _gauge("alert_queue", "Alerts waiting in the outbox.", "receiver", _sorted(queue))
    yield from _bounce_families(stats, config)


def _bounce_families(stats: Stats, config: Config) -> Iterator[Metric]:
    """Bounces read, by cause and the group of the target they blamed ("" for none); every
    (cause, configured group) from the first scrape once a bounce source is configured."""
    counts = dict(stats.bounces)
    if config.bounces is not None:
        for cause in CAUSES:
            for group in ["", *(g.group for g in config.targets)]:
                counts.setdefault((cause, group), 0)
    family = CounterMetricFamily(
        "rblwatch_bounces",
        "Bounces read from the configured mailboxes, by cause and the group of the target blamed.",
        labels=["cause", "group"],
    )
    for (why, group), n in sorted(counts.items()):
        family.add_metric([why, group], n)
    yield family
    errors = {s.name: 0 for s in config.bounces.sources} if config.bounces is not None else {}
    errors |= stats.bounce_errors
    yield _counter(
        "bounce_source_errors",
        "Rounds in which a bounce source could not be read.",
        "source",
        _sorted(errors),
    )


def _build_and_reload(runtime: Runtime) -> Iterator[Metric]:
    stats = runtime.stats
    yield GaugeMetricFamily(
        "rblwatch_config_last_reload_successful",
        "1 if the last configuration reload succeeded (or none was tried).",
        value=1.0 if stats.reload_ok else 0.0,
    )
    # before any reload, the config loaded at start is the last successful one
    loaded = stats.reload_success_at if stats.reload_success_at is not None else stats.started_at
    if loaded is not None:
        yield GaugeMetricFamily(
            "rblwatch_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (unix seconds).",
            value=loaded,
        )
    info = GaugeMetricFamily(
        "rblwatch_build_info",
        "Always 1; the labels say what is running.",
        labels=["version", "python"],
    )
    info.add_metric([runtime.version or __version__, platform.python_version()], 1.0)
    yield info


def _cluster(runtime: Runtime, list_names: Sequence[str]) -> Iterator[Metric]:
    """This instance's share of the work, as of its last heartbeat. Before the first one it
    holds nothing (leader 0, no shards), and how many instances live is not known yet."""
    view = runtime.view
    yield GaugeMetricFamily(
        "rblwatch_instance_leader",
        "1 while this instance holds the leader's lease (health probes, re-posts, housekeeping).",
        value=1.0 if view is not None and view.leader else 0.0,
    )
    yield _gauge(
        "instance_shards_held",
        "Shards of the list this instance holds a lease on.",
        "list",
        ((name, len(view.shards_of(name)) if view is not None else 0) for name in list_names),
    )
    if view is not None:
        yield GaugeMetricFamily(
            "rblwatch_instances_live",
            "Instances with a live heartbeat on the store, as this instance's last one counted.",
            value=view.live,
        )
