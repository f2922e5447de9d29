"""What the parts of a running daemon share: the current config, the store, the counters.

The daemon owns one `Runtime`; the scheduler's cycles write through it, the web listener and
the metrics collector only read it. A reload swaps `config` (and `version`) in one assignment,
so a reader sees either the old or the new configuration, never half of each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from rblwatch.cluster import Instance, View
from rblwatch.config import Config
from rblwatch.inventory import Found
from rblwatch.model import ResolverState
from rblwatch.stats import Stats
from rblwatch.store import Store
from rblwatch.store.aio import AsyncStore


@dataclass(frozen=True, slots=True)
class ReloadResult:
    ok: bool
    message: str  # one line: what changed, or why the new config was refused


@dataclass(slots=True)
class Runtime:
    config: Config
    store: Store
    stats: Stats = field(default_factory=Stats)
    # targets per group after expansion (hostnames resolved), from the last cycle
    targets_per_group: dict[str, int] = field(default_factory=dict)
    # every target of the last cycle (the pairs view enumerates the clean pairs from it)
    found: Found | None = None
    found_for: Config | None = None  # the config `found` was made from (a reload since?)
    # per list, the target values its last committed full cycle over every shard looked up
    # (that cycle's own set, not a copy): the pairs view shows the others as never checked
    covered: dict[str, AbstractSet[str]] = field(default_factory=dict)
    # hostnames the last resolution failed on (group, hostname, reason), from the last cycle
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)
    # the resolver's state as this instance last knew it (`resolverstate`), for /-/ready
    resolver: ResolverState = field(default_factory=ResolverState)
    ready: bool = False  # config, store and listener are up (SPEC §13: READY=1)
    store_ok: bool = True  # the store answered the last heartbeat (`rblwatch.peers`)
    stopping: bool = False
    version: str = ""
    # set by the daemon: validate and swap the config (SIGHUP and POST /-/reload share it)
    reload: Callable[[], Awaitable[ReloadResult]] | None = None
    # this instance as the others see it, and what its last heartbeat found (`rblwatch.cluster`)
    me: Instance | None = None
    view: View | None = None
    # set by the daemon: called after events (and so outbox rows) are committed, so the alert
    # senders look at the outbox at once instead of at their next poll
    on_events: Callable[[], None] | None = None
    # called on the event loop before and after each cycle's commit: caches of the stored
    # state rebuild then, off the path of the requests that read them (/metrics' families)
    before_commit: list[Callable[[], None]] = field(default_factory=list)
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def db(self) -> AsyncStore:
        """The store for code on the event loop: each call runs in a worker thread."""
        return AsyncStore(self.store)
