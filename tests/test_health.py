"""List health from RFC 5782 test points (SPEC §3), as pure logic."""

from __future__ import annotations

from rblwatch.health import ProbePoint, evaluate
from rblwatch.health import test_points as points_of
from rblwatch.model import (
    CLEAN,
    DnsList,
    Health,
    Kind,
    Outcome,
    OutcomeKind,
    Reason,
    TargetKind,
    error,
)

LISTED = Outcome(OutcomeKind.LISTED, codes=("127.0.0.2",))
LISTED_PT = ProbePoint("127.0.0.2", TargetKind.IPV4, True)
CLEAN_PT = ProbePoint("127.0.0.1", TargetKind.IPV4, False)


def test_standard_ipv4_test_points() -> None:
    pts = points_of(DnsList(name="x", zone="bl.test"))
    assert [(p.value, p.expect_listed) for p in pts] == [("127.0.0.2", True), ("127.0.0.1", False)]


def test_ipv6_lists_also_probe_the_ipv6_test_points() -> None:
    pts = points_of(DnsList(name="x", zone="bl.test", ipv6=True))
    assert [(p.value, p.kind, p.expect_listed) for p in pts] == [
        ("127.0.0.2", TargetKind.IPV4, True),
        ("::ffff:7f00:2", TargetKind.IPV6, True),
        ("127.0.0.1", TargetKind.IPV4, False),
        ("::ffff:7f00:1", TargetKind.IPV6, False),
    ]


def test_standard_domain_test_points() -> None:
    pts = points_of(DnsList(name="x", zone="dbl.test", kind=Kind.DOMAIN))
    assert [(p.value, p.kind, p.expect_listed) for p in pts] == [
        ("test", TargetKind.DOMAIN, True),
        ("invalid", TargetKind.DOMAIN, False),
    ]


def test_overridden_and_disabled_test_points() -> None:
    lst = DnsList(
        name="x", zone="bl.test", test_listed=("127.0.0.3", "::ffff:7f00:2"), test_clean=()
    )
    pts = points_of(lst)
    assert [(p.value, p.kind) for p in pts] == [
        ("127.0.0.3", TargetKind.IPV4),
        ("::ffff:7f00:2", TargetKind.IPV6),
    ]
    assert points_of(DnsList(name="x", zone="bl.test", health_check=False)) == []


def test_a_list_answering_its_test_points_correctly_is_healthy() -> None:
    assert evaluate([(LISTED_PT, LISTED), (CLEAN_PT, CLEAN)]).health is Health.HEALTHY


def test_a_list_without_127_0_0_2_is_dead() -> None:
    v = evaluate([(LISTED_PT, CLEAN), (CLEAN_PT, CLEAN)])
    assert v.health is Health.DEAD
    assert "127.0.0.2" in v.detail


def test_a_list_that_does_not_answer_is_dead() -> None:
    v = evaluate([(LISTED_PT, error(Reason.TIMEOUT)), (CLEAN_PT, error(Reason.TIMEOUT))])
    assert v.health is Health.DEAD


def test_a_list_listing_127_0_0_1_lists_everything() -> None:
    v = evaluate([(LISTED_PT, LISTED), (CLEAN_PT, LISTED)])
    assert v.health is Health.LISTS_EVERYTHING


def test_a_resolver_rewriting_nxdomain_makes_the_list_list_everything() -> None:
    v = evaluate([(LISTED_PT, LISTED), (CLEAN_PT, error(Reason.BAD_ANSWER, "answer 10.0.0.1"))])
    assert v.health is Health.LISTS_EVERYTHING


def test_a_list_refusing_us_is_blocked() -> None:
    for reason in (Reason.BLOCKED, Reason.RATE_LIMITED, Reason.REFUSED):
        v = evaluate([(LISTED_PT, error(reason)), (CLEAN_PT, error(reason))])
        assert v.health is Health.BLOCKED, reason


def test_a_list_without_test_points_is_healthy() -> None:
    assert evaluate([]).health is Health.HEALTHY
