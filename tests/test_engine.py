"""The engine: one list's cycle, health probes and budgets against real peers (SPEC §3, §4, §5).

Every test drives `Engine` directly in one `asyncio.run`, over a real SQLite store in tmp_path.
rbldnsd plays a healthy list; faultdns plays lists that fail, and counts what was asked, so
"no lookups were sent" is an observation, not an assumption.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rblwatch.cluster import SHARDS, Instance, Lease, View
from rblwatch.config import Config, parse_config
from rblwatch.engine import CycleReport, Engine, utc_day
from rblwatch.model import (
    CycleCommit,
    Event,
    EventKind,
    Health,
    ListStatus,
    PairState,
    PairStatus,
    Reason,
)
from rblwatch.runtime import Runtime
from rblwatch.store import open_store
from rblwatch.store.sqlite import SqliteStore
from tests.faultdns import Fault, FaultDns
from tests.postgres import Cluster
from tests.rbldnsd import Rbldnsd

ZONE = "bl.test"
T0 = 1_795_780_800.0  # 2026-11-27T12:00:00Z, for tests that need a fixed clock
BL = {"name": "bl", "zone": ZONE, "kind": "ip", "codes": {"127.0.0.2": "spam source"}}
FOUR = ["192.0.2.0/30"]  # 192.0.2.0 .. 192.0.2.3

R = TypeVar("R")


def qname(address: str, zone: str = ZONE) -> str:
    return ".".join([*reversed(address.split(".")), zone])


def healthy(dns: FaultDns, zone: str = ZONE) -> None:
    """The RFC 5782 test points answer as they should (127.0.0.1 falls to the NXDOMAIN default)."""
    dns.rule(qname("127.0.0.2", zone), Fault.ANSWER, a=["127.0.0.2"])


def listing(dns: FaultDns, address: str, zone: str = ZONE) -> None:
    dns.rule(qname(address, zone), Fault.ANSWER, a=["127.0.0.2"])


def make_config(
    port: int,
    *,
    lists: list[Any] | None = None,
    targets: list[dict[str, Any]] | None = None,
    schedule: dict[str, Any] | None = None,
    resolver: dict[str, Any] | None = None,
    **extra: Any,
) -> Config:
    ours = {"nameservers": [f"127.0.0.1:{port}"], "timeout": "200ms", "attempts": 1}
    return parse_config(
        {
            "resolver": {**ours, **(resolver or {})},
            "schedule": {"confirm": 2, "jitter": 0, **(schedule or {})},
            "lists": lists or [BL],
            "targets": targets or [{"group": "mail", "addresses": FOUR}],
            **extra,
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


def run(scenario: Callable[[], Coroutine[Any, Any, R]]) -> R:
    """One event loop per test: the engine's locks and resolver belong to it."""
    return asyncio.run(scenario())


def events(store: SqliteStore, kind: EventKind | None = None) -> list[Event]:
    return [e for e in store.events(limit=1000) if kind is None or e.kind is kind]


def pair(store: SqliteStore, target: str, list_name: str = "bl") -> PairState | None:
    return next((p for p in store.pairs(list_name) if p.target == target), None)


def target_queries(dns: FaultDns, addresses: list[str], zone: str = ZONE) -> int:
    return sum(dns.count(qname(a, zone)) for a in addresses)


ADDRS = ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]


# -- listings and confirmation ------------------------------------------------------------------


def test_a_listed_target_on_a_healthy_list_is_one_initial_listed_event_after_confirmation(
    rbldnsd: Rbldnsd, store: SqliteStore
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2", "192.0.2.1"])
    rbldnsd.start()
    engine = Engine(Runtime(make_config(rbldnsd.port or 0), store))
    asked: list[tuple[str, set[str]]] = []
    engine.on_confirm = lambda name, targets: asked.append((name, set(targets)))

    async def scenario() -> None:
        first = await engine.cycle("bl")
        assert first.lookups == 4 and first.events == []
        assert asked == [("bl", {"192.0.2.1"})]  # the pending listing, to re-query soon
        row = pair(store, "192.0.2.1")
        assert row is not None and row.status is PairStatus.CLEAN and row.pending_count == 1

        round_ = await engine.cycle("bl", only={"192.0.2.1"})
        assert round_.lookups == 1
        [event] = round_.events
        assert (event.kind, event.target, event.group) == (EventKind.LISTED, "192.0.2.1", "mail")
        assert event.initial is True and event.codes == ("127.0.0.2",)

        again = await engine.cycle("bl")
        assert again.events == [] and again.confirm == set()

    run(scenario)
    [event] = events(store)
    assert event.kind is EventKind.LISTED
    row = pair(store, "192.0.2.1")
    assert row is not None and row.status is PairStatus.LISTED
    assert row.meanings == ("spam source",)
    assert [p.target for p in store.pairs()] == ["192.0.2.1"]  # clean targets cost no rows
    assert len(asked) == 1


def test_a_listing_after_a_clean_baseline_is_not_initial_and_needs_two_agreeing_cycles(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    engine = Engine(Runtime(make_config(faultdns.port), store))

    async def scenario() -> None:
        assert (await engine.cycle("bl")).events == []  # the silent baseline
        listing(faultdns, "192.0.2.3")
        assert (await engine.cycle("bl")).events == []
        [event] = (await engine.cycle("bl")).events
        assert event.kind is EventKind.LISTED and event.initial is False

    run(scenario)
    assert [(e.kind, e.target) for e in events(store)] == [(EventKind.LISTED, "192.0.2.3")]


@pytest.mark.parametrize("fault", [Fault.SERVFAIL, Fault.DROP, Fault.REFUSED])
def test_lookup_errors_never_change_a_stored_listing(
    faultdns: FaultDns, store: SqliteStore, fault: Fault
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    rt = Runtime(make_config(faultdns.port, schedule={"confirm": 1}), store)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.cycle("bl")
        before = pair(store, "192.0.2.1")
        assert before is not None and before.status is PairStatus.LISTED
        faultdns.rule(qname("192.0.2.1"), fault)
        for _ in range(3):
            report = await engine.cycle("bl")
            assert report.errors == 1 and report.events == [] and report.confirm == set()
            assert pair(store, "192.0.2.1") == before

    run(scenario)
    assert [e.kind for e in events(store)] == [EventKind.LISTED]
    reason = {Fault.SERVFAIL: Reason.SERVFAIL, Fault.DROP: Reason.TIMEOUT}.get(
        fault, Reason.REFUSED
    )
    assert rt.stats.list("bl").errors[reason] == 3
    # a cycle with some erring lookups still completed: it counts as a success
    [status] = store.list_statuses()
    assert status.last_cycle_success is not None and status.last_cycle_errors == 1


# -- list health --------------------------------------------------------------------------------


def test_an_unhealthy_list_sends_no_lookups_but_writes_its_aggregate_row(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # no rule for 127.0.0.2: the listed test point answers NXDOMAIN, so the list is dead
    rt = Runtime(make_config(faultdns.port), store)
    engine = Engine(rt)

    report = run(lambda: engine.cycle("bl"))

    assert report.skipped == "list_unhealthy" and report.lookups == 0 and report.errors == 4
    assert faultdns.count(qname("127.0.0.2")) == 1  # the probe asked its test points ...
    assert target_queries(faultdns, ADDRS) == 0  # ... and nothing else
    [status] = store.list_statuses()
    assert status.health is Health.DEAD
    assert status.last_cycle_end is not None and status.last_cycle_success is None
    assert (status.targets, status.last_cycle_lookups, status.last_cycle_errors) == (4, 0, 4)
    assert rt.stats.list("bl").errors[Reason.LIST_UNHEALTHY] == 4
    assert store.pairs() == [] and store.seen("bl") == set()
    [event] = events(store)
    assert event.kind is EventKind.LIST_UNHEALTHY and event.target is None


class SlowHealthWrites(SqliteStore):
    """A store on a slow disk: writing a list's health takes a while."""

    def record_health(self, *args: Any, **kwargs: Any) -> Event | None:
        time.sleep(0.2)
        return super().record_health(*args, **kwargs)


class ThreadsSeen(SqliteStore):
    """A store that notes which threads call it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.threads: set[int] = set()

    def list_statuses(self) -> list[ListStatus]:
        self.threads.add(threading.get_ident())
        return super().list_statuses()

    def pairs(self, list_name: str | None = None) -> list[PairState]:
        self.threads.add(threading.get_ident())
        return super().pairs(list_name)


def test_a_cycle_never_calls_the_store_on_the_event_loop_s_thread(
    faultdns: FaultDns, tmp_path: Path
) -> None:
    # the stored health used to be read synchronously on the loop at the first cycle: a slow
    # disk (or a database round trip) stalled every lookup in flight
    healthy(faultdns)
    store = ThreadsSeen(str(tmp_path / "state.db"))
    engine = Engine(Runtime(make_config(faultdns.port), store))
    try:
        run(lambda: engine.cycle("bl"))
    finally:
        store.close()
    assert store.threads and threading.get_ident() not in store.threads


def test_two_probes_of_a_dead_list_at_once_raise_one_list_unhealthy_event(
    faultdns: FaultDns, tmp_path: Path
) -> None:
    # the test point answers NXDOMAIN: dead. Both probes hear so at once; the first is still
    # writing DEAD when the second compares with the stored health, unless they take turns
    store = SlowHealthWrites(str(tmp_path / "slow.db"))
    rt = Runtime(make_config(faultdns.port), store)
    engine = Engine(rt)

    async def scenario() -> None:
        await asyncio.gather(engine.probe("bl"), engine.probe("bl"))

    try:
        run(scenario)
        assert [e.kind for e in events(store)] == [EventKind.LIST_UNHEALTHY]
    finally:
        store.close()
    assert rt.stats.events[EventKind.LIST_UNHEALTHY] == 1


def test_a_list_that_dies_keeps_its_listings_and_recovers_with_one_event(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    engine = Engine(Runtime(make_config(faultdns.port, schedule={"confirm": 1}), store))

    async def scenario() -> None:
        await engine.cycle("bl")
        listed = pair(store, "192.0.2.1")
        assert listed is not None and listed.status is PairStatus.LISTED

        faultdns.clear()  # the server forgets the zone: everything NXDOMAIN, test point too
        verdict = await engine.probe("bl")
        assert verdict is not None and verdict.health is Health.DEAD
        for _ in range(2):
            report = await engine.cycle("bl")
            assert report.skipped == "list_unhealthy" and report.events == []
        assert target_queries(faultdns, ADDRS) == 0
        assert pair(store, "192.0.2.1") == listed  # NXDOMAIN from a dead list is no delisting

        healthy(faultdns)
        listing(faultdns, "192.0.2.1")
        await engine.probe("bl")
        await engine.probe("bl")  # still healthy: no second event
        report = await engine.cycle("bl")
        assert report.lookups == 4 and report.events == []

    run(scenario)
    kinds = [e.kind for e in events(store)]
    assert kinds == [EventKind.LISTED, EventKind.LIST_UNHEALTHY, EventKind.LIST_RECOVERED]


# -- budgets and rates --------------------------------------------------------------------------


# the limit is 10; the cycle's own health probe spends 2 (the test points) before deciding
@pytest.mark.parametrize(("used", "sent"), [(4, True), (5, False)])
def test_a_cycle_that_would_exceed_the_daily_limit_is_skipped_as_budget_exhausted(
    faultdns: FaultDns, store: SqliteStore, used: int, sent: bool
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    cfg = make_config(
        faultdns.port, lists=[{**BL, "daily_query_limit": 10}], schedule={"confirm": 1}
    )
    rt = Runtime(cfg, store)
    engine = Engine(rt, clock=lambda: T0)
    store.commit(CycleCommit(list="bl", budget_day=utc_day(T0), budget_queries=used))

    report = run(lambda: engine.cycle("bl"))

    if sent:  # 4 used + 2 probes + 4 targets = 10: exactly the limit is still allowed
        assert report.lookups == 4 and report.skipped == ""
        # and the TXT query for the new listing (counted, though the check before the
        # cycle could only foresee the lookups)
        assert store.budget_used("bl", utc_day(T0)) == 11
        return
    assert report.skipped == "budget_exhausted" and report.lookups == 0
    assert target_queries(faultdns, ADDRS) == 0
    assert rt.stats.list("bl").errors[Reason.BUDGET_EXHAUSTED] == 4
    assert store.pairs() == [] and events(store) == [] and store.seen("bl") == set()
    assert store.budget_used("bl", utc_day(T0)) == 7  # 5 used + the 2 probe queries
    [status] = store.list_statuses()
    assert status.health is Health.HEALTHY and status.last_cycle_success is None


def test_a_cycle_counts_every_datagram_it_sent_into_the_day_s_budget(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    faultdns.rule(qname("192.0.2.2"), Fault.DROP)  # two attempts, both sent, both counted
    cfg = make_config(faultdns.port, resolver={"timeout": "100ms", "attempts": 2})
    engine = Engine(Runtime(cfg, store), clock=lambda: T0)

    async def scenario() -> None:
        await engine.cycle("bl")
        assert store.budget_used("bl", utc_day(T0)) == 5
        await engine.cycle("bl")

    run(scenario)
    assert store.budget_used("bl", utc_day(T0)) == 10 == target_queries(faultdns, ADDRS)


def test_max_qps_spaces_a_cycle_s_queries_out(faultdns: FaultDns, store: SqliteStore) -> None:
    healthy(faultdns)
    ten = ["198.51.100.0/29", "198.51.100.8/31"]
    cfg = make_config(
        faultdns.port,
        lists=[{**BL, "max_qps": 20}],
        targets=[{"group": "mail", "addresses": ten}],
    )
    engine = Engine(Runtime(cfg, store))

    async def scenario() -> float:
        await engine.probe("bl")
        start = time.monotonic()
        report = await engine.cycle("bl")
        assert report.lookups == 10
        return time.monotonic() - start

    assert run(scenario) >= 9 / 20


# -- targets ------------------------------------------------------------------------------------


def test_hostnames_are_resolved_again_every_cycle_and_a_failing_one_fails_nothing(
    faultdns: FaultDns, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    healthy(faultdns)
    faultdns.rule("mx1.example.test", Fault.ANSWER, a=["192.0.2.77"])
    # gone.example.test has no rule: NXDOMAIN
    group = {
        "group": "mail",
        "addresses": ["192.0.2.1"],
        "hostnames": ["mx1.example.test", "gone.example.test"],
    }
    rt = Runtime(make_config(faultdns.port, targets=[group]), store)
    engine = Engine(rt)

    async def scenario() -> None:
        first = await engine.cycle("bl")
        assert first.lookups == 2 and first.skipped == ""
        faultdns.rule("mx1.example.test", Fault.ANSWER, a=["192.0.2.78"])  # the MX moved
        second = await engine.cycle("bl")
        assert second.lookups == 2

    with caplog.at_level(logging.WARNING, logger="rblwatch.engine"):
        run(scenario)
    assert faultdns.count("mx1.example.test", rdtype="A") == 2
    assert faultdns.count(qname("192.0.2.77")) == 1
    assert faultdns.count(qname("192.0.2.78")) == 1
    assert faultdns.count(qname("192.0.2.1")) == 2
    assert "gone.example.test" in caplog.text
    assert rt.targets_per_group == {"mail": 2}


def test_targets_per_group_counts_expanded_addresses_resolved_hostnames_and_domains(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    faultdns.rule("mx1.example.test", Fault.ANSWER, a=["192.0.2.77", "192.0.2.78"])
    groups = [
        {"group": "mail", "addresses": FOUR, "hostnames": ["mx1.example.test"]},
        {"group": "web", "domains": ["example.com"]},
    ]
    rt = Runtime(make_config(faultdns.port, targets=groups), store)

    report = run(lambda: Engine(rt).cycle("bl"))

    assert rt.targets_per_group == {"mail": 6, "web": 1}
    assert report.lookups == 6  # an ip list takes no domains


def test_a_target_reached_through_two_groups_or_a_hostname_is_looked_up_and_alerted_once(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    """One pair is one decision: a second copy of the target would raise the event twice."""
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    faultdns.rule("mx1.example.test", Fault.ANSWER, a=["192.0.2.1"])
    groups = [
        {"group": "mail", "addresses": ["192.0.2.1"]},
        {"group": "relay", "addresses": ["192.0.2.1"], "hostnames": ["mx1.example.test"]},
    ]
    rt = Runtime(make_config(faultdns.port, targets=groups, schedule={"confirm": 1}), store)

    report = run(lambda: Engine(rt).cycle("bl"))

    assert report.lookups == 1
    [event] = events(store)
    assert (event.kind, event.target, event.group) == (EventKind.LISTED, "192.0.2.1", "mail")
    assert rt.targets_per_group == {"mail": 1}


def test_allow_list_hits_are_events_without_alerts_while_block_list_hits_are_alerted(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    healthy(faultdns, "wl.test")
    listing(faultdns, "192.0.2.1")
    listing(faultdns, "192.0.2.1", "wl.test")
    wl = {"name": "wl", "zone": "wl.test", "kind": "ip", "purpose": "allow"}
    cfg = make_config(
        faultdns.port,
        lists=[BL, wl],
        schedule={"confirm": 1},
        alerts={"receivers": [{"name": "ops", "url": "http://127.0.0.1:9/hook"}]},
    )
    engine = Engine(Runtime(cfg, store))

    async def scenario() -> None:
        await engine.cycle("bl")
        await engine.cycle("wl")

    run(scenario)
    assert sorted((e.list, e.kind) for e in events(store)) == [
        ("bl", EventKind.LISTED),
        ("wl", EventKind.LISTED),
    ]
    assert store.outbox_counts() == {"ops": 1}
    [delivery] = store.due_deliveries("ops", time.time() + 60)
    assert delivery.event.list == "bl"


def test_a_target_removed_from_the_config_leaves_the_store_quietly_and_is_no_longer_asked(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    """No longer watched is not delisted: the row goes, no event is raised."""
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    rt = Runtime(make_config(faultdns.port, schedule={"confirm": 1}), store)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.cycle("bl")
        rt.config = make_config(
            faultdns.port,
            schedule={"confirm": 1},
            targets=[{"group": "mail", "addresses": ["192.0.2.2"]}],
        )
        report = await engine.cycle("bl")
        assert report.lookups == 1 and report.events == []

    run(scenario)
    assert pair(store, "192.0.2.1") is None
    assert faultdns.count(qname("192.0.2.1"), rdtype="A") == 1
    assert [e.kind for e in events(store)] == [EventKind.LISTED]
    assert store.list_statuses()[0].targets == 1


def test_a_confirmation_round_leaves_the_rows_of_targets_it_did_not_ask_alone(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    engine = Engine(Runtime(make_config(faultdns.port, schedule={"confirm": 1}), store))

    async def scenario() -> None:
        await engine.cycle("bl")
        await engine.cycle("bl", only={"192.0.2.2"})

    run(scenario)
    row = pair(store, "192.0.2.1")
    assert row is not None and row.status is PairStatus.LISTED


def test_a_cycle_of_a_list_no_longer_configured_does_nothing(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    engine = Engine(Runtime(make_config(faultdns.port), store))

    report = run(lambda: engine.cycle("gone"))

    assert report.skipped == "list no longer configured"
    assert faultdns.queries == [] and store.list_statuses() == []


def test_a_list_found_unhealthy_during_a_scan_has_that_scan_s_answers_ignored(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    # the answer held back long enough (and the timeout longer) for the probe below to end
    # while the scan still waits, however loaded the machine
    faultdns.rule(qname("192.0.2.1"), Fault.DELAY, a=["127.0.0.2"], delay_ms=1000)
    cfg = make_config(faultdns.port, schedule={"confirm": 1}, resolver={"timeout": "3s"})
    rt = Runtime(cfg, store)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.probe("bl")
        cycle = asyncio.create_task(engine.cycle("bl"))
        await asyncio.sleep(0.1)
        faultdns.rule(qname("127.0.0.1"), Fault.ANSWER, a=["127.0.0.2"])  # lists the world
        assert (await engine.probe("bl")).health is Health.LISTS_EVERYTHING  # type: ignore[union-attr]
        report = await cycle
        assert report.skipped == Reason.LIST_UNHEALTHY.value

    run(scenario)
    assert pair(store, "192.0.2.1") is None
    assert events(store, EventKind.LISTED) == []


def test_the_queries_of_a_scan_whose_answers_are_thrown_away_still_count_against_the_budget(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # found in review: the list found unhealthy mid-scan had its cycle's queries sent, and
    # the day's budget never heard of them
    healthy(faultdns)
    faultdns.rule(qname("192.0.2.1"), Fault.DELAY, a=["127.0.0.2"], delay_ms=1000)
    cfg = make_config(
        faultdns.port,
        lists=[{**BL, "daily_query_limit": 1000}],
        schedule={"confirm": 1},
        resolver={"timeout": "3s"},
    )
    rt = Runtime(cfg, store)
    engine = Engine(rt, clock=lambda: T0)

    async def scenario() -> None:
        await engine.probe("bl")  # 2 test-point queries
        cycle = asyncio.create_task(engine.cycle("bl"))
        await asyncio.sleep(0.1)
        faultdns.rule(qname("127.0.0.1"), Fault.ANSWER, a=["127.0.0.2"])  # lists the world
        await engine.probe("bl")  # 2 more
        assert (await cycle).skipped == Reason.LIST_UNHEALTHY.value

    run(scenario)
    assert store.budget_used("bl", utc_day(T0)) == 2 + 2 + 4  # the cycle's 4 lookups too
    assert rt.stats.list("bl").queries == 4  # and rblwatch_queries_total
    assert pair(store, "192.0.2.1") is None


def test_a_cycle_cut_at_its_deadline_commits_the_pairs_it_has_answers_for(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # issue 14: a cycle that reached its deadline used to be thrown away whole. Now the run
    # stops sending, and what was answered goes through the decisions and the commit as usual
    healthy(faultdns)
    listing(faultdns, "192.0.2.2")
    faultdns.rule(qname("192.0.2.1"), Fault.DELAY, a=["127.0.0.2"], delay_ms=2000)
    cfg = make_config(faultdns.port, schedule={"confirm": 1}, resolver={"timeout": "3s"})
    rt = Runtime(cfg, store)
    engine = Engine(rt)

    async def scenario() -> CycleReport:
        await engine.probe("bl")
        start = time.monotonic()
        report = await engine.cycle("bl", deadline=0.3)
        assert time.monotonic() - start < 1.5  # the deadline, not the 2s answer (nor 3s)
        return report

    report = run(scenario)
    assert report.cut and report.unchecked == 1
    assert (report.lookups, report.errors) == (4, 1)
    listed = pair(store, "192.0.2.2")
    assert listed is not None and listed.status is PairStatus.LISTED
    [event] = events(store, EventKind.LISTED)
    assert event.target == "192.0.2.2"
    assert [e.target for e in report.events] == ["192.0.2.2"]
    # the one not answered keeps its state (none) and says why it was not checked
    assert pair(store, "192.0.2.1") is None
    [err] = store.pair_errors("bl")
    assert (err.target, err.reason) == ("192.0.2.1", Reason.DEADLINE)
    assert "192.0.2.1" not in store.seen("bl")  # no first look: its baseline waits
    assert store.seen("bl") == {"192.0.2.0", "192.0.2.2", "192.0.2.3"}
    [status] = store.list_statuses()
    assert status.last_cycle_skipped == "deadline"
    assert status.last_cycle_end is not None and status.last_cycle_success is None
    assert (status.last_cycle_lookups, status.last_cycle_errors) == (4, 1)
    counters = rt.stats.list("bl")
    assert counters.errors[Reason.DEADLINE] == 1
    assert counters.queries == 4 + 1  # every lookup's query, and the new listing's TXT


def test_a_target_not_answered_by_the_deadline_keeps_its_state(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    cfg = make_config(faultdns.port, schedule={"confirm": 1}, resolver={"timeout": "3s"})
    rt = Runtime(cfg, store)
    engine = Engine(rt)

    async def scenario() -> CycleReport:
        await engine.probe("bl")
        first = await engine.cycle("bl", deadline=2.0)
        assert not first.cut and [e.kind for e in first.events] == [EventKind.LISTED]
        # delisted now, but the answer comes too late: nothing may change for it
        faultdns.rule(qname("192.0.2.1"), Fault.DELAY, delay_ms=2000)
        return await engine.cycle("bl", deadline=0.3)

    report = run(scenario)
    assert report.cut and report.events == []
    still = pair(store, "192.0.2.1")
    assert still is not None and still.status is PairStatus.LISTED and still.pending is None
    assert events(store, EventKind.DELISTED) == []
    [status] = store.list_statuses()
    # the first cycle's success stands; the cut one moved the end, not the success
    assert status.last_cycle_success is not None
    assert status.last_cycle_end is not None
    assert status.last_cycle_success < status.last_cycle_end


def test_a_cut_cycle_gives_its_window_back_and_the_next_cycle_runs_whole(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    faultdns.rule(qname("192.0.2.1"), Fault.DELAY, a=["127.0.0.2"], delay_ms=2000)
    rt = Runtime(make_config(faultdns.port, resolver={"timeout": "3s"}), store)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.probe("bl")
        assert (await engine.cycle("bl", deadline=0.3)).cut
        assert engine.resolver().in_flight == 0  # the abandoned lookup's place is free
        faultdns.rule(qname("192.0.2.1"), Fault.NXDOMAIN)
        report = await engine.cycle("bl", deadline=2.0)
        assert (report.lookups, report.errors, report.cut) == (4, 0, False)

    run(scenario)
    assert store.pairs() == []
    assert store.pair_errors("bl") == []  # answered again: the not-checked row goes
    [status] = store.list_statuses()
    assert status.last_cycle_skipped is None and status.last_cycle_success is not None


def test_a_cut_cycle_does_not_prune_targets_no_longer_configured(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.9")
    cfg = make_config(
        faultdns.port,
        schedule={"confirm": 1},
        targets=[{"group": "mail", "addresses": ["192.0.2.9/32"]}],
    )
    rt = Runtime(cfg, store)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.probe("bl")
        await engine.cycle("bl")
        assert pair(store, "192.0.2.9") is not None
        # 192.0.2.9 is no longer configured; the cycle over the others is cut
        rt.config = make_config(faultdns.port, schedule={"confirm": 1}, resolver={"timeout": "3s"})
        faultdns.rule(qname("192.0.2.1"), Fault.DELAY, delay_ms=2000)
        assert (await engine.cycle("bl", deadline=0.3)).cut
        assert pair(store, "192.0.2.9") is not None  # a partial cycle prunes nothing
        faultdns.rule(qname("192.0.2.1"), Fault.NXDOMAIN)
        assert not (await engine.cycle("bl", deadline=2.0)).cut

    run(scenario)
    assert pair(store, "192.0.2.9") is None  # the next whole cycle does


def test_every_query_of_a_cut_cycle_is_charged_to_the_budget_and_the_metric(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # the lookups are reserved from the day's budget before they are sent, one query each;
    # a silent server makes each of them three attempts. The old code abandoned the cycle
    # and kept the reservation: 4 charged for 3 times as many sent, past daily_query_limit.
    # The probe's answers set the server's RTO near its floor (50 ms): the retries go out
    # within ~0.2 s, and the last attempts wait out `timeout` (1 s), past the deadline
    healthy(faultdns)
    silent = ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"]
    for address in silent:
        faultdns.rule(qname(address), Fault.DROP)
    cfg = make_config(
        faultdns.port,
        lists=[{**BL, "daily_query_limit": 12}],
        resolver={"timeout": "1s", "attempts": 3},
    )
    rt = Runtime(cfg, store)
    engine = Engine(rt, clock=lambda: T0)

    async def scenario() -> CycleReport:
        await engine.probe("bl")  # 2 test-point queries
        report = await engine.cycle("bl", deadline=0.6)  # the third attempts are out by then
        await asyncio.sleep(0.2)  # every datagram sent has reached the server
        return report

    report = run(scenario)
    sent = target_queries(faultdns, silent)
    assert report.cut and sent >= 3 * 4
    assert rt.stats.list("bl").queries == sent  # rblwatch_queries_total
    assert store.budget_used("bl", utc_day(T0)) == 2 + sent
    assert store.budget_used("bl", utc_day(T0)) > 12  # the day's budget is spent: no more

    async def next_cycle() -> CycleReport:
        return await engine.cycle("bl", deadline=0.4)

    assert run(next_cycle).skipped == Reason.BUDGET_EXHAUSTED.value
    assert target_queries(faultdns, silent) == sent


def test_replies_that_match_no_query_are_counted_for_metrics(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    faultdns.rule(qname("192.0.2.1"), Fault.WRONG_ID, a=["127.0.0.2"], then_real=True)
    rt = Runtime(make_config(faultdns.port), store)
    engine = Engine(rt)
    run(lambda: engine.cycle("bl"))
    first = rt.stats.replies_dropped
    assert first >= 1  # the A query's forged reply (and the TXT query's, for a new listing)
    assert first == engine.resolver().stats.dropped
    run(lambda: engine.cycle("bl"))
    assert rt.stats.replies_dropped > first
    assert rt.stats.replies_dropped == engine.resolver().stats.dropped


def test_a_new_listing_s_event_and_row_carry_the_list_s_txt_fetched_once(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    faultdns.rule(
        qname("192.0.2.1"), Fault.ANSWER, a=["127.0.0.2"], txt=["see https://bl.example/x"]
    )
    rt = Runtime(make_config(faultdns.port, schedule={"confirm": 1}), store)
    engine = Engine(rt)
    run(lambda: engine.cycle("bl"))
    [event] = events(store, EventKind.LISTED)
    assert event.txt == "see https://bl.example/x"
    row = pair(store, "192.0.2.1")
    assert row is not None and row.txt == "see https://bl.example/x"
    run(lambda: engine.cycle("bl"))  # already stored as listed: no TXT asked again
    assert faultdns.count(qname("192.0.2.1"), rdtype="TXT") == 1


def test_an_instance_that_does_not_lead_ignores_a_scan_the_leader_found_unhealthy_meanwhile(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # several instances: only the leader probes, the others read the health it stores. One
    # that read "healthy" at its cycle's start must read it again before believing the scan:
    # the leader may have found the list listing the world while the scan was under way
    healthy(faultdns)
    faultdns.rule(qname("192.0.2.1"), Fault.DELAY, a=["127.0.0.2"], delay_ms=1000)
    cfg = make_config(faultdns.port, schedule={"confirm": 1}, resolver={"timeout": "3s"})
    every = tuple(Lease("bl", s, 1) for s in range(SHARDS))
    lead, other = Runtime(cfg, store), Runtime(cfg, store)
    lead.view = View("a", (), True, 2, T0)
    other.view = View("b", every, False, 2, T0)
    leader, follower = Engine(lead), Engine(other)

    async def scenario() -> None:
        await leader.probe("bl")
        cycle = asyncio.create_task(follower.cycle("bl"))
        await asyncio.sleep(0.1)
        faultdns.rule(qname("127.0.0.1"), Fault.ANSWER, a=["127.0.0.2"])  # lists the world
        assert (await leader.probe("bl")).health is Health.LISTS_EVERYTHING  # type: ignore[union-attr]
        report = await cycle
        assert report.skipped == Reason.LIST_UNHEALTHY.value

    run(scenario)
    assert pair(store, "192.0.2.1") is None
    assert events(store, EventKind.LISTED) == []


def test_an_instance_that_does_not_lead_waits_for_the_leader_s_first_verdict(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # at start the leader's first probe may not be stored yet when another instance's first
    # cycle runs: that one waits a little for it rather than skipping a whole interval
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    cfg = make_config(faultdns.port, schedule={"confirm": 1})
    every = tuple(Lease("bl", s, 1) for s in range(SHARDS))
    lead, other = Runtime(cfg, store), Runtime(cfg, store)
    lead.view = View("a", (), True, 2, T0)
    other.view = View("b", every, False, 2, T0)
    leader, follower = Engine(lead), Engine(other)

    async def scenario() -> CycleReport:
        cycle = asyncio.create_task(follower.cycle("bl"))
        await asyncio.sleep(1.2)  # the leader's verdict comes late
        await leader.probe("bl")
        return await cycle

    report = run(scenario)
    assert report.skipped == "" and report.lookups == 4
    assert pair(store, "192.0.2.1") is not None


def test_an_instance_holding_half_of_a_list_asks_it_at_half_its_max_qps(
    faultdns: FaultDns, store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # several instances split a list's targets: each its share of the list's rate limit too,
    # so that together they keep to max_qps (SPEC: polite within each list's limits)
    healthy(faultdns)
    cfg = make_config(faultdns.port, lists=[{**BL, "max_qps": 40}])
    half = tuple(Lease("bl", s, 1) for s in range(SHARDS // 2))
    rt = Runtime(cfg, store)
    rt.view = View("a", half, True, 2, T0)
    engine = Engine(rt)
    kind = engine.kinds["dnsbl"]
    asked: list[float] = []
    original = kind.run

    async def spy_run(
        io: Any, subject: Any, targets: Any, durations: Any, until: float | None = None
    ) -> Any:
        asked.append(subject.max_qps * io.share)
        return await original(io, subject, targets, durations, until)

    monkeypatch.setattr(kind, "run", spy_run)
    run(lambda: engine.cycle("bl"))
    assert asked == [20.0]


def test_a_cycle_that_lost_some_shards_meanwhile_still_writes_the_shards_it_holds(
    faultdns: FaultDns, postgres_cluster: Cluster
) -> None:
    # an instance joining makes the holders give shards back at their next tick, often in
    # the middle of a cycle: the cycle's results for the shards still held must be written
    # (the others' new holder looks again), or those wait a whole interval more
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")  # shard 7: kept
    faultdns.rule(qname("192.0.2.2"), Fault.DELAY, a=["127.0.0.2"], delay_ms=1000)  # 13: given
    cfg = make_config(faultdns.port, schedule={"confirm": 1}, resolver={"timeout": "3s"})
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    shared, joining = open_store(url), open_store(url)
    me = Instance("a", "host-a", 1, "test", T0, 0.0)
    newcomer = Instance("b", "host-b", 2, "test", T0 + 1, 0.0)
    rt = Runtime(cfg, shared)
    rt.view = shared.tick(me, ["bl"], 30.0)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.probe("bl")
        cycle = asyncio.create_task(engine.cycle("bl"))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(joining.tick, newcomer, ["bl"], 30.0)
        rt.view = await asyncio.to_thread(shared.tick, me, ["bl"], 30.0)  # gives 8..15 back
        assert rt.view.shards_of("bl") == frozenset(range(8))
        report = await cycle
        assert [e.target for e in report.events] == ["192.0.2.1"]

    try:
        run(scenario)
        assert [(e.target, e.kind) for e in shared.events()] == [("192.0.2.1", EventKind.LISTED)]
        assert [p.target for p in shared.pairs("bl")] == ["192.0.2.1"]
    finally:
        shared.close()
        joining.close()
        postgres_cluster.drop_database(name)


def test_a_new_leader_decides_its_first_probe_from_the_stored_health_not_its_last_read(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # a follower reads the stored health at each cycle; when it becomes the leader, what it
    # read last may be older than the old leader's last verdict: a list that went down, came
    # back under the old leader, and goes down again under the new one is a second
    # list_unhealthy, not a silent change of the stored health
    cfg = make_config(faultdns.port)
    every = tuple(Lease("bl", s, 1) for s in range(SHARDS))
    a, b = Runtime(cfg, store), Runtime(cfg, store)
    a.view = View("a", (), True, 2, T0)
    b.view = View("b", every, False, 2, T0)
    old, new = Engine(a), Engine(b)

    async def scenario() -> None:
        faultdns.clear()  # dead: the test point unanswered too
        assert (await old.probe("bl")).health is Health.DEAD  # type: ignore[union-attr]
        assert (await new.cycle("bl")).skipped == "list_unhealthy"  # b reads DEAD
        healthy(faultdns)
        assert (await old.probe("bl")).health is Health.HEALTHY  # type: ignore[union-attr]
        a.view, b.view = View("a", (), False, 1, T0), View("b", every, True, 1, T0)  # a died
        faultdns.clear()
        assert (await new.probe("bl")).health is Health.DEAD  # type: ignore[union-attr]

    run(scenario)
    kinds = [e.kind for e in events(store)]
    assert kinds == [EventKind.LIST_UNHEALTHY, EventKind.LIST_RECOVERED, EventKind.LIST_UNHEALTHY]


def test_first_looks_another_instance_wrote_count_after_a_shard_came_back_meanwhile(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    # a shard can go to another instance and come back between two cycles of this one (a
    # newcomer that died): the set of shards held is the same, the holding is not, and the
    # first looks the other wrote meanwhile must be read, or a target it saw clean has its
    # first listing here called initial (found when monitoring began)
    healthy(faultdns)
    two = [{"group": "mail", "addresses": ["192.0.2.0/31", "192.0.2.2"]}]
    cfg1 = make_config(faultdns.port, schedule={"confirm": 1}, targets=two)
    cfg2 = make_config(faultdns.port, schedule={"confirm": 1})  # 192.0.2.3 (shard 11) added
    rt = Runtime(cfg1, store)
    rt.view = View("a", tuple(Lease("bl", s, 1) for s in range(SHARDS)), True, 1, T0)
    engine = Engine(rt)

    async def scenario() -> None:
        await engine.cycle("bl")
        # meanwhile shard 11 went to "b", which looked at the new target (clean), and back
        store.commit(CycleCommit("bl", seen=["192.0.2.3"]))
        rt.config = cfg2
        rt.view = View(
            "a", tuple(Lease("bl", s, 3 if s == 11 else 1) for s in range(SHARDS)), True, 1, T0
        )
        listing(faultdns, "192.0.2.3")
        report = await engine.cycle("bl")
        [event] = report.events
        assert (event.target, event.initial) == ("192.0.2.3", False)

    run(scenario)
