"""`rblwatch status` and `rblwatch history` (SPEC §9) reading a store the test fills directly.

The store is a real SQLite file in tmp_path, written through `SqliteStore.commit` and
`record_health` as the daemon writes it; the commands run in process through `cli.main`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rblwatch import cli, config
from rblwatch.cluster import Instance
from rblwatch.model import CycleCommit, Event, EventKind, Health, ListStatus, PairState, PairStatus
from rblwatch.pairsource import PairsRead, PairsSource, read_console
from rblwatch.store import open_store
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.pairs import page_json
from rblwatch.views.status import events_json, rfc3339, status_json
from tests.postgres import Cluster

NOW = time.time()
HOUR = 3600.0


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, object]:
        doc: dict[str, object] = json.loads(self.out)
        return doc


Run = Callable[..., Ran]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`rblwatch ARGS...` in process: exit code, stdout and stderr."""

    def go(*args: str) -> Ran:
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return go


def write_config(tmp_path: Path, db: Path | str) -> Path:
    path = tmp_path / "rblwatch.yaml"
    data = {
        "store": {"url": db if isinstance(db, str) else f"sqlite:///{db}"},
        "lists": [
            {"name": "bl", "zone": "bl.test", "kind": "ip"},
            {"name": "dbl", "zone": "dbl.test", "kind": "domain"},
        ],
        "targets": [
            {"group": "mail", "addresses": ["192.0.2.0/30"]},
            {"group": "web", "domains": ["example.com"]},
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def listed(target: str, list_name: str, group: str, since: float) -> PairState:
    return PairState(
        target=target,
        list=list_name,
        group=group,
        status=PairStatus.LISTED,
        since=since,
        first_seen=since,
        codes=("127.0.0.2",),
        meanings=("spam source",),
    )


def pair_event(kind: EventKind, target: str, list_name: str, group: str, at: float) -> Event:
    return Event(kind, list_name, at, target=target, group=group, codes=("127.0.0.2",))


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    """A config and its store: two listings, list health, a cycle row and five events."""
    db = tmp_path / "state.db"
    store = SqliteStore(str(db))
    try:
        store.record_health("bl", Health.HEALTHY, "", NOW - 2 * HOUR, None)
        # healthy first: the unhealthy event below is a crossing (a store drops one that is not)
        store.record_health("dbl", Health.HEALTHY, "", NOW - 2 * HOUR, None)
        store.commit(
            CycleCommit(
                list="bl",
                upserts=[listed("192.0.2.1", "bl", "mail", NOW - 3 * HOUR)],
                events=[
                    pair_event(EventKind.LISTED, "192.0.2.1", "bl", "mail", NOW - 3 * HOUR),
                    pair_event(EventKind.LISTED, "192.0.2.2", "bl", "mail", NOW - 2 * HOUR),
                    pair_event(EventKind.DELISTED, "192.0.2.2", "bl", "mail", NOW - 600),
                ],
                status=ListStatus(name="bl", last_cycle_start=NOW - 60, last_cycle_end=NOW - 59),
            )
        )
        store.commit(
            CycleCommit(
                list="dbl",
                upserts=[listed("example.com", "dbl", "web", NOW - 1800)],
                events=[pair_event(EventKind.LISTED, "example.com", "dbl", "web", NOW - 1800)],
            )
        )
        store.record_health(
            "dbl",
            Health.DEAD,
            "test point test should be listed",
            NOW - 300,
            Event(EventKind.LIST_UNHEALTHY, "dbl", NOW - 300),
        )
    finally:
        store.close()
    return write_config(tmp_path, db)


def opened(cfg_path: Path) -> tuple[config.Config, SqliteStore]:
    cfg = config.load_config(cfg_path)
    return cfg, SqliteStore(cfg.store.url.removeprefix("sqlite:///"))


# -- status -------------------------------------------------------------------------------------


def test_status_shows_each_listing_and_each_list_s_health(run: Run, cfg_path: Path) -> None:
    ran = run("status", "--config.file", str(cfg_path))

    assert ran.code == 0 and ran.err == ""
    lines = ran.out.splitlines()
    rows = [line.split() for line in lines]
    assert rows[0] == ["TARGET", "LIST", "GROUP", "SINCE", "CODES", "MEANINGS"]
    assert rows[1][:3] == ["192.0.2.1", "bl", "mail"] and rows[1][4] == "127.0.0.2"
    assert rows[2][:3] == ["example.com", "dbl", "web"]
    health = {r[0]: r[1] for r in rows if r and r[0] in ("bl", "dbl")}
    assert health == {"bl": "healthy", "dbl": "dead"}
    # no cycle of bl ever completed: its other pairs are unknown, not clean (issue 11)
    assert lines[-1] == "2 listed, 3 unknown, 0 errors of 5 pairs (5 stale), 5 targets"


def test_status_json_is_the_status_api_object(run: Run, cfg_path: Path) -> None:
    ran = run("status", "--config.file", str(cfg_path), "--format", "json")

    assert ran.code == 0
    cfg, store = opened(cfg_path)
    try:
        # what the API serves: the status with the pair counts, and the pairs' first page
        view, page = read_console(store, cfg, None, PairsRead(PairsSource(), None, time.time()))
        assert ran.json() == status_json(view) | {"pairs": page_json(page)}
    finally:
        store.close()
    doc = ran.json()
    assert set(doc) == {
        "resolver",
        "listings",
        "next_cursor",
        "lists",
        "unresolved",
        "targets",
        "instances",
        "hygiene",
        "counts",
        "pairs",
    }
    assert doc["next_cursor"] is None  # the command prints every listing: one page
    assert doc["resolver"] == {"state": "ok", "since": None, "detail": ""}
    assert doc["unresolved"] == []  # no daemon: no hostname was resolved
    listings = doc["listings"]
    assert isinstance(listings, list)
    assert {tuple(sorted(x)) for x in listings} == {
        ("ack", "codes", "group", "list", "meanings", "since", "stale", "target", "txt")
    }
    # the dead list's listings are not re-checked, and no cycle of bl ever completed (no good
    # answer): stale both, as the pairs view says ("5 stale": one rule for both)
    assert {x["list"]: x["stale"] for x in listings} == {"bl": True, "dbl": True}
    assert [{k: row[k] for k in ("name", "health", "last_cycle_end")} for row in doc["lists"]] == [
        {"name": "bl", "health": "healthy", "last_cycle_end": rfc3339(NOW - 59)},
        {"name": "dbl", "health": "dead", "last_cycle_end": None},
    ]


def test_status_without_a_daemon_on_sqlite_shows_no_instances(run: Run, cfg_path: Path) -> None:
    # a SQLite file has no heartbeat rows: only the daemon holding it knows itself
    assert (
        run("status", "--config.file", str(cfg_path), "--format", "json").json()["instances"] == []
    )
    assert "INSTANCE" not in run("status", "--config.file", str(cfg_path)).out


def test_status_lists_the_instances_sharing_a_postgres_store(
    run: Run, tmp_path: Path, postgres_cluster: Cluster
) -> None:
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    try:
        store = open_store(url)
        try:
            for me in ("a1", "b2"):
                store.tick(Instance(me, f"host-{me}", 7, "9.9.9", NOW, 0.0), ["bl", "dbl"], 30.0)
        finally:
            store.close()
        cfg = write_config(tmp_path, url)
        table = run("status", "--config.file", str(cfg))
        doc = run("status", "--config.file", str(cfg), "--format", "json").json()
    finally:
        postgres_cluster.drop_database(name)
    assert table.code == 0, table.err
    rows = [line.split() for line in table.out.splitlines()]
    at = rows.index(["INSTANCE", "HOST", "PID", "VERSION", "HEARTBEAT", "SHARDS"])
    assert [r[:4] for r in rows[at + 1 : at + 3]] == [
        ["a1", "host-a1", "7", "9.9.9"],
        ["b2", "host-b2", "7", "9.9.9"],
    ]
    assert all(r[5] == "ago" for r in rows[at + 1 : at + 3])
    instances = doc["instances"]
    assert isinstance(instances, list)
    assert [(i["id"], i["host"]) for i in instances] == [("a1", "host-a1"), ("b2", "host-b2")]
    assert [i["leader"] for i in instances] == [True, False]  # a1 ticked first
    assert sum(i["shards_held"] for i in instances) == 2 * 16  # every shard of both lists


# -- history ------------------------------------------------------------------------------------


def kinds_and_targets(ran: Ran) -> list[tuple[object, object]]:
    events = ran.json()["events"]
    assert isinstance(events, list)
    return [(e["kind"], e["target"]) for e in events]


def test_history_json_is_the_events_api_object_oldest_first(run: Run, cfg_path: Path) -> None:
    ran = run("history", "--config.file", str(cfg_path), "--format", "json")

    assert ran.code == 0
    _, store = opened(cfg_path)
    try:
        assert ran.json() == events_json(store.events(limit=1000))
    finally:
        store.close()
    events = ran.json()["events"]
    assert isinstance(events, list) and len(events) == 5
    assert {tuple(sorted(e)) for e in events} == {
        ("at", "codes", "group", "hostname", "id", "initial", "kind", "list", "target")
    }


def test_history_since_leaves_out_older_events(run: Run, cfg_path: Path) -> None:
    args = ["history", "--config.file", str(cfg_path), "--format", "json"]

    ran = run(*args, "--since", "1h")

    assert kinds_and_targets(ran) == [
        ("listed", "example.com"),
        ("delisted", "192.0.2.2"),
        ("list_unhealthy", None),
    ]
    since = rfc3339(NOW - 2.5 * HOUR)
    assert len(kinds_and_targets(run(*args, "--since", since))) == 4


def test_history_filters_by_target_and_by_list(run: Run, cfg_path: Path) -> None:
    args = ["history", "--config.file", str(cfg_path), "--format", "json"]

    by_target = run(*args, "--target", "192.0.2.2")
    by_list = run(*args, "--list", "dbl")

    assert kinds_and_targets(by_target) == [("listed", "192.0.2.2"), ("delisted", "192.0.2.2")]
    assert kinds_and_targets(by_list) == [("listed", "example.com"), ("list_unhealthy", None)]


def test_history_table_has_a_row_per_event_with_dashes_for_list_events(
    run: Run, cfg_path: Path
) -> None:
    ran = run("history", "--config.file", str(cfg_path), "--since", "1h")

    assert ran.code == 0
    rows = [line.split() for line in ran.out.splitlines()]
    assert rows[0] == ["AT", "KIND", "TARGET", "LIST", "GROUP", "CODES"]
    assert [r[1:5] for r in rows[1:]] == [
        ["listed", "example.com", "dbl", "web"],
        ["delisted", "192.0.2.2", "bl", "mail"],
        ["list_unhealthy", "-", "dbl", "-"],
    ]


# -- user errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "history"])
def test_a_missing_store_file_is_one_line_naming_it_and_exit_2(
    run: Run, tmp_path: Path, command: str
) -> None:
    db = tmp_path / "never-written.db"
    ran = run(command, "--config.file", str(write_config(tmp_path, db)))

    assert ran.code == 2 and ran.out == ""
    assert ran.err.count("\n") == 1 and str(db) in ran.err
    assert not db.exists()  # reading never creates a store


@pytest.mark.parametrize("since", ["yesterday", "2026-11-01", "-1h"])
def test_a_bad_since_is_one_line_and_exit_2(run: Run, cfg_path: Path, since: str) -> None:
    ran = run("history", "--config.file", str(cfg_path), f"--since={since}")

    assert ran.code == 2 and ran.out == ""
    assert ran.err.count("\n") == 1 and f"--since {since}" in ran.err


def test_history_limit_keeps_the_newest_events_shown_oldest_first(run: Run, cfg_path: Path) -> None:
    ran = run("history", "--config.file", str(cfg_path), "--limit", "2", "--format", "json")
    assert ran.code == 0
    events = ran.json()["events"]
    assert isinstance(events, list)
    # of the fixture's five events the newest two are the delisting (-10 min) and the list
    # going unhealthy (-5 min), shown in time order
    assert [(e["kind"], e["target"]) for e in events] == [
        ("delisted", "192.0.2.2"),
        ("list_unhealthy", None),
    ]


def test_history_filters_take_a_target_as_the_user_writes_it(run: Run, tmp_path: Path) -> None:
    # the store keeps canonical values: compressed IPv6, A-label domains
    db = tmp_path / "state.db"
    store = SqliteStore(str(db))
    try:
        store.commit(
            CycleCommit(
                list="bl",
                events=[
                    pair_event(EventKind.LISTED, "2001:db8::25", "bl", "mail", NOW - 60),
                    pair_event(EventKind.LISTED, "xn--bcher-kva.example", "dbl", "web", NOW - 30),
                ],
            )
        )
    finally:
        store.close()
    args = ["history", "--config.file", str(write_config(tmp_path, db)), "--format", "json"]
    long_form = run(*args, "--target", "2001:0DB8:0000::0025")
    idn = run(*args, "--target", "Bücher.example")
    assert kinds_and_targets(long_form) == [("listed", "2001:db8::25")]
    assert kinds_and_targets(idn) == [("listed", "xn--bcher-kva.example")]
    assert run(*args, "--target", "192.0.2.0/24").code == 2  # one target, not a network


def test_history_of_an_unknown_list_is_an_error_not_an_empty_history(
    run: Run, cfg_path: Path
) -> None:
    ran = run("history", "--config.file", str(cfg_path), "--list", "dbll")
    assert ran.code == 2
    assert ran.err == "rblwatch: --list: no such list 'dbll' (known: bl, dbl)\n"
