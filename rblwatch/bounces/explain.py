"""The one entry point: raw bytes of a message → `Explained` (parse, then classify).

Pure. `lists` is what the catalogue (and the config) knows, so a zone, URL or provider code
in a diagnostic can be named with its delist page: `ListFacts` per list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from rblwatch.bounces.model import Explained

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # a bounce with its original attached is well below this


class ListFacts(NamedTuple):
    """What naming a list needs to know of it."""

    name: str
    zones: tuple[str, ...]  # the zone and any other names it is known by
    delist_url: str | None = None
    queryable: bool = True


def explain(raw: bytes, source: str, lists: Sequence[ListFacts] = ()) -> Explained:
    """Never raises on any input: what is not mail is `kind: other` with a `problem`."""
    raise NotImplementedError  # filled in by rblwatch.bounces.parse / classify


__all__ = ["MAX_MESSAGE_BYTES", "ListFacts", "explain"]
