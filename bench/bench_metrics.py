#!/usr/bin/env python3
"""Benchmark a /metrics scrape with N current listings in a real SQLite store (SPEC §10, §11).

    .venv/bin/python bench/bench_metrics.py [--listings 21000] [--rounds 20]

Prints the median time of: the store reads a scrape makes (the marks, list rows and outbox
counts every time; the pairs only when the marks moved), the whole scrape as /metrics makes it
(`metrics.render`, store reads included) after a commit (the pairs read and formatted again)
and between commits (kept: `metrics.PairFamilies`), and prometheus_client's generic
`generate_latest` over the same registry for comparison. Nothing goes over the network.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rblwatch.metrics import build_registry, read_snapshot, render
from tests.webstate import T0, listed, make_runtime, put


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=21_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runtime = make_runtime(Path(tmp))
        n = args.listings
        put(
            runtime,
            [
                listed(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", since=T0 + i)
                for i in range(n)
            ],
        )
        registry = build_registry(runtime)
        marks = median_ms(lambda: read_snapshot(runtime), args.rounds)
        pairs = median_ms(runtime.store.pair_summaries, args.rounds)
        # a fresh registry per round: nothing kept, as at the first scrape after a commit
        cold = median_ms(lambda: render(build_registry(runtime)), args.rounds)
        render(registry)
        scrape = median_ms(lambda: render(registry), args.rounds)
        generic = median_ms(lambda: generate_latest(registry), args.rounds)
        runtime.store.close()
    print(f"{n} listings, median of {args.rounds}:")
    print(f"  store read, marks    {marks:7.1f} ms  (every scrape)")
    print(f"  store read, pairs    {pairs:7.1f} ms  (after a commit)")
    print(f"  /metrics, commit     {cold:7.1f} ms  (the first scrape after a commit)")
    print(f"  /metrics, kept       {scrape:7.1f} ms  (every other scrape; store reads included)")
    print(f"  generate_latest      {generic:7.1f} ms  (for comparison)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
