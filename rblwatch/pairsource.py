"""The pairs view's inputs: each configured list's targets in order, with its stored rows.

Shared by the HTTP listener (with the daemon's inventory: hostnames as resolved at the last
cycle) and `rblwatch status` (the config's own targets, hostnames unresolved, as `rblwatch
plan` counts them). A `PairsSource` keeps each set of targets sorted for as long as it is the
same set, so a request bisects into a /16 rather than sorting it (`views.pairs.Ordered`).

A target the list's last cycle did not look up (configured since, a hostname's new address)
must not read as answered at that cycle (`views.pairs.Unchecked`). The daemon knows which
targets each list's last committed full cycle covered (`Runtime.covered`: the cycle's own
set, no copy); a reader without that record — the CLI, or an instance that has not run a
full cycle of the list over every shard — reads the list's `seen` from the store instead,
once per change of the list's last cycle. Either way the difference to the current targets
is computed once per change of either set and kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from rblwatch import targets as targets_mod
from rblwatch.cluster import Instance
from rblwatch.config import Config
from rblwatch.inventory import Found
from rblwatch.model import (
    Ack,
    DnsList,
    ListStatus,
    PairError,
    ResolverState,
    Target,
    TargetKind,
    hostname_of,
    kinds_taken,
)
from rblwatch.plan import target_counts
from rblwatch.store import Store
from rblwatch.views.pairs import (
    Acks,
    ListPairs,
    Ordered,
    PairsPage,
    PairsQuery,
    Row,
    Unchecked,
    pair_counts,
    pair_items,
    pairs_page,
)
from rblwatch.views.status import (
    ListingsQuery,
    PairCounts,
    StatusView,
    budgets_of,
    list_stopped,
    paged,
    status_view,
    with_signals,
)

# per list, the target values its last committed full cycle looked up (`Runtime.covered`)
Covered = Mapping[str, AbstractSet[str]]


def configured_targets(cfg: Config) -> list[Target]:
    """Every target the config names itself, one per value (the first group wins), hostnames
    left out: what a reader without the daemon can enumerate."""
    out: list[Target] = []
    values: set[str] = set()
    for g in cfg.targets:
        for t in targets_mod.expand(
            g.addresses,
            g.exclude,
            g.domains,
            group=g.group,
            ipv4_min_prefix=cfg.limits.ipv4_min_prefix,
        ):
            if t.value not in values:
                values.add(t.value)
                out.append(t)
    return out


class PairsSource:
    """The lists' targets in display order, kept while the targets are the same objects."""

    def __init__(self) -> None:
        self._static: tuple[Config, list[Target]] | None = None
        self._merged: tuple[Config, Found, list[Target]] | None = None
        # per set of target kinds: the targets it was built from, and their order
        self._ordered: dict[tuple[TargetKind, ...], tuple[Sequence[Target], Ordered]] = {}
        # per list: the order and the covered set its `Unchecked` was built from
        self._unchecked: dict[str, tuple[Ordered, AbstractSet[str], Unchecked]] = {}
        # per list, without the daemon's record: its `seen` as read, and for which last cycle
        self._seen: dict[str, tuple[tuple[float | None, float | None], AbstractSet[str]]] = {}

    def targets(
        self, cfg: Config, found: Found | None, made_for: Config | None = None
    ) -> Sequence[Target]:
        """The daemon's targets of its last cycle (`found`, from the config `made_for`), or
        (none yet) the config's own. Reloaded since (`cfg` is not `made_for`): the new
        config's own targets too, and those no longer configured left out — a hostname's
        addresses are kept until its next resolution — so a target added by a reload shows
        at once, as never checked, not only from its first cycle."""
        if found is None:
            if self._static is None or self._static[0] is not cfg:
                self._static = (cfg, configured_targets(cfg))
            return self._static[1]
        if made_for is None or made_for is cfg:
            return found.targets
        if self._merged is None or self._merged[0] is not cfg or self._merged[1] is not found:
            own = self.targets(cfg, None)
            values = {t.value for t in own}
            kept = [t for t in found.targets if hostname_of(t) is not None or t.value in values]
            have = {t.value for t in kept}
            self._merged = (cfg, found, kept + [t for t in own if t.value not in have])
        return self._merged[2]

    def ordered(self, every: Sequence[Target], kinds: tuple[TargetKind, ...]) -> Ordered:
        cached = self._ordered.get(kinds)
        if cached is not None and cached[0] is every:
            return cached[1]
        made = Ordered(t for t in every if t.kind in kinds)
        self._ordered[kinds] = (every, made)
        return made

    def unchecked(self, name: str, ordered: Ordered, covered: AbstractSet[str]) -> Unchecked:
        cached = self._unchecked.get(name)
        if cached is not None and cached[0] is ordered and cached[1] is covered:
            return cached[2]
        made = Unchecked(ordered, covered)
        self._unchecked[name] = (ordered, covered, made)
        return made

    def covered(
        self, store: Store, name: str, status: ListStatus | None, record: Covered
    ) -> AbstractSet[str]:
        """What the list's last cycle looked up: the daemon's record, else its `seen` (every
        target it ever looked up without error), read again when its last cycle changed."""
        mine = record.get(name)
        if mine is not None:
            return mine
        cycle = (None, None) if status is None else (status.last_cycle_start, status.last_cycle_end)
        cached = self._seen.get(name)
        if cached is None or cached[0] != cycle:
            cached = self._seen[name] = (cycle, store.seen(name))
        return cached[1]

    def lists(
        self,
        store: Store,
        cfg: Config,
        read: PairsRead,
        rows: Iterable[Row],
        statuses: Iterable[ListStatus],
    ) -> list[ListPairs]:
        """One `ListPairs` per configured DNS list, from the store's `rows` and `statuses`
        (as the caller read them) and its error rows and resolver state (read now)."""
        every = self.targets(cfg, read.found, read.found_for)
        by_list: dict[str, dict[str, Row]] = {}
        for p in rows:
            by_list.setdefault(p.list, {})[p.target] = p
        errs: dict[str, dict[str, PairError]] = {}
        for e in store.pair_errors():
            errs.setdefault(e.list, {})[e.target] = e
        status = {s.name: s for s in statuses}
        resolver = store.resolver_state()
        out = []
        for lst in cfg.subjects:
            ordered = self.ordered(every, kinds_taken(lst))
            row = status.get(lst.name)
            covered = self.covered(store, lst.name, row, read.covered or {})
            out.append(
                ListPairs(
                    name=lst.name,
                    kind=lst.kind,
                    interval=lst.interval or cfg.schedule.interval,
                    ordered=ordered,
                    status=row,
                    rows=by_list.get(lst.name, {}),
                    errors=errs.get(lst.name, {}),
                    stopped=_stopped(lst, row, resolver),
                    unchecked=self.unchecked(lst.name, ordered, covered),
                )
            )
        return out


def _stopped(lst: DnsList, row: ListStatus | None, resolver: ResolverState) -> bool:
    behind = () if lst.nameservers else (lst.name,)
    return list_stopped(row, resolver, frozenset(behind), lst.name)


@dataclass(frozen=True, slots=True)
class PairsRead:
    """What the pairs view reads besides the store: the targets and when "now" is."""

    source: PairsSource
    found: Found | None  # the daemon's targets of its last cycle (None: the config's own)
    now: float
    acks: Acks = dataclasses.field(default_factory=dict)
    # the daemon's record of what each list's last full cycle covered (`Runtime.covered`);
    # a list without one (and the CLI: None) is read from the store's `seen`
    covered: Covered | None = None
    found_for: Config | None = None  # the config `found` was made from (`Runtime.found_for`)


def read_console(
    store: Store,
    config: Config,
    targets: int | None,
    read: PairsRead,
    query: PairsQuery | None = None,
    unresolved: Sequence[tuple[str, str, str]] = (),
    listings: ListingsQuery | None = None,
) -> tuple[StatusView, PairsPage]:
    """The status (with the pair counts and the signals: resolver, budgets, `unresolved`
    hostnames) and one page of the pairs view: what `/api/v1/status` and `rblwatch status`
    show. With `listings`, the status's listings are that page of them (else all of them).

    Only the rows shown are read whole (the listings, the pairs page's): the counts are
    made from the pairs' summaries (`Store.pair_summaries`: no codes or TXT decoded) and the
    error rows, and a listing's staleness is looked up for the listings shown only."""
    if targets is None:
        targets = sum(target_counts(config).values())
    statuses, instances = store.list_statuses(), store.instances()
    lists = read.source.lists(store, config, read, store.pair_summaries(), statuses)
    stored = store.acks()
    acks = read.acks or {(a.target, a.list): a for a in stored}
    view = _status(store, config, targets, statuses, instances, stored, listings)
    budgets = budgets_of(config.subjects, store.budget_used)
    view = with_signals(view, store.resolver_state(), budgets, unresolved)
    shown = pair_items(lists, [(p.target, p.list) for p in view.listings], read.now, acks)
    stale = {k for k, item in shown.items() if item.stale and item.state == "listed"}
    counts = pair_counts(lists, read.now, acks)
    view = dataclasses.replace(view, counts=counts, stale_pairs=stale)
    return view, _page(store, lists, query or PairsQuery(), read.now, acks)


def _status(
    store: Store,
    config: Config,
    targets: int,
    statuses: Sequence[ListStatus],
    instances: Sequence[Instance],
    stored: Sequence[Ack],
    query: ListingsQuery | None,
) -> StatusView:
    """The status view of the listings `query` asks for (None: all) and the failing
    hygiene checks, each read as such (`Store.listings`)."""
    names = [lst.name for lst in config.subjects]
    checks = [h.name for h in config.hygiene]
    if query is None:
        rows = store.listings(names)
    else:
        rows = store.listings(names, query.after, query.limit + 1)
    # a check of a configured list's name shows as a listing, not as failing (`status_view`)
    others = [c for c in checks if c not in set(names)]
    if others:
        rows += store.listings(others)
    view = status_view(rows, statuses, config.subjects, targets, instances, checks, stored)
    return view if query is None else paged(view, view.listings, query)


def _page(
    store: Store, lists: Sequence[ListPairs], query: PairsQuery, now: float, acks: Acks
) -> PairsPage:
    """One page of the pairs view, found from the rows' summaries, its items with a row
    made again from their whole rows (outcome, codes), read for that page only."""
    page = pairs_page(lists, query, now, acks)
    by_name = {lp.name: lp for lp in lists}
    wanted: dict[str, list[str]] = {}
    for item in page.items:
        if item.target in by_name[item.list].rows:
            wanted.setdefault(item.list, []).append(item.target)
    if not wanted:
        return page
    whole = []
    for name, values in wanted.items():
        lp = by_name[name]
        full: dict[str, Row] = {p.target: p for p in store.pairs_of(name, values)}
        whole.append(dataclasses.replace(lp, rows={**lp.rows, **full}))
    pairs = [(t, name) for name, values in wanted.items() for t in values]
    made = pair_items(whole, pairs, now, acks)
    return PairsPage([made.get((i.target, i.list), i) for i in page.items], page.next_cursor)


def read_pairs(
    store: Store, config: Config, read: PairsRead, query: PairsQuery
) -> tuple[PairsPage, PairCounts]:
    """One page of the pairs view and the counts: what `/api/v1/pairs` serves (read as
    `read_console` reads them)."""
    lists = read.source.lists(store, config, read, store.pair_summaries(), store.list_statuses())
    acks = read.acks or acks_by_pair(store)
    return _page(store, lists, query, read.now, acks), pair_counts(lists, read.now, acks)


def acks_by_pair(store: Store) -> Acks:
    """The stored acks by (target, list), for the pairs view."""
    return {(a.target, a.list): a for a in store.acks()}


__all__ = [
    "Covered",
    "PairsRead",
    "PairsSource",
    "acks_by_pair",
    "configured_targets",
    "read_console",
    "read_pairs",
]
