"""What one lookup outcome does to the stored state of one (target, list) pair (SPEC §4).

Pure logic: no sockets, clocks or files; the caller hands in the stored row, the outcome and the
time, and writes back what `step` decides (through the store, in one transaction with the event).

The rules, in the order they matter:

* An `error` outcome changes nothing at all, whatever its reason: not the belief, not a pending
  confirmation (it neither counts towards one nor breaks it). A timeout is not a delisting.
* `listed` and `allowlisted` are both "listed" observations; `clean` is a clean one. Two listed
  observations agree only if their codes are the same too.
* A change of belief needs `confirm` agreeing consecutive observations. Until then the row
  carries the candidate in its `pending*` fields and the caller re-queries after `confirm_delay`.
* No row means "believed clean": a clean pair with nothing pending is deleted, so a /16 of clean
  addresses costs no rows.
* The first lookup of a pair is a baseline: silent if clean; if listed, the confirmed `listed`
  event says `initial=True` (an existing listing found when monitoring began is actionable).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rblwatch.model import Event, EventKind, Outcome, OutcomeKind, PairState, PairStatus

# How much earlier than `now` a row records `first_seen` when it is created for a pair that was
# looked up before (it is in the store's seen set but had no row, i.e. was believed clean). The
# true first lookup is unknown; all we know is that it was earlier. Recording it as earlier is
# also what keeps baseline rows recognisable: only a row created on the pair's first lookup has
# first_seen == since (see `_is_baseline`). A millisecond survives a store that keeps only
# microseconds, and is invisible to a human reading the time.
_EARLIER = 0.001


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a pair after one outcome.

    `row` is the pair's row afterwards (None: no row, believed clean); `write` says whether it
    differs from the stored one (an insert, update or delete is due); `event` is the one history
    row this outcome causes, if any; `confirm` says a change is pending, so the pair should be
    looked up again after `confirm_delay` rather than a whole interval later.
    """

    row: PairState | None
    write: bool
    event: Event | None
    confirm: bool


@dataclass(frozen=True, slots=True)
class _Observation:
    """A non-error outcome reduced to what the state machine compares."""

    status: PairStatus
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: str | None = None

    @property
    def pending_kind(self) -> OutcomeKind:
        # Normalised: allowlisted is stored as LISTED so pending and status share one
        # vocabulary; whether a hit is an allow-listing is a fact of the list, not of the pair.
        return OutcomeKind.LISTED if self.status is PairStatus.LISTED else OutcomeKind.CLEAN


@dataclass(frozen=True, slots=True)
class _Pair:
    """Who the decision is about and when: what every event and new row needs."""

    target: str
    list_name: str
    group: str
    now: float
    first_lookup: bool

    def event(
        self,
        kind: EventKind,
        listing: _Observation | PairState,
        *,
        initial: bool = False,
        previous_codes: tuple[str, ...] = (),
        since: float | None = None,
    ) -> Event:
        """An event about this pair now, describing `listing` (its codes, meanings and TXT)."""
        return Event(
            kind=kind,
            list=self.list_name,
            at=self.now,
            target=self.target,
            group=self.group,
            codes=listing.codes,
            meanings=listing.meanings,
            txt=listing.txt,
            initial=initial,
            previous_codes=previous_codes,
            since=since,
        )


def step(
    prev: PairState | None,
    outcome: Outcome,
    *,
    target: str,
    list_name: str,
    group: str,
    now: float,
    confirm: int,
    first_lookup: bool,
) -> Decision:
    """Decide what `outcome` does to the pair whose stored row is `prev` (None: no row).

    `first_lookup` is True when the pair has never been looked up before. It only matters while
    there is no row: a row is the better witness of the pair's history, so a row with
    `first_lookup=True` (a lost seen set, say) is treated as the pair it describes.

    `confirm` is how many agreeing consecutive non-error observations a change needs (1 or
    less: immediate).
    """
    if outcome.is_error:
        # The single most important rule (SPEC §2): an error says nothing about the listing,
        # so it must not touch the belief or the count of a pending confirmation. Nor does it
        # ask for a quick re-query of a pending change: hammering a list that is failing helps
        # no one, and the next cycle looks again with the count where it was.
        return Decision(prev, write=False, event=None, confirm=False)
    obs = _observe(outcome)
    pair = _Pair(target, list_name, group, now, first_lookup)
    if _agrees_with_belief(prev, obs):
        return _settle(prev, obs)
    count = prev.pending_count + 1 if prev is not None and _agrees_with_pending(prev, obs) else 1
    if count >= confirm:
        return _transition(prev, obs, pair)
    row = _pending_row(prev, obs, count, pair)
    return Decision(row, write=True, event=None, confirm=True)


def _observe(outcome: Outcome) -> _Observation:
    if outcome.kind is OutcomeKind.CLEAN:
        return _Observation(PairStatus.CLEAN)
    # LISTED and ALLOWLISTED alike: the caller decides what to alert on.
    return _Observation(PairStatus.LISTED, outcome.codes, outcome.meanings, outcome.txt)


def _same_codes(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # Lookups hand over codes already sorted (numerically, so 127.0.0.2 before 127.0.0.10) and
    # deduplicated; the comparison tolerates any order without re-sorting what is stored, since
    # a string sort would reorder them and detach them from their meanings.
    return a == b or sorted(a) == sorted(b)


def _agrees_with_belief(prev: PairState | None, obs: _Observation) -> bool:
    if prev is None:
        return obs.status is PairStatus.CLEAN
    if obs.status is not prev.status:
        return False
    return obs.status is PairStatus.CLEAN or _same_codes(obs.codes, prev.codes)


def _agrees_with_pending(prev: PairState, obs: _Observation) -> bool:
    if prev.pending is not obs.pending_kind:
        return False
    return obs.status is PairStatus.CLEAN or _same_codes(obs.codes, prev.pending_codes)


def _clear_pending(row: PairState) -> PairState:
    return dataclasses.replace(
        row,
        pending=None,
        pending_codes=(),
        pending_meanings=(),
        pending_count=0,
        pending_since=None,
    )


def _settle(prev: PairState | None, obs: _Observation) -> Decision:
    """The observation confirms what is believed: drop any pending change, never an event."""
    if prev is None:
        # Believed clean and seen clean; also the silent baseline of a new pair.
        return Decision(None, write=False, event=None, confirm=False)
    if obs.status is PairStatus.CLEAN:
        # A clean row exists only to carry a pending listing; with that gone, so is the row.
        return Decision(None, write=True, event=None, confirm=False)
    # Still listed with the same codes: keep the listing's `since`, refresh what may drift
    # (meanings after a config change, TXT text), keeping the old TXT when none was fetched.
    row = dataclasses.replace(
        _clear_pending(prev),
        meanings=obs.meanings,
        txt=obs.txt if obs.txt is not None else prev.txt,
    )
    return Decision(row, write=row != prev, event=None, confirm=False)


def _new_row(pair: _Pair) -> PairState:
    """The row of a pair that had none (believed clean), created at `pair.now`."""
    first_seen = pair.now if pair.first_lookup else pair.now - _EARLIER
    return PairState(
        target=pair.target,
        list=pair.list_name,
        group=pair.group,
        status=PairStatus.CLEAN,
        since=pair.now,
        first_seen=first_seen,
    )


def _is_baseline(row: PairState) -> bool:
    """Whether a clean row was created on the pair's first lookup and never confirmed clean.

    Such a row carries a listing seen on the first lookup that is still being confirmed; when
    it is confirmed the `listed` event is `initial`. It stays a baseline if the pending listing
    restarts with other codes; a clean observation deletes the row, and the next listing starts
    a row with first_seen < since (see `_EARLIER`).
    """
    return row.status is PairStatus.CLEAN and row.first_seen == row.since


def _pending_row(prev: PairState | None, obs: _Observation, count: int, pair: _Pair) -> PairState:
    base = prev if prev is not None else _new_row(pair)
    since = pair.now if count == 1 or base.pending_since is None else base.pending_since
    return dataclasses.replace(
        base,
        pending=obs.pending_kind,
        pending_codes=obs.codes,
        pending_meanings=obs.meanings,
        pending_count=count,
        pending_since=since,
    )


def _transition(prev: PairState | None, obs: _Observation, pair: _Pair) -> Decision:
    """The observation has been confirmed: change the belief and say so with one event."""
    if prev is None or prev.status is PairStatus.CLEAN:
        return _listed(prev, obs, pair)
    if obs.status is PairStatus.CLEAN:
        return _delisted(prev, pair)
    return _changed(prev, obs, pair)


def _listed(prev: PairState | None, obs: _Observation, pair: _Pair) -> Decision:
    base = prev if prev is not None else _new_row(pair)
    initial = _is_baseline(base)
    row = dataclasses.replace(
        _clear_pending(base),
        status=PairStatus.LISTED,
        since=pair.now,
        codes=obs.codes,
        meanings=obs.meanings,
        txt=obs.txt,
    )
    event = pair.event(EventKind.LISTED, obs, initial=initial)
    return Decision(row, write=True, event=event, confirm=False)


def _delisted(prev: PairState, pair: _Pair) -> Decision:
    # The event describes the listing that ended: its codes and when it began.
    event = pair.event(EventKind.DELISTED, prev, previous_codes=prev.codes, since=prev.since)
    return Decision(None, write=True, event=event, confirm=False)


def _changed(prev: PairState, obs: _Observation, pair: _Pair) -> Decision:
    """Codes changed while listed (e.g. SBL → XBL).

    The row keeps the listing's `since`: the pair has been listed all along, and "listed since"
    is what users ask about. The event's `since` is therefore when the listing began, not when
    the old codes were first seen (which is not stored).
    """
    row = dataclasses.replace(
        _clear_pending(prev),
        codes=obs.codes,
        meanings=obs.meanings,
        txt=obs.txt,
    )
    event = pair.event(EventKind.CHANGED, obs, previous_codes=prev.codes, since=prev.since)
    return Decision(row, write=True, event=event, confirm=False)


__all__ = ["Decision", "step"]
