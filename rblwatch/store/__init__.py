"""The store: state per (target, list), the event history, list aggregates and the alert outbox.

One interface (`Store`) that SQLite and PostgreSQL implement; no SQL leaves this
package, and `open_store` is the one place that maps a `store.url` to an implementation
(`SCHEMES`). Every implementation passes the same contract suite (`tests/store_contract.py`).
Methods are synchronous and short; code on the event loop calls them through the one facade in
`store.aio`. The records it reads and writes are the vocabulary's (`model`).

What is stored, and why so little: a pair that has always been clean has no row at all (a /16
would otherwise cost 65,536 writes a cycle). Rows exist for pairs that are listed, that were
ever listed, or whose change is awaiting confirmation. Which targets a list has already looked
at (so a new target's first outcome is a baseline) is kept in a separate `seen` set that grows
only when targets are added. Per-list aggregates (health, cycle times, counts) are one row per
list. A pair's last outcome is kept the same way: only pairs whose last lookup ended `error`
have a row there (`pair_errors`); every other pair answered at its list's last cycle.

Every event is written in the same transaction as the state change that caused it and the
outbox rows for it (SPEC §4): a crash at any instant loses no event and duplicates none.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from rblwatch.cluster import SHARDS, Fence, Instance, View
from rblwatch.model import (
    Ack,
    CycleCommit,
    Delivery,
    Event,
    Health,
    ListStatus,
    Note,
    PairError,
    PairState,
    PairSummary,
    ReceiversFor,
    ResolverState,
)

if TYPE_CHECKING:
    from rblwatch.store.transfer import Tables


class Store(abc.ABC):
    """State, history, list aggregates, query budgets and the alert outbox."""

    # -- pairs and cycles -----------------------------------------------------------------------

    @abc.abstractmethod
    def pairs(self, list_name: str | None = None) -> list[PairState]:
        """Every stored pair (of one list, or all): listed, once listed, or pending."""

    @abc.abstractmethod
    def listings(
        self,
        lists: Collection[str],
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[PairState]:
        """The listed pairs of `lists`, by target then list (in byte order, as Python sorts
        strings), from just after `after` (target, list), at most `limit`: one page of the
        status's listings, read as such (no more rows decoded than the page shows)."""

    def pairs_of(self, list_name: str, targets: Collection[str]) -> list[PairState]:
        """The stored pairs of `list_name` among `targets` (in no order): the rows one page
        of the pairs view shows, read as such. A store overrides this with a keyed read."""
        wanted = set(targets)
        return [p for p in self.pairs(list_name) if p.target in wanted] if wanted else []

    @abc.abstractmethod
    def pair_summaries(self) -> list[PairSummary]:
        """(target, list, group, status, since) of every stored pair: the cheap read for
        /metrics, which must answer in milliseconds with tens of thousands of listings."""

    @abc.abstractmethod
    def pair_errors(
        self, list_name: str | None = None, target: str | None = None
    ) -> list[PairError]:
        """The pairs whose last lookup ended `error` (of one list, one target, or all), by
        list then target. Target "" is a whole list's row: most of its last cycle failed."""

    @abc.abstractmethod
    def seen(self, list_name: str) -> set[str]:
        """The targets this list has looked up at least once."""

    @abc.abstractmethod
    def commit(
        self,
        commit: CycleCommit,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> list[Event]:
        """Write a cycle's changes atomically; return its events with their ids.

        With a `fence`, nothing is written unless the fence's leases are all still held by its
        owner under the same epochs (then the shards' last cycle is set to now): `Fenced`
        otherwise. An event whose `after` key (the pair's previous event) already has a
        successor is a transition stored already: `Fenced` too, and nothing written.

        An event of a pair with an ack active at the event's time carries it (`Event.ack`,
        stored with the event), and an event that ends a listing (`delisted`,
        `check_passed`) deletes the pair's ack: a later listing starts without one."""

    @abc.abstractmethod
    def chain_heads(self, list_name: str, targets: Collection[str]) -> dict[str, int]:
        """The id of the latest event of each of these targets on a list (absent: none)."""

    @abc.abstractmethod
    def record_health(
        self,
        name: str,
        health: Health,
        detail: str,
        at: float,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        """Set a list's health (and write its list_unhealthy/list_recovered event) atomically.

        With a `fence` whose `leader` is set, `Fenced` unless its owner holds the leader's
        lease. The event is written only if the stored health really crosses between healthy
        and not (read in the transaction): two probes deciding from one old health raise one.

        A `list_recovered` event without `since` is stored with the time the list's previous
        (unhealthy) health began, read in the same transaction: the resolved alert of a
        recovery must say when the trouble started, and only the store knows it then."""

    @abc.abstractmethod
    def resolver_state(self) -> ResolverState:
        """Whether the resolver answers, as last recorded (never recorded: ok, since None)."""

    @abc.abstractmethod
    def record_resolver(
        self,
        state: ResolverState,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        """Set the resolver's state (and write its resolver_unreachable/resolver_recovered
        event with its outbox rows) atomically, fenced by the leader's lease like
        `record_health`. The event is written only if the stored state really crosses
        (read in the transaction); the stored `since` is kept while the state stays, and a
        `resolver_recovered` without `since` is stored with the time the outage began."""

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
    def reminders_sent(self) -> list[tuple[str, str, str, float]]:
        """(target, list, detail, at) of the latest `reminder` event of each pair and detail
        (the detail names the receivers it went to; see `rblwatch.reminders`). A full read of
        the history: the reminder sweep reads it once when it starts leading."""

    @abc.abstractmethod
    def listed_count(self) -> int:
        """How many pairs are listed now (cheap: for /metrics and the status page)."""

    # -- working a listing (`store.acks`): the operator's actions, each with its event -------

    @abc.abstractmethod
    def set_ack(self, ack: Ack) -> Event:
        """Acknowledge a listed pair (replacing its ack, keeping a delisting request made) and
        write its `acknowledged` event, without outbox rows; `Refused` if it is not listed."""

    @abc.abstractmethod
    def clear_ack(self, target: str, list_name: str, by: str, at: float) -> Event | None:
        """Remove a pair's ack and write its `unacknowledged` event; None if it had none."""

    @abc.abstractmethod
    def request_delisting(
        self, target: str, list_name: str, by: str, note: str, at: float
    ) -> Event:
        """Mark a listed pair "delisting requested" (acknowledging it if no ack is active) and
        write its `delisting_requested` event; `Refused` if it is not listed."""

    @abc.abstractmethod
    def acks(self, list_name: str | None = None, target: str | None = None) -> list[Ack]:
        """The stored acks (of one list, one target), expired ones too, by target then list."""

    @abc.abstractmethod
    def add_note(self, note: Note) -> Note:
        """Store a note on a target (with its `note` event); it with its id. `Refused` for a
        target rblwatch has never looked up."""

    @abc.abstractmethod
    def notes(self, target: str) -> list[Note]:
        """A target's notes, oldest first."""

    # -- budgets ----------------------------------------------------------------------------

    @abc.abstractmethod
    def budget_used(self, list_name: str, day: str) -> int:
        """Queries sent to a list on a UTC day ("YYYY-MM-DD")."""

    @abc.abstractmethod
    def reserve_budget(self, list_name: str, day: str, queries: int, limit: int) -> bool:
        """Count `queries` against the day's budget now, atomically, if they fit in `limit`
        (False, and nothing counted, if not): several instances never spend one budget
        twice. The cycle's commit then counts the difference to what it really sent."""

    # -- the alert outbox (filled with events; drained by the alert sender) -------------------

    @abc.abstractmethod
    def due_deliveries(self, receiver: str, now: float, limit: int = 100) -> list[Delivery]:
        """Undelivered rows of a receiver whose next attempt is due, oldest event first."""

    def claim_delivery(self, receiver: str, owner: str, now: float, hold: float) -> Delivery | None:
        """The receiver's oldest row, held for `owner` for `hold` seconds if it is due and no
        other sender holds it (then `held_by` is `owner`); returned as it is otherwise (a
        sender waits for its `next_attempt`, or for another's hold to end). One sender at a
        time per row, and per receiver: a row is never handed out while an older one waits.
        A batch of one (`claim_deliveries`), in every store."""
        got = self.claim_deliveries(receiver, owner, now, hold)
        return got[0] if got else None

    @abc.abstractmethod
    def claim_deliveries(
        self,
        receiver: str,
        owner: str,
        now: float,
        hold: float,
        limit: int = 1,
        group_wait: float = 0.0,
    ) -> list[Delivery]:
        """Up to `limit` of the receiver's oldest rows, held for `owner` for `hold` seconds, to
        be sent as one message: the head, if it is due, held by no other sender and at least
        `group_wait` old (from its `created`), and the rows right behind it while each is due
        and held by no other. Otherwise `[head]` as it is (not held for `owner`: a sender
        waits for its `next_attempt`, its `created + group_wait`, or another's hold to end),
        and `[]` with no rows. The rules of `claim_delivery` hold: one sender at a time per
        row and per receiver, and no row is handed out while an older one waits. With `limit`
        1 and `group_wait` 0 it is `claim_delivery`."""

    @abc.abstractmethod
    def deliveries_done(self, delivery_ids: Collection[int]) -> None:
        """A batch was delivered (or failed for good): all its rows leave the outbox at once."""

    @abc.abstractmethod
    def deliveries_retry(
        self, delivery_ids: Collection[int], next_attempt: float, error: str
    ) -> None:
        """A batch failed for now: each of its rows counts the attempt, and all of them are
        tried again together at `next_attempt`."""

    @abc.abstractmethod
    def delivery_done(self, delivery_id: int) -> None:
        """A delivery succeeded (or failed for good): it leaves the outbox."""

    @abc.abstractmethod
    def delivery_retry(self, delivery_id: int, next_attempt: float, error: str) -> None:
        """A delivery failed for now: try again at `next_attempt`."""

    @abc.abstractmethod
    def outbox_counts(self) -> dict[str, int]:
        """Undelivered rows per receiver."""

    # -- several instances (see `rblwatch.cluster`) ---------------------------------------------

    @abc.abstractmethod
    def tick(self, me: Instance, lists: Sequence[str], lease: float, shards: int = SHARDS) -> View:
        """Heartbeat: renew `me` and its leases, release shards above its fair share, claim
        free or expired ones up to it, take or renew the leader's lease; one transaction."""

    @abc.abstractmethod
    def instances(self) -> list[Instance]:
        """The instances that have a heartbeat row, with the leases each holds."""

    @abc.abstractmethod
    def leave(self, owner: str) -> None:
        """A clean stop: give up every lease of `owner` (others take them at once) and its
        senders' holds on outbox rows (abandoned mid-request, they go out again at once)."""

    def outbox_waiter(self) -> Callable[[float], bool] | None:
        """A function that blocks up to its argument in seconds for another instance's
        commit of outbox rows (True: one came), for a store that can tell; None here."""
        return None

    # -- lifecycle ---------------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- moving a store's contents (`store.transfer` only) -------------------------------------

    def _tables(self, *, write: bool) -> contextlib.AbstractContextManager[Tables]:
        """The raw data tables inside one transaction of this store's, for `store.transfer`
        (`rblwatch store migrate`) alone: a consistent snapshot to read, or with `write` one
        transaction, committed when the block ends and rolled back if it raises.

        Not abstract: it has no place in the daemon's interface (nor a twin in `store.aio`),
        and a store without it is simply one that cannot be migrated from or to."""
        raise StoreError(f"store migrate: a {type(self).__name__} cannot be copied")


class StoreError(Exception):
    """The store cannot be opened or used (one line, for the user)."""


class Fenced(StoreError):
    """A commit refused: a lease it needed is no longer held (another instance took the
    shard), or its transition was stored already. Nothing was written."""

    def __init__(self, message: str, lost: Collection[int] = ()) -> None:
        super().__init__(message)
        # the fence's shards no longer held (none: refused for another reason); the rest of
        # the commit, without their rows, may be written under the shards still held
        self.lost = frozenset(lost)


class Refused(StoreError):
    """An operator's action the store refuses as it stands (an ack of a pair that is not
    listed, a note on a target never looked up): one line, HTTP 409 or exit 2."""


class StoreUnavailable(StoreError):
    """A `store.url` whose scheme names no store this rblwatch has."""


@dataclass(frozen=True, slots=True)
class _Scheme:
    prefix: str  # what every URL of the scheme starts with, followed by something
    form: str  # how a URL of the scheme looks, for messages
    open: Callable[[str], Store]


def _open_sqlite(url: str) -> Store:
    from rblwatch.store.sqlite import SqliteStore  # here: a store's driver loads only if used

    return SqliteStore(url.removeprefix("sqlite:///"))


def _open_postgres(url: str) -> Store:
    from rblwatch.store.postgres import PostgresStore  # psycopg loads only for such a URL

    return PostgresStore(url)  # a libpq conninfo URL, passed on as it is


_PG_FORM = "postgresql://USER@HOST/DB"

# The one map from a `store.url` scheme to its implementation: a new store is a module of this
# package and one entry here. `postgres://` is libpq's own alias of `postgresql://`.
_SCHEMES: Mapping[str, _Scheme] = MappingProxyType(
    {
        "sqlite": _Scheme("sqlite:///", "sqlite:///PATH", _open_sqlite),
        "postgresql": _Scheme("postgresql://", _PG_FORM, _open_postgres),
        "postgres": _Scheme("postgres://", _PG_FORM, _open_postgres),
    }
)

SCHEMES: tuple[str, ...] = tuple(_SCHEMES)  # the `store.url` schemes `open_store` opens


def _scheme_of(url: str) -> _Scheme:
    name, sep, _ = url.partition("://")
    use = " or ".join(dict.fromkeys(s.form for s in _SCHEMES.values()))
    if not sep or not name:
        raise StoreUnavailable(f"store.url: not a store URL (use {use})")
    scheme = _SCHEMES.get(name)
    if scheme is None:
        raise StoreUnavailable(
            f"store.url: {name} stores are not available in this rblwatch (use {use})"
        )
    if not url.startswith(scheme.prefix) or len(url) == len(scheme.prefix):
        raise StoreError(f"store.url: a {name} URL is {scheme.form}")
    return scheme


def check_url(url: str) -> None:
    """Raise StoreError unless `open_store` can open `url` by its form (no I/O). The config
    (which cannot import this package) keeps its own `STORE_SCHEMES`; the contract suite
    checks that the two accept exactly the same URLs."""
    _scheme_of(url)


def open_store(url: str) -> Store:
    """The store for a `store.url`: the implementation its scheme names, opened."""
    return _scheme_of(url).open(url)


__all__ = [
    "SCHEMES",
    "Fenced",
    "Refused",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "check_url",
    "open_store",
]
