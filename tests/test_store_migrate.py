"""`rblwatch store migrate` (`store.transfer`): moving a store's contents to another store.

A real SQLite file filled through the `Store` API as the daemon fills it (cycles with events and
outbox rows, health, budgets, deliveries done and retried) is moved to a fresh database of the
session's throwaway PostgreSQL cluster (`tests.postgres`) and back, and everything read through
the `Store` API on the other side must be equal: pairs, events with their ids, list statuses,
budgets, due deliveries. Failures half way are made honestly, by a constraint or a trigger in
the target that rejects one row of a late table.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rblwatch import cli
from rblwatch.model import (
    CycleCommit,
    Event,
    EventKind,
    Health,
    ListStatus,
    OutcomeKind,
    PairError,
    PairState,
    PairStatus,
    Reason,
)
from rblwatch.store import Store, StoreError, open_store
from rblwatch.store.transfer import TABLES, migrate
from tests.postgres import PASSWORD, Cluster

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0
DAY = "2027-01-15"
LATER = T0 + 10_000  # after every delivery's first attempt, before the retried one's next
FAR = T0 + 1_000_000  # after every attempt
LISTED = OutcomeKind.LISTED


@pytest.fixture
def database(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    try:
        yield name
    finally:
        postgres_cluster.drop_database(name)


@pytest.fixture
def pg_url(postgres_cluster: Cluster, database: str) -> str:
    return postgres_cluster.url(database)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite store filled as a daemon would have left it."""
    url = f"sqlite:///{tmp_path / 'state' / 'rblwatch.db'}"
    with closing(open_store(url)) as store:
        fill(store)
    return url


def pair(target: str, list_name: str, status: PairStatus, **kw: Any) -> PairState:
    return PairState(
        target=target,
        list=list_name,
        group="mail",
        status=status,
        since=T0,
        first_seen=T0 - 86400.5,
        codes=("127.0.0.2",) if status is PairStatus.LISTED else (),
        meanings=("SBL",) if status is PairStatus.LISTED else (),
        **kw,
    )


def receivers(event: Event) -> list[str]:
    return ["hook", "chat"] if event.target != "192.0.2.9" else ["hook"]


def fill(store: Store) -> None:
    """Two lists' cycles (seven events, so several batches of two), a health change, budgets,
    one delivery done and one retried."""
    listed = [f"192.0.2.{i}" for i in range(1, 6)]
    events = [
        Event(EventKind.LISTED, "zen", T0 + i, target=t, group="mail", codes=("127.0.0.2",))
        for i, t in enumerate(listed)
    ]
    store.commit(
        CycleCommit(
            "zen",
            upserts=[pair(t, "zen", PairStatus.LISTED, txt="see https://x.test") for t in listed],
            seen=[*listed, "192.0.2.9", "192.0.2.10"],
            events=events,
            errors=[PairError("192.0.2.10", "zen", Reason.TIMEOUT, T0, "no answer", T0 - 60)],
            status=ListStatus("zen", last_cycle_start=T0, last_cycle_end=T0 + 2.25, targets=7),
            budget_day=DAY,
            budget_queries=7,
        ),
        receivers,
    )
    store.commit(
        CycleCommit(
            "dbl",
            upserts=[pair("example.com", "dbl", PairStatus.CLEAN, pending=LISTED, pending_count=1)],
            seen=["example.com"],
            events=[Event(EventKind.DELISTED, "dbl", T0 + 9, target="192.0.2.9", since=T0 - 5)],
            status=ListStatus("dbl", last_cycle_start=T0, last_cycle_end=T0 + 1, targets=1),
            budget_day="2027-01-14",
            budget_queries=2,
        ),
        receivers,
    )
    unhealthy = Event(EventKind.LIST_UNHEALTHY, "zen", T0 + 20, detail="test point 127.0.0.2")
    store.record_health("zen", Health.BLOCKED, "test point", T0 + 20, unhealthy, receivers)
    first, second = store.due_deliveries("hook", FAR, limit=2)
    store.delivery_done(first.id)
    store.delivery_retry(second.id, T0 + 100_000, "HTTP 503")


def snapshot(store: Store) -> dict[str, object]:
    """Everything the `Store` API shows of a store's contents."""
    return {
        "pairs": store.pairs(),
        "events": store.events(limit=10_000),
        "statuses": store.list_statuses(),
        "budgets": [store.budget_used(n, d) for n in ("zen", "dbl") for d in (DAY, "2027-01-14")],
        "due": {r: store.due_deliveries(r, LATER) for r in ("hook", "chat")},
        "due_later": {r: store.due_deliveries(r, FAR) for r in ("hook", "chat")},
        "outbox": store.outbox_counts(),
        "seen": {n: store.seen(n) for n in ("zen", "dbl")},
        "listed": store.listed_count(),
        "pair_errors": store.pair_errors(),
    }


def contents(url: str) -> dict[str, object]:
    with closing(open_store(url)) as store:
        return snapshot(store)


def pg_counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def new_event_id(url: str) -> int:
    """The id a new event committed on the store (with deliveries) gets."""
    with closing(open_store(url)) as store:
        event = Event(EventKind.LISTED, "zen", T0 + 50, target="192.0.2.7", group="mail")
        (written,) = store.commit(CycleCommit("zen", events=[event]), receivers)
        assert len(store.due_deliveries("chat", FAR, limit=100)) == 7  # its outbox rows too
    assert written.id is not None
    return written.id


def largest_event_id(url: str) -> int:
    with closing(open_store(url)) as store:
        return max(e.id or 0 for e in store.events(limit=10_000))


def one_line(text: str) -> str:
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert "Traceback" not in text
    return text.strip()


# -- SQLite → PostgreSQL --------------------------------------------------------------------


def test_a_sqlite_store_moves_to_postgresql_with_its_event_ids_and_outbox(
    sqlite_url: str, pg_url: str
) -> None:
    copied = migrate(sqlite_url, pg_url, batch_rows=2)
    assert copied.rows == {
        "pairs": 6,
        "seen": 8,
        "pair_errors": 1,
        "events": 7,
        "list_status": 2,
        "budget": 2,
        "outbox": 12,  # 13 written, one done
        "acks": 0,  # (copied: tests/test_acks_store.py)
        "notes": 0,
    }
    before, after = contents(sqlite_url), contents(pg_url)
    assert after == before
    assert len(after["events"]) == 7  # type: ignore[arg-type]
    assert after["due"]["hook"] != after["due_later"]["hook"]  # type: ignore[index]


def test_a_row_held_by_the_old_store_s_sender_is_free_to_send_on_the_new_one(
    sqlite_url: str, pg_url: str
) -> None:
    # a hold is the runtime state of one sender of the old deployment, stopped before the
    # copy: the new deployment's senders must not wait it out (a request's timeout + 30 s)
    with closing(open_store(sqlite_url)) as old:
        (head,) = old.due_deliveries("hook", FAR, 1)
        held = old.claim_delivery("hook", "old-host-1-abcdef", FAR, 3600.0)
        assert held is not None and held.held_by == "old-host-1-abcdef"
    migrate(sqlite_url, pg_url)
    with closing(open_store(pg_url)) as new:
        taken = new.claim_delivery("hook", "new-host-2-abcdef", FAR + 1, 30.0)
    assert taken is not None and (taken.id, taken.held_by) == (head.id, "new-host-2-abcdef")


def test_a_new_event_on_the_target_gets_a_larger_id_than_every_copied_one(
    sqlite_url: str, pg_url: str
) -> None:
    migrate(sqlite_url, pg_url)
    assert new_event_id(pg_url) > largest_event_id(sqlite_url)


def test_the_target_sequence_is_raised_when_the_copied_ids_are_above_it(
    tmp_path: Path, pg_url: str
) -> None:
    # a source whose ids run ahead of the target's (its clock was ahead, or ids were set):
    # the target's sequence must then move up, not only stay where its creation put it
    url = f"sqlite:///{tmp_path / 'ahead.db'}"
    with closing(open_store(url)):
        pass
    with sqlite3.connect(tmp_path / "ahead.db") as db:
        db.execute("UPDATE sqlite_sequence SET seq = 8000000000000000 WHERE name = 'events'")
    with closing(open_store(url)) as store:
        fill(store)
    migrate(url, pg_url)
    assert new_event_id(pg_url) > largest_event_id(url) > 8_000_000_000_000_000


def test_a_target_with_rows_is_refused_in_one_line_naming_it_with_its_password_masked(
    sqlite_url: str, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(open_store(pg_url)) as store:
        store.commit(CycleCommit("other", seen=["198.51.100.1"]))
    assert cli.main(["store", "migrate", "--from", sqlite_url, "--to", pg_url]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    message = one_line(captured.err)
    assert "is not empty (it has rows in seen)" in message
    assert ":***@127.0.0.1" in message and PASSWORD not in message
    assert pg_counts(pg_url) == dict.fromkeys(TABLES, 0) | {"seen": 1}


@pytest.mark.parametrize("target_kind", ["postgresql", "sqlite"])
def test_a_failure_half_way_leaves_the_target_empty_and_a_second_run_copies_all(
    target_kind: str, sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    """The target rejects one outbox row (the last table): nothing of the earlier tables may
    stay behind, and once the obstacle is gone the same command copies everything."""
    if target_kind == "postgresql":
        target = pg_url
        open_store(target).close()
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("ALTER TABLE outbox ADD CONSTRAINT no_chat CHECK (receiver <> 'chat')")
            sequence_before = conn.execute("SELECT last_value FROM events_id_seq").fetchone()
        undo = "ALTER TABLE outbox DROP CONSTRAINT no_chat"
    else:
        path = tmp_path / "target.db"
        target = f"sqlite:///{path}"
        open_store(target).close()
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TRIGGER no_chat BEFORE INSERT ON outbox WHEN NEW.receiver = 'chat'"
                " BEGIN SELECT RAISE(ABORT, 'no chat deliveries here'); END"
            )
        undo = "DROP TRIGGER no_chat"
    with pytest.raises(StoreError) as failed:
        migrate(sqlite_url, target, batch_rows=2)
    assert "no_chat" in str(failed.value) or "no chat deliveries" in str(failed.value)
    assert "\n" not in str(failed.value)
    with closing(open_store(target)) as store:
        assert snapshot(store) == snapshot_of_nothing()
    if target_kind == "postgresql":
        assert pg_counts(target) == dict.fromkeys(TABLES, 0)
        with psycopg.connect(target, autocommit=True) as conn:
            # untouched: the sequences are moved only once every table is in
            assert (
                conn.execute("SELECT last_value FROM events_id_seq").fetchone() == sequence_before
            )
            conn.execute(undo)
    else:
        with sqlite3.connect(path) as db:
            db.execute(undo)
    migrate(sqlite_url, target, batch_rows=2)
    assert contents(target) == contents(sqlite_url)


def test_a_copy_killed_half_way_leaves_the_target_empty(sqlite_url: str, pg_url: str) -> None:
    """kill -9 of the command while it is writing the outbox (held there by a trigger that waits
    for a lock the test holds): the server rolls the copy back, the target is empty again."""
    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION wait_here() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN PERFORM pg_advisory_lock(4242); RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER wait_here BEFORE INSERT ON outbox"
            " FOR EACH ROW EXECUTE FUNCTION wait_here()"
        )
        conn.execute("SELECT pg_advisory_lock(4242)")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "rblwatch", "store", "migrate"]
        proc = subprocess.Popen([*argv, "--from", sqlite_url, "--to", pg_url], env=env)
        try:
            waiting = (
                "SELECT pid FROM pg_stat_activity"
                " WHERE wait_event = 'advisory' AND datname = current_database()"
            )
            deadline = time.monotonic() + 60
            while not conn.execute(waiting).fetchall():
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            (copying,) = conn.execute(waiting).fetchone()  # type: ignore[misc]
        finally:
            proc.kill()
            proc.wait()
        conn.execute("SELECT pg_advisory_unlock(4242)")  # its backend goes on, finds it gone
        gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
        deadline = time.monotonic() + 60
        while conn.execute(gone, (copying,)).fetchone() != (0,):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        conn.execute("DROP TRIGGER wait_here ON outbox")
    assert pg_counts(pg_url) == dict.fromkeys(TABLES, 0)
    assert run_command("--from", sqlite_url, "--to", pg_url).returncode == 0
    assert contents(pg_url) == contents(sqlite_url)


def snapshot_of_nothing() -> dict[str, object]:
    return {
        "pairs": [],
        "events": [],
        "statuses": [],
        "budgets": [0, 0, 0, 0],
        "due": {"hook": [], "chat": []},
        "due_later": {"hook": [], "chat": []},
        "outbox": {},
        "seen": {"zen": set(), "dbl": set()},
        "listed": 0,
        "pair_errors": [],
    }


# -- PostgreSQL → SQLite ---------------------------------------------------------------------


def test_postgresql_moves_back_to_sqlite_unchanged(
    sqlite_url: str, pg_url: str, tmp_path: Path
) -> None:
    migrate(sqlite_url, pg_url)
    back = f"sqlite:///{tmp_path / 'back' / 'rblwatch.db'}"
    copied = migrate(pg_url, back, batch_rows=3)
    assert sum(copied.rows.values()) == 6 + 8 + 1 + 7 + 2 + 2 + 12
    assert contents(back) == contents(pg_url) == contents(sqlite_url)
    assert new_event_id(back) > largest_event_id(sqlite_url)


# -- columns by name -------------------------------------------------------------------------


def test_columns_both_sides_have_are_copied_and_other_tables_are_not(
    tmp_path: Path, pg_url: str
) -> None:
    """As migrations add columns (and coordination tables) the copy follows by name: a column
    on both sides is copied, one only the target has keeps its default, one only the source has
    is left behind, and a table that is not data (leases) is not copied at all."""
    path = tmp_path / "src.db"
    source = f"sqlite:///{path}"
    with closing(open_store(source)) as store:
        fill(store)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE events ADD COLUMN both_sides INTEGER")
        db.execute("ALTER TABLE events ADD COLUMN only_here TEXT")
        db.execute("UPDATE events SET both_sides = id - 1, after_id = id - 2, only_here = 'x'")
        db.execute("CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT)")
        db.execute("INSERT INTO leases VALUES ('leader', 'old-host')")
    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE events ADD COLUMN both_sides bigint")
        conn.execute("ALTER TABLE outbox ADD COLUMN target_only text DEFAULT 'nobody'")
    migrate(source, pg_url)
    with psycopg.connect(pg_url) as conn:
        pairs = conn.execute("SELECT id, both_sides, after_id FROM events ORDER BY id").fetchall()
        held = conn.execute("SELECT DISTINCT target_only FROM outbox").fetchall()
        leases = conn.execute("SELECT count(*) FROM leases").fetchone()
    assert pairs and all(both == i - 1 and after == i - 2 for i, both, after in pairs)
    assert held == [("nobody",)]
    assert leases == (0,)


# -- the command line ------------------------------------------------------------------------


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "rblwatch", "store", "migrate", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


SUMMARY = re.compile(
    r"rblwatch: copied pairs 6, seen 8, pair_errors 1, events 7, list_status 2, budget 2,"
    r" outbox 12, acks 0, notes 0 rows"
    r" from sqlite:///\S+ to postgresql://rblwatch_test:\*\*\*@127\.0\.0\.1:\d+/\w+"
    r" in \d+\.\d\d s"
)


def test_the_command_prints_one_summary_line_and_refuses_a_second_run(
    sqlite_url: str, pg_url: str
) -> None:
    done = run_command("--from", sqlite_url, "--to", pg_url)
    assert (done.returncode, done.stderr) == (0, "")
    assert SUMMARY.fullmatch(one_line(done.stdout)), done.stdout
    again = run_command("--from", sqlite_url, "--to", pg_url)
    assert (again.returncode, again.stdout) == (2, "")
    assert "is not empty" in one_line(again.stderr) and PASSWORD not in again.stderr
    assert contents(pg_url) == contents(sqlite_url)


def test_the_help_says_a_failed_copy_leaves_the_target_empty_to_run_again() -> None:
    done = run_command("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "one transaction" in text and "leaves the target empty" in text
    assert "running the command again starts over" in text


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("mysql://u:pw0rd@h/db", "{pg}", "--from mysql://u:***@h/db: mysql stores are not"),
        ("{sqlite}", "nothing-like-a-url", "--to nothing-like-a-url: not a store URL"),
        ("sqlite:///{tmp}/missing.db", "{pg}", "missing.db does not exist"),
        ("{sqlite}", "{sqlite}", "--from and --to are the same store"),
        (
            "{sqlite}",
            f"postgresql://rblwatch_test:{PASSWORD}@127.0.0.1:{{port}}/x?connect_timeout=3",
            "cannot connect",
        ),
    ],
)
def test_a_bad_side_is_one_line_and_exit_2_with_no_password_shown(
    source: str,
    target: str,
    expected: str,
    sqlite_url: str,
    pg_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = {"pg": pg_url, "sqlite": sqlite_url, "tmp": str(tmp_path), "port": closed_port()}
    argv = ["store", "migrate", "--from", source.format(**values), "--to", target.format(**values)]
    assert cli.main(argv) == 2
    message = one_line(capsys.readouterr().err)
    assert expected in message
    assert PASSWORD not in message and "pw0rd" not in message
    assert not (tmp_path / "missing.db").exists()  # a missing source is not created


def test_sqlite_to_sqlite_loads_no_postgresql_driver(sqlite_url: str, tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    code = (
        "import sys; from rblwatch import cli;"
        f" code = cli.main(['store', 'migrate', '--from', {sqlite_url!r}, '--to', {target!r}]);"
        " assert code == 0, code; assert 'psycopg' not in sys.modules"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert contents(target) == contents(sqlite_url)
