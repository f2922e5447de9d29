"""List health from RFC 5782 §5 test points (SPEC §3). Pure: outcomes in, a verdict out.

A list's results are trusted only while its test points behave: the "listed" test point
(127.0.0.2, ::ffff:7f00:2, `test`) must be listed and the "clean" one (127.0.0.1,
::ffff:7f00:1, `invalid`) must not. A list that died answers nothing or NXDOMAIN for the first;
a list whose domain lapsed into a parking wildcard "lists the world" and fails the second.

A probe that heard nothing at all (every test point ended in a transport error: timeout,
network, SERVFAIL) says nothing about the list: it may as well be the resolver that is gone.
Such a verdict is marked `transport`, and whether it is the list's or the resolver's is
decided with the resolver's state (`resolver_after`, `rblwatch.listhealth`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from rblwatch.model import (
    TARGET_KINDS,
    DnsList,
    Event,
    EventKind,
    Health,
    Outcome,
    OutcomeKind,
    Reason,
    ResolverState,
    TargetKind,
    kind_of_value,
    kinds_taken,
)

_BLOCKING = frozenset({Reason.BLOCKED, Reason.RATE_LIMITED, Reason.REFUSED})
_HIT = frozenset({OutcomeKind.LISTED, OutcomeKind.ALLOWLISTED})
# the failures that mean no DNS answer came back (SERVFAIL: the resolver could not get one)
TRANSPORT = frozenset({Reason.TIMEOUT, Reason.NETWORK, Reason.SERVFAIL})
UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class ProbePoint:
    value: str
    kind: TargetKind
    expect_listed: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health
    detail: str = ""
    # every test point failed in transport: nothing was heard, from the list or the resolver
    transport: bool = False

    @property
    def healthy(self) -> bool:
        return self.health is Health.HEALTHY


HEALTHY = Verdict(Health.HEALTHY)


def test_points(lst: DnsList) -> list[ProbePoint]:
    """The test points to probe for a list: its overrides, or RFC 5782's for the kinds it takes."""
    if not lst.health_check:
        return []
    taken = [TARGET_KINDS[k] for k in kinds_taken(lst)]
    listed = lst.test_listed
    if listed is None:
        listed = tuple(v for info in taken for v in info.test_listed)
    clean = lst.test_clean
    if clean is None:
        clean = tuple(v for info in taken for v in info.test_clean)
    points = [ProbePoint(v, kind_of_value(v, lst.kind), True) for v in listed]
    points += [ProbePoint(v, kind_of_value(v, lst.kind), False) for v in clean]
    return points


def evaluate(results: Sequence[tuple[ProbePoint, Outcome]]) -> Verdict:
    """Judge a list from its test points' outcomes.

    Order matters: a list that refuses us (`blocked`) tells us nothing about itself; then a
    listed point that is not listed means `dead`; then a clean point that is listed (or answers
    outside 127/8: a resolver rewriting NXDOMAIN) means every lookup would be a false listing.
    """
    verdict = _judge(results)
    if verdict.health is Health.DEAD and all(is_transport(out) for _, out in results):
        return dataclasses.replace(verdict, transport=True)
    return verdict


def _judge(results: Sequence[tuple[ProbePoint, Outcome]]) -> Verdict:
    for point, out in results:
        if out.kind is OutcomeKind.ERROR and out.reason in _BLOCKING:
            return Verdict(Health.BLOCKED, f"test point {point.value}: {out.reason}{_d(out)}")
    for point, out in results:
        if point.expect_listed and out.kind not in _HIT:
            what = out.reason.value if out.reason is not None else out.kind.value
            return Verdict(
                Health.DEAD, f"test point {point.value} should be listed, got {what}{_d(out)}"
            )
    for point, out in results:
        if point.expect_listed:
            continue
        if out.kind in _HIT or (out.kind is OutcomeKind.ERROR and out.reason is Reason.BAD_ANSWER):
            got = ", ".join(out.codes) or out.detail
            return Verdict(
                Health.LISTS_EVERYTHING, f"test point {point.value} should be clean, got {got}"
            )
    return HEALTHY


def event_for(list_name: str, before: Health, verdict: Verdict, at: float) -> Event | None:
    """The list event a verdict raises against the health stored before, if any.

    A list not probed yet counts as healthy: its first verdict raises an event only if bad.
    """
    was_ok = before in (Health.HEALTHY, Health.UNKNOWN)
    if was_ok == verdict.healthy:
        return None
    kind = EventKind.LIST_RECOVERED if verdict.healthy else EventKind.LIST_UNHEALTHY
    return Event(kind=kind, list=list_name, at=at, detail=verdict.detail)


def is_transport(out: Outcome) -> bool:
    """Whether an outcome is a transport failure: no DNS answer at all."""
    return out.kind is OutcomeKind.ERROR and out.reason in TRANSPORT


def resolver_after(
    before: ResolverState, reached: bool, detail: str, at: float
) -> tuple[ResolverState, Event | None]:
    """The resolver's state after what was heard through it (`reached`: some DNS answer),
    and the event that raises against the state before: `resolver_unreachable` when it
    goes, `resolver_recovered` when it answers again (with `since`: when the outage began)."""
    if reached:
        if before.reachable:
            return before, None
        event = Event(
            kind=EventKind.RESOLVER_RECOVERED, list="", at=at, since=before.since, detail=detail
        )
        return ResolverState("ok", at, detail), event
    if not before.reachable:
        return before, None
    event = Event(kind=EventKind.RESOLVER_UNREACHABLE, list="", at=at, detail=detail)
    return ResolverState(UNREACHABLE, at, detail), event


def _d(out: Outcome) -> str:
    return f" ({out.detail})" if out.detail else ""
