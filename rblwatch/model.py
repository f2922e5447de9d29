"""The vocabulary of rblwatch: lists, targets, outcomes, reasons, health, and the records
(pair states, events, list aggregates, cycle commits, deliveries) that pure code decides and
the store keeps.

Everything else imports from here; this module imports nothing of rblwatch. The enums are
closed sets: their values are what users see in output and what metrics use as label values.
"""

from __future__ import annotations

import builtins
import enum
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple


class Kind(enum.StrEnum):
    """What a list holds: IP addresses or domain names."""

    IP = "ip"
    DOMAIN = "domain"


class Purpose(enum.StrEnum):
    """A blocklist reports problems; an allow-list reports good standing (never alerted)."""

    BLOCK = "block"
    ALLOW = "allow"


class Status(enum.StrEnum):
    """Whether a catalogue list is in service."""

    ACTIVE = "active"
    UNCLEAR = "unclear"
    DEFUNCT = "defunct"


class OutcomeKind(enum.StrEnum):
    """The one result of a (target, list) lookup (SPEC §2)."""

    LISTED = "listed"
    CLEAN = "clean"
    ERROR = "error"
    ALLOWLISTED = "allowlisted"


class Reason(enum.StrEnum):
    """Why a lookup ended in `error` (closed set; also metric label values)."""

    TIMEOUT = "timeout"
    SERVFAIL = "servfail"
    REFUSED = "refused"
    BAD_ANSWER = "bad_answer"
    BLOCKED = "blocked"
    RATE_LIMITED = "rate_limited"
    LIST_UNHEALTHY = "list_unhealthy"
    BUDGET_EXHAUSTED = "budget_exhausted"
    NETWORK = "network"


class Health(enum.StrEnum):
    """A list's state from its RFC 5782 test points (SPEC §3)."""

    UNKNOWN = "unknown"  # not probed yet
    HEALTHY = "healthy"
    DEAD = "dead"
    LISTS_EVERYTHING = "lists_everything"
    BLOCKED = "blocked"


class EventKind(enum.StrEnum):
    """What can happen to a (target, list) pair or a list (SPEC §4)."""

    LISTED = "listed"
    DELISTED = "delisted"
    CHANGED = "changed"  # codes changed while listed
    LIST_UNHEALTHY = "list_unhealthy"
    LIST_RECOVERED = "list_recovered"


class PairStatus(enum.StrEnum):
    """What rblwatch believes about a (target, list) pair."""

    CLEAN = "clean"
    LISTED = "listed"


class TargetKind(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    DOMAIN = "domain"


_EMPTY: Mapping[str, str] = MappingProxyType({})


class Nameserver(NamedTuple):
    """A DNS server to ask: an IP address in canonical form and a port (parsed at config time).

    A tuple, so it unpacks as `host, port` wherever a server pair is expected.
    """

    host: str
    port: int = 53


def frozen_map(items: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy of a mapping, so frozen dataclasses stay immutable all the way down."""
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True, slots=True)
class DnsList:
    """One DNS list as rblwatch uses it: catalogue facts merged with the user's overrides.

    `codes` maps exact answers ("127.0.0.2") to meanings. `bits` maps bit values of the last
    octet (SURBL/URIBL style) to meanings. `errors` maps answers that mean "the list refused
    us" to a reason (`blocked` or `rate_limited`); `error_bits` does the same for bitmask lists
    (SURBL bit 1). With neither `codes` nor `bits`, any 127/8 answer that is not an error is a
    listing (RFC 5782 §2.3).
    """

    name: str
    zone: str = field(repr=False)  # may hold an access key (Spamhaus DQS, Abusix)
    kind: Kind = Kind.IP
    ipv6: bool = False
    purpose: Purpose = Purpose.BLOCK
    codes: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    bits: Mapping[int, str] = field(default_factory=dict)
    errors: Mapping[str, Reason] = field(default_factory=dict)
    error_bits: Mapping[int, Reason] = field(default_factory=dict)
    description: str = ""
    delist_url: str | None = None
    access: str = ""
    status: Status = Status.ACTIVE
    status_since: str | None = None
    status_reason: str = ""
    # RFC 5782 §5 test points; None = the standard ones for the kind, () for a side = skip it
    test_listed: tuple[str, ...] | None = None
    test_clean: tuple[str, ...] | None = None
    health_check: bool = True
    nameservers: tuple[Nameserver, ...] = ()  # () = the resolver's
    interval: float | None = None
    jitter: float | None = None
    max_qps: float | None = None
    daily_query_limit: int | None = None
    # the zone as it may be shown: secret parts (from ${VAR} or *_file) masked as ***
    display_zone: str | None = None

    @property
    def shown_zone(self) -> str:
        return self.display_zone if self.display_zone is not None else self.zone

    def checks(self, target_kind: TargetKind) -> bool:
        """Whether a target of this kind is looked up on this list (SPEC §6)."""
        if target_kind is TargetKind.DOMAIN:
            return self.kind is Kind.DOMAIN
        if self.kind is not Kind.IP:
            return False
        return target_kind is TargetKind.IPV4 or self.ipv6


class Target(NamedTuple):
    """One address or domain to look up. `value` is canonical (compressed IPv6, A-label domain).

    A named tuple rather than a frozen dataclass: a /16 makes 65,536 of them, and a frozen
    dataclass's __init__ costs several times a tuple's.
    """

    value: str
    kind: TargetKind
    group: str = ""
    source: str = ""  # what the user wrote (e.g. the CIDR or hostname), for messages


def make_targets(values: Sequence[str], kind: TargetKind, group: str = "") -> list[Target]:
    """Targets of canonical values, each its own source, without a Python call per target.

    `tuple.__new__` over zipped fields is what `Target._make` does, less that call: about
    half the time of building a /16's targets one by one.
    """
    r = itertools.repeat
    fields = zip(values, r(kind), r(group), values, strict=False)
    return list(map(tuple.__new__, r(Target), fields))


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one lookup. `reason` is set exactly when `kind` is ERROR."""

    kind: OutcomeKind
    codes: tuple[str, ...] = ()
    meanings: tuple[str, ...] = ()
    reason: Reason | None = None
    txt: str | None = None
    ttl: int | None = None
    detail: str = ""  # human detail for errors (e.g. the odd answer seen)

    @property
    def is_error(self) -> bool:
        return self.kind is OutcomeKind.ERROR


CLEAN = Outcome(OutcomeKind.CLEAN)


def error(reason: Reason, detail: str = "") -> Outcome:
    return Outcome(OutcomeKind.ERROR, reason=reason, detail=detail)


# -- records: what pure code decides and the store keeps ----------------------------------------


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
