#!/usr/bin/env python3
"""Benchmark explaining bounces: 1,000 messages from the test corpus (tests/data/bounces,
cycled), through `rblwatch.bounces.explain.explain` with the catalogue's and providers' list
facts, against the stdlib alone parsing the same bytes (`email.message_from_bytes`, compat32)
— the floor any reader of these messages pays. Medians of --rounds.

    .venv/bin/python bench/bench_bounces.py      # --messages 1000 --rounds 7
"""

from __future__ import annotations

import argparse
import email
import statistics
import sys
import time
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rblwatch.bouncelists import list_facts  # noqa: E402
from rblwatch.bounces.explain import explain  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    corpus = [p.read_bytes() for p in sorted((ROOT / "tests/data/bounces").glob("*.eml"))]
    work = [corpus[i % len(corpus)] for i in range(args.messages)]
    facts = list_facts()
    ours, floor = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        explained = [explain(raw, "m", facts) for raw in work]
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        for raw in work:
            email.message_from_bytes(raw, policy=policy.compat32)
        floor.append(time.perf_counter() - start)
    bounces = sum(m.kind == "bounce" for m in explained)
    o, f = statistics.median(ours), statistics.median(floor)
    print(
        f"{args.messages} messages ({len(corpus)} distinct; {bounces} bounces), {len(facts)} lists"
    )
    print(f"explain:            median {o * 1000:.0f} ms ({args.messages / o:,.0f} messages/s)")
    print(f"stdlib parse alone: median {f * 1000:.0f} ms ({args.messages / f:,.0f} messages/s)")
    print(f"ratio explain / parse: {o / f:.1f}x")


if __name__ == "__main__":
    main()
