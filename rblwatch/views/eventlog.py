"""Events as the console shows them: the events page's filters and every page's event rows.

The store filters by time, target and list; the kind filter is applied here to what the
store returned, so a kind filter over a long history reads at most `SCAN_MAX` events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from rblwatch.model import Event, EventKind
from rblwatch.views.status import parse_rfc3339
from rblwatch.views.ui import PER_PAGE_DEFAULT, BadParameter, Stamp, stamp, unicode_name, whole

SCAN_MAX = 5000  # events read for one page of a kind-filtered view
_PARAMS = frozenset({"kind", "list", "target", "since", "page"})
KINDS = tuple(k.value for k in EventKind)
# kinds drawn in red / green on the page
_BAD = frozenset({"listed", "changed", "list_unhealthy", "check_failed", "resolver_unreachable"})
_GOOD = frozenset({"delisted", "list_recovered", "check_passed", "resolver_recovered"})


@dataclass(frozen=True, slots=True)
class EventQuery:
    kind: str = ""
    list: str = ""
    target: str = ""  # as typed; the caller makes it canonical
    since: str = ""  # RFC 3339, as typed
    since_at: float | None = None
    page: int = 1
    per_page: int = PER_PAGE_DEFAULT

    @property
    def read_limit(self) -> int:
        """How many of the newest events (after the store's filters) cover this page."""
        wanted = self.page * self.per_page
        return min(SCAN_MAX, wanted * 20) if self.kind else wanted

    def link(self, **change: object) -> str:
        fields: dict[str, object] = {
            "kind": self.kind,
            "list": self.list,
            "target": self.target,
            "since": self.since,
            "page": self.page,
        }
        fields.update(change)
        kept = {k: v for k, v in fields.items() if v not in ("", None, 1)}
        return "?" + urlencode(kept) if kept else "?"


def event_query(params: Mapping[str, str]) -> EventQuery:
    """The events page's filters; BadParameter naming the one that is wrong."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r} (use {', '.join(sorted(_PARAMS))})")
    kind = params.get("kind") or ""
    if kind and kind not in KINDS:
        raise BadParameter(f"kind: {kind!r} is not an event kind")
    since = (params.get("since") or "").strip()
    try:
        since_at = parse_rfc3339(since.replace(" ", "+")) if since else None
    except ValueError as e:
        raise BadParameter(f"since: {e}") from None
    return EventQuery(
        kind=kind,
        list=params.get("list") or "",
        target=(params.get("target") or "").strip(),
        since=since,
        since_at=since_at,
        page=whole(params.get("page"), "page", 1),
    )


def page_of(newest_first: Sequence[Event], query: EventQuery) -> tuple[list[Event], bool]:
    """The query's page of events (newest first) and whether there are more after it."""
    kept = [e for e in newest_first if not query.kind or e.kind.value == query.kind]
    start = (query.page - 1) * query.per_page
    return kept[start : start + query.per_page], len(kept) > start + query.per_page


@dataclass(frozen=True, slots=True)
class EventRow:
    at: Stamp | None
    kind: str
    tone: str  # "bad", "ok" or ""
    initial: bool
    target: str | None
    unicode: str | None
    list: str
    group: str | None
    codes: tuple[str, ...]
    text: str  # the meanings, TXT or detail: what the event says beyond its codes


def event_row(e: Event, now: float | None) -> EventRow:
    kind = e.kind.value
    tone = "bad" if kind in _BAD else "ok" if kind in _GOOD else ""
    text = "; ".join(e.meanings) or e.detail or (e.txt or "")
    target_unicode = unicode_name(e.target) if e.target else None
    return EventRow(
        stamp(e.at, now),
        kind,
        tone,
        e.initial,
        e.target,
        target_unicode,
        e.list,
        e.group,
        e.codes,
        text,
    )


def event_rows(newest_first: Sequence[Event], now: float | None) -> list[EventRow]:
    return [event_row(e, now) for e in newest_first]


__all__ = [
    "KINDS",
    "SCAN_MAX",
    "EventQuery",
    "EventRow",
    "event_query",
    "event_row",
    "event_rows",
    "page_of",
]
