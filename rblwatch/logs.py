"""The daemon's logging: text or JSON lines on stderr, and one line per distinct problem.

A problem that persists repeats: an unresolvable hostname every cycle, an unreachable resolver
on every list, a scanner's malformed requests. Logged every time, it buries everything else in
the journal (73 of 110 lines in 8 minutes, once). `RepeatFilter` lets the first line of a
problem through, holds back its repeats for `window` seconds, and lets the next one through
after that with how many were held back ("repeated 41 times in the last 10m"); a line that
records an event (`EVENT_LINE`) always goes through. A problem is its logger, level, message
template and arguments: the same template for two hostnames is two problems. Kept bounded:
past `max_keys` problems the oldest is forgotten (and so may be logged again sooner), never
memory without end.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import IO

REPEAT_WINDOW = 600.0  # seconds: one line per problem per 10 minutes
# `extra=` of a line that records an event (listed, delisted, list_unhealthy, …): a record of
# what happened, never a repeat to hold back, even when the same thing happens twice
EVENT_LINE = {"rblwatch_event": True}
MAX_KEYS = 4096


def _ago(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


class RepeatFilter(logging.Filter):
    """Pass the first record of a problem, then at most one per `window`, with a count."""

    def __init__(
        self,
        window: float = REPEAT_WINDOW,
        *,
        level: int = logging.WARNING,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window = window
        self.level = level
        self.max_keys = max_keys
        self.clock = clock
        # problem -> (when its last line went out, repeats held back since)
        self._seen: OrderedDict[tuple[object, ...], tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level or getattr(record, "rblwatch_event", False):
            return True  # progress, or an event: not a problem that repeats
        key = self._key(record)
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        if last is not None and last[1]:
            # the count goes into the message, so text and JSON lines both carry it
            record.msg = f"{record.getMessage()} (repeated {last[1]} times in the last "
            record.msg += f"{_ago(self.window)})"
            record.args = None
        return True

    @staticmethod
    def _key(record: logging.LogRecord) -> tuple[object, ...]:
        try:
            args = repr(record.args)[:512]  # bounded: a key never holds a peer's whole input
        except Exception:  # a broken __repr__ in some argument must not break logging
            args = "?"
        return (record.name, record.levelno, str(record.msg)[:512], args)


class JsonFormatter(logging.Formatter):
    """One JSON object per line for log shippers (journald adds the timestamp for text)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(
    level: str, fmt: str, stream: IO[str] | None = None, *, repeat_window: float = REPEAT_WINDOW
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter(repeat_window))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, root.level))
