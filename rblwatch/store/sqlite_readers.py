"""The SQLite store's read connections: a few, opened as concurrent reads need them.

One read connection behind one lock made every read wait for the one before it: during a
/14's first cycle a `/metrics` scrape's small snapshot read (a few rows) waited ~0.3 s behind
the pairs read of the families being rebuilt after a commit, or behind a status page's. WAL
lets readers run side by side, each on its own connection, so a read takes an idle
connection, or opens one while fewer than MAX_READERS exist, or else waits for one to come
back. Connections are kept until the store closes: at most MAX_READERS of them, so nothing
grows without bound, and a quiet daemon keeps one.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator

MAX_READERS = 3


class Readers:
    """Read connections to one database file, lent one per read (thread-safe)."""

    def __init__(
        self, open_reader: Callable[[], sqlite3.Connection], closed: Callable[[], Exception]
    ) -> None:
        self._open = open_reader
        self._closed_error = closed  # what a read after `close` raises
        self._idle: list[sqlite3.Connection] = [open_reader()]  # the first at once: fail early
        self._count = 1
        self._closed = False
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def lend(self) -> Iterator[sqlite3.Connection]:
        """A connection for one read (the caller maps sqlite3's errors)."""
        conn = self._take()
        try:
            yield conn
        finally:
            with self._changed:
                self._idle.append(conn)
                # all: `close` waits on this condition beside the reads waiting for a
                # connection, and a read woken after `close` leaves without taking it
                self._changed.notify_all()

    def _take(self) -> sqlite3.Connection:
        with self._changed:
            while True:
                if self._closed:
                    self._changed.notify_all()  # pass on a wake-up that may be `close`'s
                    raise self._closed_error()
                if self._idle:
                    return self._idle.pop()
                if self._count < MAX_READERS:
                    self._count += 1  # counted before opening: no other thread opens it too
                    break
                self._changed.wait()
        try:
            return self._open()
        except BaseException:
            with self._changed:
                self._count -= 1
                self._changed.notify_all()
            raise

    def close(self) -> None:
        """Close every connection, waiting for those lent out to come back."""
        with self._changed:
            self._closed = True
            while len(self._idle) < self._count:
                self._changed.wait()
            for conn in self._idle:
                conn.close()
            self._idle.clear()
            self._count = 0  # a second close has nothing to wait for


__all__ = ["MAX_READERS", "Readers"]
