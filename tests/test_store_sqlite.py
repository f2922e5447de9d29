"""The SQLite store's own rules: its file and directory, WAL, refusing files that are not ours.

What every store must do is the contract suite (`test_store_contract.py`), which runs on SQLite
too; this module holds only what is about SQLite's file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from rblwatch.model import CycleCommit, Event, EventKind
from rblwatch.store import StoreError, open_store
from rblwatch.store.sqlite import APPLICATION_ID, SCHEMA_VERSION, SqliteStore
from tests.store_contract import SqliteBackend


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "rblwatch.db")


def test_a_new_store_creates_its_directory_private_to_the_group(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "rblwatch.db"
    SqliteStore(str(path)).close()
    umask = os.umask(0)
    os.umask(umask)
    assert path.is_file()
    assert path.parent.stat().st_mode & 0o777 == 0o750 & ~umask


def test_a_new_store_is_in_wal_mode_at_the_current_schema_version(db_path: str) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


def test_open_store_opens_a_sqlite_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    try:
        assert isinstance(store, SqliteStore)
        assert store.pairs() == []
    finally:
        store.close()


def assert_one_line_naming(exc: pytest.ExceptionInfo[StoreError], path: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert path in message


def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match="cannot open") as exc:
        SqliteStore(str(path))
    assert_one_line_naming(exc, str(path))


def test_another_programs_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an rblwatch database") as exc:
        SqliteStore(str(path))
    assert_one_line_naming(exc, str(path))
    assert path.read_bytes() == before
    assert not (tmp_path / "other.db-wal").exists()


def test_a_database_from_a_newer_rblwatch_is_refused_in_one_line(db_path: str) -> None:
    SqliteStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer") as exc:
        SqliteStore(db_path)
    assert_one_line_naming(exc, db_path)


def test_a_directory_that_cannot_be_created_is_refused_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = str(blocker / "sub" / "rblwatch.db")
    with pytest.raises(StoreError, match="cannot create directory") as exc:
        SqliteStore(path)
    assert_one_line_naming(exc, path)


def test_a_version_1_file_is_migrated_to_the_current_schema_version(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path)
    backend.seed(1)
    s = SqliteStore(backend.path)
    try:
        (event,) = s.commit(
            CycleCommit("zen", events=[Event(EventKind.LISTED, "zen", 1.0, target="a.test")])
        )
        assert event.id == 2  # AUTOINCREMENT continues from the file's own sequence
    finally:
        s.close()
    conn = sqlite3.connect(backend.path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


def test_a_read_does_not_wait_for_a_write_under_way_and_sees_what_was_committed(
    db_path: str,
) -> None:
    # issue 14: the first cycle of a /14 commits 262,144 first looks in ~0.7 s, and a /metrics
    # scrape (or the status page) waited for it on the store's one connection
    store = SqliteStore(db_path)
    try:
        store.commit(CycleCommit("zen", seen=["192.0.2.1"]))
        answers: list[set[str]] = []
        with store._write() as conn:  # a big commit under way
            conn.execute("INSERT INTO seen (list, target) VALUES ('zen', '192.0.2.2')")
            reader = threading.Thread(target=lambda: answers.append(store.seen("zen")))
            reader.start()
            reader.join(timeout=5)
            assert answers == [{"192.0.2.1"}]  # answered meanwhile: the committed state
        assert store.seen("zen") == {"192.0.2.1", "192.0.2.2"}  # and the write, once done
    finally:
        store.close()
    with pytest.raises(StoreError, match="closed"):
        store.seen("zen")
