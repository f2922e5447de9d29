"""Query etiquette: how many queries a day each list gets from this config (SPEC §5).

Pure arithmetic over the config, shared by `rblwatch plan` and the daemon's start-up warning.
"""

from __future__ import annotations

from dataclasses import dataclass

from rblwatch import health, targets
from rblwatch.config import Config
from rblwatch.model import TargetKind

DAY = 86400.0


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


def plan(cfg: Config) -> list[PlanRow]:
    counts = target_counts(cfg)
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
