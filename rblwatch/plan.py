"""Query etiquette and timing: how many queries a day each list gets from this config
(SPEC §5), and how long a cycle of it takes against the time it has.

Pure arithmetic over the config, shared by `rblwatch plan` and the daemon's start-up warnings.

A cycle's time is its lookups over the rate the path allows: `window` lookups in flight, each
taking one round trip, so `lookups x RTT / window` — or `lookups / max_qps` when the list's
rate limit is the tighter bound. The window is `resolver.max_in_flight`, shared equally by the
lists whose cycles run at once (the resolver's `Window` does so; on the interval grid, every
list's cycles start together). `attempts` do not enter it: a lookup is retried only when a
datagram is lost, and then costs a timeout more, which a healthy path makes rare (the measured
RTT of a lossy path is what to look at then). `plan` has no network and assumes `DEFAULT_RTT`;
the daemon measures each list's RTT at its first health probe and warns with that. A cycle
that needs more than `DEADLINE_SHARE` of its interval is cut at its deadline every time, and
its lists are never fully checked: that is what the warnings say, with what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rblwatch import health, targets
from rblwatch.config import Config
from rblwatch.model import TargetKind

DAY = 86400.0
DEADLINE_SHARE = 0.9  # a cycle may take at most this share of its interval (the scheduler's)
DEFAULT_RTT = 0.1  # seconds: what `plan` assumes, having no network to measure


@dataclass(frozen=True, slots=True)
class PlanRow:
    list: str
    targets: int
    interval: float
    queries_per_day: int
    limit: int | None

    @property
    def over(self) -> bool:
        return self.limit is not None and self.queries_per_day > self.limit


def target_counts(cfg: Config) -> dict[TargetKind, int]:
    """Targets per kind after expansion; a hostname counts as one IPv4 address (a guess:
    its addresses are only known when it is resolved, every cycle)."""
    counts = dict.fromkeys(TargetKind, 0)
    for g in cfg.targets:
        for t in targets.expand(
            g.addresses, g.exclude, g.domains, ipv4_min_prefix=cfg.limits.ipv4_min_prefix
        ):
            counts[t.kind] += 1
        counts[TargetKind.IPV4] += len(g.hostnames)
    return counts


def plan(cfg: Config, counts: Mapping[TargetKind, int] | None = None) -> list[PlanRow]:
    """Each DNS list's plan; `counts` (`target_counts`) if the caller has them already."""
    counts = target_counts(cfg) if counts is None else counts
    rows = []
    for lst in cfg.subjects:
        n = sum(c for kind, c in counts.items() if lst.checks(kind))
        interval = lst.interval or cfg.schedule.interval
        probes = len(health.test_points(lst)) * DAY / cfg.schedule.health_interval
        per_day = int(n * DAY / interval + probes)
        rows.append(PlanRow(lst.name, n, interval, per_day, lst.daily_query_limit))
    return rows


def warnings(cfg: Config) -> list[str]:
    """One line per list whose plan exceeds its published free-use limit."""
    return [
        f"list {r.list}: about {r.queries_per_day:,} queries/day exceed its limit of "
        f"{r.limit:,}; it will stop being queried for the rest of each day once the budget is "
        "spent (raise its interval or remove targets)"
        for r in plan(cfg)
        if r.over and r.limit is not None
    ]


@dataclass(frozen=True, slots=True)
class CycleEstimate:
    """How long one list's cycle should take, and whether that fits its interval."""

    list: str
    lookups: int
    window: int  # lookups in flight for this list (its share of max_in_flight)
    rtt: float  # seconds
    max_qps: float | None
    interval: float
    seconds: float
    lists: int = 1  # lists sharing the window
    measured: bool = False  # the RTT was measured (not DEFAULT_RTT)

    @property
    def fits(self) -> bool:
        return self.seconds <= self.interval * DEADLINE_SHARE

    def line(self) -> str:
        """The warning for a cycle that cannot fit, naming what to change."""
        share = f" (its share of {self.window * self.lists:,} with {self.lists} lists)"
        window = f"{self.window:,} in flight" + (share if self.lists > 1 else "")
        rtt = f"{self.rtt * 1000:,.0f} ms RTT" + (" measured" if self.measured else " assumed")
        qps_bound = self.max_qps is not None and self.lookups / self.max_qps >= self.seconds
        pace = f"its max_qps of {self.max_qps:g}" if qps_bound else f"{window} and {rtt}"
        fix = (
            "raise the interval or watch fewer targets on it"
            if qps_bound
            else ("raise max_in_flight or the interval")
        )
        return (
            f"list {self.list}: a cycle of {self.lookups:,} lookups needs ~{self.seconds:,.0f} s"
            f" at {pace}; its interval is {_span(self.interval)}: {fix}"
        )


def cycle_seconds(lookups: int, window: int, rtt: float, max_qps: float | None) -> float:
    """The time a cycle of `lookups` needs at `window` in flight, `rtt` each, under max_qps."""
    seconds = lookups * rtt / max(1, window)
    return max(seconds, lookups / max_qps) if max_qps else seconds


def cycle_estimates(
    cfg: Config,
    rtts: Mapping[str, float] | None = None,
    counts: Mapping[TargetKind, int] | None = None,
) -> list[CycleEstimate]:
    """Each DNS list's cycle estimate, at its measured RTT (`rtts`, by list) if known;
    `counts` (`target_counts`) if the caller has them (expanding a /14 is not free)."""
    lists = len(cfg.subjects)
    window = max(1, -(-cfg.resolver.max_in_flight // max(1, lists)))
    out = []
    for row, lst in zip(plan(cfg, counts), cfg.subjects, strict=True):
        measured = rtts is not None and lst.name in rtts
        rtt = rtts[lst.name] if rtts is not None and measured else DEFAULT_RTT
        qps = lst.max_qps or None
        out.append(
            CycleEstimate(
                lst.name,
                row.targets,
                window,
                rtt,
                qps,
                row.interval,
                cycle_seconds(row.targets, window, rtt, qps),
                lists,
                measured,
            )
        )
    return out


def cycle_warnings(cfg: Config, rtts: Mapping[str, float] | None = None) -> list[str]:
    """One line per list whose cycle cannot fit its interval."""
    return [e.line() for e in cycle_estimates(cfg, rtts) if not e.fits]


def _span(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
