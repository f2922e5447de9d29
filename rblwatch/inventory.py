"""The target inventory: every configured target, and each list's share with its query labels.

Addresses and domains are expanded once per config; hostnames are resolved again every cycle
(SPEC §6) by the function the engine hands in, so this module does no I/O of its own. A list's
share is a `Slice`: its targets and their query labels as one value, built together and never
paired up again later, so a lookup cannot go to another target's name.

The labels are kept by target value across cycles: every list asks the same targets every
cycle, and a /16's labels cost more to build than to keep.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from rblwatch import targets
from rblwatch.cluster import SHARDS, shard_of
from rblwatch.config import Config
from rblwatch.model import TARGET_KINDS, Target, TargetKind

log = logging.getLogger("rblwatch.engine")

# resolve hostnames of a group: (their address targets, (hostname, why) for each that failed)
ResolveHostnames = Callable[
    [Sequence[str], str], Awaitable[tuple[list[Target], list[tuple[str, str]]]]
]


@dataclass(frozen=True, slots=True)
class Slice:
    """Targets with their query labels (`labels[i]` is `targets[i]`'s) and their values."""

    targets: Sequence[Target]
    labels: Sequence[bytes]
    values: AbstractSet[str]

    def __len__(self) -> int:
        return len(self.targets)

    def only(self, wanted: AbstractSet[str]) -> Slice:
        """The part of this slice whose values are in `wanted` (a confirmation round's few)."""
        picked = [i for i, t in enumerate(self.targets) if t.value in wanted]
        return self._picked(picked)

    def in_shards(self, held: AbstractSet[int], shards: int = SHARDS) -> Slice:
        """The part of this slice in the shards an instance holds (`rblwatch.cluster`)."""
        if len(held) >= shards:
            return self
        return self._picked([i for i, t in enumerate(self.targets) if shard_of(t.value) in held])

    def _picked(self, picked: Sequence[int]) -> Slice:
        return Slice(
            [self.targets[i] for i in picked],
            [self.labels[i] for i in picked],
            frozenset(self.targets[i].value for i in picked),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Found:
    """Every configured target at one moment, one per value (the first group wins)."""

    targets: list[Target]
    complete: bool  # every hostname resolved: nothing is missing only for now
    per_group: dict[str, int] = field(default_factory=dict)
    # each group's own addresses (its networks', and its hostnames' as resolved now), an
    # address of several groups in each: what a group's own checks (hygiene) take, where
    # `targets` keeps the address under the first group only
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
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


class Inventory:
    """The current targets, and per set of target kinds their slice (lists of the same kinds
    share one), rebuilt only when the targets change."""

    def __init__(self, resolve: ResolveHostnames) -> None:
        self._resolve = resolve
        # the config's addresses and domains, expanded once, and their values
        self._static: tuple[Config, Found, set[str]] | None = None
        self._slices: dict[tuple[TargetKind, ...], tuple[Found, Slice]] = {}
        self._labels: dict[str, bytes] = {}  # query labels by target value

    async def current(self, cfg: Config) -> Found:
        """Every configured target: the static ones plus hostnames resolved now."""
        static = self._static_of(cfg)
        if not any(g.hostnames for g in cfg.targets):
            return static
        # a new target list each time: hostnames resolve afresh every cycle
        found = list(static.targets)
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
                own = addresses.get(g.group, ())
                addresses[g.group] = own + tuple(t.value for t in got if t.value not in own)
                fresh = (t for t in got if t.value not in self._static_values())
                _add_new(found, resolved, fresh)
        return Found(found, complete, _per_group(found), addresses, tuple(unresolved))

    def _static_of(self, cfg: Config) -> Found:
        if self._static is None or self._static[0] is not cfg:
            static: list[Target] = []
            values: set[str] = set()
            addresses: dict[str, tuple[str, ...]] = {}
            for g in cfg.targets:
                expanded = targets.expand(
                    g.addresses,
                    g.exclude,
                    g.domains,
                    group=g.group,
                    ipv4_min_prefix=cfg.limits.ipv4_min_prefix,
                )
                own = addresses.get(g.group, ())
                addresses[g.group] = own + tuple(
                    t.value for t in expanded if t.kind is not TargetKind.DOMAIN
                )
                _add_new(static, values, expanded)
            found = Found(static, True, _per_group(static), addresses)
            self._static = (cfg, found, values)
            self._labels = {}  # targets may have gone: start the labels afresh
        return self._static[1]

    def _static_values(self) -> set[str]:
        assert self._static is not None
        return self._static[2]

    def slice(self, found: Found, kinds: tuple[TargetKind, ...]) -> Slice:
        """The targets of `kinds` among `found`, with their labels; kept while `found` is."""
        cached = self._slices.get(kinds)
        if cached is not None and cached[0] is found:
            return cached[1]
        mine = [t for t in found.targets if t.kind in kinds]
        if len(self._labels) > 2 * len(found.targets) + 1024:
            # hostnames' addresses come and go between cycles: start the labels kept afresh
            # once they are well over what is configured, so they cannot grow without end
            self._labels = {}
        made = Slice(mine, self._labels_of(mine), frozenset(t.value for t in mine))
        self._slices[kinds] = (found, made)
        return made

    def _labels_of(self, mine: list[Target]) -> list[bytes]:
        labels, out = self._labels, []
        wire = {k: info.wire for k, info in TARGET_KINDS.items()}
        for value, kind, _group, _source in mine:
            label = labels.get(value)
            if label is None:
                label = labels[value] = wire[kind](value)
            out.append(label)
        return out


def _per_group(found: list[Target]) -> dict[str, int]:
    return dict(collections.Counter(t.group for t in found))


__all__ = ["Found", "Inventory", "ResolveHostnames", "Slice"]
