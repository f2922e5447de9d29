"""The store: state per (target, list), the event history, list aggregates and the alert outbox.

One interface (`Store`) that SQLite implements now and PostgreSQL can later; no SQL leaves this
package. Methods are synchronous and short; the daemon calls them through `asyncio.to_thread`.

What is stored, and why so little: a pair that has always been clean has no row at all (a /16
would otherwise cost 65,536 writes a cycle). Rows exist for pairs that are listed, that were
ever listed, or whose change is awaiting confirmation. Which targets a list has already looked
at (so a new target's first outcome is a baseline) is kept in a separate `seen` set that grows
only when targets are added. Per-list aggregates (health, cycle times, counts) are one row per
list.

Every event is written in the same transaction as the state change that caused it and the
outbox rows for it (SPEC §4): a crash at any instant loses no event and duplicates none.
"""

from __future__ import annotations

import abc
import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rblwatch.model import EventKind, Health, OutcomeKind, PairStatus


@dataclass(frozen=True, slots=True)
class PairState:
    """What rblwatch believes about one (target, list) pair, and any change being confirmed."""

    target: str
    list: str
    group: str
    status: PairStatus
    since: float  # when `status` was confirmed (unix seconds)
    first_seen: float  # when the pair was first looked up
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: str | None = None
    # a different outcome seen `pending_count` times in a row, not yet confirmed
    pending: OutcomeKind | None = None
    pending_codes: tuple[str, ...] = ()
    pending_meanings: tuple[str, ...] = ()
    pending_count: int = 0
    pending_since: float | None = None


class PairSummary(NamedTuple):
    """The few fields of a pair that /metrics needs: read without decoding codes and TXT."""

    target: str
    list: str
    group: str
    status: PairStatus
    since: float


@dataclass(frozen=True, slots=True)
class Event:
    """One history row. `id` is assigned by the store; `target`/`group` are None for list events."""

    kind: EventKind
    list: str
    at: float
    target: str | None = None
    group: str | None = None
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    txt: str | None = None
    initial: bool = False
    previous_codes: tuple[str, ...] = ()
    since: float | None = None  # when the state this event ends began (delisted/changed)
    detail: str = ""  # for list events: why the list is unhealthy
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ListStatus:
    """The per-list aggregate row."""

    name: str
    health: Health = Health.UNKNOWN
    health_detail: str = ""
    health_since: float | None = None
    last_cycle_start: float | None = None
    last_cycle_end: float | None = None
    last_cycle_success: float | None = None  # end of the last cycle without lookup errors
    last_cycle_duration: float | None = None
    last_cycle_lookups: int = 0
    last_cycle_errors: int = 0
    targets: int = 0


@dataclass(slots=True)
class CycleCommit:
    """Everything one cycle (or confirmation round) of one list writes, in one transaction."""

    # `builtins.list` below: for mypy, the field `list` hides the builtin in the rest of the body
    list: str
    upserts: builtins.list[PairState] = field(default_factory=builtins.list)
    deletes: builtins.list[str] = field(default_factory=builtins.list)  # rows that go (to no row)
    seen: builtins.list[str] = field(default_factory=builtins.list)  # targets looked up first time
    events: builtins.list[Event] = field(default_factory=builtins.list)
    status: ListStatus | None = None
    budget_day: str | None = None  # "YYYY-MM-DD" (UTC) the queries below count against
    budget_queries: int = 0


# receivers (by name) that an event goes to; the store writes one outbox row for each
ReceiversFor = Callable[[Event], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: an event on its way to one receiver."""

    id: int
    event: Event
    receiver: str
    attempts: int
    next_attempt: float
    created: float


class Store(abc.ABC):
    """State, history, list aggregates, query budgets and the alert outbox."""

    # -- pairs and cycles -----------------------------------------------------------------------

    @abc.abstractmethod
    def pairs(self, list_name: str | None = None) -> list[PairState]:
        """Every stored pair (of one list, or all): listed, once listed, or pending."""

    @abc.abstractmethod
    def pair_summaries(self) -> list[PairSummary]:
        """(target, list, group, status, since) of every stored pair: the cheap read for
        /metrics, which must answer in milliseconds with tens of thousands of listings."""

    @abc.abstractmethod
    def seen(self, list_name: str) -> set[str]:
        """The targets this list has looked up at least once."""

    @abc.abstractmethod
    def commit(self, commit: CycleCommit, receivers_for: ReceiversFor | None = None) -> list[Event]:
        """Write a cycle's changes atomically; return its events with their ids."""

    @abc.abstractmethod
    def record_health(
        self,
        name: str,
        health: Health,
        detail: str,
        at: float,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
    ) -> Event | None:
        """Set a list's health (and write its list_unhealthy/list_recovered event) atomically."""

    # -- reading ----------------------------------------------------------------------------

    @abc.abstractmethod
    def list_statuses(self) -> list[ListStatus]:
        """The aggregate row of every list that has one."""

    @abc.abstractmethod
    def events(
        self,
        *,
        since: float | None = None,
        limit: int = 100,
        target: str | None = None,
        list_name: str | None = None,
        newest_first: bool = False,
    ) -> list[Event]:
        """History, oldest first, at most `limit` rows from `since` on (inclusive); with
        `newest_first`, the newest `limit` rows (from `since` on), newest first."""

    @abc.abstractmethod
    def listed_count(self) -> int:
        """How many pairs are listed now (cheap: for /metrics and the status page)."""

    # -- budgets ----------------------------------------------------------------------------

    @abc.abstractmethod
    def budget_used(self, list_name: str, day: str) -> int:
        """Queries sent to a list on a UTC day ("YYYY-MM-DD")."""

    # -- the alert outbox (filled with events; drained by the alert sender) -------------------

    @abc.abstractmethod
    def due_deliveries(self, receiver: str, now: float, limit: int = 100) -> list[Delivery]:
        """Undelivered rows of a receiver whose next attempt is due, oldest event first."""

    @abc.abstractmethod
    def delivery_done(self, delivery_id: int) -> None:
        """A delivery succeeded (or failed for good): it leaves the outbox."""

    @abc.abstractmethod
    def delivery_retry(self, delivery_id: int, next_attempt: float, error: str) -> None:
        """A delivery failed for now: try again at `next_attempt`."""

    @abc.abstractmethod
    def outbox_counts(self) -> dict[str, int]:
        """Undelivered rows per receiver."""

    # -- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None: ...


class StoreError(Exception):
    """The store cannot be opened or used (one line, for the user)."""


def open_store(url: str) -> Store:
    """The store for a `store.url` (sqlite:///… now; postgresql://… is not built yet)."""
    if url.startswith("sqlite:///"):
        from rblwatch.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    raise StoreError(
        f"store.url: {url.split(':', 1)[0]} stores are not supported yet (use sqlite:///PATH)"
    )


__all__ = [
    "CycleCommit",
    "Delivery",
    "Event",
    "ListStatus",
    "PairState",
    "PairSummary",
    "ReceiversFor",
    "Store",
    "StoreError",
    "open_store",
]
