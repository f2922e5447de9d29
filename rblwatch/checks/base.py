"""The check seam: the one shape every kind of check has.

A check kind looks up something about each target of a subject and decodes what comes back
into one `Outcome` per target, on the state machine's three states: the bad one (`listed`
for a DNS list; `fail` for a hygiene check), the good one (`clean` / `pass`) and `error`,
which never changes stored state. Everything after the outcomes — confirmation, transitions,
events, alerts, the store and the metrics — is the engine's and the same for every kind.

As in blackbox_exporter's prober package (one `ProbeFn` signature, one map of probers), a
new kind is one module implementing `CheckKind` and one entry in `checks.CHECK_KINDS`.
The seam is per subject and cycle, not per lookup: `run` gets all of a subject's targets at
once, so a kind keeps its own batched hot loop (the DNSBL kind's is one resolver run).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from rblwatch.config import Config, ResolverConfig
from rblwatch.health import Verdict
from rblwatch.inventory import Found, Inventory, Slice
from rblwatch.model import EventKind, Outcome, TargetKind
from rblwatch.resolver import Durations, Resolver

S_contra = TypeVar(
    "S_contra", contravariant=True
)  # what a kind checks targets against (DnsList for dnsbl)


@dataclass(frozen=True, slots=True)
class States:
    """A kind's tri-state outcome in its own words (for output and event names)."""

    bad: str  # OutcomeKind.LISTED (or ALLOWLISTED) in the state machine
    good: str  # OutcomeKind.CLEAN
    error: str = "error"  # OutcomeKind.ERROR, with a Reason
    # the kind's own names for the pair events (listed → check_failed, …); none: the DNSBL's
    events: Mapping[EventKind, EventKind] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckIO:
    """What a check kind may use for its lookups: the daemon's one resolver and its config
    (never a library's private resolver behind its back)."""

    resolver: Resolver
    config: ResolverConfig
    # the share of a subject's work this instance does (several instances split it): a
    # subject's rate limit (max_qps) is its share of the limit, so together they keep to it
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class Probed:
    """What a health probe found, and the queries it sent (they count against the budget)."""

    verdict: Verdict
    queries: int = 0
    rtt: float | None = None  # the probe's mean round trip, seconds (None: none answered)


@dataclass(slots=True)
class CheckRun:
    """What one run of a subject's targets found."""

    # by target value, every outcome that is not the good one: a target not in it was good
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    lookups: int = 0  # targets looked up
    errors: int = 0  # of which ended in error
    queries: int = 0  # queries sent, retries and `annotate`'s included (the budget counts them)
    # a run stopped at its `until`: `unchecked` targets were not answered by then, each an
    # error outcome of `Reason.DEADLINE` (in `outcomes` and `errors`); the others were
    cut: bool = False
    unchecked: int = 0


# the engine asks whether an outcome will make news (a new or changed bad state): only those
# get the kind's extra detail, since they are few and their events should carry it
IsNews = Callable[[str, Outcome], bool]


class CheckKind(Protocol[S_contra]):
    """One kind of check. Instances are made once per engine and may keep caches."""

    name: str  # its key in CHECK_KINDS (and, later, a metric label value)
    states: States
    # whether the subject has test points to probe before its answers are trusted (DNS
    # lists); a kind without them is always healthy and its DNS failures are each pair's error
    probes: bool

    def takes(self, subject: S_contra) -> tuple[TargetKind, ...]:
        """The kinds of target looked up for this subject, in the kind table's order."""
        ...

    def targets(self, cfg: Config, subject: S_contra, found: Found, inventory: Inventory) -> Slice:
        """The subject's targets among every configured one found now, with query labels."""
        ...

    async def probe(self, io: CheckIO, subject: S_contra) -> Probed:
        """Judge whether the subject's answers can be trusted now. A kind without a health
        probe returns `Probed(health.HEALTHY)` and sends nothing."""
        ...

    async def run(
        self,
        io: CheckIO,
        subject: S_contra,
        targets: Slice,
        durations: Durations,
        until: float | None = None,
    ) -> CheckRun:
        """Look up every target of `targets` (their query labels given) and decode each
        answer into one Outcome; `durations` collects the lookups' times for the metrics.

        At `until` (`time.monotonic()`), stop asking and return what was answered: the
        targets not answered then are `Reason.DEADLINE` errors and the run is `cut`. Its
        `queries` count every query sent all the same (the budget and the metrics need them).
        """
        ...

    async def annotate(self, io: CheckIO, subject: S_contra, run: CheckRun, news: IsNews) -> None:
        """Add detail to the outcomes that make news (the DNSBL kind fetches TXT), in place."""
        ...


__all__ = ["CheckIO", "CheckKind", "CheckRun", "IsNews", "Probed", "States"]
