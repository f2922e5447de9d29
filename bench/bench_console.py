#!/usr/bin/env python3
"""Benchmark the console's pages (issue 11) with 10,000 listings among 262,144 pairs.

    .venv/bin/python bench/bench_console.py [--listings 10000] [--rounds 20]

Seeds a SQLite store through the store API (a /16 on four lists, every pair looked up,
`--listings` of them listed with a TXT and an event; `tests.consolestate`), serves the real
listener on 127.0.0.1 and prints, per page, the first answer's time (the console reads and
sorts the stored pairs), the median of `--rounds` answers and the page's size. The target:
the overview and a search under 150 ms, a page under 300 KB, /metrics under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rblwatch import web
from rblwatch.metrics import build_registry
from rblwatch.model import CycleCommit, Event, EventKind, PairState, PairStatus
from rblwatch.runtime import Runtime
from rblwatch.stats import Stats
from rblwatch.store.sqlite import SqliteStore
from tests.consolestate import BIG_LISTS, T0, address, big_config, seed_big

PAGES = {
    "overview": "/",
    "listings, page 1": "/listings",
    "listings, page 50": "/listings?page=50",
    "search: one address": f"/listings?q={address(26_000)}",
    "search: a /24": "/listings?q=10.20.7.0/24",
    "search: TXT text": "/listings?q=q/1234",
    "filter: one list, by since": f"/listings?list={BIG_LISTS[1]}&sort=since",
    "target page": f"/target/{address(26)}",
    "list page": f"/list/{BIG_LISTS[0]}",
    "events": "/events",
    "events: kind filter": "/events?kind=listed&page=3",
    "live (poll)": "/live",
    "/metrics": "/metrics",
}
AFTER_A_COMMIT = {
    "overview, after a commit": "/",
    "search, after a commit": f"/listings?q={address(26_000)}",
}


def new_listing(runtime: Runtime, n: int) -> None:
    """One more listing and its event, committed as a cycle would (newer than any before)."""
    target, at = address(2 * n + 1), T0 + 10_000 + n
    listing = PairState(target, BIG_LISTS[0], "mail", PairStatus.LISTED, at, at, ("127.0.0.2",))
    happened = Event(EventKind.LISTED, BIG_LISTS[0], at, target=target, group="mail")
    runtime.store.commit(CycleCommit(list=BIG_LISTS[0], upserts=[listing], events=[happened]))


async def measure(runtime: Runtime, rounds: int) -> list[tuple[str, float, float, int]]:
    runner = await web.start(runtime, build_registry(runtime), "127.0.0.1", 0)
    port = runner.addresses[0][1]
    out = []
    try:
        async with aiohttp.ClientSession() as session:
            for name, path in PAGES.items():
                times, size = [], 0
                for _ in range(rounds + 1):
                    start = time.perf_counter()
                    async with session.get(f"http://127.0.0.1:{port}{path}") as r:
                        body = await r.read()
                        assert r.status == 200, (path, r.status, body[:200])
                    times.append(time.perf_counter() - start)
                    size = len(body)
                out.append((name, times[0] * 1000, statistics.median(times[1:]) * 1000, size))
            # the same after every commit: the console reads and sorts the stored pairs again
            for phase, (name, path) in enumerate(AFTER_A_COMMIT.items()):
                times = []
                for i in range(rounds):
                    await asyncio.to_thread(new_listing, runtime, 1000 * phase + i)
                    start = time.perf_counter()
                    async with session.get(f"http://127.0.0.1:{port}{path}") as r:
                        body = await r.read()
                    times.append(time.perf_counter() - start)
                out.append((name, times[0] * 1000, statistics.median(times) * 1000, len(body)))
    finally:
        await runner.cleanup()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "state.db"))
        seed_big(store, args.listings)
        stats = Stats()
        stats.ensure_lists(BIG_LISTS)
        runtime = Runtime(config=big_config(), store=store, stats=stats, version="bench")
        runtime.targets_per_group = {"mail": 65_536}
        figures = asyncio.run(measure(runtime, args.rounds))
        store.close()
    print(
        f"{args.listings} listings among {65_536 * len(BIG_LISTS)} pairs, median of {args.rounds}:"
    )
    print(f"  {'page':30} {'first':>9} {'median':>9} {'size':>9}")
    for name, first, median, size in figures:
        print(f"  {name:30} {first:7.1f}ms {median:7.1f}ms {size / 1024:7.1f}KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
