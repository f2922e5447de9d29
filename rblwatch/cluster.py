"""Several instances on one database: shards, leases and the leader, as values (pure).

Every instance with the same config and database shares each list's work. A list's targets
are cut into `SHARDS` shards by a stable hash of the target's value (`shard_of`), the same
on every host and in every Python. An instance holds a shard by a lease: an owner, an expiry
in the database's clock (so the hosts' clocks need not agree) and a fencing epoch that goes
up each time the shard changes hands. A cycle looks up only the targets of the shards it
holds, and its commit carries them as a `Fence`: the store writes nothing unless every one is
still held by this instance under the same epoch when the commit's transaction runs, so an
instance that was paused or cut off past its lease can never write late results.

One lease more, the leader's, makes one instance at a time run what must run once: the health
probes, the Alertmanager re-posts and housekeeping.

Instances heartbeat every `lease / 3` (`tick_every`): one transaction that renews the
instance's row and its leases, releases shards above its fair share and claims free or
expired ones up to it (`fair_share`), and takes or renews the leader lease. A dead instance's
leases expire after `lease` seconds and the next tick of another instance takes them.

A store that one process only can open (SQLite) has no peers: its coordinator (`Solo`) holds
every shard and the leader's lease, always.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SHARDS = 16  # per list: enough to spread over a handful of instances, few rows to lease


def shard_of(value: str, shards: int = SHARDS) -> int:
    """The shard of a target value: CRC-32 of its UTF-8 bytes (stable everywhere)."""
    return zlib.crc32(value.encode()) % shards


def fair_share(shards: int, live: int) -> int:
    """How many of a list's shards one of `live` instances should hold: enough that the
    instances together hold all of them."""
    return math.ceil(shards / max(1, live))


def tick_every(lease: float) -> float:
    """Heartbeat period: three renewals fit in one lease, so one late tick loses nothing."""
    return lease / 3


@dataclass(frozen=True, slots=True, order=True)
class Lease:
    """One shard of one list, held under `epoch` (the fencing token)."""

    list: str
    shard: int
    epoch: int
    # when the shard's last cycle committed (database clock; None: never); a shard taken
    # over from a dead instance whose cycle is due runs at once rather than at the next
    # scheduled cycle
    last_done: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Fence:
    """What a commit must still hold when it runs: these leases, under these epochs."""

    owner: str
    leases: tuple[Lease, ...] = ()
    leader: bool = False  # the leader's lease (health, housekeeping)


@dataclass(frozen=True, slots=True)
class Instance:
    """An instance as the others see it."""

    id: str
    host: str
    pid: int
    version: str
    started: float
    heartbeat: float  # database clock
    shards: int = 0  # leases held
    leader: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """What one tick found: this instance's leases, whether it leads, how many are alive."""

    owner: str
    leases: tuple[Lease, ...]
    leader: bool
    live: int
    now: float  # database clock at the tick
    taken: tuple[Lease, ...] = ()  # leases this tick newly claimed
    # alone on its store (SQLite): every shard of every list, also of a list added since the
    # last tick, and no fence to check
    solo: bool = False

    def shards_of(self, list_name: str) -> frozenset[int]:
        return frozenset(x.shard for x in self.leases if x.list == list_name)

    def fence(self, list_name: str, shards: Iterable[int] | None = None) -> Fence:
        """The fence of a cycle over the given shards of a list (all held ones if None)."""
        wanted = None if shards is None else set(shards)
        held = tuple(
            x for x in self.leases if x.list == list_name and (wanted is None or x.shard in wanted)
        )
        return Fence(self.owner, held)


def solo_view(owner: str, lists: Sequence[str], now: float, shards: int = SHARDS) -> View:
    """The view of an instance alone on its store: every shard, the leader."""
    leases = tuple(Lease(name, s, 0) for name in lists for s in range(shards))
    return View(owner, leases, True, 1, now, solo=True)


def takeovers(
    taken: Sequence[Lease], intervals: Mapping[str, float], now: float
) -> dict[str, tuple[float, set[int]]]:
    """Of newly taken leases, per list: when their cycle is due (seconds from `now`, 0 if
    overdue) and their shards. Taken over from an instance that died before running it, or
    handed over by a rebalance, a shard must not wait for this instance's next scheduled
    cycle of the list, which may be up to a whole interval away."""
    plan: dict[str, tuple[float, set[int]]] = {}
    for x in taken:
        interval = intervals.get(x.list)
        if interval is None:
            continue
        due = 0.0 if x.last_done is None else max(0.0, x.last_done + interval - now)
        delay, shards = plan.get(x.list, (due, set()))
        shards.add(x.shard)
        plan[x.list] = (min(delay, due), shards)
    return plan


__all__ = [
    "SHARDS",
    "Fence",
    "Instance",
    "Lease",
    "View",
    "fair_share",
    "shard_of",
    "solo_view",
    "takeovers",
    "tick_every",
]
