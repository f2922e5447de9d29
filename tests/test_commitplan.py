"""The commit planner: a cycle's outcomes and stored state → the commit, without sockets or store.

Like dnspython's resolution tests, these drive the decision logic alone: every input is a value
built here, and the output is compared whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rblwatch.commitplan import CycleInput, PlannedCommit, is_news, list_status, plan_commit
from rblwatch.model import (
    CLEAN,
    EventKind,
    Health,
    Outcome,
    OutcomeKind,
    PairState,
    PairStatus,
    Reason,
    Target,
    TargetKind,
    error,
    make_targets,
)

T0 = 1_700_000_000.0
LISTED = Outcome(OutcomeKind.LISTED, codes=("127.0.0.2",), meanings=("spam",))
ADDRS = [f"192.0.2.{i}" for i in range(4)]
TARGETS = make_targets(ADDRS, TargetKind.IPV4, "mail")


def plan(
    outcomes: Mapping[str, Outcome] | None = None,
    *,
    rows: Sequence[PairState] = (),
    seen: Sequence[str] = ADDRS,
    targets: Sequence[Target] = TARGETS,
    confirm: int = 2,
    prune: bool = True,
) -> PlannedCommit:
    return plan_commit(
        CycleInput(
            list_name="bl",
            targets=targets,
            values=frozenset(t.value for t in targets),
            outcomes=outcomes or {},
            rows={r.target: r for r in rows},
            seen=set(seen),
            confirm=confirm,
            now=T0,
            prune=prune,
        )
    )


def listed_row(target: str, since: float = T0 - 3600) -> PairState:
    return PairState(
        target,
        "bl",
        "mail",
        PairStatus.LISTED,
        since,
        since - 60,
        codes=("127.0.0.2",),
        meanings=("spam",),
    )


def test_clean_targets_believed_clean_make_an_empty_commit() -> None:
    planned = plan()
    c = planned.commit
    assert (c.upserts, c.deletes, c.seen, c.events, planned.confirm) == ([], [], [], [], set())


def test_first_clean_looks_are_only_recorded_as_seen() -> None:
    c = plan(seen=[]).commit
    assert c.seen == ADDRS and c.upserts == [] and c.events == []


def test_a_first_listing_is_pending_confirmation_and_seen() -> None:
    planned = plan({"192.0.2.1": LISTED}, seen=[])
    [row] = planned.commit.upserts
    assert (row.target, row.status, row.pending, row.pending_count) == (
        "192.0.2.1",
        PairStatus.CLEAN,
        OutcomeKind.LISTED,
        1,
    )
    assert planned.confirm == {"192.0.2.1"} and planned.commit.events == []
    assert planned.commit.seen == ADDRS


def test_an_error_on_a_first_look_is_no_baseline_and_changes_nothing() -> None:
    planned = plan({"192.0.2.1": error(Reason.TIMEOUT)}, seen=[])
    assert "192.0.2.1" not in planned.commit.seen
    assert planned.commit.upserts == [] and planned.confirm == set()


def test_an_error_never_touches_a_stored_listing() -> None:
    row = listed_row("192.0.2.1")
    c = plan({"192.0.2.1": error(Reason.SERVFAIL)}, rows=[row]).commit
    assert (c.upserts, c.deletes, c.events) == ([], [], [])


def test_a_confirmed_delisting_deletes_the_row_with_one_event() -> None:
    c = plan({}, rows=[listed_row("192.0.2.1")], confirm=1).commit
    assert c.deletes == ["192.0.2.1"]
    [event] = c.events
    assert (event.kind, event.target, event.previous_codes) == (
        EventKind.DELISTED,
        "192.0.2.1",
        ("127.0.0.2",),
    )


def test_a_full_cycle_prunes_rows_of_targets_no_longer_configured_without_events() -> None:
    gone = listed_row("198.51.100.9")
    planned = plan(rows=[gone])
    assert planned.commit.deletes == ["198.51.100.9"] and planned.commit.events == []
    assert plan(rows=[gone], prune=False).commit.deletes == []


def test_a_round_of_a_few_targets_leaves_the_other_rows_alone() -> None:
    rows = [listed_row("192.0.2.1"), listed_row("192.0.2.2")]
    few = [t for t in TARGETS if t.value == "192.0.2.2"]
    c = plan({"192.0.2.2": LISTED}, rows=rows, targets=few, prune=False).commit
    assert (c.upserts, c.deletes, c.events) == ([], [], [])


def test_news_is_a_listing_not_stored_as_such() -> None:
    assert is_news(None, LISTED)
    assert not is_news(listed_row("192.0.2.1"), LISTED)
    other = Outcome(OutcomeKind.LISTED, codes=("127.0.0.4",))
    assert is_news(listed_row("192.0.2.1"), other)
    assert is_news(listed_row("192.0.2.1"), CLEAN)


def test_a_cycle_that_completed_its_lookups_is_a_success_whatever_they_answered() -> None:
    done = list_status(
        "bl", Health.HEALTHY, T0, T0 + 2, lookups=4, errors=1, targets=4, completed=True
    )
    assert done.last_cycle_success == T0 + 2 and done.last_cycle_duration == 2
    skipped = list_status(
        "bl", Health.DEAD, T0, T0, lookups=0, errors=4, targets=4, completed=False
    )
    assert skipped.last_cycle_success is None and skipped.health is Health.DEAD


def test_an_event_about_an_address_of_a_hostname_names_the_hostname() -> None:
    # 192.0.2.1 came from resolving mx1.example.net; 192.0.2.2 from the network written
    found = [
        Target("192.0.2.1", TargetKind.IPV4, "mail", "mx1.example.net"),
        Target("192.0.2.2", TargetKind.IPV4, "mail", "192.0.2.0/30"),
    ]
    planned = plan({"192.0.2.1": LISTED, "192.0.2.2": LISTED}, targets=found, confirm=1)
    assert {(e.target, e.hostname) for e in planned.commit.events} == {
        ("192.0.2.1", "mx1.example.net"),
        ("192.0.2.2", None),
    }
