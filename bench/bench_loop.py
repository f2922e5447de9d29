#!/usr/bin/env python3
"""Benchmark the event loop during a big first cycle, and the status API's first page (issue 14).

    .venv/bin/python bench/bench_loop.py [--prefix 16] [--lists 1] [--listings 21000]

1. The first cycle of a /16 (or `--prefix 14`) on `--lists` lists, against a loopback rbldnsd
   that lists 1 address in 32, run by the engine in one event loop as the daemon runs it. A
   10 ms ticker measures the loop's longest stall, and a `/metrics` scrape (`render` in a
   worker thread, as the listener does) every 100 ms its slowest answer: both during the
   lookups and during the decisions and the commit that follow them.
   The first probe and the targets' expansion (once per config, before the cycle: the
   target storage's work) are measured apart.
2. `/api/v1/status` with `--listings` current listings in a SQLite store: the whole status
   (as before paging) against its first page (`limit` 1,000), as the listener builds them.

With `--why FILE`, every loop callback that runs over 150 ms has every thread's stack written
to FILE while it runs (faulthandler, which needs no GIL): what holds the loop. At a /14 x 4 the
answer was the GIL: the resolver's callbacks are a few hundred replies each (`loop.DRAIN_MAX`
at most), but they wait on worker threads deciding other lists' cycles and writing them, and
on full collections of a heap of millions of objects.

Everything is on 127.0.0.1; the rbldnsd is stopped at the end. Wall-clock figures on a busy
machine are noise: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry

from rblwatch.config import parse_config
from rblwatch.daemon import SWITCH_INTERVAL_S
from rblwatch.engine import Engine
from rblwatch.metrics import build_registry, render
from rblwatch.pairsource import PairsRead, PairsSource, read_console
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.pairs import page_json
from rblwatch.views.status import ListingsQuery, status_json
from tests.rbldnsd import Rbldnsd
from tests.webstate import T0, listed, make_runtime, put

LISTED_EVERY = 32  # one address in 32 listed: a /16 has 2,048 listings per list
SLOW_CALLBACK = 0.15  # --why: a loop callback longer than this has the threads' stacks dumped


@dataclass(slots=True)
class Lag:
    """The loop's longest stall and the slowest scrape, while a cycle runs."""

    stall: float = 0.0
    scrapes: list[float] = field(default_factory=list)


async def _ticker(lag: Lag, done: asyncio.Event) -> None:
    tick = 0.01
    while not done.is_set():
        before = time.monotonic()
        await asyncio.sleep(tick)
        lag.stall = max(lag.stall, time.monotonic() - before - tick)


async def _scraper(registry: CollectorRegistry, lag: Lag, done: asyncio.Event) -> None:
    while not done.is_set():
        start = time.monotonic()
        await asyncio.to_thread(render, registry)
        lag.scrapes.append(time.monotonic() - start)
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def _why(path: str | None) -> Iterator[None]:
    """With `path`, every loop callback running over SLOW_CALLBACK dumps all threads' stacks
    there (a benchmark's diagnosis: it wraps asyncio's Handle._run, a private method)."""
    if path is None:
        yield
        return
    run = asyncio.events.Handle._run

    def timed(self: asyncio.Handle) -> None:
        faulthandler.dump_traceback_later(SLOW_CALLBACK, file=out)
        try:
            run(self)
        finally:
            faulthandler.cancel_dump_traceback_later()

    with open(path, "w") as out:
        asyncio.events.Handle._run = timed  # type: ignore[method-assign]
        try:
            yield
        finally:
            asyncio.events.Handle._run = run  # type: ignore[method-assign]


def _zone(prefix: int) -> list[str]:
    lines = [":127.0.0.2:Listed", "127.0.0.2"]
    size = 1 << (32 - prefix)
    lines += [f"10.{i >> 16 & 3}.{i >> 8 & 255}.{i & 255}" for i in range(0, size, LISTED_EVERY)]
    return lines


async def _watched(registry: CollectorRegistry, work: Awaitable[object]) -> tuple[Lag, float]:
    """`work` awaited with the ticker and the scraper running; its lag and duration."""
    lag, done = Lag(), asyncio.Event()
    watchers = [
        asyncio.create_task(_ticker(lag, done)),
        asyncio.create_task(_scraper(registry, lag, done)),
    ]
    start = time.monotonic()
    await work
    took = time.monotonic() - start
    done.set()
    await asyncio.gather(*watchers)
    return lag, took


async def _first_cycle(runtime: Runtime, engine: Engine, names: list[str]) -> list[Lag]:
    async def prepare() -> None:
        # the first probe (its timing check counts the targets) and the targets' expansion:
        # the target storage's work (targets, inventory, plan), done once per config
        for name in names:
            await engine.probe(name)
        await engine._found()

    registry = build_registry(runtime, warm=True)  # as the daemon's: one, kept
    before, _ = await _watched(registry, prepare())
    during, took = await _watched(registry, asyncio.gather(*(engine.cycle(n) for n in names)))
    return [before, during, Lag(took)]


def bench_cycle(prefix: int, lists: int, why: str | None = None) -> None:
    dns = Rbldnsd()
    zones = [f"bl{i}.test" for i in range(lists)]
    for zone in zones:
        dns.add_zone(zone, "ip4set", _zone(prefix))
    dns.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = parse_config(
                {
                    "resolver": {
                        "nameservers": [f"127.0.0.1:{dns.port}"],
                        "timeout": "2s",
                        "max_in_flight": 256,
                    },
                    "schedule": {"confirm": 1, "jitter": 0},
                    "limits": {"ipv4_min_prefix": min(prefix, 16)},
                    "lists": [{"name": z.split(".")[0], "zone": z, "kind": "ip"} for z in zones],
                    "targets": [{"group": "mail", "addresses": [f"10.0.0.0/{prefix}"]}],
                }
            )
            store = SqliteStore(str(Path(tmp) / "state.db"))
            runtime = Runtime(cfg, store)
            engine = Engine(runtime)
            names = [lst.name for lst in cfg.subjects]
            with _why(why):
                before, lag, took_ = asyncio.run(_first_cycle(runtime, engine, names))
            took = took_.stall
            listings = store.listed_count()
            store.close()
    finally:
        dns.close()
    n = 1 << (32 - prefix)
    print(f"first cycle of a /{prefix} x {lists} ({n * lists:,} pairs, {listings:,} listed):")
    print(f"  cycle                {took:7.2f} s  (lookups, decisions, commit)")
    for label, x in (("before the cycle", before), ("during the cycle", lag)):
        slow = max(x.scrapes) * 1000 if x.scrapes else float("nan")
        mid = statistics.median(x.scrapes) * 1000 if x.scrapes else float("nan")
        print(f"  {label}: longest loop stall {x.stall * 1000:.1f} ms (10 ms ticker),")
        print(f"    /metrics {slow:.1f} ms slowest, {mid:.1f} ms median of {len(x.scrapes)}")


def bench_status(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runtime = make_runtime(Path(tmp))
        put(
            runtime,
            [
                listed(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", since=T0 + i)
                for i in range(n)
            ],
        )
        store, config = runtime.store, runtime.config

        def whole() -> str:
            read = PairsRead(PairsSource(), None, time.time())
            view, page = read_console(store, config, None, read)
            return json.dumps(status_json(view) | {"pairs": page_json(page)})

        def first_page() -> str:
            read = PairsRead(PairsSource(), None, time.time())
            view, page = read_console(store, config, None, read, listings=ListingsQuery())
            return json.dumps(status_json(view) | {"pairs": page_json(page)})

        sizes, times = {}, {}
        for label, build in (("whole", whole), ("first page", first_page)):
            runs = []
            for _ in range(rounds):
                start = time.perf_counter()
                sizes[label] = len(build())
                runs.append(time.perf_counter() - start)
            times[label] = statistics.median(runs) * 1000
        store.close()
    print(f"/api/v1/status with {n:,} listings, median of {rounds}:")
    for label in ("whole", "first page"):
        print(f"  {label:<20} {times[label]:7.1f} ms  {sizes[label] / 1e6:6.2f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=int, default=16, choices=(14, 15, 16))
    parser.add_argument("--lists", type=int, default=1)
    parser.add_argument("--listings", type=int, default=21_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--why", metavar="FILE", help="dump the threads' stacks in a stall")
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=SWITCH_INTERVAL_S,
        help=f"the GIL's switch interval, s (the daemon's: {SWITCH_INTERVAL_S}; Python's: 0.005)",
    )
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)  # as `rblwatch run` sets it
    bench_cycle(args.prefix, args.lists, args.why)
    bench_status(args.listings, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
