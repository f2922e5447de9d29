"""What the resolver's callers and its parts speak: statuses, templates, jobs, stats, results."""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rblwatch.lookup import zone_wire
from rblwatch.wire import QTYPE_A, question


class Status:
    """How an exchange ended (ints, not an enum: this is compared on the hot path)."""

    OK = 0
    TIMEOUT = 1
    NETWORK = 2
    BAD_REPLY = 3  # a reply that matched our query but could not be parsed
    ABANDONED = 4  # still unanswered when its run was stopped (`Resolver.run`'s `until`)


# key, template index, status, rcode, rdatas of the asked type (4-byte A addresses or TXT
# rdata; the list is shared and must not be kept or changed), their minimum TTL
ResultCallback = Callable[[object, int, int, int, list[bytes], int | None], None]
NO_RDATA: list[bytes] = []


@dataclass(frozen=True, slots=True)
class Template:
    """What is constant for every query of one list and type: the wire tail and the servers."""

    tail: bytes  # zone labels + root + QTYPE + QCLASS
    servers: tuple[tuple[str, int], ...]
    qtype: int = QTYPE_A

    @staticmethod
    def build(zone: str, servers: Iterable[tuple[str, int]], qtype: int = QTYPE_A) -> Template:
        return Template(question(zone_wire(zone), qtype), tuple(servers), qtype)


# A job is one name asked on one or more lists: (key, templates, labels in front of the zone).
# Fanning a target out over its lists in the resolver, rather than one job per lookup, halves
# the per-lookup work of building and iterating jobs on a scan.
Job = tuple[object, tuple[Template, ...], bytes]


@dataclass(slots=True)
class ResolverStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0  # replies that matched no query in flight (spoofed, late, garbage)
    timeouts: int = 0  # attempts that timed out (a lookup may retry)
    nxdomain: int = 0  # plain NXDOMAIN results counted rather than reported (count_nxdomain)
    tcp: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)

    def drop(self, why: str) -> None:
        self.dropped += 1
        self.drop_reasons[why] = self.drop_reasons.get(why, 0) + 1


class RunResult(NamedTuple):
    nxdomain: int  # plain NXDOMAINs counted instead of reported (count_nxdomain)
    sent: int  # queries sent by this run, retries included


class Durations:
    """How long answered queries took, in cumulative-free buckets (a histogram's raw counts).

    Kept as bucket counts with bisect (C) because it is fed from the receive loop.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = list(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last is above every bound
        self.total = 0.0

    def observe_since(self, end: float, starts: Iterable[float]) -> None:
        """Observe `end - start` for each of `starts` (a burst of replies read at once)."""
        counts, bounds, where = self.counts, self.bounds, bisect.bisect_left
        total = 0.0
        for start in starts:
            took = end - start
            counts[where(bounds, took)] += 1
            total += took
        self.total += total


# A lookup in flight is a list, not an object: it is created for every lookup of a scan and a
# list literal costs a fraction of an instance. Fields (SENT: when its first attempt left, for
# its timeout, its RTT and its duration):
KEY, INDEX, TEMPLATE, QUESTION, ATTEMPT, SENT, WIRE_KEY = range(7)
Entry = list[Any]
# a template as the send loop uses it: (index in its job, template, wire tail, socket key
# bases, how many bases)
Route = tuple[int, Template, bytes, tuple[int, ...], int]


def random_ids() -> Iterator[int]:
    """Query IDs from the OS's random source, 4,096 per read, iterated in C throughout."""
    blocks = iter(lambda: memoryview(os.urandom(8192)).cast("H"), None)
    return itertools.chain.from_iterable(blocks)
