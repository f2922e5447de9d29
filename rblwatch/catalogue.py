"""The built-in catalogue of DNS lists (SPEC §7) and its text/JSON views for `rblwatch lists`.

The facts live in `catalogue.yaml` next to this module (data, not code). Loading and validation
live in `rblwatch.config.catalogue`, by the same list rules as a config's custom lists; this
module re-exports that API (so `catalogue.get(...)` reads as before) and holds the views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rblwatch.config.catalogue import catalogue, default_names, defunct_message, get
from rblwatch.model import DnsList

__all__ = ["catalogue", "default_names", "defunct_message", "get", "lists_json", "lists_table"]


def lists_table(lists: Iterable[DnsList], health: Mapping[str, str] | None = None) -> str:
    """The `rblwatch lists` table; the health column appears only after `--test` probed.

    Ends with a newline, so a caller writes it as is.
    """
    header = ["NAME", "KIND", "IPV6", "PURPOSE", "STATUS", "ZONE", "DAILY LIMIT"]
    if health is not None:
        header.append("HEALTH")
    rows = [header]
    for lst in lists:
        row = [
            lst.name,
            lst.kind.value,
            "yes" if lst.ipv6 else "no",
            lst.purpose.value,
            lst.status.value,
            lst.shown_zone,
            "-" if lst.daily_query_limit is None else f"{lst.daily_query_limit:,}",
        ]
        if health is not None:
            row.append(health.get(lst.name, "-"))
        rows.append(row)
    return _format_rows(rows)


def lists_json(
    lists: Iterable[DnsList], health: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    """The `lists` array of SPEC §9 (also `rblwatch lists --format json`); a stable shape."""
    return [_list_json(lst, None if health is None else health.get(lst.name)) for lst in lists]


# --------------------------------------------------------------------------- views


def _format_rows(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "".join(line.rstrip() + "\n" for line in lines)


def _list_json(lst: DnsList, health: str | None) -> dict[str, object]:
    # shown_zone, never zone: a keyed zone expanded from the environment must not leak.
    return {
        "name": lst.name,
        "zone": lst.shown_zone,
        "kind": lst.kind.value,
        "ipv6": lst.ipv6,
        "purpose": lst.purpose.value,
        "status": lst.status.value,
        "status_since": lst.status_since,
        "codes": dict(lst.codes),
        "bits": {str(bit): meaning for bit, meaning in lst.bits.items()},
        "errors": {answer: reason.value for answer, reason in lst.errors.items()},
        "error_bits": {str(bit): reason.value for bit, reason in lst.error_bits.items()},
        "delist_url": lst.delist_url,
        "access": lst.access,
        "daily_query_limit": lst.daily_query_limit,
        "health": health,
    }
