"""The pairs view never claims `clean` for a pair nobody looked up (review of issue 11): targets a
list's last cycle did not cover, one instance's failed shard, and lists whose cycles send nothing
(a resolver outage, an unhealthy list) — with real stores, real engines and a real daemon."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rblwatch.cluster import Instance, shard_of
from rblwatch.commitplan import CycleInput, plan_commit
from rblwatch.engine import Engine
from rblwatch.inventory import Found
from rblwatch.model import (
    CycleCommit,
    Health,
    Kind,
    ListStatus,
    PairError,
    Reason,
    ResolverState,
    Target,
    TargetKind,
    error,
    make_targets,
)
from rblwatch.pairsource import PairsRead, PairsSource, read_console
from rblwatch.runtime import Runtime
from rblwatch.store import open_store
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.pairs import (
    ListPairs,
    Ordered,
    Unchecked,
    pair_counts,
    pair_json,
    pairs_page,
    pairs_query,
)
from rblwatch.views.status import status_json
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.faultdns import Fault, FaultDns
from tests.postgres import Cluster
from tests.rbldnsd import Rbldnsd
from tests.test_engine import ADDRS, healthy, make_config, qname

T0 = 1_795_780_800.0  # 2026-11-27T12:00:00Z
HEALTHY_ROW = ListStatus("bl", Health.HEALTHY, "", T0 - 600, T0 - 5, T0, T0, 5.0, 4, 0, 4)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


def shown(rt: Runtime, now: float, source: PairsSource | None = None) -> dict[str, object]:
    """`/api/v1/status` as the daemon's listener builds it (the runtime's records)."""
    read = PairsRead(
        source or PairsSource(), rt.found, now, covered=rt.covered, found_for=rt.found_for
    )
    view, page = read_console(rt.store, rt.config, None, read, pairs_query(limit=1000))
    doc = status_json(view)
    doc["pairs"] = {p.target: pair_json(p) for p in page.items}
    return doc


def healthy_store(store: SqliteStore, seen: list[str]) -> None:
    store.commit(CycleCommit("bl", seen=seen, status=HEALTHY_ROW))
    store.record_health("bl", Health.HEALTHY, "", T0 - 600, None)


# -- 1. a target its list's last cycle did not look up -------------------------------------


def test_a_target_the_last_cycle_did_not_cover_is_unknown_counted_and_found_by_state() -> None:
    values = [f"10.0.{i // 256}.{i % 256}" for i in range(1024)]
    ordered = Ordered(make_targets(values, TargetKind.IPV4, "mail"))
    covered = frozenset(values) - {"10.0.1.7", "10.0.3.255"}  # added since
    status = ListStatus("bl", last_cycle_success=T0 - 60)
    lp = ListPairs("bl", Kind.IP, 3600.0, ordered, status, unchecked=Unchecked(ordered, covered))
    counts = pair_counts([lp], T0)
    assert (counts.total, counts.clean, counts.unknown, counts.stale) == (1024, 1022, 2, 2)
    page = pairs_page([lp], pairs_query(state="unknown"), T0)
    got = [pair_json(p) for p in page.items]
    assert [p["target"] for p in got] == ["10.0.1.7", "10.0.3.255"]
    assert {(p["last_checked"], p["last_good_at"], p["stale"]) for p in got} == {(None, None, True)}
    assert pair_json(pairs_page([lp], pairs_query(target="10.0.1.8"), T0).items[0])["state"] == (
        "clean"
    )


def test_the_daemon_s_record_of_what_a_cycle_covered_decides_and_a_hostname_s_new_address_waits(
    sqlite: SqliteStore,
) -> None:
    healthy_store(sqlite, list(ADDRS))
    rt = Runtime(make_config(53), sqlite)
    mx_old = Target("198.51.100.25", TargetKind.IPV4, "mail", "mx.example.net")
    mx_new = Target("198.51.100.26", TargetKind.IPV4, "mail", "mx.example.net")
    static = make_targets(ADDRS, TargetKind.IPV4, "mail")
    rt.found, rt.found_for = Found([*static, mx_old], complete=True), rt.config
    rt.covered["bl"] = frozenset([*ADDRS, mx_old.value])  # the last cycle's own set
    source = PairsSource()
    assert {p["state"] for p in shown(rt, T0 + 60, source)["pairs"].values()} == {"clean"}
    # the hostname now resolves elsewhere: its new address is new to the list
    rt.found = Found([*static, mx_new], complete=True)
    pairs = shown(rt, T0 + 60, source)["pairs"]
    assert pairs["198.51.100.26"]["state"] == "unknown"
    assert pairs["198.51.100.26"]["last_checked"] is None and "198.51.100.25" not in pairs
    assert shown(rt, T0 + 60, source)["counts"]["unknown"] == 1
    rt.covered["bl"] = frozenset([*ADDRS, mx_new.value])  # its cycle looked it up
    assert shown(rt, T0 + 60, source)["pairs"]["198.51.100.26"]["state"] == "clean"


def test_a_reload_shows_a_new_target_at_once_as_never_checked_and_drops_a_removed_one(
    sqlite: SqliteStore,
) -> None:
    healthy_store(sqlite, list(ADDRS))
    old = make_config(53)
    rt = Runtime(old, sqlite)
    rt.found, rt.found_for = Found(make_targets(ADDRS, TargetKind.IPV4, "mail"), True), old
    rt.covered["bl"] = frozenset(ADDRS)
    # reloaded: 192.0.2.3 removed, 192.0.2.9 added; no cycle since
    rt.config = make_config(
        53,
        targets=[
            {"group": "mail", "addresses": ["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.9"]}
        ],
    )
    pairs = shown(rt, T0 + 60)["pairs"]
    assert {t: p["state"] for t, p in pairs.items()} == {
        "192.0.2.0": "clean",
        "192.0.2.1": "clean",
        "192.0.2.2": "clean",
        "192.0.2.9": "unknown",
    }


def test_rblwatch_status_without_a_daemon_reads_seen(sqlite: SqliteStore) -> None:
    healthy_store(sqlite, list(ADDRS[:3]))
    rt = Runtime(make_config(53), sqlite)  # no record: what `rblwatch status` has
    view, page = read_console(sqlite, rt.config, None, PairsRead(PairsSource(), None, T0 + 60))
    assert {p.target: p.state for p in page.items} == {
        "192.0.2.0": "clean",
        "192.0.2.1": "clean",
        "192.0.2.2": "clean",
        "192.0.2.3": "unknown",
    }
    assert view.counts is not None and view.counts.unknown == 1


def test_an_engine_records_what_its_full_cycle_covered_and_a_new_target_is_unknown_till_then(
    faultdns: FaultDns, sqlite: SqliteStore
) -> None:
    healthy(faultdns)
    three = [{"group": "mail", "addresses": list(ADDRS[:3])}]
    rt = Runtime(make_config(faultdns.port, targets=three), sqlite)
    engine = Engine(rt)
    asyncio.run(engine.cycle("bl"))
    assert rt.covered["bl"] == frozenset(ADDRS[:3])
    rt.config = make_config(faultdns.port)  # reloaded: 192.0.2.3 added
    before = shown(rt, time.time())
    assert before["pairs"]["192.0.2.3"]["state"] == "unknown"
    assert before["pairs"]["192.0.2.3"]["last_checked"] is None
    asyncio.run(engine.cycle("bl"))
    assert shown(rt, time.time())["pairs"]["192.0.2.3"]["state"] == "clean"


def test_a_target_added_by_reload_is_unknown_in_the_daemon_until_its_first_cycle(
    tmp_path: Path, rbldnsd: Rbldnsd
) -> None:
    rbldnsd.add_zone("bl.test", "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2"])
    rbldnsd.start()
    cfg, port = tmp_path / "rblwatch.yaml", free_tcp_port()
    text = config_text(dns_port=rbldnsd.port or 0, web_port=port, store=tmp_path / "state.db")
    text = text.replace("interval: 1s", "interval: 6s")  # a window to look in
    cfg.write_text(text)
    d = DaemonProcess(cfg)
    try:
        d.start(port)

        def pair(target: str) -> dict[str, object] | None:
            got = d.json(f"/api/v1/pairs?target={target}")["pairs"]
            return got[0] if got else None

        def cycle_end() -> object:
            return d.json("/api/v1/status")["lists"][0]["last_cycle_end"]

        wait_until("a first cycle", lambda: (pair("192.0.2.10") or {}).get("state") == "clean")
        end = cycle_end()
        wait_until("the next cycle", lambda: cycle_end() != end, timeout=20)
        cfg.write_text(text.replace("192.0.2.10]", "192.0.2.10, 192.0.2.20]"))
        status, body = d.post("/-/reload")
        assert status == 200, body
        new = pair("192.0.2.20")  # seconds before the list's next cycle
        assert new is not None and (new["state"], new["last_checked"]) == ("unknown", None), new
        counts = d.json("/api/v1/pairs")["counts"]
        assert (counts["total"], counts["unknown"]) == (6, 1)
        wait_until("its first cycle", lambda: (pair("192.0.2.20") or {}).get("state") == "clean")
        assert d.stop() == 0
    finally:
        d.close()


# -- 2. several instances: the list-wide error row ------------------------------------------


def test_a_cycle_of_some_shards_writes_per_pair_rows_and_splits_the_list_s_row() -> None:
    targets = make_targets(ADDRS, TargetKind.IPV4, "mail")
    mine, others = targets[:2], [t.value for t in targets[2:]]
    whole = PairError("", "bl", Reason.TIMEOUT, T0 - 60, "4 of 4 lookups failed", T0 - 600)
    base = {
        "list_name": "bl",
        "targets": mine,
        "values": frozenset(t.value for t in mine),
        "rows": {},
        "seen": frozenset(ADDRS),
        "confirm": 1,
        "now": T0,
        "full": True,
        "last_good_at": T0 - 600,
    }
    failed = {t.value: error(Reason.TIMEOUT) for t in mine}
    alone = plan_commit(CycleInput(**base, outcomes=failed, all_shards=True)).commit  # type: ignore[arg-type]
    assert [e.target for e in alone.errors] == [""]  # every shard: the list's row
    some = plan_commit(CycleInput(**base, outcomes=failed)).commit  # type: ignore[arg-type]
    assert sorted(e.target for e in some.errors) == sorted(t.value for t in mine)
    split = plan_commit(
        CycleInput(**base, outcomes={}, errors={"": whole}, others=others)  # type: ignore[arg-type]
    ).commit
    assert split.cleared == [""]  # the shards' pairs answered now; the others keep its word
    assert [(e.target, e.at, e.last_good_at) for e in split.errors] == [
        (t, T0 - 60, T0 - 600) for t in others
    ]


def test_two_instances_one_shard_failing_never_reads_clean_and_a_list_row_is_split(
    faultdns: FaultDns, postgres_cluster: Cluster
) -> None:
    """PostgreSQL, two instances with a shard each half: first A alone (every shard) through an
    outage of the list (its row), then B joins; B's half keeps failing while A's answers."""
    healthy(faultdns)
    a_half = [t for t in ADDRS if shard_of(t) < 8]
    b_half = [t for t in ADDRS if shard_of(t) >= 8]
    assert a_half and b_half
    for t in ADDRS:
        faultdns.rule(qname(t), Fault.DROP)
    cfg = make_config(faultdns.port, resolver={"timeout": "100ms"})
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    sa, sb = open_store(url), open_store(url)
    me_a = Instance("a", "host-a", 1, "test", T0, 0.0)
    me_b = Instance("b", "host-b", 2, "test", T0 + 1, 0.0)
    a, b = Runtime(cfg, sa), Runtime(cfg, sb)
    ea, eb = Engine(a), Engine(b)

    def outcomes(rt: Runtime) -> dict[str, str]:
        return {t: str(p["last_outcome"]) for t, p in shown(rt, time.time())["pairs"].items()}

    async def scenario() -> None:
        a.view = await asyncio.to_thread(sa.tick, me_a, ["bl"], 30.0)  # alone: every shard
        await ea.probe("bl")
        await ea.cycle("bl")
        assert [e.target for e in await a.db.pair_errors("bl")] == [""]
        assert set(outcomes(a).values()) == {"error"}
        b.view = await asyncio.to_thread(sb.tick, me_b, ["bl"], 30.0)
        a.view = await asyncio.to_thread(sa.tick, me_a, ["bl"], 30.0)  # gives 8..15 back
        b.view = await asyncio.to_thread(sb.tick, me_b, ["bl"], 30.0)
        assert a.view.shards_of("bl") == frozenset(range(8))
        assert b.view.shards_of("bl") == frozenset(range(8, 16))
        for t in a_half:  # A's half answers again; B's keeps timing out
            faultdns.rule(qname(t), Fault.NXDOMAIN)
        await ea.cycle("bl")  # splits the list's row: B's pairs keep its word
        assert "bl" not in a.covered  # a cycle of some shards covers no whole list
        await eb.cycle("bl")  # B's half fails entirely: its pairs' rows, not the list's
        errors = await a.db.pair_errors("bl")
        assert sorted(e.target for e in errors) == sorted(b_half)
        await ea.cycle("bl")  # A's half answering again clears none of B's
        got = outcomes(a)
        assert {t: got[t] for t in a_half} == dict.fromkeys(a_half, "clean")
        assert {t: got[t] for t in b_half} == dict.fromkeys(b_half, "error")
        for t in b_half:
            faultdns.rule(qname(t), Fault.NXDOMAIN)
        await eb.cycle("bl")
        assert set(outcomes(b).values()) == {"clean"}

    try:
        asyncio.run(scenario())
    finally:
        sa.close()
        sb.close()
        postgres_cluster.drop_database(name)


# -- 3. lists whose cycles send nothing -------------------------------------------------------


def test_during_a_resolver_outage_pairs_and_listings_are_stale_and_nothing_counts_clean(
    sqlite: SqliteStore,
) -> None:
    from tests.webstate import listed

    healthy_store(sqlite, list(ADDRS))
    sqlite.commit(CycleCommit("bl", upserts=[listed("192.0.2.1", list_name="bl")]))
    rt = Runtime(make_config(53), sqlite)
    fresh = shown(rt, T0 + 60)
    assert fresh["counts"]["clean"] == 3 and fresh["listings"][0]["stale"] is False
    sqlite.record_resolver(ResolverState("unreachable", T0 + 30, "timeout"), None)
    out = shown(rt, T0 + 60)  # a minute after the last cycle: not two intervals yet
    assert {(p["state"], p["stale"]) for t, p in out["pairs"].items() if t != "192.0.2.1"} == {
        ("unknown", True)
    }
    assert (out["pairs"]["192.0.2.1"]["state"], out["pairs"]["192.0.2.1"]["stale"]) == (
        "listed",
        True,
    )
    assert (out["counts"]["clean"], out["counts"]["unknown"], out["counts"]["stale"]) == (0, 3, 4)
    assert out["listings"][0]["stale"] is True  # the status listing agrees


def test_a_list_with_its_own_nameservers_is_not_stopped_by_the_resolver(
    sqlite: SqliteStore,
) -> None:
    healthy_store(sqlite, list(ADDRS))
    own = {"name": "bl", "zone": "bl.test", "kind": "ip", "nameservers": ["127.0.0.1:53"]}
    rt = Runtime(make_config(53, lists=[own]), sqlite)
    sqlite.record_resolver(ResolverState("unreachable", T0 + 30, "timeout"), None)
    assert shown(rt, T0 + 60)["counts"]["clean"] == 4


def test_an_unhealthy_list_s_pairs_are_stale_at_once(sqlite: SqliteStore) -> None:
    from tests.webstate import listed

    healthy_store(sqlite, list(ADDRS))
    sqlite.commit(CycleCommit("bl", upserts=[listed("192.0.2.1", list_name="bl")]))
    sqlite.record_health("bl", Health.DEAD, "test point unanswered", T0 + 30, None)
    out = shown(Runtime(make_config(53), sqlite), T0 + 60)
    assert out["counts"]["clean"] == 0 and out["counts"]["unknown"] == 3
    assert out["pairs"]["192.0.2.1"]["stale"] is True and out["listings"][0]["stale"] is True
