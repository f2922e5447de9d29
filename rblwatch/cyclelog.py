"""A cycle's events in the log: a bounded number of lines, however many the cycle found.

Every event has its row, its outbox entries and its metric; the log is for a person reading
the journal. The first cycle of a /14 found 20,972 initial listings once, and logged them as
20,972 WARNING lines. Here the initial ones (a baseline, not news) are one line per list, kind
and cycle with the first few targets; the rest — news — one line each up to `MAX_EVENT_LINES`
per cycle, then one line that counts what was left out by kind. Every line is an event line
(`EVENT_LINE`): the repeat filter never holds them back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

from rblwatch.logs import EVENT_LINE
from rblwatch.model import Event, EventKind

MAX_EVENT_LINES = 20  # per cycle, of events other than initial ones
FIRST_SHOWN = 3  # targets named in an initial-listings summary
_INITIAL_WORDS = {EventKind.LISTED: "listing", EventKind.CHECK_FAILED: "failure"}


def log_events(log: logging.Logger, name: str, events: Sequence[Event]) -> None:
    """Log one cycle's events of list (or check) `name`, within the bounds above."""
    initial: dict[EventKind, list[Event]] = {}
    news: list[Event] = []
    for e in events:
        if e.initial:
            initial.setdefault(e.kind, []).append(e)
        else:
            news.append(e)
    for kind, found in initial.items():
        word = _INITIAL_WORDS.get(kind, f"{kind.value} event")
        first = ", ".join(e.target or "-" for e in found[:FIRST_SHOWN])
        log.warning(
            "list %s: %s initial %s%s (first: %s%s)",
            name,
            f"{len(found):,}",
            word,
            "" if len(found) == 1 else "s",
            first,
            ", …" if len(found) > FIRST_SHOWN else "",
            extra=EVENT_LINE,
        )
    for e in news[:MAX_EVENT_LINES]:
        log.warning(
            "%s %s on %s: %s",
            e.kind.value,
            e.target,
            e.list,
            ",".join(e.codes) or "-",
            extra=EVENT_LINE,
        )
    rest = news[MAX_EVENT_LINES:]
    if rest:
        counts = Counter(e.kind.value for e in rest)
        log.warning(
            "list %s: %s more events this cycle not logged one by one (%s)",
            name,
            f"{len(rest):,}",
            ", ".join(f"{kind}: {n:,}" for kind, n in counts.most_common()),
            extra=EVENT_LINE,
        )


__all__ = ["FIRST_SHOWN", "MAX_EVENT_LINES", "log_events"]
