"""The JSON objects of `/api/v1/status` and `/api/v1/events` (SPEC §10), and their times.

`rblwatch status --format json` and `rblwatch history --format json` print the same objects,
built from the same records, so the CLI and the API cannot drift apart.

With several instances on one database, every instance reads the same shared state, so any
one of them answers the same; the status also lists the instances themselves (`Instance`,
as the store's heartbeat rows have them), so an operator can see who is alive and who holds
what from any of them.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from rblwatch.cluster import Instance
from rblwatch.model import (
    Ack,
    DnsList,
    Event,
    Health,
    ListStatus,
    PairState,
    PairStatus,
    ResolverState,
    hygiene_parts,
)
from rblwatch.views.pairsquery import decode_cursor, encode_cursor


def rfc3339(at: float | None) -> str | None:
    """Unix seconds as RFC 3339 UTC, whole seconds ("2026-11-27T12:00:00Z").

    Rounded down, so an event's `at` used as the next `since` (inclusive) finds that event again
    rather than skipping any that share its second; clients de-duplicate by `id`.
    """
    if at is None:
        return None
    moment = datetime.datetime.fromtimestamp(int(at), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> float:
    """RFC 3339 (with a zone, "Z" or an offset) → unix seconds; ValueError otherwise."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an RFC 3339 time: {text!r} (e.g. 2026-11-01T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r} (e.g. 2026-11-01T00:00:00Z)")
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class StatusView:
    """What the status API, page and table show: configured lists only."""

    listings: list[PairState]  # listed pairs, by target then list
    lists: list[ListStatus]  # one per configured list, in config order (a blank row if none)
    targets: int
    # the instances with a heartbeat row, oldest first (none: a store no daemon ticks)
    instances: list[Instance] = field(default_factory=list)
    # the sender hygiene checks configured (their cycle rows) and their failing pairs
    checks: list[ListStatus] = field(default_factory=list)
    failing: list[PairState] = field(default_factory=list)
    # issue 11's truthful signals (filled by the readers that know them; these defaults say
    # nothing is known): the resolver's state, each list's budget used today and its limit,
    # the hostnames that failed to resolve (group, hostname, reason) and the pair counts
    resolver: ResolverState = field(default_factory=ResolverState)
    budgets: Mapping[str, Budget] = field(default_factory=dict)
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)
    counts: PairCounts | None = None
    # the lists asked through the default resolver (no nameservers of their own): those a
    # resolver outage stops
    behind_resolver: frozenset[str] = frozenset()
    # the stored acks by (target, list), expired ones too (`rblwatch.store.acks`)
    acks: Mapping[tuple[str, str], Ack] = field(default_factory=dict)
    # the listings that are stale (`pair_stale`), as the pairs view found them (`pairsource`);
    # None: not computed, and a listing is stale when its list is stopped (`stopped_lists`)
    stale_pairs: AbstractSet[tuple[str, str]] | None = None
    # `listings` is one page of them (`ListingsQuery`): where the next one starts, if any
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """A list's queries today (UTC) against its `daily_query_limit` (None: no limit)."""

    used_today: int
    limit: int | None

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.used_today >= self.limit


@dataclass(frozen=True, slots=True)
class PairCounts:
    """How many configured (target, list) pairs are in each state: never "nothing listed"
    when nothing was checked. `unknown`: stale (`pair_stale`) and not listed, or never
    looked up; `errors`: the last lookup ended `error`; `acknowledged`: listed and
    acknowledged."""

    total: int
    listed: int
    clean: int
    unknown: int
    errors: int = 0
    stale: int = 0
    acknowledged: int = 0

    def __add__(self, other: PairCounts) -> PairCounts:
        """The counts of both sets of pairs (several lists' into one)."""
        return PairCounts(
            self.total + other.total,
            self.listed + other.listed,
            self.clean + other.clean,
            self.unknown + other.unknown,
            self.errors + other.errors,
            self.stale + other.stale,
            self.acknowledged + other.acknowledged,
        )


def counts_json(c: PairCounts) -> dict[str, int]:
    """The `"counts"` object of `/api/v1/status` and `/api/v1/pairs`."""
    return {
        "total": c.total,
        "listed": c.listed,
        "clean": c.clean,
        "unknown": c.unknown,
        "errors": c.errors,
        "stale": c.stale,
        "acknowledged": c.acknowledged,
    }


def status_view(
    pairs: Iterable[PairState],
    statuses: Iterable[ListStatus],
    lists: Sequence[DnsList],
    targets: int,
    instances: Iterable[Instance] = (),
    checks: Sequence[str] = (),
    acks: Iterable[Ack] = (),
) -> StatusView:
    """The view of a store's pairs, list rows and instances for the configured `lists`.

    Pairs and rows of lists no longer configured are left out: a list removed from the
    config must not keep showing its old listings.
    """
    names = [lst.name for lst in lists]
    configured, checked = set(names), set(checks)
    listings, failing = [], []
    for p in pairs:
        if p.status is PairStatus.LISTED:
            if p.list in configured:
                listings.append(p)
            elif p.list in checked:
                failing.append(p)
    listings.sort(key=lambda p: (p.target, p.list))
    failing.sort(key=lambda p: (p.list, p.target))
    rows = {row.name: row for row in statuses}
    shown = [rows.get(name) or ListStatus(name=name) for name in names]
    check_rows = [rows.get(name) or ListStatus(name=name) for name in checks]
    by_pair = {(a.target, a.list): a for a in acks}
    behind = frozenset(lst.name for lst in lists if not lst.nameservers)
    return StatusView(
        listings,
        shown,
        targets,
        list(instances),
        check_rows,
        failing,
        behind_resolver=behind,
        acks=by_pair,
    )


def with_signals(
    view: StatusView,
    resolver: ResolverState,
    budgets: Mapping[str, Budget],
    unresolved: Sequence[tuple[str, str, str]] = (),
) -> StatusView:
    """The view with what the readers know beyond the rows: the resolver's state, each
    list's budget today, the hostnames that failed to resolve (only a daemon knows them)."""
    return dataclasses.replace(
        view, resolver=resolver, budgets=budgets, unresolved=list(unresolved)
    )


def budgets_of(
    lists: Sequence[DnsList], used: Callable[[str, str], int], now: float | None = None
) -> dict[str, Budget]:
    """Each list's queries today (UTC, as the budget counts them) against its limit; `used`
    is the store's `budget_used`."""
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
    return {lst.name: Budget(used(lst.name, day), lst.daily_query_limit) for lst in lists}


def status_json(view: StatusView) -> dict[str, object]:
    """The object `GET /api/v1/status` and `rblwatch status --format json` print."""
    doc = _status_json(view)
    if view.counts is not None:
        doc["counts"] = counts_json(view.counts)
    return doc


def _status_json(view: StatusView) -> dict[str, object]:
    stopped = stopped_lists(view)
    return {
        "resolver": {
            "state": view.resolver.state,
            "since": rfc3339(view.resolver.since),
            "detail": view.resolver.detail,
        },
        "listings": [
            _listing_json(p, _stale_listing(view, stopped, p), view.acks.get((p.target, p.list)))
            for p in view.listings
        ],
        "next_cursor": view.next_cursor,
        "lists": [_list_json(row, view.budgets.get(row.name)) for row in view.lists],
        "unresolved": [{"group": g, "hostname": h, "reason": why} for g, h, why in view.unresolved],
        "targets": view.targets,
        "instances": [_instance_json(i) for i in view.instances],
        "hygiene": {
            "checks": [
                {"name": row.name, "last_cycle_end": rfc3339(row.last_cycle_end)}
                for row in view.checks
            ],
            "failing": [failing_json(p) for p in view.failing],
        },
    }


LISTINGS_LIMIT_DEFAULT = 1000
LISTINGS_LIMIT_MAX = 10_000  # a larger limit is capped, not refused: page with the cursor


@dataclass(frozen=True, slots=True)
class ListingsQuery:
    """One page of the status's listings: those after `after` (target, list), at most
    `limit`. With 21,000 listings the whole status was 4 MB; a page reads and sends its own."""

    after: tuple[str, str] | None = None
    limit: int = LISTINGS_LIMIT_DEFAULT


def listings_query(limit: str | None = None, cursor: str | None = None) -> ListingsQuery:
    """The page `limit` and `cursor` (as `next_cursor` gave it) ask for; ValueError if bad."""
    n = LISTINGS_LIMIT_DEFAULT
    if limit is not None:
        try:
            n = int(limit)
        except ValueError:
            raise ValueError(f"limit: not a whole number: {limit!r}") from None
        if n < 1:
            raise ValueError(f"limit: must be at least 1, got {n}")
    after = None
    if cursor is not None:
        name, target = decode_cursor(cursor)
        after = (target, name)
    return ListingsQuery(after, min(n, LISTINGS_LIMIT_MAX))


def paged(view: StatusView, read: Sequence[PairState], query: ListingsQuery) -> StatusView:
    """The view with one page of listings: `read` is up to `query.limit + 1` of them from
    the page's start (`Store.listings`), the one past the page saying there is a next."""
    page = list(read[: query.limit])
    last = page[-1] if len(read) > query.limit else None
    cursor = None if last is None else encode_cursor(last.list, last.target)
    return dataclasses.replace(view, listings=page, next_cursor=cursor)


STALE_INTERVALS = 2  # no good answer for more than this many intervals: stale


def pair_stale(last_good: float | None, interval: float, now: float, stopped: bool) -> bool:
    """Whether a pair's state is not to be trusted now: no good answer for more than
    `STALE_INTERVALS` of its list's intervals (or never one), or its list `stopped` (its
    cycles send nothing: `stopped_lists`). The one rule for the pairs view and the status
    listings alike, so they cannot disagree."""
    return stopped or last_good is None or now - last_good > STALE_INTERVALS * interval


def list_stopped(
    row: ListStatus | None, resolver: ResolverState, behind: AbstractSet[str], name: str
) -> bool:
    """Whether a list's pairs are not being re-checked now: its test points found it not
    healthy, or it is asked through the resolver while that is unreachable (its cycles are
    skipped). A list not probed yet (`Health.UNKNOWN`, no row) has run no cycle since: its
    pairs' own answers say how stale they are."""
    if row is not None and row.health not in (Health.HEALTHY, Health.UNKNOWN):
        return True
    return not resolver.reachable and name in behind


def stopped_lists(view: StatusView) -> set[str]:
    """The view's lists that are stopped now (`list_stopped`)."""
    return {
        row.name
        for row in view.lists
        if list_stopped(row, view.resolver, view.behind_resolver, row.name)
    }


def _stale_listing(view: StatusView, stopped: AbstractSet[str], p: PairState) -> bool:
    if view.stale_pairs is not None:
        return (p.target, p.list) in view.stale_pairs
    return p.list in stopped


def _list_json(row: ListStatus, budget: Budget | None) -> dict[str, object]:
    return {
        "name": row.name,
        "health": row.health.value,
        "last_cycle_end": rfc3339(row.last_cycle_end),
        # a cycle that sent no lookups still ends: `skipped` says why its end is no news
        "last_cycle": {
            "start": rfc3339(row.last_cycle_start),
            "end": rfc3339(row.last_cycle_end),
            "success": rfc3339(row.last_cycle_success),
            "skipped": row.last_cycle_skipped,
            "lookups": row.last_cycle_lookups,
            "errors": row.last_cycle_errors,
        },
        "budget": None
        if budget is None
        else {
            "used_today": budget.used_today,
            "limit": budget.limit,
            "exhausted": budget.exhausted,
        },
    }


def failing_json(p: PairState) -> dict[str, object]:
    """A failing hygiene pair: the check, what it checks (domain, IP, selector) and why."""
    target, ip, selector = hygiene_parts(p.list, p.target)
    out: dict[str, object] = {"check": p.list, "target": target, "ip": ip}
    if selector is not None:
        out["selector"] = selector
    out.update(
        group=p.group,
        since=rfc3339(p.since),
        result=p.codes[0] if p.codes else None,
        reason="; ".join(p.meanings),
    )
    return out


def _instance_json(i: Instance) -> dict[str, object]:
    return {
        "id": i.id,
        "host": i.host,
        "pid": i.pid,
        "version": i.version,
        "started": rfc3339(i.started),
        "last_heartbeat": rfc3339(i.heartbeat),
        "shards_held": i.shards,
        "leader": i.leader,
    }


def age(seconds: float) -> str:
    """A time since, for people: "4s", "2m 5s", "3h 12m", "2d 4h" (never negative: the
    hosts' clocks and the database's may disagree by a little)."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _listing_json(p: PairState, stale: bool, ack: Ack | None = None) -> dict[str, object]:
    return {
        "target": p.target,
        "list": p.list,
        "group": p.group,
        "since": rfc3339(p.since),
        "codes": list(p.codes),
        "meanings": list(p.meanings),
        "txt": p.txt,
        "stale": stale,  # `pair_stale`: no good answer lately, or its list not re-checked now
        "ack": ack_json(ack),
    }


def ack_json(ack: Ack | None, now: float | None = None) -> dict[str, object] | None:
    """An ack (None: null); with `now`, whether it is still `active` then."""
    if ack is None:
        return None
    out: dict[str, object] = {
        "target": ack.target,
        "list": ack.list,
        "by": ack.by,
        "at": rfc3339(ack.at),
        "note": ack.note,
        "until": rfc3339(ack.until),
        "delisting_requested_at": rfc3339(ack.delisting_requested_at),
        "delisting_note": ack.delisting_note,
    }
    if now is not None:
        out["active"] = ack.active(now)
    return out


def events_json(events: Iterable[Event]) -> dict[str, object]:
    """The object `GET /api/v1/events` and `rblwatch history --format json` print."""
    return {
        "events": [
            {
                "id": e.id,
                "kind": e.kind.value,
                "target": e.target,
                "hostname": e.hostname,
                "list": e.list,
                "group": e.group,
                "at": rfc3339(e.at),
                "codes": list(e.codes),
                "initial": e.initial,
            }
            for e in events
        ]
    }


__all__ = [
    "LISTINGS_LIMIT_DEFAULT",
    "LISTINGS_LIMIT_MAX",
    "STALE_INTERVALS",
    "Budget",
    "ListingsQuery",
    "PairCounts",
    "StatusView",
    "ack_json",
    "age",
    "budgets_of",
    "counts_json",
    "events_json",
    "failing_json",
    "list_stopped",
    "listings_query",
    "paged",
    "pair_stale",
    "parse_rfc3339",
    "rfc3339",
    "status_json",
    "status_view",
    "stopped_lists",
    "with_signals",
]


def unknown_list(name: str, known: Iterable[str]) -> str | None:
    """Why a history filter's list name matches nothing, or None if it is a known list: a
    typo must not read as "no events". Known: the config's lists and those the store has."""
    names = sorted(set(known))
    if name in names:
        return None
    return f"no such list {name!r} (known: {', '.join(names) or 'none'})"
