"""Targets kept compactly: a /14 is 262,144 addresses, not 262,144 Python objects.

A `TargetList` is a read-only sequence of `Target`s made of runs. An IPv4 run is a `range` (a
network, or the part of one left after excludes) or an `array('I')` (addresses one a line in a
file) sharing one kind, group and source; anything else (IPv6, domains, resolved hostnames) is
kept as the `Target`s themselves. A `Target` is made only when someone indexes or iterates, and
the query labels of an IPv4 run are made from its integers, chunk by chunk, as a scan sends:
about 4 bytes a target instead of ~200 (target, value string, label, list slots).

Pure: imports only the model.
"""

from __future__ import annotations

import bisect
import itertools
import socket
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from rblwatch.model import TARGET_KINDS, Target, TargetKind

_IPV4 = TargetKind.IPV4
# one wire label per octet value: an address's labels are four list hits and three concats
_OCTET = [bytes([len(str(i))]) + str(i).encode() for i in range(256)]


def ipv4_text(n: int) -> str:
    """The dotted quad of an IPv4 address's number."""
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def ipv4_wire(n: int) -> bytes:
    """The query labels of an IPv4 address's number (reversed octets, RFC 5782 §2.1), the same
    bytes as `TARGET_KINDS[IPV4].wire` of its text."""
    t = _OCTET
    return t[n & 255] + t[(n >> 8) & 255] + t[(n >> 16) & 255] + t[n >> 24]


if TYPE_CHECKING:  # array[int] is for the type checker only: 3.11 cannot subscript it
    Numbers = range | array[int]  # array('I') of IPv4 addresses


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive targets of one kind: IPv4 numbers (`numbers`) or the targets themselves."""

    kind: TargetKind
    group: str
    source: str | None  # an IPv4 run's source; None: each address is its own
    numbers: Numbers | None = None
    objects: Sequence[Target] = ()

    def __len__(self) -> int:
        return len(self.numbers) if self.numbers is not None else len(self.objects)

    def target(self, i: int) -> Target:
        if self.numbers is None:
            return self.objects[i]
        value = ipv4_text(self.numbers[i])
        return Target(value, _IPV4, self.group, self.source or value)

    def targets(self, lo: int, hi: int) -> Iterator[Target]:
        if self.numbers is None:
            return iter(self.objects[lo:hi])
        group, source, fmt = self.group, self.source, ipv4_text
        return (Target(v, _IPV4, group, source or v) for v in map(fmt, self.numbers[lo:hi]))

    def values(self, lo: int, hi: int) -> Iterator[str]:
        if self.numbers is None:
            return (t.value for t in self.objects[lo:hi])
        return map(ipv4_text, self.numbers[lo:hi])

    def labels(self, lo: int, hi: int) -> Iterator[bytes]:
        if self.numbers is not None:
            return map(ipv4_wire, self.numbers[lo:hi])
        wire = TARGET_KINDS[self.kind].wire
        return (wire(t.value) for t in self.objects[lo:hi])


class TargetList(Sequence[Target]):
    """Targets in order, stored as runs (see the module docstring); equal to a list of the
    same targets as far as indexing, iterating and `len` go."""

    __slots__ = ("_len", "_runs", "_starts")

    def __init__(self, runs: Iterable[_Run] = ()) -> None:
        self._runs = [r for r in runs if len(r)]
        self._starts: list[int] = []
        n = 0
        for r in self._runs:
            self._starts.append(n)
            n += len(r)
        self._len = n

    @staticmethod
    def of(targets: Iterable[Target]) -> TargetList:
        """A list of targets as they are (one object run per kind change)."""
        b = TargetListBuilder()
        for t in targets:
            b.add_object(t)
        return b.build()

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, i: int) -> Target: ...
    @overload
    def __getitem__(self, i: slice) -> list[Target]: ...
    def __getitem__(self, i: int | slice) -> Target | list[Target]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._len))]
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("target index out of range")
        k = bisect.bisect_right(self._starts, i) - 1
        return self._runs[k].target(i - self._starts[k])

    def __iter__(self) -> Iterator[Target]:
        return itertools.chain.from_iterable(r.targets(0, len(r)) for r in self._runs)

    @staticmethod
    def joined(parts: Iterable[TargetList]) -> TargetList:
        """The parts one after another, in one go (`+` in a loop copies every run each time)."""
        return TargetList(r for part in parts for r in part._runs)

    def __add__(self, other: Iterable[Target]) -> TargetList:
        """These targets, then `other`'s (no duplicates removed: the caller's business)."""
        more = other._runs if isinstance(other, TargetList) else TargetList.of(other)._runs
        return TargetList([*self._runs, *more])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == self._len and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<TargetList: {self._len} targets in {len(self._runs)} runs>"

    def kinds(self) -> Counter[TargetKind]:
        """How many targets of each kind, without making them."""
        out: Counter[TargetKind] = Counter()
        for r in self._runs:
            if r.numbers is not None:
                out[r.kind] += len(r)
            else:
                out.update(t.kind for t in r.objects)
        return out

    def pieces(self, lo: int = 0, hi: int | None = None) -> Iterator[tuple[int, _Run, int, int]]:
        """(index of the piece's first target, its run, start and stop within the run) for the
        runs' parts covering targets lo..hi-1."""
        hi = self._len if hi is None else min(hi, self._len)
        if lo >= hi:
            return
        k = max(bisect.bisect_right(self._starts, lo) - 1, 0)
        while k < len(self._runs) and self._starts[k] < hi:
            start, run = self._starts[k], self._runs[k]
            a, b = max(lo - start, 0), min(hi - start, len(run))
            if a < b:
                yield start + a, run, a, b
            k += 1

    def values(self) -> Iterator[str]:
        """Every target's value, in order, without making the targets."""
        return itertools.chain.from_iterable(r.values(0, len(r)) for _, r, _, _ in self.pieces())

    def labels(self, lo: int = 0, hi: int | None = None) -> Iterator[bytes]:
        """The query labels of targets lo..hi-1, made as they are taken."""
        return itertools.chain.from_iterable(r.labels(a, b) for _, r, a, b in self.pieces(lo, hi))

    def of_kinds(self, kinds: Iterable[TargetKind]) -> TargetList:
        """The targets of `kinds`, in order: whole runs kept or left, no target made (every
        run is of one kind)."""
        wanted = set(kinds)
        if all(r.kind in wanted for r in self._runs):
            return self
        return TargetList(r for r in self._runs if r.kind in wanted)

    def groups(self) -> Counter[str]:
        """How many targets of each group, without making them."""
        out: Counter[str] = Counter()
        for r in self._runs:
            if r.numbers is not None:
                out[r.group] += len(r)
            else:
                out.update(t.group for t in r.objects)
        return out

    def picked(self, indices: Iterable[int]) -> TargetList:
        """The targets at `indices` (ascending), as a list of the same compact kind."""
        b = TargetListBuilder()
        for i in indices:
            k = bisect.bisect_right(self._starts, i) - 1
            run = self._runs[k]
            if run.numbers is None:
                b.add_object(run.objects[i - self._starts[k]])
            else:
                b.add_numbers([run.numbers[i - self._starts[k]]], run.group, run.source)
        return b.build()


class TargetValues(AbstractSet[str]):
    """The values of a `TargetList` (one target per value) as a set, answered from its runs:
    an IPv4 value is looked up by number among the ranges (bisect) and the arrays (one sorted
    copy, 4 bytes an address), anything else in a set of the few object runs' values. No
    string is kept per address; iterating makes them in the list's order."""

    __slots__ = ("_index", "_targets")

    def __init__(self, targets: TargetList) -> None:
        self._targets = targets
        self._index: _ValueIndex | None = None  # made at the first membership test

    def __len__(self) -> int:
        return len(self._targets)

    def __iter__(self) -> Iterator[str]:
        return self._targets.values()

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if self._index is None:
            self._index = _ValueIndex(self._targets)
        return self._index.has(value)

    def __repr__(self) -> str:
        return f"<TargetValues of {self._targets!r}>"


class TargetLabels(Sequence[bytes]):
    """The query labels of a `TargetList`'s targets, made as they are taken (a chunk at a
    time when iterated), never kept."""

    __slots__ = ("_targets",)

    def __init__(self, targets: TargetList) -> None:
        self._targets = targets

    def __len__(self) -> int:
        return len(self._targets)

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self._targets)))]
        t = self._targets[i]
        return TARGET_KINDS[t.kind].wire(t.value)

    def __iter__(self) -> Iterator[bytes]:
        return self._targets.labels()


class _ValueIndex:
    """Membership by value among a TargetList's targets (`TargetValues`)."""

    def __init__(self, targets: TargetList) -> None:
        ranges: list[tuple[int, int]] = []
        numbers: array[int] = array("I")
        others: set[str] = set()
        for r in targets._runs:
            if isinstance(r.numbers, range):
                ranges.append((r.numbers.start, r.numbers.stop - 1))
            elif r.numbers is not None:
                numbers.extend(r.numbers)
            else:
                others.update(t.value for t in r.objects)
        ranges.sort()
        self.firsts = array("I", (a for a, _ in ranges))
        self.lasts = array("I", (b for _, b in ranges))
        self.numbers = array("I", sorted(numbers)) if numbers else numbers
        self.others = frozenset(others)

    def has(self, value: str) -> bool:
        if value in self.others:
            return True
        n = ipv4_number(value)
        if n is None:
            return False
        i = bisect.bisect_right(self.firsts, n) - 1
        if i >= 0 and n <= self.lasts[i]:
            return True
        j = bisect.bisect_left(self.numbers, n)
        return j < len(self.numbers) and self.numbers[j] == n


def ipv4_number(value: str) -> int | None:
    """The number of a canonical IPv4 value; None for anything else (inet_pton takes no
    short, octal or padded forms, so a value that is not canonical is not found)."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big")
    except OSError:
        return None


# a /16's members are kept as a set of their low 16 bits up to this many, then as a bitmap
# (8 KiB): ~60 bytes a member sparse, 1 bit a member dense, never more than ~8 KiB a /16
# beyond the sparse cost
_DENSE = 128
_Block = set[int] | bytearray


class ValueSet(AbstractSet[str]):
    """A growing set of target values, compact for IPv4 (the daemon's per-list `seen`: every
    target of a /14 x 4 lists as strings was ~90 MB). IPv4 values are kept by number, per /16
    (see `_DENSE`); anything else as the strings themselves."""

    __slots__ = ("_blocks", "_len", "_others")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._blocks: dict[int, _Block] = {}
        self._others: set[str] = set()
        self._len = 0
        self.update(values)

    def update(self, values: Iterable[str]) -> None:
        for v in values:
            self.add(v)

    def add(self, value: str) -> None:
        n = ipv4_number(value)
        if n is None:
            if value not in self._others:
                self._others.add(value)
                self._len += 1
            return
        self.add_ipv4(n)

    def add_ipv4(self, n: int) -> None:
        """Add the IPv4 address numbered `n` (no string made)."""
        high, low = n >> 16, n & 0xFFFF
        block = self._blocks.setdefault(high, set())
        if isinstance(block, set):
            if low in block:
                return
            block.add(low)
            if len(block) > _DENSE:
                self._blocks[high] = _bitmap(block)
        else:
            bit = 1 << (low & 7)
            if block[low >> 3] & bit:
                return
            block[low >> 3] |= bit
        self._len += 1

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value in self._others:
            return True
        n = ipv4_number(value)
        block = None if n is None else self._blocks.get(n >> 16)
        if block is None or n is None:
            return False
        low = n & 0xFFFF
        if isinstance(block, set):
            return low in block
        return bool(block[low >> 3] & (1 << (low & 7)))

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        yield from self._others
        for high, block in self._blocks.items():
            lows = sorted(block) if isinstance(block, set) else _bits(block)
            yield from (ipv4_text(high << 16 | low) for low in lows)

    def __repr__(self) -> str:
        return f"<ValueSet: {self._len} values>"


class KnownValues:
    """The values of targets added a list at a time (`add`), for membership as they grow:
    ranges kept sorted for bisect, every other value in a `ValueSet`. Expanding many groups
    one after another (a group per hosting customer) checks each group against all before it;
    an index made afresh for each group made that quadratic in the number of groups."""

    __slots__ = ("_firsts", "_lasts", "_values")

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []
        self._values = ValueSet()

    @property
    def empty(self) -> bool:
        return not self._firsts and not len(self._values)

    def add(self, targets: TargetList) -> None:
        """Add the values of `targets`, whose ranges overlap none added before (the caller
        keeps only values not known yet)."""
        for r in targets._runs:
            if isinstance(r.numbers, range):
                i = bisect.bisect_left(self._firsts, r.numbers.start)
                self._firsts.insert(i, r.numbers.start)
                self._lasts.insert(i, r.numbers.stop - 1)
            elif r.numbers is not None:
                for n in r.numbers:
                    self._values.add_ipv4(n)
            else:
                self._values.update(t.value for t in r.objects)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if value in self._values:
            return True
        n = ipv4_number(value)
        if n is None:
            return False
        i = bisect.bisect_right(self._firsts, n) - 1
        return i >= 0 and n <= self._lasts[i]


def _bitmap(lows: Iterable[int]) -> bytearray:
    out = bytearray(8192)
    for low in lows:
        out[low >> 3] |= 1 << (low & 7)
    return out


def _bits(bitmap: bytearray) -> Iterator[int]:
    for i, byte in enumerate(bitmap):
        if byte:
            yield from (i << 3 | b for b in range(8) if byte >> b & 1)


class TargetListBuilder:
    """Appends runs, joining IPv4 numbers of the same group and source into one array."""

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        # the open run being filled: IPv4 numbers or objects
        self._numbers: array[int] | None = None
        self._objects: list[Target] | None = None
        self._key: tuple[TargetKind, str, str | None] | None = None

    def _close(self) -> None:
        if self._key is not None:
            kind, group, source = self._key
            if self._numbers is not None:
                self._runs.append(_Run(kind, group, source, numbers=self._numbers))
            elif self._objects is not None:
                self._runs.append(_Run(kind, group, source, objects=self._objects))
        self._numbers = self._objects = self._key = None

    def add_range(self, first: int, last: int, group: str, source: str) -> None:
        """IPv4 addresses first..last, all from `source` (a network)."""
        self._close()
        self._runs.append(_Run(_IPV4, group, source, numbers=range(first, last + 1)))

    def add_numbers(self, numbers: Iterable[int], group: str, source: str | None) -> None:
        """IPv4 addresses by number (`source` None: each its own source)."""
        key = (_IPV4, group, source)
        if self._key != key or self._numbers is None:
            self._close()
            self._key, self._numbers = key, array("I")
        self._numbers.extend(numbers)

    def add_object(self, target: Target) -> None:
        key = (target.kind, "", None)
        if self._key != key or self._objects is None:
            self._close()
            self._key, self._objects = key, []
        self._objects.append(target)

    def build(self) -> TargetList:
        self._close()
        return TargetList(self._runs)


__all__ = [
    "KnownValues",
    "TargetLabels",
    "TargetList",
    "TargetListBuilder",
    "TargetValues",
    "ValueSet",
    "ipv4_number",
    "ipv4_text",
    "ipv4_wire",
]
