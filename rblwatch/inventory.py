"""The target inventory: every configured target, and each list's share with its query labels.

Addresses and domains are expanded once per config; hostnames are resolved again every cycle
(SPEC §6) by the function the engine hands in, so this module does no I/O of its own. A list's
share is a `Slice`: its targets and their query labels as one value, built together and never
paired up again later, so a lookup cannot go to another target's name.

Kept compact, as `rblwatch.targetlist` keeps them: a /14 x 4 lists is a million pairs, and the
daemon keeps its targets for as long as the config lasts. The targets are a `TargetList` (a
network is a range, not a Target per address), a slice's labels are made a chunk at a time as
its scan sends (`TargetLabels`), and its values answer membership from the runs
(`TargetValues`) rather than from a set of strings.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import overload

from rblwatch import targets
from rblwatch.cluster import SHARDS, shard_of
from rblwatch.config import Config
from rblwatch.model import Target, TargetKind
from rblwatch.targetlist import KnownValues, TargetLabels, TargetList, TargetValues

log = logging.getLogger("rblwatch.engine")

# resolve hostnames of a group: (their address targets, (hostname, why) for each that failed)
ResolveHostnames = Callable[
    [Sequence[str], str], Awaitable[tuple[list[Target], list[tuple[str, str]]]]
]


# the kinds of a group's own addresses (`Found.addresses`): all but domains
_ADDRESS_KINDS = tuple(k for k in TargetKind if k is not TargetKind.DOMAIN)


@dataclass(frozen=True, slots=True)
class Slice:
    """Targets with their query labels (`labels[i]` is `targets[i]`'s) and their values."""

    targets: Sequence[Target]
    labels: Sequence[bytes]
    values: AbstractSet[str]

    @staticmethod
    def of(targets: TargetList) -> Slice:
        """A compact slice: labels and values answered from `targets`' runs, none kept."""
        return Slice(targets, TargetLabels(targets), TargetValues(targets))

    @property
    def prefixes(self) -> Sequence[bytes] | None:
        """The labels to hand a scan: None when the scan is to make them from the targets as
        it sends (a compact slice), which is as fast and keeps nothing."""
        return None if isinstance(self.labels, TargetLabels) else self.labels

    def __len__(self) -> int:
        return len(self.targets)

    def only(self, wanted: AbstractSet[str]) -> Slice:
        """The part of this slice whose values are in `wanted` (a confirmation round's few)."""
        return self._picked(i for i, v in enumerate(self._values()) if v in wanted)

    def in_shards(self, held: AbstractSet[int], shards: int = SHARDS) -> Slice:
        """The part of this slice in the shards an instance holds (`rblwatch.cluster`)."""
        if len(held) >= shards:
            return self
        return self._picked(i for i, v in enumerate(self._values()) if shard_of(v) in held)

    def _values(self) -> Iterator[str]:
        if isinstance(self.targets, TargetList):
            return self.targets.values()  # no Target made
        return (t.value for t in self.targets)

    def _picked(self, picked: Iterable[int]) -> Slice:
        if isinstance(self.targets, TargetList) and isinstance(self.labels, TargetLabels):
            return Slice.of(self.targets.picked(picked))
        at = list(picked)
        return Slice(
            [self.targets[i] for i in at],
            [self.labels[i] for i in at],
            frozenset(self.targets[i].value for i in at),
        )


class Addresses(Sequence[str]):
    """A group's own addresses, in order, as values made when read (`Found.addresses`)."""

    __slots__ = ("_targets", "_values")

    def __init__(self, targets: TargetList) -> None:
        self._targets = targets
        self._values = TargetValues(targets)

    def plus(self, more: Iterable[Target]) -> Addresses:
        """These, then the addresses of `more` not among them."""
        fresh = TargetList.of(t for t in more if t.value not in self._values)
        return Addresses(self._targets + fresh)

    def __len__(self) -> int:
        return len(self._targets)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [t.value for t in self._targets[i]]
        return self._targets[i].value

    def __iter__(self) -> Iterator[str]:
        return self._targets.values()

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __repr__(self) -> str:
        return f"Addresses({list(self)!r})" if len(self) <= 8 else f"<Addresses: {len(self)}>"


@dataclass(frozen=True, slots=True, eq=False)
class Found:
    """Every configured target at one moment, one per value (the first group wins)."""

    targets: Sequence[Target]  # the inventory's: a compact `TargetList`
    complete: bool  # every hostname resolved: nothing is missing only for now
    per_group: dict[str, int] = field(default_factory=dict)
    # each group's own addresses (its networks', and its hostnames' as resolved now), an
    # address of several groups in each: what a group's own checks (hygiene) take, where
    # `targets` keeps the address under the first group only
    addresses: dict[str, Sequence[str]] = field(default_factory=dict)
    # the hostnames that failed to resolve now: (group, hostname, why)
    unresolved: tuple[tuple[str, str, str], ...] = ()


def _add_new(out: list[Target], values: set[str], found: Iterable[Target]) -> None:
    """Append the targets whose value is not in `values` yet (and record it there).

    One target per value, whatever the groups or hostnames it is reached through (the first
    wins): a cycle decides once per pair, and a value met twice would raise its events twice.
    """
    for t in found:
        if t.value not in values:
            values.add(t.value)
            out.append(t)


def _not_in(expanded: TargetList, known: KnownValues) -> TargetList:
    """The targets of `expanded` whose value is not `known` yet (in order, compact)."""
    if known.empty:
        return expanded
    if not any(v in known for v in expanded.values()):
        return expanded  # groups of their own networks: kept as they are
    return expanded.picked(i for i, v in enumerate(expanded.values()) if v not in known)


def _addresses_plus(
    addresses: dict[str, Sequence[str]], group: str, more: Iterable[Target]
) -> Addresses:
    own = addresses.get(group)
    if isinstance(own, Addresses):
        return own.plus(more)
    return Addresses(TargetList.of(more))


class Inventory:
    """The current targets, and per set of target kinds their slice (lists of the same kinds
    share one), rebuilt only when the targets change."""

    def __init__(self, resolve: ResolveHostnames) -> None:
        self._resolve = resolve
        # the config's addresses and domains, expanded once, and their values
        self._static: tuple[Config, Found, KnownValues] | None = None
        self._slices: dict[tuple[TargetKind, ...], tuple[Found, Slice]] = {}

    async def current(self, cfg: Config) -> Found:
        """Every configured target: the static ones plus hostnames resolved now."""
        static = self._static_of(cfg)
        if not any(g.hostnames for g in cfg.targets):
            return static
        static_values = self._static_values()
        fresh: list[Target] = []
        resolved: set[str] = set()
        complete = True
        unresolved: list[tuple[str, str, str]] = []
        addresses = dict(static.addresses)
        for g in cfg.targets:
            if g.hostnames:
                got, failed = await self._resolve(g.hostnames, g.group)
                for name, why in failed:
                    complete = False
                    unresolved.append((g.group, name, why))
                    log.warning("hostname %s (group %s) not resolved: %s", name, g.group, why)
                addresses[g.group] = _addresses_plus(addresses, g.group, got)
                _add_new(fresh, resolved, (t for t in got if t.value not in static_values))
        # a new target list each time (the static runs shared): hostnames resolve afresh
        found = _compact(static.targets) + fresh
        return Found(found, complete, dict(found.groups()), addresses, tuple(unresolved))

    def _static_of(self, cfg: Config) -> Found:
        if self._static is None or self._static[0] is not cfg:
            parts: list[TargetList] = []
            known = KnownValues()
            addresses: dict[str, Sequence[str]] = {}
            for g in cfg.targets:
                expanded = targets.expand(
                    g.addresses,
                    g.exclude,
                    g.domains,
                    group=g.group,
                    ipv4_min_prefix=cfg.limits.ipv4_min_prefix,
                )
                own = addresses.get(g.group)
                ips = expanded.of_kinds(_ADDRESS_KINDS)
                addresses[g.group] = Addresses(
                    own._targets + ips if isinstance(own, Addresses) else ips
                )
                kept = _not_in(expanded, known)
                known.add(kept)
                parts.append(kept)
            static = TargetList.joined(parts)
            found = Found(static, True, dict(static.groups()), addresses)
            self._static = (cfg, found, known)
        return self._static[1]

    def _static_values(self) -> KnownValues:
        assert self._static is not None
        return self._static[2]

    def slice(self, found: Found, kinds: tuple[TargetKind, ...]) -> Slice:
        """The targets of `kinds` among `found`, with their labels; kept while `found` is."""
        cached = self._slices.get(kinds)
        if cached is not None and cached[0] is found:
            return cached[1]
        made = Slice.of(_compact(found.targets).of_kinds(kinds))
        self._slices[kinds] = (found, made)
        return made


def _compact(found: Sequence[Target]) -> TargetList:
    # the inventory's own Found holds a TargetList; one made elsewhere (a test) may not
    return found if isinstance(found, TargetList) else TargetList.of(found)


__all__ = ["Addresses", "Found", "Inventory", "ResolveHostnames", "Slice"]
