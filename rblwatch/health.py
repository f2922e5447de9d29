"""List health from RFC 5782 §5 test points (SPEC §3). Pure: outcomes in, a verdict out.

A list's results are trusted only while its test points behave: the "listed" test point
(127.0.0.2, ::ffff:7f00:2, `test`) must be listed and the "clean" one (127.0.0.1,
::ffff:7f00:1, `invalid`) must not. A list that died answers nothing or NXDOMAIN for the first;
a list whose domain lapsed into a parking wildcard "lists the world" and fails the second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rblwatch.model import DnsList, Health, Kind, Outcome, OutcomeKind, Reason, TargetKind

_V4_LISTED, _V4_CLEAN = ("127.0.0.2",), ("127.0.0.1",)
_V6_LISTED, _V6_CLEAN = ("::ffff:7f00:2",), ("::ffff:7f00:1",)
_BLOCKING = frozenset({Reason.BLOCKED, Reason.RATE_LIMITED, Reason.REFUSED})
_HIT = frozenset({OutcomeKind.LISTED, OutcomeKind.ALLOWLISTED})


@dataclass(frozen=True, slots=True)
class ProbePoint:
    value: str
    kind: TargetKind
    expect_listed: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.health is Health.HEALTHY


HEALTHY = Verdict(Health.HEALTHY)


def test_points(lst: DnsList) -> list[ProbePoint]:
    """The test points to probe for a list: its overrides, or RFC 5782's for its kind."""
    if not lst.health_check:
        return []
    listed: tuple[str, ...]
    clean: tuple[str, ...]
    if lst.kind is Kind.DOMAIN:
        kind, listed, clean = TargetKind.DOMAIN, ("test",), ("invalid",)
    elif lst.ipv6:
        kind, listed, clean = TargetKind.IPV4, (*_V4_LISTED, *_V6_LISTED), (*_V4_CLEAN, *_V6_CLEAN)
    else:
        kind, listed, clean = TargetKind.IPV4, _V4_LISTED, _V4_CLEAN
    listed = lst.test_listed if lst.test_listed is not None else listed
    clean = lst.test_clean if lst.test_clean is not None else clean
    points = [ProbePoint(v, _kind_of(v, kind), True) for v in listed]
    points += [ProbePoint(v, _kind_of(v, kind), False) for v in clean]
    return points


def _kind_of(value: str, default: TargetKind) -> TargetKind:
    if default is TargetKind.DOMAIN:
        return default
    return TargetKind.IPV6 if ":" in value else TargetKind.IPV4


def evaluate(results: Sequence[tuple[ProbePoint, Outcome]]) -> Verdict:
    """Judge a list from its test points' outcomes.

    Order matters: a list that refuses us (`blocked`) tells us nothing about itself; then a
    listed point that is not listed means `dead`; then a clean point that is listed (or answers
    outside 127/8: a resolver rewriting NXDOMAIN) means every lookup would be a false listing.
    """
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


def _d(out: Outcome) -> str:
    return f" ({out.detail})" if out.detail else ""
