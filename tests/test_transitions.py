"""transitions.step: what one outcome does to one pair's stored state (SPEC §2, §4)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest

from rblwatch.model import (
    CLEAN,
    Event,
    EventKind,
    Outcome,
    OutcomeKind,
    PairState,
    PairStatus,
    Reason,
    error,
)
from rblwatch.transitions import Decision, step

T0 = 1_700_000_000.0  # a realistic clock: baseline detection compares stored times exactly
SBL = Outcome(OutcomeKind.LISTED, codes=("127.0.0.2",), meanings=("SBL",), txt="see sbl")
XBL = Outcome(OutcomeKind.LISTED, codes=("127.0.0.4",), meanings=("XBL",), txt="see xbl")
BOTH = Outcome(
    OutcomeKind.LISTED, codes=("127.0.0.2", "127.0.0.4"), meanings=("SBL", "XBL"), txt=None
)
DNSWL = Outcome(OutcomeKind.ALLOWLISTED, codes=("127.0.2.1",), meanings=("dnswl low",))
ERRORS = [error(r) for r in Reason]


def run(
    outcomes: Iterable[Outcome],
    *,
    confirm: int = 2,
    prev: PairState | None = None,
    first_lookup: bool | None = None,
    start: float = T0,
) -> tuple[PairState | None, list[Decision]]:
    """Feed outcomes one minute apart, as the engine would, writing back each decision's row.

    Without an explicit `first_lookup`, the pair is new until its first non-error outcome (an
    error says nothing, so it does not use up the baseline) and only if it starts without a row.
    """
    decisions = []
    new = prev is None if first_lookup is None else first_lookup
    for i, outcome in enumerate(outcomes):
        d = one(prev, outcome, confirm=confirm, first_lookup=new, now=start + 60 * i)
        decisions.append(d)
        prev = d.row
        if first_lookup is None and not outcome.is_error:
            new = False
    return prev, decisions


def one(
    prev: PairState | None,
    outcome: Outcome,
    *,
    confirm: int = 2,
    first_lookup: bool = False,
    now: float = T0,
) -> Decision:
    return step(
        prev,
        outcome,
        target="192.0.2.1",
        list_name="zen",
        group="mail",
        now=now,
        confirm=confirm,
        first_lookup=first_lookup,
    )


def events(decisions: Sequence[Decision]) -> list[Event]:
    return [d.event for d in decisions if d.event is not None]


def listed_row(outcome: Outcome = SBL, since: float = T0 - 86400) -> PairState:
    return PairState(
        target="192.0.2.1",
        list="zen",
        group="mail",
        status=PairStatus.LISTED,
        since=since,
        first_seen=since - 86400,
        codes=outcome.codes,
        meanings=outcome.meanings,
        txt=outcome.txt,
    )


def pending_listing_row() -> PairState:
    """A clean pair (seen before) whose listing awaits a second observation."""
    row = one(None, SBL, now=T0 - 60).row
    assert row is not None and row.pending is OutcomeKind.LISTED
    return row


def pending_delisting_row() -> PairState:
    row = one(listed_row(), CLEAN, now=T0 - 60).row
    assert row is not None and row.pending is OutcomeKind.CLEAN
    return row


ROWS = {
    "no row": None,
    "listed": listed_row(),
    "pending listing": pending_listing_row(),
    "pending delisting": pending_delisting_row(),
}


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("first_lookup", [False, True])
@pytest.mark.parametrize("name", ROWS)
@pytest.mark.parametrize("reason", list(Reason))
def test_an_error_never_changes_a_listing(reason: Reason, name: str, first_lookup: bool) -> None:
    prev = ROWS[name]
    d = one(prev, error(reason, "detail"), first_lookup=first_lookup)
    assert d == Decision(prev, write=False, event=None, confirm=False)
    assert d.row is prev


def test_a_timeout_is_not_a_delisting() -> None:
    row, decisions = run([error(Reason.TIMEOUT)] * 10, confirm=1, prev=listed_row())
    assert row == listed_row()
    assert events(decisions) == []
    assert not any(d.write for d in decisions)


@pytest.mark.parametrize("reason", list(Reason))
def test_an_error_between_agreeing_observations_does_not_break_the_run(reason: Reason) -> None:
    row, decisions = run([CLEAN, error(reason), CLEAN], prev=listed_row())
    assert row is None
    assert [e.kind for e in events(decisions)] == [EventKind.DELISTED]
    assert events(decisions)[0].at == T0 + 120  # confirmed by the third outcome


def test_errors_only_produce_nothing_even_on_a_first_lookup() -> None:
    row, decisions = run(ERRORS * 3, confirm=1, first_lookup=True)
    assert row is None
    assert not any(d.write or d.event or d.confirm for d in decisions)


# -- confirmation --------------------------------------------------------------------------------


def test_confirm_2_needs_two_agreeing_observations() -> None:
    first = one(listed_row(), CLEAN, now=T0)
    assert first.write and first.confirm and first.event is None
    assert first.row is not None
    assert first.row.status is PairStatus.LISTED  # still believed listed
    assert (first.row.pending, first.row.pending_count) == (OutcomeKind.CLEAN, 1)
    assert first.row.pending_since == T0

    second = one(first.row, CLEAN, now=T0 + 30)
    assert second.row is None and second.write and not second.confirm
    assert second.event is not None and second.event.kind is EventKind.DELISTED


def test_confirm_3_counts_each_agreeing_observation() -> None:
    row, decisions = run([XBL, XBL], confirm=3, prev=listed_row())
    assert events(decisions) == []
    assert row is not None and row.pending_count == 2 and row.pending_codes == XBL.codes
    assert row.pending_since == T0  # when the candidate was first seen, not last
    assert [d.confirm for d in decisions] == [True, True]
    row, decisions = run([XBL], confirm=3, prev=row, start=T0 + 120)
    assert [e.kind for e in events(decisions)] == [EventKind.CHANGED]


@pytest.mark.parametrize(
    ("outcomes", "pending", "codes"),
    [
        ([CLEAN, SBL, CLEAN], OutcomeKind.CLEAN, ()),  # flaps back: pending cleared, then anew
        ([XBL, CLEAN], OutcomeKind.CLEAN, ()),
        ([CLEAN, XBL], OutcomeKind.LISTED, XBL.codes),
        ([XBL, BOTH], OutcomeKind.LISTED, BOTH.codes),
    ],
)
def test_a_differing_observation_restarts_the_count(
    outcomes: list[Outcome], pending: OutcomeKind, codes: tuple[str, ...]
) -> None:
    row, decisions = run(outcomes, prev=listed_row())
    assert events(decisions) == []
    assert row is not None and row.status is PairStatus.LISTED and row.codes == SBL.codes
    assert (row.pending, row.pending_codes, row.pending_count) == (pending, codes, 1)
    assert row.pending_since == T0 + 60 * (len(outcomes) - 1)


@pytest.mark.parametrize(
    ("prev", "outcome", "kind"),
    [
        (None, SBL, EventKind.LISTED),
        (listed_row(), CLEAN, EventKind.DELISTED),
        (listed_row(), XBL, EventKind.CHANGED),
    ],
)
def test_confirm_1_is_immediate(prev: PairState | None, outcome: Outcome, kind: EventKind) -> None:
    d = one(prev, outcome, confirm=1)
    assert d.write and not d.confirm
    assert d.event is not None and d.event.kind is kind
    assert d.row is None or d.row.pending is None


def test_pending_is_cleared_when_the_believed_state_is_seen_again() -> None:
    listed = listed_row()
    d = one(one(listed, CLEAN).row, SBL, now=T0 + 30)
    assert d.row == listed and d.write and d.event is None and not d.confirm

    # and for a clean pair: the row that only carried the pending listing goes
    d = one(pending_listing_row(), CLEAN)
    assert d == Decision(None, write=True, event=None, confirm=False)


def test_flapping_listed_clean_listed_with_confirm_2_produces_no_event() -> None:
    _, decisions = run([SBL, CLEAN, SBL, CLEAN, SBL, CLEAN])
    assert events(decisions) == []
    _, decisions = run([CLEAN, SBL, CLEAN, SBL, CLEAN, SBL], prev=listed_row())
    assert events(decisions) == []


# -- baselines and the initial flag -----------------------------------------------------------


def test_a_clean_first_lookup_is_a_silent_baseline() -> None:
    d = one(None, CLEAN, first_lookup=True)
    assert d == Decision(None, write=False, event=None, confirm=False)


def test_a_clean_pair_seen_clean_again_writes_nothing() -> None:
    assert one(None, CLEAN) == Decision(None, write=False, event=None, confirm=False)


def test_a_listed_first_lookup_with_confirm_1_is_an_initial_listing() -> None:
    d = one(None, SBL, confirm=1, first_lookup=True)
    assert d.event is not None and d.event.kind is EventKind.LISTED and d.event.initial
    assert d.row is not None and d.row.first_seen == T0 == d.row.since


@pytest.mark.parametrize(
    "outcomes",
    [
        [SBL, SBL],
        [SBL, error(Reason.TIMEOUT), SBL],
        [error(Reason.SERVFAIL), SBL, SBL],  # the baseline is the first answer, not the first try
        [SBL, XBL, XBL],  # the candidate changed, but the pair was never believed clean
        [SBL, SBL, SBL, SBL],
    ],
)
def test_a_listed_baseline_is_initial_after_confirmation(outcomes: list[Outcome]) -> None:
    row, decisions = run(outcomes)
    (event,) = events(decisions)
    assert event.kind is EventKind.LISTED and event.initial
    first = next(i for i, o in enumerate(outcomes) if not o.is_error)
    assert row is not None and row.first_seen == T0 + 60 * first
    assert decisions[first].confirm and decisions[first].event is None


@pytest.mark.parametrize("confirm", [1, 2, 3])
def test_a_later_listing_is_not_initial(confirm: int) -> None:
    _, decisions = run([CLEAN] + [SBL] * confirm, confirm=confirm)
    (event,) = events(decisions)
    assert event.kind is EventKind.LISTED and not event.initial


def test_a_baseline_listing_that_was_contradicted_is_not_initial_later() -> None:
    _, decisions = run([SBL, CLEAN, SBL, SBL])
    (event,) = events(decisions)
    assert not event.initial


def test_a_relisting_after_a_delisting_is_not_initial() -> None:
    _, decisions = run([SBL, SBL, CLEAN, CLEAN, SBL, SBL])
    assert [(e.kind, e.initial) for e in events(decisions)] == [
        (EventKind.LISTED, True),
        (EventKind.DELISTED, False),
        (EventKind.LISTED, False),
    ]


def test_a_row_outweighs_a_first_lookup_flag() -> None:
    """A pair with a row has a history, whatever the seen set says."""
    _, decisions = run([SBL, SBL], prev=pending_listing_row(), first_lookup=True)
    (event,) = events(decisions)
    assert not event.initial


def test_first_seen_is_kept_on_later_updates() -> None:
    row, _ = run([SBL, SBL, XBL, XBL, SBL], confirm=2)
    assert row is not None and row.first_seen == T0


# -- events and rows -------------------------------------------------------------------------


def test_a_listing_event_carries_codes_meanings_and_txt() -> None:
    row, decisions = run([CLEAN, BOTH, BOTH])
    (event,) = events(decisions)
    assert event == Event(
        kind=EventKind.LISTED,
        list="zen",
        at=T0 + 120,
        target="192.0.2.1",
        group="mail",
        codes=BOTH.codes,
        meanings=BOTH.meanings,
        txt=None,
    )
    assert row is not None
    assert (row.status, row.since, row.codes, row.meanings) == (
        PairStatus.LISTED,
        T0 + 120,
        BOTH.codes,
        BOTH.meanings,
    )
    assert row.pending is None and row.pending_count == 0 and row.pending_since is None


def test_a_codes_change_is_a_changed_event_with_previous_codes() -> None:
    prev = listed_row(SBL, since=T0 - 500)
    row, decisions = run([XBL, XBL], prev=prev)
    (event,) = events(decisions)
    assert event.kind is EventKind.CHANGED
    assert (event.codes, event.meanings, event.txt) == (XBL.codes, XBL.meanings, XBL.txt)
    assert event.previous_codes == SBL.codes
    assert event.since == T0 - 500 and event.at == T0 + 60
    # still the same listing: its `since` stays
    assert row is not None and row.since == T0 - 500 and row.codes == XBL.codes


def test_codes_in_another_order_agree() -> None:
    prev = listed_row(BOTH)
    swapped = Outcome(OutcomeKind.LISTED, codes=BOTH.codes[::-1], meanings=BOTH.meanings)
    _, decisions = run([swapped, swapped], prev=prev)
    assert events(decisions) == []


def test_a_delisting_event_carries_the_old_codes_and_since() -> None:
    prev = listed_row(BOTH, since=T0 - 500)
    row, decisions = run([CLEAN, CLEAN], prev=prev)
    (event,) = events(decisions)
    assert event.kind is EventKind.DELISTED
    assert event.codes == event.previous_codes == BOTH.codes
    assert event.meanings == BOTH.meanings
    assert event.since == T0 - 500 and event.at == T0 + 60
    assert row is None and decisions[-1].write


def test_the_row_is_deleted_when_the_pair_is_clean() -> None:
    d = one(pending_delisting_row(), CLEAN, confirm=2)
    assert d.row is None and d.write
    # a stray clean row with nothing pending (an older store kept them) goes too
    stray = PairState("192.0.2.1", "zen", "mail", PairStatus.CLEAN, since=T0, first_seen=T0)
    assert one(stray, CLEAN) == Decision(None, write=True, event=None, confirm=False)


def test_an_allowlisting_is_a_listed_observation() -> None:
    row, decisions = run([CLEAN, DNSWL, DNSWL])
    (event,) = events(decisions)
    assert event.kind is EventKind.LISTED and event.codes == DNSWL.codes
    assert row is not None and row.status is PairStatus.LISTED
    assert one(row, DNSWL).write is False  # agrees with the listing


def test_an_unchanged_listing_writes_only_when_its_text_changes() -> None:
    prev = listed_row(SBL)
    assert one(prev, SBL).write is False
    no_txt = Outcome(OutcomeKind.LISTED, codes=SBL.codes, meanings=SBL.meanings)
    assert one(prev, no_txt).write is False  # TXT not fetched: keep the one we have
    new_txt = Outcome(OutcomeKind.LISTED, codes=SBL.codes, meanings=SBL.meanings, txt="new")
    d = one(prev, new_txt)
    assert d.write and d.event is None and d.row is not None and d.row.txt == "new"


# -- invariants over random sequences --------------------------------------------------------

POOL = [CLEAN, CLEAN, SBL, XBL, BOTH, DNSWL, *ERRORS]


@dataclass
class Replay:
    """Belief rebuilt from events alone, to check the rows against."""

    listed: tuple[str, ...] | None = None  # None: clean
    count: int = 0
    seen_clean: bool = False
    history: list[Event] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        if event.kind is EventKind.LISTED:
            assert self.listed is None, "listed while listed"
            assert event.initial == (not self.history and not self.seen_clean)
            self.listed = event.codes
        elif event.kind is EventKind.DELISTED:
            assert self.listed is not None and event.codes == self.listed, "delisted while clean"
            self.listed = None
        else:
            assert event.kind is EventKind.CHANGED
            assert self.listed is not None and event.previous_codes == self.listed
            assert sorted(event.codes) != sorted(self.listed)
            self.listed = event.codes
        self.history.append(event)


def check_decision(prev: PairState | None, d: Decision, confirm: int, replay: Replay) -> None:
    assert d.write == (d.row != prev)
    if d.write:  # a re-query is asked for exactly when a change is newly pending
        assert d.confirm == (d.row is not None and d.row.pending is not None)
    else:
        assert not d.confirm
    if d.event is not None:
        replay.apply(d.event)
    if d.row is None:
        assert replay.listed is None
        return
    assert d.row.pending_count < confirm
    if d.row.status is PairStatus.LISTED:
        assert replay.listed == d.row.codes
    else:
        assert replay.listed is None and d.row.pending is OutcomeKind.LISTED


@pytest.mark.parametrize("confirm", [1, 2, 3])
def test_random_sequences_keep_the_invariants(confirm: int) -> None:
    rng = random.Random(5782 + confirm)
    for _ in range(2000):
        outcomes = rng.choices(POOL, k=rng.randint(0, 25))
        replay = Replay()
        prev: PairState | None = None
        answers = 0
        for i, outcome in enumerate(outcomes):
            d = one(prev, outcome, confirm=confirm, first_lookup=answers == 0, now=T0 + 60 * i)
            if outcome.is_error:
                assert d == Decision(prev, write=False, event=None, confirm=False)
            else:
                answers += 1
            check_decision(prev, d, confirm, replay)
            replay.seen_clean |= outcome.kind is OutcomeKind.CLEAN
            prev = d.row
        assert len(replay.history) <= answers // confirm
        if answers == 0:
            assert prev is None and replay.history == []
