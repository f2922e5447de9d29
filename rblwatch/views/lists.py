"""The views of DNS lists for `rblwatch lists` (SPEC §7, §9): a table and a stable JSON shape.

Zones are shown as `shown_zone`, never `zone`: a keyed zone expanded from the environment
must not leak into a terminal, a log or a pasted bug report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rblwatch.model import DnsList
from rblwatch.views.tables import table


def lists_table(lists: Iterable[DnsList], health: Mapping[str, str] | None = None) -> str:
    """The `rblwatch lists` table; the health column appears only after `--test` probed.

    Ends with a newline, so a caller writes it as is.
    """
    header = ["NAME", "KIND", "IPV6", "PURPOSE", "STATUS", "ZONE", "DAILY LIMIT"]
    if health is not None:
        header.append("HEALTH")
    rows = []
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
    return table(header, rows)


def lists_json(
    lists: Iterable[DnsList], health: Mapping[str, str] | None = None
) -> list[dict[str, object]]:
    """The `lists` array of SPEC §9 (also `rblwatch lists --format json`); a stable shape."""
    return [_list_json(lst, None if health is None else health.get(lst.name)) for lst in lists]


def _list_json(lst: DnsList, health: str | None) -> dict[str, object]:
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


__all__ = ["lists_json", "lists_table"]
