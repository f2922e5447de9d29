"""Acks and notes as the API, the CLI and the status table show them (issue 11 part 2).

The JSON objects of `/api/v1/acks` and `/api/v1/notes` (which `rblwatch notes --format json`
prints too), the `ack` of a listing in `/api/v1/status`, and the short mark the status table
puts beside an acknowledged listing. Times are whole-second RFC 3339, as the rest of the API.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable

from rblwatch.model import Ack, Note
from rblwatch.views.status import ack_json, parse_rfc3339, rfc3339


def acks_json(acks: Iterable[Ack], now: float) -> dict[str, object]:
    """The object `GET /api/v1/acks` answers."""
    return {"acks": [ack_json(a, now) for a in acks]}


def note_json(note: Note) -> dict[str, object]:
    return {
        "id": note.id,
        "target": note.target,
        "by": note.by,
        "at": rfc3339(note.at),
        "text": note.text,
    }


def notes_json(notes: Iterable[Note]) -> dict[str, object]:
    """The object `GET /api/v1/notes` answers and `rblwatch notes --format json` prints."""
    return {"notes": [note_json(n) for n in notes]}


_LAST = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC).timestamp()


def expiry(text: str, now: float, duration: Callable[[str], float]) -> float:
    """An ack's `until` as the CLI's `--until` and the API's `until` take it: a duration from
    `now` (7d, 12h, read by `duration`, the config's parser) or an RFC 3339 time to come;
    ValueError, saying which, otherwise."""
    try:
        at = now + duration(text)
    except ValueError:
        try:
            at = parse_rfc3339(text)
        except ValueError:
            raise ValueError("use a duration (7d, 12h) or an RFC 3339 time") from None
    if at <= now:
        raise ValueError("that is in the past (give a time to come)")
    if at > _LAST:  # every view shows it as an RFC 3339 time, which ends with year 9999
        raise ValueError("that is after the year 9999")
    return at


def ack_mark(ack: Ack, now: float) -> str:
    """The status table's word on an acknowledged listing: "ack alice until …: note" and
    "delisting requested …" (an expired ack says so rather than vanishing)."""
    parts = []
    if ack.active(now):
        mark = f"ack {ack.by}"
        if ack.until is not None:
            mark += f" until {rfc3339(ack.until)}"
    else:
        mark = f"ack {ack.by} expired {rfc3339(ack.until)}"
    parts.append(f"{mark}: {ack.note}" if ack.note else mark)
    if ack.delisting_requested_at is not None:
        asked = f"delisting requested {rfc3339(ack.delisting_requested_at)}"
        parts.append(f"{asked}: {ack.delisting_note}" if ack.delisting_note else asked)
    return "; ".join(parts)


__all__ = ["ack_json", "ack_mark", "acks_json", "expiry", "note_json", "notes_json"]
