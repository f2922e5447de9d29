"""Each pair's last error (issue 11): what the planner decides, what both stores keep, and what a
cycle against real DNS peers (rbldnsd, faultdns) leaves for the pairs view to show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rblwatch.cluster import Fence, Lease, shard_of
from rblwatch.commitplan import CycleInput, plan_commit
from rblwatch.engine import Engine
from rblwatch.model import (
    CycleCommit,
    PairError,
    PairStatus,
    Reason,
    TargetKind,
    error,
    make_targets,
)
from rblwatch.pairsource import PairsRead, PairsSource, read_console
from rblwatch.runtime import Runtime
from rblwatch.store import Fenced, Store
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.pairs import pair_json, pairs_query
from tests.faultdns import Fault, FaultDns
from tests.rbldnsd import Rbldnsd
from tests.store_contract import BACKENDS, Backend
from tests.test_engine import ADDRS, ZONE, healthy, listing, make_config, qname

T0 = 1_795_780_800.0  # 2026-11-27T12:00:00Z
TARGETS = make_targets(ADDRS, TargetKind.IPV4, "mail")


def plan(**kw: object) -> CycleCommit:
    base: dict[str, object] = {
        "list_name": "bl",
        "targets": TARGETS,
        "values": frozenset(ADDRS),
        "outcomes": {},
        "rows": {},
        "seen": frozenset(ADDRS),
        "confirm": 1,
        "now": T0,
        "full": True,
        "all_shards": True,  # alone: the cycle covers every shard
        "prune": True,
        "last_good_at": T0 - 600,
    }
    return plan_commit(CycleInput(**{**base, **kw})).commit  # type: ignore[arg-type]


def err(
    target: str, reason: Reason = Reason.TIMEOUT, at: float = T0 - 600, good: float | None = None
) -> PairError:
    return PairError(target, "bl", reason, at, "", good)


# -- the planner ------------------------------------------------------------------------------


def test_a_cycle_where_everything_answered_writes_no_error_rows() -> None:
    commit = plan()
    assert commit.errors == [] and commit.cleared == []


def test_a_failed_pair_seen_before_last_answered_at_the_list_s_last_cycle() -> None:
    commit = plan(outcomes={"192.0.2.1": error(Reason.SERVFAIL, "SERVFAIL")})
    assert commit.errors == [
        PairError("192.0.2.1", "bl", Reason.SERVFAIL, T0, "SERVFAIL", T0 - 600)
    ]


def test_a_pair_failing_again_keeps_the_time_it_last_answered() -> None:
    old = {"192.0.2.1": err("192.0.2.1", good=T0 - 7200)}
    commit = plan(outcomes={"192.0.2.1": error(Reason.TIMEOUT)}, errors=old)
    assert [(e.target, e.at, e.last_good_at) for e in commit.errors] == [
        ("192.0.2.1", T0, T0 - 7200)
    ]


def test_a_pair_never_answered_has_no_last_good_answer() -> None:
    commit = plan(outcomes={"192.0.2.1": error(Reason.TIMEOUT)}, seen=frozenset())
    assert commit.errors[0].last_good_at is None


def test_a_pair_that_answers_again_loses_its_error_row_and_a_removed_target_too() -> None:
    old = {t: err(t) for t in ("192.0.2.1", "192.0.2.2", "198.51.100.9")}
    commit = plan(outcomes={"192.0.2.2": error(Reason.TIMEOUT)}, errors=old)
    assert sorted(commit.cleared) == ["192.0.2.1", "198.51.100.9"]
    assert [e.target for e in commit.errors] == ["192.0.2.2"]


def test_a_confirmation_round_clears_only_its_own_targets() -> None:
    old = {t: err(t) for t in ("192.0.2.1", "192.0.2.2")}
    commit = plan(
        targets=TARGETS[1:2], values=frozenset({"192.0.2.1"}), errors=old, full=False, prune=False
    )
    assert commit.cleared == ["192.0.2.1"] and commit.errors == []


def test_a_cycle_that_mostly_failed_writes_one_row_for_the_list_not_one_per_pair() -> None:
    outcomes = {t: error(Reason.TIMEOUT) for t in ADDRS[:3]}
    commit = plan(outcomes=outcomes)
    assert commit.errors == [
        PairError("", "bl", Reason.TIMEOUT, T0, "3 of 4 lookups failed", T0 - 600)
    ]
    # the next such cycle keeps the time the list last answered; a healthy one clears it
    again = plan(outcomes=outcomes, errors={"": commit.errors[0]}, last_good_at=T0 + 60)
    assert again.errors[0].last_good_at == T0 - 600
    healed = plan(outcomes={"192.0.2.1": error(Reason.TIMEOUT)}, errors={"": commit.errors[0]})
    assert healed.cleared == [""]
    assert healed.errors[0].last_good_at == T0 - 600  # as the list's row said


def test_a_slash_16_outage_writes_one_row_a_cycle() -> None:
    values = [f"10.0.{i // 256}.{i % 256}" for i in range(65536)]
    targets = make_targets(values, TargetKind.IPV4, "mail")
    outcomes = {v: error(Reason.TIMEOUT) for v in values}
    commit = plan(targets=targets, values=frozenset(values), outcomes=outcomes, seen=frozenset())
    assert len(commit.errors) == 1 and commit.errors[0].target == ""


def test_a_commit_narrowed_to_the_shards_still_held_keeps_their_error_rows_only() -> None:
    from rblwatch.engine import CycleReport, _Cycle, _kept

    targets = [f"10.0.0.{i}" for i in range(64)]
    shards = {shard_of(t) for t in targets}
    lost = {shard_of(targets[0])}
    fence = Fence("me", tuple(Lease("bl", s, 1) for s in shards))
    c = _Cycle(None, None, None, None, T0, True, CycleReport("bl"), frozenset(shards), fence)  # type: ignore[arg-type]
    commit = CycleCommit("bl", errors=[err(t) for t in targets] + [err("")], cleared=targets)
    kept = _kept(c, commit, frozenset(lost))
    assert kept is not None
    assert {e.target for e in kept.errors} == {t for t in targets if shard_of(t) not in lost} | {""}
    assert set(kept.cleared) == {t for t in targets if shard_of(t) not in lost}


# -- both stores --------------------------------------------------------------------------------


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    try:
        yield s
    finally:
        s.close()


def test_error_rows_are_upserted_cleared_and_read_by_list_and_target(store: Store) -> None:
    first = [err("192.0.2.1", good=T0 - 60), err("192.0.2.2"), err("")]
    store.commit(CycleCommit("bl", errors=first))
    store.commit(CycleCommit("zen", errors=[PairError("192.0.2.1", "zen", Reason.BLOCKED, T0)]))
    assert store.pair_errors("bl") == sorted(first, key=lambda e: e.target)
    again = PairError("192.0.2.1", "bl", Reason.SERVFAIL, T0 + 60, "SERVFAIL", T0 - 60)
    store.commit(CycleCommit("bl", errors=[again], cleared=["192.0.2.2", ""]))
    assert store.pair_errors("bl") == [again]
    assert [e.list for e in store.pair_errors(target="192.0.2.1")] == ["bl", "zen"]
    assert store.pair_errors("zen", "192.0.2.1")[0].reason is Reason.BLOCKED
    assert len(store.pair_errors()) == 2


def test_a_failing_commit_writes_no_error_rows(store: Store) -> None:
    def refuse(_: object) -> list[str]:
        raise RuntimeError("receivers unavailable")

    from rblwatch.model import Event, EventKind

    ev = Event(EventKind.LISTED, "bl", T0, target="192.0.2.1", group="mail")
    with pytest.raises(RuntimeError):
        store.commit(CycleCommit("bl", events=[ev], errors=[err("192.0.2.1")]), refuse)
    assert store.pair_errors() == []


def test_a_fenced_commit_writes_no_error_rows(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # PostgreSQL only: a SQLite file has one instance, which holds every lease
    store = BACKENDS["postgresql"](request, tmp_path).open()
    try:
        fence = Fence("nobody", (Lease("bl", 0, 1),))
        with pytest.raises(Fenced):
            store.commit(CycleCommit("bl", errors=[err("192.0.2.1")]), fence=fence)
        assert store.pair_errors() == []
    finally:
        store.close()


# -- a cycle against real peers ---------------------------------------------------------------


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


def view_of(rt: Runtime, now: float) -> dict[str, dict[str, object]]:
    _, page = read_console(
        rt.store, rt.config, None, PairsRead(PairsSource(), rt.found, now), pairs_query(limit=1000)
    )
    return {p.target: pair_json(p) for p in page.items}


def test_a_cycle_on_rbldnsd_where_everything_answers_writes_no_error_row(
    rbldnsd: Rbldnsd, sqlite: SqliteStore
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2", "192.0.2.1"])
    rbldnsd.start()
    rt = Runtime(make_config(rbldnsd.port or 0, schedule={"confirm": 1}), sqlite)
    asyncio.run(Engine(rt).cycle("bl"))
    assert sqlite.pair_errors() == []
    shown = view_of(rt, time.time())
    assert {t: p["state"] for t, p in shown.items()} == {
        "192.0.2.0": "clean",
        "192.0.2.1": "listed",
        "192.0.2.2": "clean",
        "192.0.2.3": "clean",
    }


def test_a_servfail_shows_on_its_pair_with_the_reason_and_goes_stale_after_two_intervals(
    faultdns: FaultDns, sqlite: SqliteStore
) -> None:
    healthy(faultdns)
    listing(faultdns, "192.0.2.1")
    cfg = make_config(faultdns.port, schedule={"confirm": 1, "interval": "10s"})
    rt = Runtime(cfg, sqlite)
    clock = [T0]
    engine = Engine(rt, clock=lambda: clock[0])

    async def scenario() -> None:
        await engine.cycle("bl")  # every pair answers: 192.0.2.1 listed
        clock[0] = T0 + 10
        faultdns.rule(qname("192.0.2.1"), Fault.SERVFAIL)
        await engine.cycle("bl")

    asyncio.run(scenario())
    [row] = sqlite.pair_errors("bl")
    assert (row.target, row.reason, row.at) == ("192.0.2.1", Reason.SERVFAIL, T0 + 10)
    assert row.last_good_at == T0  # the end of the first cycle (its clock)
    fresh = view_of(rt, T0 + 11)["192.0.2.1"]
    assert (fresh["state"], fresh["last_outcome"], fresh["last_reason"]) == (
        "listed",
        "error",
        "servfail",
    )
    assert fresh["stale"] is False and fresh["last_good_at"] == "2026-11-27T12:00:00Z"
    assert sqlite.pairs("bl")[0].status is PairStatus.LISTED  # the belief is unchanged
    later = view_of(rt, T0 + 21)  # more than two intervals since its last good answer
    assert (later["192.0.2.1"]["state"], later["192.0.2.1"]["stale"]) == ("listed", True)
    assert later["192.0.2.0"]["state"] == "clean"  # answered at T0 + 10: fresh still


def test_an_answer_again_clears_the_pair_s_error(faultdns: FaultDns, sqlite: SqliteStore) -> None:
    healthy(faultdns)
    rt = Runtime(make_config(faultdns.port, schedule={"confirm": 1}), sqlite)
    engine = Engine(rt)

    async def scenario() -> None:
        faultdns.rule(qname("192.0.2.2"), Fault.REFUSED)
        await engine.cycle("bl")
        assert [(e.target, e.reason, e.last_good_at) for e in sqlite.pair_errors()] == [
            ("192.0.2.2", Reason.REFUSED, None)  # never answered
        ]
        faultdns.rule(qname("192.0.2.2"), Fault.NXDOMAIN)
        await engine.cycle("bl")

    asyncio.run(scenario())
    assert sqlite.pair_errors() == []


def test_a_cycle_where_every_lookup_timed_out_writes_the_list_s_row_only(
    faultdns: FaultDns, sqlite: SqliteStore
) -> None:
    healthy(faultdns)
    for address in ADDRS:
        faultdns.rule(qname(address), Fault.DROP)
    rt = Runtime(make_config(faultdns.port, resolver={"timeout": "100ms"}), sqlite)
    asyncio.run(Engine(rt).cycle("bl"))
    [row] = sqlite.pair_errors("bl")
    assert (row.target, row.reason, row.detail) == ("", Reason.TIMEOUT, "4 of 4 lookups failed")
    shown = view_of(rt, time.time())
    assert {p["last_outcome"] for p in shown.values()} == {"error"}
    assert {p["state"] for p in shown.values()} == {"unknown"}  # never answered at all
