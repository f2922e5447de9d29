"""Lists whose cycles end together are decided one at a time, never side by side.

A cycle's decisions (`engine._decide`) run on the event loop a slice at a time. The first
cycles of several lists over a big target set end within moments of each other; decided side
by side (in worker threads, as they once were) they shared the GIL with the loop's thread,
which then waited behind all of them: the resolver's callbacks of the lists still looking up
stalled for up to a second at a /14 x 4 (bench/bench_loop.py --why). Counted, not timed: how
many decisions overlap.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rblwatch import engine as engine_module
from rblwatch.engine import Engine
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from tests.faultdns import FaultDns
from tests.test_engine import healthy, make_config, run

ZONES = [f"bl{i}.test" for i in range(4)]


def test_cycles_ending_together_are_decided_one_at_a_time(
    faultdns: FaultDns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for zone in ZONES:
        healthy(faultdns, zone)
    cfg = make_config(
        faultdns.port,
        lists=[{"name": z.split(".")[0], "zone": z, "kind": "ip"} for z in ZONES],
        schedule={"confirm": 1},
    )
    decide = engine_module._decide
    now, most = [0], [0]

    async def counted(*args: Any) -> Any:
        now[0] += 1
        most[0] = max(most[0], now[0])
        try:
            await asyncio.sleep(0.05)  # long enough for any other decision to start meanwhile
            return await decide(*args)
        finally:
            now[0] -= 1

    monkeypatch.setattr(engine_module, "_decide", counted)
    store = SqliteStore(str(tmp_path / "state.db"))
    engine = Engine(Runtime(cfg, store))
    names = [z.split(".")[0] for z in ZONES]

    async def scenario() -> list[Any]:
        for name in names:
            await engine.probe(name)
        return await asyncio.gather(*(engine.cycle(name) for name in names))

    try:
        reports = run(scenario)
        assert [r.lookups for r in reports] == [4] * len(names)
        assert not any(r.skipped for r in reports)
        assert most[0] == 1
    finally:
        store.close()
