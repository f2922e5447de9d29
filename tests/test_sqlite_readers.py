"""The SQLite store's read connections (`rblwatch.store.sqlite_readers`), on real files."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rblwatch.store import StoreError
from rblwatch.store.sqlite import SqliteStore
from rblwatch.store.sqlite_readers import MAX_READERS, Readers


class Closed(Exception):
    pass


def _readers(tmp_path: Path) -> tuple[Readers, list[sqlite3.Connection]]:
    opened: list[sqlite3.Connection] = []

    def open_reader() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "db", check_same_thread=False)
        opened.append(conn)
        return conn

    return Readers(open_reader, Closed), opened


def test_a_read_does_not_wait_for_another_under_way(tmp_path: Path) -> None:
    readers, opened = _readers(tmp_path)
    with readers.lend() as first, readers.lend() as second:
        # with one connection behind one lock the second read would wait for the first
        assert first is not second
        assert first.execute("select 1").fetchone() == (1,)
        assert second.execute("select 2").fetchone() == (2,)
    with readers.lend() as again:
        assert again in (first, second)  # kept and lent again, not opened anew
    assert len(opened) == 2


def test_at_most_max_readers_then_a_read_waits_for_one_to_come_back(tmp_path: Path) -> None:
    readers, opened = _readers(tmp_path)
    lent = [readers.lend() for _ in range(MAX_READERS)]
    conns = [cm.__enter__() for cm in lent]
    assert len(set(map(id, conns))) == MAX_READERS
    got: list[sqlite3.Connection] = []
    waiter = threading.Thread(target=lambda: got.append(readers.lend().__enter__()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and not got  # every connection lent: it waits
    lent[0].__exit__(None, None, None)
    waiter.join(5)
    assert got == [conns[0]]
    assert len(opened) == MAX_READERS


def test_close_waits_for_reads_under_way_and_later_reads_are_refused(tmp_path: Path) -> None:
    readers, _ = _readers(tmp_path)
    lend = readers.lend()
    conn = lend.__enter__()
    closer = threading.Thread(target=readers.close)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive()  # the read under way is not cut off
    assert conn.execute("select 3").fetchone() == (3,)
    lend.__exit__(None, None, None)
    closer.join(5)
    assert not closer.is_alive()
    with pytest.raises(Closed), readers.lend():
        pass
    readers.close()  # twice: nothing to wait for


def test_close_returns_when_as_many_reads_wait_for_a_connection_as_are_lent(tmp_path: Path) -> None:
    readers, _ = _readers(tmp_path)
    lent = [readers.lend() for _ in range(MAX_READERS)]
    for cm in lent:
        cm.__enter__()
    refused: list[BaseException] = []

    def wait_for_one() -> None:
        try:
            with readers.lend():
                pass
        except Closed as exc:
            refused.append(exc)

    # as many reads waiting for a connection as there are lent out (a burst of scrapes and
    # status pages at shutdown: the default executor has 6 threads on 2 cores)
    waiters = [threading.Thread(target=wait_for_one, daemon=True) for _ in range(MAX_READERS)]
    for w in waiters:
        w.start()
    time.sleep(0.2)
    closer = threading.Thread(target=readers.close, daemon=True)
    closer.start()
    time.sleep(0.2)
    for cm in lent:  # the reads under way end
        cm.__exit__(None, None, None)
    closer.join(3)
    for w in waiters:
        w.join(3)
    assert len(refused) == MAX_READERS
    assert not closer.is_alive(), "close() never returns: each return's notify() woke a waiter"


def test_the_store_reads_beside_each_other_and_refuses_reads_once_closed(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store._read():  # a long read under way (a /14's pairs, say)
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    done: list[int] = []
    reader = threading.Thread(target=lambda: done.append(store.listed_count()))
    reader.start()
    reader.join(3)
    try:
        assert done == [0]  # answered while the other read is still open
    finally:
        release.set()
        holder.join()
        reader.join()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.listed_count()
