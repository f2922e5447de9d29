"""The console's overview (`/`, SPEC §10, issue 11) as a pure view model: banners, counts,
each list's health and cycles, the newest listings, sender hygiene, instances and events.

The counts never say "nothing listed" when nothing was checked: before any list has
completed a cycle, or while the resolver is unreachable, the page says what is not known.
Secrets: lists are named only (zones may hold access keys); the store URL and receiver URLs
never reach this module. Markup is the templates' (`rblwatch.console`), which escape it all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rblwatch.cluster import Instance
from rblwatch.model import DnsList, Event, Health, ListStatus
from rblwatch.views.detail import next_cycle
from rblwatch.views.eventlog import EventRow, event_rows
from rblwatch.views.listings import ListingRow, listing_row
from rblwatch.views.status import Budget, PairCounts, StatusView, age
from rblwatch.views.ui import Stamp, stamp

PAGE_EVENTS = 25  # the overview shows the newest events; /events pages through them all
PAGE_LISTINGS = 10  # the newest listings on the overview; /listings has them all
NOT_KNOWN = "not known"


@dataclass(frozen=True, slots=True)
class Problems:
    """What the runtime knows is wrong beyond the view: the store's last heartbeat and the
    last config reload."""

    store_ok: bool = True
    reload_ok: bool = True


NO_PROBLEMS = Problems()


@dataclass(frozen=True, slots=True)
class Banner:
    tone: str  # "bad" or "warn"
    text: str


@dataclass(frozen=True, slots=True)
class Count:
    label: str
    value: str  # a number, or NOT_KNOWN
    href: str | None = None
    tone: str = ""  # "bad", "warn", "ok" or "" (the number's colour)
    note: str = ""  # a hint shown on hover: what the number means, or the last known one


@dataclass(frozen=True, slots=True)
class ListRow:
    name: str
    health: str
    healthy: bool
    detail: str
    listed: int
    last_cycle_end: Stamp | None
    next_cycle: Stamp | None
    budget: str  # "120 / 5000", "120 (no limit)", "" when not known
    budget_exhausted: bool
    unknown: int | None = None  # its pairs with no good answer for 2 intervals (None: not counted)
    errors: int | None = None  # its pairs whose last lookup failed


@dataclass(frozen=True, slots=True)
class InstanceRow:
    id: str
    this_page: bool
    host: str
    pid: int
    version: str
    heartbeat: Stamp | None
    heartbeat_age: str  # "5s ago", "" without a `now`
    shards: int
    leader: bool


@dataclass(frozen=True, slots=True)
class Overview:
    version: str
    served_by: str | None
    targets: int
    banners: list[Banner]
    counts: list[Count]
    summary: str  # one sentence on what is known: never "nothing listed" when nothing was
    lists: list[ListRow]
    newest: list[ListingRow]
    listings: int
    checks: list[tuple[str, Stamp | None]]  # sender hygiene checks and their last run
    failing: list[ListingRow]
    hygiene_summary: str
    instances: list[InstanceRow]
    events: list[EventRow]  # newest first
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)  # group, host, why


def banners(view: StatusView, problems: Problems, now: float | None) -> list[Banner]:
    out = []
    r = view.resolver
    if not r.reachable:
        since = stamp(r.since, now)
        when = f" since {since.iso}" if since else ""
        out.append(
            Banner(
                "bad",
                f"The resolver is unreachable{when}: no list can be checked"
                f"{f' ({r.detail})' if r.detail else ''}.",
            )
        )
    if not problems.store_ok:
        out.append(
            Banner(
                "bad",
                "The store did not answer the last heartbeat: "
                "what this page shows may be out of date.",
            )
        )
    if not problems.reload_ok:
        out.append(
            Banner(
                "warn",
                "The last configuration reload failed: the previous "
                "configuration is still running (see the log).",
            )
        )
    spent = [name for name, b in view.budgets.items() if b.exhausted]
    if spent:
        out.append(Banner("warn", f"Daily query budget spent: {', '.join(spent)}."))
    if view.unresolved:
        names = ", ".join(h for _, h, _ in view.unresolved[:5])
        more = f" and {len(view.unresolved) - 5} more" if len(view.unresolved) > 5 else ""
        out.append(Banner("warn", f"Hostnames that did not resolve: {names}{more}."))
    return out


def _checked(view: StatusView) -> bool:
    return view.resolver.reachable and any(r.last_cycle_end is not None for r in view.lists)


def _tone(n: int, tone: str) -> str:
    return tone if n else "ok"


def counts(view: StatusView) -> list[Count]:
    """Listed, unknown, errors, acknowledged: numbers only where they are known. Before any
    cycle, or while the resolver is unreachable, no listing is known to hold (nor to have
    ended): the listed count is not known, the last known one a hint."""
    c = view.counts
    if c is not None:
        if _checked(view):
            first = Count("listed", str(c.listed), "/listings", _tone(c.listed, "bad"))
        else:
            last = f"{c.listed} listed at the last good answers" if c.listed else ""
            first = Count("listed", NOT_KNOWN, "/listings", "warn", last)
        return [
            first,
            Count(
                "unknown",
                str(c.unknown),
                tone=_tone(c.unknown, "warn"),
                note="pairs without a good answer for two intervals (stale), never counted clean",
            ),
            Count(
                "errors",
                str(c.errors),
                tone=_tone(c.errors, "warn"),
                note="pairs whose last lookup failed",
            ),
            Count("acknowledged", str(c.acknowledged), note="listings acknowledged"),
        ]
    listed = str(len(view.listings)) if _checked(view) else NOT_KNOWN
    return [
        Count("listed", listed, "/listings"),
        Count("unknown", NOT_KNOWN),
        Count("errors", NOT_KNOWN),
        Count("acknowledged", NOT_KNOWN),
    ]


def summary(view: StatusView) -> str:
    if not view.resolver.reachable:
        return "The resolver is unreachable: whether any target is listed is not known."
    if not any(r.last_cycle_end is not None for r in view.lists):
        return "No list has completed a cycle yet: nothing is known about the targets."
    waiting = [r.name for r in view.lists if r.last_cycle_end is None]
    rest = f" ({len(waiting)} lists have not completed a cycle yet)" if waiting else ""
    c = view.counts
    unknown = c.unknown if c is not None else 0
    if not view.listings:
        if unknown:
            return f"No target is known to be listed; {unknown} pairs are unknown{rest}."
        return f"No target is listed.{rest}"
    if c is not None:
        errors = f"{c.errors} error" + ("" if c.errors == 1 else "s")
        return f"{c.listed} listed, {c.unknown} unknown, {errors}{rest}."
    return f"{len(view.listings)} listings{rest}."


def _budget(b: Budget | None) -> str:
    if b is None:
        return ""
    return f"{b.used_today} / {b.limit}" if b.limit is not None else f"{b.used_today} (no limit)"


def list_rows(
    lists: Iterable[ListStatus],
    listed: Mapping[str, int],
    intervals: Mapping[str, float | None],
    budgets: Mapping[str, Budget],
    now: float | None,
    per_list: Mapping[str, PairCounts] | None = None,
) -> list[ListRow]:
    rows = []
    for r in lists:
        b = budgets.get(r.name)
        c = (per_list or {}).get(r.name)
        rows.append(
            ListRow(
                r.name,
                r.health.value,
                r.health is Health.HEALTHY,
                r.health_detail,
                listed.get(r.name, 0),
                stamp(r.last_cycle_end, now),
                stamp(next_cycle(r, intervals.get(r.name)), now),
                _budget(b),
                b is not None and b.exhausted,
                c.unknown if c is not None else None,
                c.errors if c is not None else None,
            )
        )
    return rows


def _instance(i: Instance, served_by: str | None, now: float | None) -> InstanceRow:
    beat = f"{age(now - i.heartbeat)} ago" if now is not None else ""
    return InstanceRow(
        i.id,
        i.id == served_by,
        i.host,
        i.pid,
        i.version,
        stamp(i.heartbeat, None),
        beat,
        i.shards,
        i.leader,
    )


def _hygiene_summary(view: StatusView) -> str:
    if view.failing:
        return ""
    if any(r.last_cycle_end is not None for r in view.checks):
        return "No sender check fails."
    return "No sender check has run yet."


def overview(
    view: StatusView,
    events: Sequence[Event],
    lists: Sequence[DnsList],
    version: str,
    *,
    now: float | None = None,
    served_by: str | None = None,
    problems: Problems = NO_PROBLEMS,
    default_interval: float | None = None,
    per_list: Mapping[str, PairCounts] | None = None,
) -> Overview:
    """The overview of a status view and the recent `events` (oldest first) of the `lists`.

    `now`: what ages are counted from (None: times only); `served_by`: the id of the
    instance serving the page, if it has one; `default_interval`: the cycle interval of a
    list without its own; `per_list`: each list's pair counts (`views.pairs.pair_counts`)."""
    delist = {lst.name: lst.delist_url for lst in lists}
    intervals = {lst.name: lst.interval or default_interval for lst in lists}
    listed = Counter(p.list for p in view.listings)
    newest = sorted(view.listings, key=lambda p: -p.since)[:PAGE_LISTINGS]
    return Overview(
        version=version,
        served_by=served_by,
        targets=view.targets,
        banners=banners(view, problems, now),
        counts=counts(view),
        summary=summary(view),
        lists=list_rows(view.lists, listed, intervals, view.budgets, now, per_list),
        newest=[listing_row(p, delist, now) for p in newest],
        listings=len(view.listings),
        checks=[(r.name, stamp(r.last_cycle_end, now)) for r in view.checks],
        failing=[listing_row(p, {}, now) for p in view.failing[:100]],
        hygiene_summary=_hygiene_summary(view),
        instances=[_instance(i, served_by, now) for i in view.instances],
        events=event_rows(list(reversed(events)), now),
        unresolved=list(view.unresolved),
    )


__all__ = [
    "NOT_KNOWN",
    "NO_PROBLEMS",
    "PAGE_EVENTS",
    "PAGE_LISTINGS",
    "Banner",
    "Count",
    "InstanceRow",
    "ListRow",
    "Overview",
    "Problems",
    "overview",
]
