"""The event loop keeps answering while a big cycle is decided and committed (issue 14).

The first cycle of a /14 decides every one of its 262,144 targets (none was seen before) and
writes as many first looks: that work used to run on the event loop, and a `/metrics` scrape
during it waited seconds. Here the lookups are synthetic (the run returns at once, as a
/14's run would after its last answer) so that what is measured is the decisions and the
commit alone. A ticker task measures meanwhile the most CPU the loop's thread spent between
two of its ticks: work done on the loop itself, whatever the machine's load (wall-clock stalls
also count the time the thread waits for a core or for the GIL, which a busy host makes long;
the wall-clock figures are `bench/bench_loop.py`'s).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rblwatch.checks import CheckRun
from rblwatch.engine import CycleReport, Engine
from rblwatch.model import Outcome, OutcomeKind
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from tests.faultdns import FaultDns
from tests.test_engine import healthy, make_config

SLASH14 = 1 << 18
# the old engine spent over a second of the loop thread's CPU on this cycle in one go (the
# decisions and the first looks on the loop), the new one a few milliseconds between ticks
MAX_LOOP_CPU_S = 0.25


async def _longest_stall(work: asyncio.Task[CycleReport]) -> float:
    """The most CPU time the loop's thread spent between two runs of a 10 ms ticker, while
    `work` runs (`time.thread_time`: this thread's alone, not the machine's)."""
    worst = 0.0
    while not work.done():
        before = time.thread_time()
        await asyncio.sleep(0.01)
        worst = max(worst, time.thread_time() - before)
    return worst


def test_the_first_cycle_of_a_slash14_never_stalls_the_event_loop(
    faultdns: FaultDns, tmp_path: Path
) -> None:
    healthy(faultdns)
    cfg = make_config(
        faultdns.port,
        targets=[{"group": "mail", "addresses": ["10.0.0.0/14"]}],
        limits={"ipv4_min_prefix": 14},
        schedule={"confirm": 1},
    )
    store = SqliteStore(str(tmp_path / "state.db"))
    engine = Engine(Runtime(cfg, store))
    kind = engine.kinds["dnsbl"]
    listed = {
        f"10.0.{i >> 8}.{i & 255}": Outcome(OutcomeKind.LISTED, ("127.0.0.2",)) for i in range(2000)
    }

    async def synthetic(io: Any, lst: Any, mine: Any, durations: Any, until: Any) -> CheckRun:
        return CheckRun(outcomes=dict(listed), lookups=len(mine), queries=len(mine))

    async def no_detail(*args: Any) -> None:
        return None

    kind.run = synthetic  # type: ignore[method-assign]
    kind.annotate = no_detail  # type: ignore[method-assign]

    async def scenario() -> tuple[CycleReport, float]:
        await engine.probe("bl")
        await engine._found()  # the targets expanded before: this test is about the cycle
        work = asyncio.create_task(engine.cycle("bl"))
        stall = await _longest_stall(work)
        return await work, stall

    try:
        report, stall = asyncio.run(scenario())
        assert report.lookups == SLASH14 and not report.skipped
        assert len(report.events) == len(listed)
        assert len(store.seen("bl")) == SLASH14
    finally:
        store.close()
    assert stall < MAX_LOOP_CPU_S, f"the event loop ran {stall:.2f}s of CPU without a break"
