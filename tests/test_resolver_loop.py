"""The resolver shares its event loop: no callback of a run reads an unbounded pile of replies.

A window of thousands in flight, all answered while the loop was busy elsewhere (a commit, a
scrape, a blocking moment), waits in the socket; each readiness callback reads at most
`DRAIN_MAX` of it, so that the loop's other work (timers, a /metrics scrape's wake-up) runs
between the pieces (issue 14, "the loop never stalls"). Counted, not timed: the test wraps the
one place a drain books what it read. On loopback the congestion window stays near a hundred
(`path`), below the real bound, so the test lowers the bound to see it work.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from rblwatch.lookup import prefix_wire
from rblwatch.model import TargetKind
from rblwatch.resolver import Job, Resolver, Template, loop
from rblwatch.resolver.loop import Batch
from tests.rbldnsd import Rbldnsd

ZONE = "bl.test"
N = 16_384  # a /18
BOUND = 8  # far below the window the run reaches
LISTED_EVERY = 64


def _address(i: int) -> str:
    return f"10.0.{i >> 8 & 255}.{i & 255}" if i < 65_536 else f"10.1.{i >> 8 & 255}.{i & 255}"


def _jobs(servers: tuple[tuple[str, int], ...], block_every: int) -> Iterator[Job]:
    """A job per address; every `block_every` jobs the loop is held for a moment, as a busy
    loop would be, so that the replies of the window in flight pile up in the socket."""
    tpl = (Template.build(ZONE, servers),)
    for i in range(N):
        if i % block_every == block_every - 1:
            time.sleep(0.02)
        yield i, tpl, prefix_wire(_address(i), TargetKind.IPV4)


def test_a_readiness_callback_reads_at_most_drain_max_replies(
    rbldnsd: Rbldnsd, monkeypatch: pytest.MonkeyPatch
) -> None:
    rbldnsd.add_zone(
        ZONE, "ip4set", [":127.0.0.2:Listed", *(_address(i) for i in range(0, N, LISTED_EVERY))]
    )
    rbldnsd.start()
    read_per_callback: list[int] = []
    drained = Batch._drained

    def counted(
        self: Batch, si: int, plain: int, other: int, settled: int, dropped: int, *rest: object
    ) -> None:
        read_per_callback.append(plain + other + dropped)
        drained(self, si, plain, other, settled, dropped, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(Batch, "_drained", counted)
    monkeypatch.setattr(loop, "DRAIN_MAX", BOUND)
    listed: list[int] = []

    def on_result(key: object, _i: int, status: int, *_rest: object) -> None:
        assert isinstance(key, int)
        listed.append(key)

    # one socket, so that every reply of the window lands where one callback reads
    resolver = Resolver(timeout=2.0, attempts=2, max_in_flight=2_048, sockets=1)
    result = asyncio.run(
        resolver.run(_jobs((rbldnsd.address,), 1_024), on_result, count_nxdomain=True)
    )
    assert result.nxdomain + len(listed) == N  # every lookup answered
    assert sorted(listed) == list(range(0, N, LISTED_EVERY))
    assert sum(read_per_callback) >= N
    # the replies did pile up beyond one callback's share (else this test shows nothing)...
    assert max(read_per_callback) == BOUND
    # ...and no callback read more than its share
    assert all(n <= BOUND for n in read_per_callback)
