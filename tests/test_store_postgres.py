"""The PostgreSQL store's own rules, beyond the contract suite: how it opens and refuses.

Against the session's throwaway cluster (`tests.postgres`): the password never shows in a
message, one-line errors for a server that is not there, a database that is not ours or is of
a newer rblwatch, libpq's URL forms (the `postgres://` alias, several hosts with
`target_session_attrs`) passed on as they are, psycopg loaded only for such a URL, a
commit's statements not growing with its size, `rblwatch history` reading such a store, and a
sender's claim skipping the head another sender is taking (leases: `test_store_leases`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from rblwatch import cli
from rblwatch.model import CycleCommit, Event, EventKind, ListStatus, PairState, PairStatus
from rblwatch.store import StoreError, open_store
from rblwatch.store.postgres import display, mask, password_of
from rblwatch.store.postgres_schema import MARKER_TABLE, SCHEMA_VERSION
from tests.postgres import PASSWORD, Cluster


@pytest.fixture
def database(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    try:
        yield name
    finally:
        postgres_cluster.drop_database(name)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


def refused(url: str) -> str:
    with pytest.raises(StoreError) as exc:
        open_store(url).close()
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_a_wrong_password_is_refused_in_one_line_that_shows_neither_password(
    postgres_cluster: Cluster, database: str
) -> None:
    wrong = "Wr0ng-pass-w0rd"
    url = postgres_cluster.url(database).replace(f":{PASSWORD}@", f":{wrong}@")
    message = refused(url)
    assert "password authentication failed" in message
    assert wrong not in message and PASSWORD not in message
    assert ":***@127.0.0.1" in message


def test_a_password_given_as_a_parameter_is_masked_too(
    postgres_cluster: Cluster, database: str
) -> None:
    parts = urlsplit(postgres_cluster.url(database))
    wrong = "p@ss/w0rd?x"
    url = f"postgresql://{parts.username}@{parts.hostname}:{parts.port}{parts.path}"
    message = refused(url + "?password=" + wrong.replace("@", "%40").replace("/", "%2F"))
    assert "password authentication failed" in message
    assert "p@ss" not in message and "p%40ss" not in message and "w0rd" not in message
    assert "?password=***:" in message


def test_the_password_is_masked_wherever_it_is_written() -> None:
    url = "postgresql://u:p%40ss@h/db?sslmode=require"
    assert password_of(url) == "p@ss"
    assert mask(url, password_of(url)) == "postgresql://u:***@h/db?sslmode=require"
    assert display(url) == "postgresql://u:***@h/db?sslmode=require"
    assert display("postgresql://h/db?sslmode=require&PassWord=x?y&a=1") == (
        "postgresql://h/db?sslmode=require&PassWord=***&a=1"
    )
    assert display("postgresql://u@h1:5432,h2/db") == "postgresql://u@h1:5432,h2/db"
    assert mask("libpq said p@ss", "p@ss") == "libpq said ***"
    assert mask("no secret here", None) == "no secret here"


def test_a_server_that_is_not_there_is_refused_in_one_line() -> None:
    message = refused(f"postgresql://u:{PASSWORD}@127.0.0.1:{closed_port()}/db")
    assert "cannot connect" in message
    assert PASSWORD not in message


def test_another_programs_database_is_refused_and_left_untouched(
    postgres_cluster: Cluster, database: str
) -> None:
    url = postgres_cluster.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")
    assert "not an rblwatch database" in refused(url)
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert [t for (t,) in tables] == ["invoices"]


def test_a_database_of_a_newer_rblwatch_is_refused_in_one_line(
    postgres_cluster: Cluster, database: str
) -> None:
    url = postgres_cluster.url(database)
    open_store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"UPDATE {MARKER_TABLE} SET version = %s", (SCHEMA_VERSION + 1,))
    message = refused(url)
    assert f"schema version {SCHEMA_VERSION + 1} is newer" in message


def test_the_postgres_alias_and_several_hosts_with_target_session_attrs_open(
    postgres_cluster: Cluster, database: str
) -> None:
    parts = urlsplit(postgres_cluster.url(database))
    hosts = f"127.0.0.1:{closed_port()},127.0.0.1:{parts.port}"  # the first one is down
    url = (
        f"postgres://{parts.username}:{parts.password}@{hosts}{parts.path}"
        "?target_session_attrs=read-write&connect_timeout=5"
    )
    store = open_store(url)
    try:
        (event,) = store.commit(
            CycleCommit("zen", events=[Event(EventKind.LISTED, "zen", 1.0, target="a.test")])
        )
        assert store.events() == [event]
    finally:
        store.close()


def test_psycopg_is_imported_only_when_a_postgresql_url_is_opened(tmp_path: object) -> None:
    code = (
        "import sys\n"
        "import rblwatch.cli, rblwatch.daemon\n"
        "from rblwatch.store import open_store\n"
        f"open_store('sqlite:///{tmp_path}/s.db').close()\n"
        "assert not [m for m in sys.modules if m.startswith('psycopg')], 'psycopg imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_a_cycle_commit_is_a_few_statements_whatever_its_size(
    postgres_cluster: Cluster, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one statement per pair would be 65,536 round trips for a /16's first cycle
    store = open_store(postgres_cluster.url(database))
    calls: list[str] = []
    for method in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, method)

        def counted(
            self: object, *args: object, _o: Any = original, _m: str = method, **kw: object
        ) -> Any:
            if not str(args[0]).startswith("SET "):  # a new pooled connection's settings
                calls.append(_m)
            return _o(self, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, method, counted)
    try:
        for size in (1, 1000):
            pairs = [
                PairState(f"10.0.{i >> 8}.{i & 255}", "zen", "", PairStatus.LISTED, 1.0, 1.0)
                for i in range(size)
            ]
            events = [Event(EventKind.LISTED, "zen", 1.0, target=p.target) for p in pairs]
            calls.clear()
            store.commit(
                CycleCommit(
                    "zen",
                    upserts=pairs,
                    deletes=[f"gone{i}" for i in range(size)],
                    seen=[p.target for p in pairs],
                    events=events,
                    status=ListStatus("zen", targets=size),
                    budget_day="2027-01-15",
                    budget_queries=size,
                ),
                lambda e: ["ops", "chat"],
            )
            # the pool's connection check, then one per kind of row (pairs deleted, upserted,
            # seen, event ids, events, outbox rows, status, budget), and the senders' NOTIFY
            assert len(calls) <= 10, (size, calls)
        assert psycopg.Pipeline.is_supported()  # so each executemany is one pipelined batch
        assert store.listed_count() == 1000 and store.outbox_counts() == {"ops": 1001, "chat": 1001}
    finally:
        monkeypatch.undo()
        store.close()


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "rblwatch.yaml"
    data = {
        "store": {"url": url},
        "lists": [{"name": "bl", "zone": "bl.test", "kind": "ip"}],
        "targets": [{"group": "mail", "addresses": ["192.0.2.1"]}],
    }
    path.write_text(json.dumps(data))
    return path


def test_history_reads_a_postgresql_store_and_a_wrong_password_is_one_masked_line(
    postgres_cluster: Cluster,
    database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = postgres_cluster.url(database)
    store = open_store(url)
    try:
        now = Event(EventKind.LISTED, "bl", time.time(), target="192.0.2.1")
        (event,) = store.commit(CycleCommit("bl", events=[now]))
    finally:
        store.close()
    path = write_config(tmp_path, url)
    assert cli.main(["history", "--config.file", str(path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(e["id"], e["target"]) for e in out["events"]] == [(event.id, "192.0.2.1")]

    wrong = write_config(tmp_path, url.replace(f":{PASSWORD}@", ":Wr0ng-pw@"))
    assert cli.main(["history", "--config.file", str(wrong)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "password authentication failed" in err
    assert "Wr0ng-pw" not in err and PASSWORD not in err


def test_a_sender_claiming_while_another_takes_the_head_gets_nothing_not_the_row_behind(
    postgres_cluster: Cluster, database: str
) -> None:
    # SKIP LOCKED on the receiver's head only: the other sender's claim (here a transaction
    # holding the head row) hides the head, and the rows behind it wait their turn
    url = postgres_cluster.url(database)
    store = open_store(url)
    try:
        for target in ("a.test", "b.test"):
            event = Event(EventKind.LISTED, "zen", 1.0, target=target)
            store.commit(CycleCommit("zen", events=[event]), lambda e: ["ops"])
        head, behind = store.due_deliveries("ops", now=1.0)
        with psycopg.connect(url) as other:
            other.execute("SELECT 1 FROM outbox WHERE id = %s FOR UPDATE", (head.id,))
            assert store.claim_delivery("ops", "b", 1.0, 30) is None
            other.rollback()
        claimed = store.claim_delivery("ops", "b", 1.0, 30)
        assert claimed is not None and (claimed.id, claimed.held_by) == (head.id, "b")
        assert behind.held_by is None
    finally:
        store.close()


def test_a_commit_with_outbox_rows_wakes_another_instance_s_listener(
    postgres_cluster: Cluster, database: str, tmp_path: Path
) -> None:
    # senders on every instance wake on NOTIFY (polling is only the fallback): a commit that
    # writes outbox rows on one instance's store is heard on another's
    url = postgres_cluster.url(database)
    writer, listener = open_store(url), open_store(url)
    try:
        wait = listener.outbox_waiter()
        assert wait is not None
        assert wait(0.3) is False  # nothing committed: the wait runs out
        event = Event(EventKind.LISTED, "zen", 1.0, target="192.0.2.1", group="mail")
        writer.commit(CycleCommit("zen", events=[event]))  # no receivers: no outbox rows
        assert wait(0.3) is False
        writer.commit(CycleCommit("zen", events=[event]), lambda e: ["ops"])
        started = time.monotonic()
        assert wait(5.0) is True and time.monotonic() - started < 5.0
    finally:
        writer.close()
        listener.close()
    sqlite = open_store(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        assert sqlite.outbox_waiter() is None  # one process: its senders are woken directly
    finally:
        sqlite.close()
