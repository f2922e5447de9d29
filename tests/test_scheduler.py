"""The scheduler: APScheduler 3 jobs on the daemon's event loop (SPEC §4, §5).

Each test runs a real `AsyncIOScheduler` inside `asyncio.run` for a few seconds at most, with
1-second intervals. Where a test is about timing rather than DNS, the engine's cycle is
replaced by a coroutine that records its calls and sleeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rblwatch import scheduler as scheduler_mod
from rblwatch.config import Config, parse_config
from rblwatch.engine import CycleReport, Engine
from rblwatch.model import EventKind, Health
from rblwatch.runtime import Runtime
from rblwatch.scheduler import Scheduler, cycle_deadline
from rblwatch.store.sqlite import SqliteStore
from tests.faultdns import Fault, FaultDns

ZONE = "bl.test"


def qname(address: str, zone: str = ZONE) -> str:
    return ".".join([*reversed(address.split(".")), zone])


def make_config(port: int, *, lists: list[Any] | None = None, **schedule: Any) -> Config:
    return parse_config(
        {
            "resolver": {"nameservers": [f"127.0.0.1:{port}"], "timeout": "2s", "attempts": 1},
            "schedule": {"interval": 1, "jitter": 0, "health_interval": 3600, **schedule},
            "lists": lists or [{"name": "bl", "zone": ZONE, "kind": "ip"}],
            "targets": [{"group": "mail", "addresses": ["192.0.2.0/30"]}],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


class SlowCycles:
    """Stands in for Engine.cycle/probe: records each call and takes `seconds` to finish."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[tuple[str, set[str] | None]] = []
        self.cancelled = 0

    async def cycle(
        self, name: str, only: set[str] | None = None, deadline: float | None = None
    ) -> CycleReport:
        self.calls.append((name, only))
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return CycleReport(name)

    async def probe(self, name: str) -> None:
        return None


def with_slow_cycles(monkeypatch: pytest.MonkeyPatch, engine: Engine, seconds: float) -> SlowCycles:
    slow = SlowCycles(seconds)
    monkeypatch.setattr(engine, "cycle", slow.cycle)
    monkeypatch.setattr(engine, "probe", slow.probe)
    return slow


def test_a_cycle_still_running_when_the_next_is_due_makes_that_one_skipped_and_counted(
    monkeypatch: pytest.MonkeyPatch, faultdns: FaultDns, store: SqliteStore
) -> None:
    rt = Runtime(make_config(faultdns.port), store)
    engine = Engine(rt)
    slow = with_slow_cycles(monkeypatch, engine, 2.2)
    # the deadline is lifted here so that only max_instances=1 keeps the cycles apart
    monkeypatch.setattr(scheduler_mod, "cycle_deadline", lambda interval: 60.0)
    sched = Scheduler(rt, engine)

    async def scenario() -> None:
        sched.start()
        try:
            while not slow.calls:  # the first cycle: at the interval's next grid point
                await asyncio.sleep(0.01)
            await asyncio.sleep(1.5)  # it runs 2.2s: the one due 1s after it starts skips
        finally:
            sched.shutdown()

    asyncio.run(scenario())
    assert slow.calls == [("bl", None)]
    assert rt.stats.list("bl").cycles_skipped == 1
    assert rt.stats.list("bl").cycles_overrun == 0


def test_a_cycle_at_its_deadline_is_cut_counted_as_overrun_and_commits_what_it_has(
    faultdns: FaultDns, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.ANSWER, a=["127.0.0.2"])
    faultdns.rule(qname("192.0.2.1"), Fault.DELAY, a=["127.0.0.2"], delay_ms=3000)
    rt = Runtime(make_config(faultdns.port), store)
    engine = Engine(rt)
    sched = Scheduler(rt, engine)

    async def scenario() -> None:
        sched.start()  # the health probe at once, the first cycle at +1s, its deadline at +1.9s
        try:
            await asyncio.sleep(2.3)
        finally:
            sched.shutdown()

    with caplog.at_level("WARNING", logger="rblwatch.scheduler"):
        asyncio.run(scenario())
    counters = rt.stats.list("bl")
    # cycles start on a grid of whole seconds: one or two of them fit in the 2.3 s, each cut
    assert counters.cycles_overrun in (1, 2)
    assert counters.cycles_skipped == 0  # the deadline ends a cycle before the next is due
    assert faultdns.count(qname("192.0.2.1")) >= 1
    [status] = store.list_statuses()
    # the cut cycle wrote what it had, in one commit: its row, the three first looks
    assert status.last_cycle_end is not None and status.last_cycle_skipped == "deadline"
    assert status.last_cycle_success is None
    assert store.pairs() == []  # nothing listed answered (confirm: 2 in any case)
    assert store.seen("bl") == {"192.0.2.0", "192.0.2.2", "192.0.2.3"}
    lines = [r.getMessage() for r in caplog.records if "cut at its" in r.getMessage()]
    assert len(lines) == counters.cycles_overrun
    for line in lines:
        assert "3 of 4 lookups answered and committed, 1 not checked" in line


@pytest.mark.parametrize("interval", [1.0, 1.05, 10.0, 1800.0])
def test_the_deadline_of_a_cycle_is_shorter_than_its_interval(interval: float) -> None:
    assert 0 < cycle_deadline(interval) < interval


def test_confirmations_of_one_list_are_batched_into_one_round_after_confirm_delay(
    faultdns: FaultDns, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    faultdns.rule(qname("127.0.0.2"), Fault.ANSWER, a=["127.0.0.2"])
    for address in ("192.0.2.1", "192.0.2.2"):
        faultdns.rule(qname(address), Fault.ANSWER, a=["127.0.0.2"])
    rt = Runtime(make_config(faultdns.port, confirm=2, confirm_delay="400ms"), store)
    engine = Engine(rt)
    sched = Scheduler(rt, engine)
    rounds: list[tuple[set[str] | None, float]] = []
    real_cycle = engine.cycle

    async def recording(name: str, only: set[str] | None = None) -> CycleReport:
        rounds.append((only, time.monotonic()))
        return await real_cycle(name, only)

    monkeypatch.setattr(engine, "cycle", recording)

    async def scenario() -> float:
        sched.aps.start()  # no cycle jobs: this test drives the one full cycle itself
        try:
            await engine.cycle("bl")  # two pending listings → confirm_later(bl, {.1, .2})
            asked = time.monotonic()
            await asyncio.sleep(0.25)
            sched.confirm_later("bl", {"192.0.2.3"})  # joins the round, does not postpone it
            confirm_jobs = [j for j in sched.aps.get_jobs() if j.id.startswith("confirm:")]
            assert [j.id for j in confirm_jobs] == ["confirm:bl"]
            await asyncio.sleep(0.7)
            return asked
        finally:
            sched.shutdown()

    asked = asyncio.run(scenario())
    assert [only for only, _ in rounds] == [None, {"192.0.2.1", "192.0.2.2", "192.0.2.3"}]
    assert 0.35 <= rounds[1][1] - asked < 0.6  # confirm_delay after the first request
    kinds = sorted((e.kind, e.target) for e in store.events())
    assert kinds == [(EventKind.LISTED, "192.0.2.1"), (EventKind.LISTED, "192.0.2.2")]


def test_schedule_all_after_a_config_swap_replaces_the_jobs_and_keeps_old_counters(
    monkeypatch: pytest.MonkeyPatch, faultdns: FaultDns, store: SqliteStore
) -> None:
    def lst(name: str, **kw: Any) -> dict[str, Any]:
        return {"name": name, "zone": f"{name}.test", "kind": "ip", **kw}

    rt = Runtime(make_config(faultdns.port, lists=[lst("a"), lst("b")], interval=600), store)
    engine = Engine(rt)
    with_slow_cycles(monkeypatch, engine, 0)
    sched = Scheduler(rt, engine)

    def jobs() -> dict[str, float | None]:
        return {  # the interval jobs (a list's first cycle at start is a one-off beside them)
            j.id: getattr(j.trigger, "interval", None) and j.trigger.interval.total_seconds()
            for j in sched.aps.get_jobs()
            if not j.id.startswith("first:")
        }

    async def scenario() -> tuple[dict[str, float | None], dict[str, float | None]]:
        sched.start()
        try:
            before = jobs()
            rt.stats.list("a").cycles_skipped = 3
            rt.config = make_config(
                faultdns.port, lists=[lst("b", interval=7), lst("c")], interval=600
            )
            sched.schedule_all()
            return before, jobs()
        finally:
            sched.shutdown()

    before, after = asyncio.run(scenario())
    assert before == {"health:a": 3600, "cycle:a": 600, "health:b": 3600, "cycle:b": 600}
    assert after == {"health:b": 3600, "cycle:b": 7, "health:c": 3600, "cycle:c": 600}
    assert set(rt.stats.lists) == {"a", "b", "c"}
    assert rt.stats.list("a").cycles_skipped == 3  # a reload never drops counts


def test_a_reload_keeps_the_jobs_of_lists_whose_timing_did_not_change(
    monkeypatch: pytest.MonkeyPatch, faultdns: FaultDns, store: SqliteStore
) -> None:
    def lst(name: str, **kw: Any) -> dict[str, Any]:
        return {"name": name, "zone": f"{name}.test", "kind": "ip", **kw}

    rt = Runtime(make_config(faultdns.port, lists=[lst("a"), lst("b")], interval=600), store)
    engine = Engine(rt)
    with_slow_cycles(monkeypatch, engine, 0)
    sched = Scheduler(rt, engine)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        sched.start()
        try:
            await asyncio.sleep(0.2)  # the first probes ran; the next ones are an hour away
            before = {j.id: j.next_run_time for j in sched.aps.get_jobs()}
            rt.config = make_config(
                faultdns.port,
                lists=[lst("a", codes={"127.0.0.2": "x"}), lst("b", interval=9)],
                interval=600,
            )
            sched.schedule_all()
            return before, {j.id: j.next_run_time for j in sched.aps.get_jobs()}
        finally:
            sched.shutdown()

    before, after = asyncio.run(scenario())
    # a's codes changed but not its timing: same jobs, same next runs (no probe, no cycle now)
    assert after["health:a"] == before["health:a"]
    assert after["cycle:a"] == before["cycle:a"]
    # b's interval changed: new jobs, probing again at once
    assert after["health:b"] != before["health:b"]


def test_every_instance_runs_a_list_s_cycles_at_the_same_moments(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # cycles fall on a grid of the interval from a fixed epoch, so instances started at any
    # time cycle a list together, each over its own shards (a round is one cycle's time);
    # a first cycle at start comes on top unless the grid's first is about as soon
    async def scenario() -> list[tuple[float, float, bool]]:
        seen = []
        for _ in range(2):
            rt = Runtime(make_config(faultdns.port, interval="40s", jitter="0s"), store)
            sched = Scheduler(rt, Engine(rt))
            sched.start()
            try:
                job = sched.aps.get_job("cycle:bl")
                after = job.trigger.get_next_fire_time(job.next_run_time, job.next_run_time)
                first = sched.aps.get_job("first:bl") is not None
                seen.append((job.next_run_time.timestamp(), after.timestamp(), first))
            finally:
                sched.shutdown()
            await asyncio.sleep(0.3)  # the second instance starts a little later
        return seen

    started = time.time()
    seen = asyncio.run(scenario())
    epoch = scheduler_mod.GRID_EPOCH.timestamp()
    for grid, after, first in seen:
        assert (grid - epoch) % 40 == 0 and after == grid + 40
        # the scheduler's "now" is a little after `started` (up to a second on a loaded
        # machine): a first cycle unless the grid's first comes within now+1 + interval / 10
        edge = started + 1 + 4
        if grid <= edge:
            assert not first
        elif grid > edge + 1:
            assert first
    assert abs(seen[0][0] - seen[1][0]) in (0, 40)


def test_a_grid_point_is_the_first_multiple_of_the_interval_after_now() -> None:
    epoch = scheduler_mod.GRID_EPOCH
    at = epoch + dt.timedelta(seconds=95)
    assert scheduler_mod.grid_after(at, 40) == epoch + dt.timedelta(seconds=120)
    assert scheduler_mod.grid_after(epoch + dt.timedelta(seconds=120), 40) == epoch + dt.timedelta(
        seconds=160
    )


def test_a_takeover_due_about_when_the_list_s_next_cycle_runs_is_left_to_that_cycle(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    async def scenario() -> tuple[bool, bool]:
        rt = Runtime(make_config(faultdns.port, interval="40s", jitter="0s"), store)
        sched = Scheduler(rt, Engine(rt))
        sched.start()
        try:
            regular = sched.aps.get_job("cycle:bl").next_run_time
            until = (regular - scheduler_mod._now()).total_seconds()
            if until < 3:  # too close to tell "at once" from "with the next cycle"
                await asyncio.sleep(until + 0.2)
                regular = sched.aps.get_job("cycle:bl").next_run_time
                until = (regular - scheduler_mod._now()).total_seconds()
            sched.takeover("bl", {3}, until - 0.5)  # as due as the next cycle: no extra one
            late = sched.aps.get_job("takeover:bl") is not None
            sched.takeover("bl", {4}, 0.0)  # overdue well before it: at once
            early = sched.aps.get_job("takeover:bl") is not None
            return late, early
        finally:
            sched.shutdown()

    late, early = asyncio.run(scenario())
    assert not late and early


def test_a_skipped_cycle_is_made_up_once_healthy_unless_the_next_comes_as_soon(
    faultdns: FaultDns, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # interval 40s: a make-up within 4s (interval / 10) of the grid's cycle would be a second
    # cycle right beside it, twice the queries on the list's daily budget for nothing
    async def scenario() -> tuple[bool, bool, bool]:
        rt = Runtime(make_config(faultdns.port, interval="40s", jitter="0s"), store)
        engine = Engine(rt)
        sched = Scheduler(rt, engine)
        monkeypatch.setattr(engine, "health_of", lambda name: Health.HEALTHY)
        sched.start()
        try:
            if (job := sched.aps.get_job("first:bl")) is not None:
                job.remove()  # the list's own first cycle: not what this test is about
            regular = sched.aps.get_job("cycle:bl").next_run_time
            real_now = scheduler_mod._now
            sched._owed.add("bl")
            monkeypatch.setattr(scheduler_mod, "_now", lambda: regular - dt.timedelta(seconds=1))
            await sched._make_up("bl")
            near = sched.aps.get_job("first:bl") is not None
            sched._owed.add("bl")
            monkeypatch.setattr(scheduler_mod, "_now", lambda: regular - dt.timedelta(seconds=20))
            await sched._make_up("bl")
            far = sched.aps.get_job("first:bl") is not None
            monkeypatch.setattr(scheduler_mod, "_now", real_now)
            still_owed = "bl" in sched._owed
            return near, far, still_owed
        finally:
            sched.shutdown()

    near, far, owed_after = asyncio.run(scenario())
    assert not near  # the grid's cycle, a second later, makes it up
    assert far  # 20 s before it: at once
    assert not owed_after  # made up: owed no more
