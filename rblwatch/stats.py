"""In-process counters of the daemon, read by the /metrics collector (SPEC §11).

Gauges about listings and lists come from the store (they survive restarts); these are the
counters and timings of this process, which Prometheus expects to reset when it restarts.
Every label value is known in advance (list names from the config, reasons and event kinds
from closed enums), so series are pre-created at zero rather than appearing on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from rblwatch.model import EventKind, Reason

# query_duration_seconds buckets: loopback mirrors answer in well under a millisecond, remote
# lists in tens of milliseconds, and a timed-out attempt takes `resolver.timeout`
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class Histogram:
    """Cumulative-bucket histogram in the Prometheus sense (counts per upper bound)."""

    buckets: tuple[float, ...] = DURATION_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    total: float = 0.0
    n: int = 0

    def observe(self, value: float, times: int = 1) -> None:
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += times
                break
        else:
            self.counts[-1] += times
        self.total += value * times
        self.n += times

    def add(self, counts: list[int], total: float) -> None:
        """Merge raw per-bucket counts over the same bounds (the resolver's `Durations`)."""
        for i, count in enumerate(counts):
            self.counts[i] += count
        self.total += total
        self.n += sum(counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs including +Inf, as exposition wants them."""
        out, running = [], 0
        for bound, count in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


@dataclass(slots=True)
class ListCounters:
    queries: int = 0
    errors: dict[Reason, int] = field(default_factory=lambda: dict.fromkeys(Reason, 0))
    duration: Histogram = field(default_factory=Histogram)
    cycles_skipped: int = 0
    cycles_overrun: int = 0
    commits_refused: int = 0  # a fence refused the cycle's commit (a lease lost meanwhile)
    store_down: int = 0  # cycles not run: the store did not answer


@dataclass(frozen=True, slots=True)
class NameserverGauges:
    """One nameserver as the resolver sees it now (`rblwatch.resolver.path`)."""

    nameserver: str  # address:port, [v6 address]:port
    # None for a nameserver no longer used (its counter stays); rtt also before any answer
    rtt: float | None  # SRTT
    rto: float | None
    window: int | None  # datagrams it may have in flight
    retransmissions: int


def _no_nameservers() -> list[NameserverGauges]:
    return []


@dataclass(slots=True)
class Stats:
    """Everything this process counts. Created once; a reload adds lists, never drops counts."""

    lists: dict[str, ListCounters] = field(default_factory=dict)
    events: dict[EventKind, int] = field(default_factory=lambda: dict.fromkeys(EventKind, 0))
    alert_deliveries: dict[str, int] = field(default_factory=dict)
    alert_failures: dict[str, int] = field(default_factory=dict)
    replies_dropped: int = 0
    # bounces read, by (cause, group); group "" for a bounce that blamed no target
    bounces: dict[tuple[str, str], int] = field(default_factory=dict)
    bounce_errors: dict[str, int] = field(default_factory=dict)  # by source: reads that failed
    # the resolver's nameservers now, read at each scrape (`ResolverCache` sets it)
    nameservers: Callable[[], list[NameserverGauges]] = _no_nameservers
    reload_ok: bool = True
    reload_success_at: float | None = None
    started_at: float | None = None

    def ensure_lists(self, names: Iterable[str]) -> None:
        for name in names:
            self.lists.setdefault(name, ListCounters())

    def ensure_receivers(self, names: Iterable[str]) -> None:
        for name in names:
            self.alert_deliveries.setdefault(name, 0)
            self.alert_failures.setdefault(name, 0)

    def list(self, name: str) -> ListCounters:
        return self.lists.setdefault(name, ListCounters())
