"""The commit planner: a cycle's outcomes and the stored state in, the cycle's commit out.

Pure, like dnspython's `_Resolution`: no sockets, no clock, no store. The engine reads the
pairs' rows and the seen set, runs the lookups, and hands both here; what comes back is what
it writes in one transaction (upserts, deletes, first looks, events) and the targets to look
at again soon (a pending change to confirm). The rules for one pair are `transitions.step`;
this module decides which pairs are looked at, and what a full cycle removes.

The scan reports only outcomes that are not the good one (clean), so a cycle looks at few
pairs: those with a stored row, those the scan reported and those never looked at before.
Every other target was clean and believed clean, and costs nothing here.

Each pair's last outcome is kept the same way (`CycleCommit.errors`/`cleared`): a pair whose
lookup ended `error` has an error row (reason, when, and when it last answered); a pair that
answered has none. So that an outage does not write a /16's 65,536 rows every cycle, a full
cycle in which most lookups failed writes one row for the whole list instead (target "",
`LIST_WIDE_SHARE`): a resolver that is down or a list that turned us away is the list's
trouble, not each pair's, and the pairs view shows every pair without a row of its own as
that row says. A skipped cycle (unhealthy list, spent budget) writes none: the list's last
completed cycle grows old, and its pairs go stale with it.

The list's row speaks for every shard, so only a cycle over every shard (`all_shards`: alone,
or holding them all) writes or clears it. With several instances each cycle covers its own
shards, through its own resolver: one instance's failures are its pairs' rows, never the
list's (another's shard answering must not clear them). Per-pair rows cost more than one,
but rarely: an instance whose resolver is down skips its cycles and writes none at all. A
list's row found by a cycle of some shards (written while one instance held them all) is
split: its shards' pairs are decided now, and every other target (`others`) gets a copy.

A cycle cut at its deadline is planned like any other: the targets it did not get answers for
come with an error outcome (`Reason.DEADLINE`), so they keep their state and get error rows
("not checked") as any failed lookup does; the engine does not let it prune (`prune`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType

from rblwatch import transitions
from rblwatch.model import (
    CLEAN,
    CycleCommit,
    Health,
    ListStatus,
    Outcome,
    PairError,
    PairState,
    PairStatus,
    Reason,
    Target,
    hostname_of,
)
from rblwatch.targetlist import TargetList


@dataclass(frozen=True, slots=True)
class CycleInput:
    """Everything a cycle's decisions depend on: what was found and what is stored."""

    list_name: str
    targets: Sequence[Target]  # the targets looked up (all of the list's, or a round's few)
    values: AbstractSet[str]  # their values
    outcomes: Mapping[str, Outcome]  # by target value; a target not in it was clean
    rows: Mapping[str, PairState]  # the list's stored rows, by target value
    seen: AbstractSet[str]  # targets looked up (without error) before
    confirm: int  # agreeing observations a change needs (config's schedule.confirm)
    now: float
    # a full cycle (not a confirmation round) over every configured target (every hostname
    # resolved): only such a cycle may drop the rows of targets no longer configured
    prune: bool = False
    # the list's error rows as stored (by target; "" is the whole list's), and when its last
    # completed cycle ended: a pair seen before and without a row answered then
    errors: Mapping[str, PairError] = field(default_factory=lambda: _NO_ERRORS)
    last_good_at: float | None = None
    full: bool = False  # every target of the list (of the shards held), not a round's few
    # the cycle covers every shard of the list: only then may it write or clear the list's row
    all_shards: bool = False
    # a cycle of some shards finding the list's row: the list's other targets (module doc)
    others: Sequence[str] = ()


_NO_ERRORS: Mapping[str, PairError] = MappingProxyType({})
# a full cycle with more than this share of its lookups failed writes the list's error row, not
# one per pair (see the module docstring)
LIST_WIDE_SHARE = 0.5


@dataclass(slots=True)
class PlannedCommit:
    commit: CycleCommit
    confirm: set[str] = field(default_factory=set)  # targets with a change pending


PLAN_STEP = 512  # targets looked at between two pauses of `plan_steps`


def plan_commit(cycle: CycleInput) -> PlannedCommit:
    """The commit of one cycle (its `status` and budget are the engine's to fill in)."""
    steps = plan_steps(cycle)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            planned: PlannedCommit = done.value
            return planned


def plan_steps(cycle: CycleInput) -> Generator[None, None, PlannedCommit]:
    """`plan_commit` a step at a time: it pauses (yields) every PLAN_STEP targets and returns
    the commit, so that an event loop can decide a /14's first cycle between its other work
    (`Engine._run`) instead of in a thread that holds the GIL for seconds."""
    planned = PlannedCommit(CycleCommit(list=cycle.list_name))
    commit, rows, seen, outcomes = planned.commit, cycle.rows, cycle.seen, cycle.outcomes
    if cycle.prune:
        # a target no longer configured leaves the status page and /metrics quietly: it was
        # not delisted, it is no longer watched (no event)
        commit.deletes.extend(t for t in rows if t not in cycle.values)
    # only targets with something to decide: a stored row, an outcome other than clean, or
    # no clean look yet. The rest, clean and believed clean, are the bulk of a cycle.
    news = rows.keys() | outcomes.keys()
    targets = cycle.targets
    # by value: a compact list makes a Target only for the few decided
    values = targets.values() if isinstance(targets, TargetList) else (t.value for t in targets)
    for i, value in enumerate(values):
        if i % PLAN_STEP == PLAN_STEP - 1:
            yield
        if value not in news and value in seen:
            continue
        t = targets[i]
        outcome = outcomes.get(t.value, CLEAN)
        first = t.value not in seen
        d = transitions.step(
            rows.get(t.value),
            outcome,
            target=t.value,
            list_name=cycle.list_name,
            group=t.group,
            now=cycle.now,
            confirm=cycle.confirm,
            first_lookup=first,
        )
        if d.event is not None and (name := hostname_of(t)) is not None:
            d = dataclasses.replace(d, event=dataclasses.replace(d.event, hostname=name))
        _collect(planned, t.value, d)
        if first and not outcome.is_error:
            commit.seen.append(t.value)  # an error is no first look: the baseline waits
    _plan_errors(cycle, commit)
    return planned


def _plan_errors(cycle: CycleInput, commit: CycleCommit) -> None:
    """The error rows to write and to drop: each pair's last outcome (module docstring)."""
    old, values = cycle.errors, cycle.values
    failed = {t: o for t, o in cycle.outcomes.items() if o.is_error and t in values}
    whole = old.get("")
    # answered now, or (a full cycle over every target) no longer configured
    commit.cleared.extend(t for t in old if t and t not in failed and (t in values or cycle.prune))
    wide = cycle.full and cycle.all_shards
    if wide and failed and len(failed) > LIST_WIDE_SHARE * len(cycle.targets):
        commit.errors.append(_list_row(cycle, failed, whole))
        return
    for t, outcome in failed.items():
        assert outcome.reason is not None  # set exactly on errors
        commit.errors.append(
            PairError(
                t,
                cycle.list_name,
                outcome.reason,
                cycle.now,
                outcome.detail,
                _last_good(cycle, t, whole),
            )
        )
    if cycle.full and whole is not None:
        commit.cleared.append("")  # most of the list answered again (or: split, below)
        if not cycle.all_shards:
            commit.errors.extend(
                dataclasses.replace(whole, target=t) for t in cycle.others if t not in old
            )


def _last_good(cycle: CycleInput, target: str, whole: PairError | None) -> float | None:
    """When a pair that failed now last answered: as its error row (or the list's) says,
    at the list's last completed cycle if it had answered before, never otherwise."""
    prev = cycle.errors.get(target) or whole
    if prev is not None:
        return prev.last_good_at
    return cycle.last_good_at if target in cycle.seen else None


def _list_row(
    cycle: CycleInput, failed: Mapping[str, Outcome], whole: PairError | None
) -> PairError:
    reasons = Counter(o.reason for o in failed.values() if o.reason is not None)
    reason = reasons.most_common(1)[0][0]
    detail = f"{len(failed)} of {len(cycle.targets)} lookups failed"
    if reasons[Reason.DEADLINE]:
        detail += f" ({reasons[Reason.DEADLINE]} not checked: the cycle's deadline came first)"
    last_good = whole.last_good_at if whole is not None else cycle.last_good_at
    return PairError("", cycle.list_name, reason, cycle.now, detail, last_good)


def _collect(planned: PlannedCommit, target: str, d: transitions.Decision) -> None:
    commit = planned.commit
    if d.write:
        if d.row is None:
            commit.deletes.append(target)
        else:
            commit.upserts.append(d.row)
    if d.event is not None:
        commit.events.append(d.event)
    if d.confirm:
        planned.confirm.add(target)


def is_news(row: PairState | None, outcome: Outcome) -> bool:
    """A listing that is not already stored as such: new, pending, or with other codes.

    Its events and alerts should carry the list's detail (TXT), so that is fetched for it.
    """
    if row is None or row.status is not PairStatus.LISTED or row.pending is not None:
        return True
    return set(row.codes) != set(outcome.codes)


def list_status(
    name: str,
    health: Health,
    start: float,
    end: float,
    *,
    lookups: int,
    errors: int,
    targets: int,
    completed: bool,
) -> ListStatus:
    """The list's aggregate row. A cycle counts as a success when it completed its lookups,
    whatever some of them answered: on a /16 a timeout or two is routine, errors have their
    own counters, and "no successful cycle for hours" must mean the cycles stopped."""
    return ListStatus(
        name=name,
        health=health,
        last_cycle_start=start,
        last_cycle_end=end,
        last_cycle_success=end if completed else None,
        last_cycle_duration=end - start,
        last_cycle_lookups=lookups,
        last_cycle_errors=errors,
        targets=targets,
    )


__all__ = [
    "LIST_WIDE_SHARE",
    "CycleInput",
    "PlannedCommit",
    "is_news",
    "list_status",
    "plan_commit",
]
