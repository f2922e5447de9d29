"""The vocabulary of rblwatch: lists, targets, outcomes, reasons, health, and the records
(pair states, events, list aggregates, cycle commits, deliveries) that pure code decides and
the store keeps.

Everything else imports from here; this module imports nothing of rblwatch. The enums are
closed sets: their values are what users see in output and what metrics use as label values.
"""

from __future__ import annotations

import builtins
import enum
import ipaddress
import itertools
import socket
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
    DEADLINE = "deadline"  # not checked: the cycle reached its deadline first


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
    # a hygiene check's pair (`checks.hygiene`): the same transitions under its own words
    CHECK_FAILED = "check_failed"
    CHECK_PASSED = "check_passed"
    CHECK_CHANGED = "check_changed"  # failing still, for another reason
    # a returned message blamed one of the targets (`bouncewatch`): news, not a state; `list` is
    # the blocklist the bounce named ("" for none), `meanings` its cause, `detail` its diagnostic
    BOUNCE = "bounce"
    # the resolver every list without nameservers of its own is asked through stopped (or
    # started again) answering at all: one event for the outage, not one dead list per list
    RESOLVER_UNREACHABLE = "resolver_unreachable"
    RESOLVER_RECOVERED = "resolver_recovered"
    # an operator working a listing (`rblwatch ack`, the console): history, never a transition
    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"
    DELISTING_REQUESTED = "delisting_requested"
    NOTE = "note"  # a free-text note on a target (`list` is "")
    # a listing still open and not acknowledged, re-announced after a receiver's reminder
    # interval (`alerts.receivers[].repeat_interval`)
    REMINDER = "reminder"


# Events that are news about a pair, not a change of its state: never the head of the pair's
# chain of transitions (`Store.chain_heads`), so a transition's `after` key ignores them.
UNCHAINED_KINDS = frozenset(
    {
        EventKind.BOUNCE,
        EventKind.ACKNOWLEDGED,
        EventKind.UNACKNOWLEDGED,
        EventKind.DELISTING_REQUESTED,
        EventKind.NOTE,
        EventKind.REMINDER,
    }
)


# the hygiene checks (`rblwatch.hygiene`): each is a subject under its name, so no list takes one
HYGIENE_CHECKS = ("fcrdns", "spf", "dkim", "dmarc", "mta-sts", "tls-rpt")


def hygiene_key(check: str, target: str, ip: str | None = None, selector: str | None = None) -> str:
    """A hygiene pair's target as the store keeps it: `example.com 192.0.2.10` for SPF
    (domain, then IP: a space is in neither), the record name `s1._domainkey.example.com`
    for DKIM, the IP for fcrdns, the domain otherwise."""
    if check == "spf" and ip is not None:
        return f"{target} {ip}"
    if check == "dkim" and selector is not None:
        return f"{selector}._domainkey.{target}"
    return target


def hygiene_parts(check: str, key: str) -> tuple[str, str | None, str | None]:
    """(target, ip, selector) of a stored hygiene pair's key: `hygiene_key` undone."""
    if check == "spf" and " " in key:
        domain, ip = key.split(" ", 1)
        return domain, ip, None
    if check == "dkim" and "._domainkey." in key:
        selector, domain = key.split("._domainkey.", 1)
        return domain, None, selector
    if check == "fcrdns":
        return key, key, None
    return key, None, None


# a hygiene check's word for each pair transition, and back
CHECK_EVENTS: Mapping[EventKind, EventKind] = MappingProxyType(
    {
        EventKind.LISTED: EventKind.CHECK_FAILED,
        EventKind.DELISTED: EventKind.CHECK_PASSED,
        EventKind.CHANGED: EventKind.CHECK_CHANGED,
    }
)
_PAIR_EVENTS = {v: k for k, v in CHECK_EVENTS.items()}


def transition_of(kind: EventKind) -> EventKind:
    """The transition an event stands for, in the DNSBL words (listed, delisted, changed):
    what alert formats and routing switch on, whatever kind of check raised it."""
    return _PAIR_EVENTS.get(kind, kind)


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
        return TARGET_KINDS[target_kind].taken_by(self)


@dataclass(frozen=True, slots=True)
class HygieneSubject:
    """One hygiene check (`spf`, `fcrdns`, …) as the scheduler and the engine run it: every
    configured group's pairs of that check, under the check's name (which no list may take).

    Beside a `DnsList` it has the few fields a subject is scheduled, budgeted and routed by;
    what it checks is in the target groups' `hygiene:` sections (`checks.hygiene`)."""

    name: str
    interval: float | None = None
    jitter: float | None = None
    max_qps: float | None = None
    daily_query_limit: int | None = None
    purpose: Purpose = Purpose.BLOCK
    health_check: bool = False  # no test points: a DNS failure is each pair's `error`
    delist_url: str | None = None
    description: str = ""


# anything the daemon runs cycles of
Subject = DnsList | HygieneSubject


# -- target kinds: one entry per TargetKind ------------------------------------------------------
#
# Everything rblwatch knows about a kind of target that is not parsing user text (that is
# `targets.py`): which lists take it, its query labels, its RFC 5782 test points and its place in
# sorted output. A new kind is a TargetKind member, an entry in TARGET_KINDS and its parser.

# One wire label per decimal octet ("10" -> b"\x0210"), built once: the IPv4 hot path is four
# dictionary hits and a join.
_OCTET_LABEL: dict[str, bytes] = {
    str(i): bytes([len(str(i))]) + str(i).encode() for i in range(256)
}
_NIBBLE_LABEL: dict[str, bytes] = {c: b"\x01" + c.encode() for c in "0123456789abcdef"}


def ipv4_prefix_wire(value: str) -> bytes:
    """Wire labels of a reversed IPv4 address ("10.20.1.2" -> 2.1.20.10 as labels)."""
    a, b, c, d = value.split(".")
    t = _OCTET_LABEL
    return t[d] + t[c] + t[b] + t[a]


def _ipv6_nibbles(value: str) -> str:
    return ipaddress.IPv6Address(value).exploded.replace(":", "")[::-1]


def _ipv6_prefix_wire(value: str) -> bytes:
    t = _NIBBLE_LABEL
    return b"".join(t[c] for c in _ipv6_nibbles(value))


def _domain_labels(value: str) -> list[str]:
    return value.rstrip(".").lower().split(".")  # RFC 5782 §3: a name is not reversed


def _domain_prefix_wire(value: str) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in (s.encode("ascii") for s in _domain_labels(value)))


def _address_number(family: int) -> Callable[[str], tuple[int, str]]:
    # inet_pton rather than ipaddress: ten times faster, and a /16 scan sorts thousands
    pton = socket.inet_pton

    def key(value: str) -> tuple[int, str]:
        return int.from_bytes(pton(family, value), "big"), ""

    return key


def _by_name(value: str) -> tuple[int, str]:
    return 0, value


@dataclass(frozen=True, slots=True)
class TargetKindInfo:
    """One kind of target as lookups, health probes and output see it."""

    kind: TargetKind
    list_kind: Kind  # the kind of list that may take it ...
    taken_by: Callable[[DnsList], bool]  # ... and whether a given list of that kind does
    # the labels put in front of a list's zone (RFC 5782 §2.1, §2.4, §3), as text and as wire
    labels: Callable[[str], list[str]]
    wire: Callable[[str], bytes]
    # RFC 5782 §5 test points a list taking this kind answers listed and clean
    test_listed: tuple[str, ...]
    test_clean: tuple[str, ...]
    # whether a value (a test point written in a list's config) is of this kind; the first
    # entry of the list's kind that says so is the kind it is asked as
    looks: Callable[[str], bool]
    # a value's place among values of this kind; kinds sort in the order of the table
    sort_key: Callable[[str], tuple[int, str]]
    ip_version: int | None = None  # 4 or 6 for address kinds


def _is_ip_list(lst: DnsList) -> bool:
    return lst.kind is Kind.IP


def _is_ipv6_list(lst: DnsList) -> bool:
    return lst.kind is Kind.IP and lst.ipv6


def _is_domain_list(lst: DnsList) -> bool:
    return lst.kind is Kind.DOMAIN


# in the order people read results: IPv4 by address, IPv6 by address, domains
TARGET_KINDS: Mapping[TargetKind, TargetKindInfo] = MappingProxyType(
    {
        info.kind: info
        for info in (
            TargetKindInfo(
                TargetKind.IPV4,
                Kind.IP,
                _is_ip_list,
                lambda v: v.split(".")[::-1],
                ipv4_prefix_wire,
                ("127.0.0.2",),
                ("127.0.0.1",),
                lambda v: ":" not in v,
                _address_number(socket.AF_INET),
                ip_version=4,
            ),
            TargetKindInfo(
                TargetKind.IPV6,
                Kind.IP,
                _is_ipv6_list,
                lambda v: list(_ipv6_nibbles(v)),
                _ipv6_prefix_wire,
                ("::ffff:7f00:2",),
                ("::ffff:7f00:1",),
                lambda v: ":" in v,
                _address_number(socket.AF_INET6),
                ip_version=6,
            ),
            TargetKindInfo(
                TargetKind.DOMAIN,
                Kind.DOMAIN,
                _is_domain_list,
                _domain_labels,
                _domain_prefix_wire,
                ("test",),
                ("invalid",),
                lambda v: True,
                _by_name,
            ),
        )
    }
)
# a kind's rank in sorted output: its position in the table
KIND_RANK: Mapping[TargetKind, int] = MappingProxyType({k: i for i, k in enumerate(TARGET_KINDS)})


def kind_of_value(value: str, list_kind: Kind) -> TargetKind:
    """The kind a value is asked as on a list of `list_kind` (for test points and addresses)."""
    mine = [info for info in TARGET_KINDS.values() if info.list_kind is list_kind]
    return next((i.kind for i in mine if i.looks(value)), mine[0].kind)


def kinds_taken(lst: DnsList) -> tuple[TargetKind, ...]:
    """The kinds of target a list is asked about, in the table's order."""
    return tuple(k for k, info in TARGET_KINDS.items() if info.taken_by(lst))


class Target(NamedTuple):
    """One address or domain to look up. `value` is canonical (compressed IPv6, A-label domain).

    A named tuple rather than a frozen dataclass: a /16 makes 65,536 of them, and a frozen
    dataclass's __init__ costs several times a tuple's.
    """

    value: str
    kind: TargetKind
    group: str = ""
    source: str = ""  # what the user wrote (e.g. the CIDR or hostname), for messages


def a_label(label: str) -> str:
    """One DNS label in its A-label (ASCII) form; ValueError, with the reason, if it has none.

    IDNA 2008 with the UTS 46 mapping that browsers apply to what users type: "faß" is
    xn--fa-hia, where Python's own IDNA 2003 codec maps it to "fass", another domain. The one
    conversion for targets, hostnames and zones alike, so what the daemon asks about, what
    `check` asks about and what `history --target` looks for are the same name.
    """
    if label.isascii():
        if label.startswith("xn--"):
            try:
                label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                raise ValueError(f"label {label!r} is not valid punycode") from None
        return label
    import idna  # its tables only for a name that needs them: most are ASCII

    try:
        return idna.encode(label, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"label {label!r} cannot be converted with IDNA ({why})") from None


def hostname_of(target: Target) -> str | None:
    """The name an address target was found through (a `hostnames:` entry, `check NAME`).

    A target's `source` is what the user wrote: the address itself, its network, or, for an
    address found by resolving a name, that name. Domains have no hostname: they are names.
    """
    source = target.source
    if not source or source == target.value or target.kind is TargetKind.DOMAIN:
        return None
    if "/" in source:
        return None  # a network: the bulk of a big check's results, told apart at once
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, source)  # an address written another way (2001:DB8::1)
        except OSError:
            continue
        return None
    return source


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
    # the `hostnames:` entry the target address was found through (alerts name it), if any
    hostname: str | None = None
    id: int | None = None
    # the id of the pair's previous event (0: its first) as the decider read it: one
    # successor per event, so one transition is never stored twice (None: no such key)
    after: int | None = None
    # the pair's acknowledgement when the event was written (alerts carry it), if any
    ack: Ack | None = None


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
    # why the last cycle sent no lookups or used none of its answers (a `Reason` value, or
    # "resolver_unreachable"); None: it ran
    last_cycle_skipped: str | None = None


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
    budget_queries: int = 0  # added to the day's count (negative: a reservation's excess)
    # pairs whose lookup ended `error` (upserted; target "" is the whole list's row, written
    # when most of a full cycle failed: `commitplan`), and targets whose error row goes
    errors: builtins.list[PairError] = field(default_factory=builtins.list)
    cleared: builtins.list[str] = field(default_factory=builtins.list)


@dataclass(frozen=True, slots=True)
class Ack:
    """An operator's acknowledgement of a (target, list) listing, and whether delisting was
    requested. Kept until it expires (`until`) or the listing ends: a pair listed again after a
    delisting starts without one."""

    target: str
    list: str
    by: str  # who acknowledged (the basic-auth user, or the CLI's --by / login name)
    at: float
    note: str = ""
    until: float | None = None  # None: until the listing ends
    delisting_requested_at: float | None = None
    delisting_note: str = ""

    def active(self, now: float) -> bool:
        """Whether it still silences reminders and counts as acknowledged."""
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class Note:
    """A free-text note on a target (not tied to a list)."""

    target: str
    by: str
    at: float
    text: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PairError:
    """A pair whose last lookup ended `error`: what went wrong and when, and when it last had a
    good (listed or clean) answer (None: never). A pair without one answered at its list's last
    cycle. What we believe about the pair (`PairState`) is never changed by it."""

    target: str
    list: str
    reason: Reason
    at: float
    detail: str = ""
    last_good_at: float | None = None


@dataclass(frozen=True, slots=True)
class ResolverState:
    """Whether the resolver answers at all (issue 11): "ok" or "unreachable", since when, why."""

    state: str = "ok"  # "ok" | "unreachable"
    since: float | None = None
    detail: str = ""

    @property
    def reachable(self) -> bool:
        return self.state != "unreachable"


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
    held_by: str | None = None  # the instance sending it now (until `held_until`)
    held_until: float | None = None
