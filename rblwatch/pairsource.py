"""The pairs view's inputs: each configured list's targets in order, with its stored rows.

Shared by the HTTP listener (with the daemon's inventory: hostnames as resolved at the last
cycle) and `rblwatch status` (the config's own targets, hostnames unresolved, as `rblwatch
plan` counts them). A `PairsSource` keeps each set of targets sorted for as long as it is the
same set, so a request bisects into a /16 rather than sorting it (`views.pairs.Ordered`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rblwatch import targets as targets_mod
from rblwatch.config import Config
from rblwatch.inventory import Found
from rblwatch.model import (
    DnsList,
    ListStatus,
    PairError,
    PairState,
    Target,
    TargetKind,
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
    pair_counts,
    pairs_page,
)
from rblwatch.views.status import StatusView, budgets_of, status_view, with_signals


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
        # per set of target kinds: the targets it was built from, and their order
        self._ordered: dict[tuple[TargetKind, ...], tuple[Sequence[Target], Ordered]] = {}

    def targets(self, cfg: Config, found: Found | None) -> Sequence[Target]:
        """The daemon's targets of its last cycle, or (none yet) the config's own."""
        if found is not None:
            return found.targets
        if self._static is None or self._static[0] is not cfg:
            self._static = (cfg, configured_targets(cfg))
        return self._static[1]

    def ordered(self, every: Sequence[Target], kinds: tuple[TargetKind, ...]) -> Ordered:
        cached = self._ordered.get(kinds)
        if cached is not None and cached[0] is every:
            return cached[1]
        made = Ordered(t for t in every if t.kind in kinds)
        self._ordered[kinds] = (every, made)
        return made

    def lists(
        self,
        cfg: Config,
        found: Found | None,
        rows: Iterable[PairState],
        errors: Iterable[PairError],
        statuses: Iterable[ListStatus],
    ) -> list[ListPairs]:
        """One `ListPairs` per configured DNS list, from the store's rows as read."""
        every = self.targets(cfg, found)
        by_list: dict[str, dict[str, PairState]] = {}
        for p in rows:
            by_list.setdefault(p.list, {})[p.target] = p
        errs: dict[str, dict[str, PairError]] = {}
        for e in errors:
            errs.setdefault(e.list, {})[e.target] = e
        status = {s.name: s for s in statuses}
        return [
            _list_pairs(cfg, lst, self.ordered(every, kinds_taken(lst)), by_list, errs, status)
            for lst in cfg.subjects
        ]


def _list_pairs(
    cfg: Config,
    lst: DnsList,
    ordered: Ordered,
    rows: dict[str, dict[str, PairState]],
    errors: dict[str, dict[str, PairError]],
    status: dict[str, ListStatus],
) -> ListPairs:
    return ListPairs(
        name=lst.name,
        kind=lst.kind,
        interval=lst.interval or cfg.schedule.interval,
        ordered=ordered,
        status=status.get(lst.name),
        rows=rows.get(lst.name, {}),
        errors=errors.get(lst.name, {}),
    )


@dataclass(frozen=True, slots=True)
class PairsRead:
    """What the pairs view reads besides the store: the targets and when "now" is."""

    source: PairsSource
    found: Found | None  # the daemon's targets of its last cycle (None: the config's own)
    now: float
    acks: Acks = dataclasses.field(default_factory=dict)


def read_console(
    store: Store,
    config: Config,
    targets: int | None,
    read: PairsRead,
    query: PairsQuery | None = None,
    unresolved: Sequence[tuple[str, str, str]] = (),
) -> tuple[StatusView, PairsPage]:
    """The status (with the pair counts and the signals: resolver, budgets, `unresolved`
    hostnames) and one page of the pairs view, from one set of reads: what `/api/v1/status`
    and `rblwatch status` show."""
    if targets is None:
        targets = sum(target_counts(config).values())
    pairs, statuses, instances = store.pairs(), store.list_statuses(), store.instances()
    lists = read.source.lists(config, read.found, pairs, store.pair_errors(), statuses)
    checks = [h.name for h in config.hygiene]
    stored = store.acks()
    acks = read.acks or {(a.target, a.list): a for a in stored}
    view = status_view(pairs, statuses, config.subjects, targets, instances, checks, stored)
    budgets = budgets_of(config.subjects, store.budget_used)
    view = with_signals(view, store.resolver_state(), budgets, unresolved)
    view = dataclasses.replace(view, counts=pair_counts(lists, read.now, acks))
    return view, pairs_page(lists, query or PairsQuery(), read.now, acks)


def acks_by_pair(store: Store) -> Acks:
    """The stored acks by (target, list), for the pairs view."""
    return {(a.target, a.list): a for a in store.acks()}


__all__ = ["PairsRead", "PairsSource", "acks_by_pair", "configured_targets", "read_console"]
