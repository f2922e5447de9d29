"""Text tables for people: the `status`, `history` and `plan` commands (SPEC §9).

Columns are left-aligned and separated by two spaces; every table ends with a newline, so a
caller writes it as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from rblwatch.model import Event
from rblwatch.views.acks import ack_mark
from rblwatch.views.pairs import PairsPage
from rblwatch.views.status import StatusView, age, rfc3339


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    every = [header, *rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(header) - 1)]
    lines = []
    for row in every:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def status_table(view: StatusView, now: float | None = None) -> str:
    """`rblwatch status`: the listings, the lists' health, the instances (if the store has
    any) and a count line. `now`: heartbeats are shown as ages from it (None: as times)."""
    listings = [
        [
            p.target,
            p.list,
            p.group,
            rfc3339(p.since) or "",
            ",".join(p.codes),
            "; ".join(p.meanings),
        ]
        for p in view.listings
    ]
    header, acked = _with_acks(view, listings, now)
    lists = [
        [r.name, r.health.value, rfc3339(r.last_cycle_end) or "never", r.health_detail]
        for r in view.lists
    ]
    r = view.resolver
    outage = (
        ""
        if r.reachable
        else f"RESOLVER UNREACHABLE since {rfc3339(r.since) or '?'}: {r.detail or '-'}"
        " (lists behind it are not checked)\n\n"
    )
    return (
        outage
        + table(header, listings)
        + "\n"
        + table(["LIST", "HEALTH", "LAST CYCLE", "DETAIL"], lists)
        + _hygiene_table(view)
        + _instances_table(view, now)
        + f"\n{_counts_line(view, acked)}, {view.targets} targets"
        + (f", {len(view.failing)} failing hygiene checks" if view.checks else "")
        + "\n"
    )


def _counts_line(view: StatusView, acked: int) -> str:
    """What is known of the pairs: never "nothing listed" when nothing was checked."""
    c = view.counts
    acknowledged = f" ({acked} acknowledged)" if acked else ""
    if c is None:
        return f"{len(view.listings)} listed pairs{acknowledged}"
    line = f"{c.listed} listed{acknowledged}, {c.unknown} unknown, {c.errors} errors"
    return line + f" of {c.total} pairs" + (f" ({c.stale} stale)" if c.stale else "")


def pairs_table(page: PairsPage) -> str:
    """`rblwatch status --target/--list/--state`: one page of the pairs view."""
    rows = [
        [
            p.target,
            p.list,
            p.group,
            p.state + (" (stale)" if p.stale else ""),
            (p.last_outcome or "never")
            + (f" ({p.last_reason.value})" if p.last_reason is not None else ""),
            rfc3339(p.last_checked) or "never",
            rfc3339(p.last_good_at) or "never",
        ]
        for p in page.items
    ]
    header = ["TARGET", "LIST", "GROUP", "STATE", "LAST OUTCOME", "LAST CHECKED", "LAST GOOD"]
    more = f"next page: --cursor {page.next_cursor}\n" if page.next_cursor else ""
    return "\n" + table(header, rows) + more


def _with_acks(
    view: StatusView, listings: list[list[str]], now: float | None
) -> tuple[list[str], int]:
    """The listings' header, and an ACK column on every row when any listing has an ack
    ("ack alice until …", "delisting requested …"); how many are acknowledged now."""
    header = ["TARGET", "LIST", "GROUP", "SINCE", "CODES", "MEANINGS"]
    acks = [view.acks.get((p.target, p.list)) for p in view.listings]
    if not any(acks):
        return header, 0
    for row, ack in zip(listings, acks, strict=True):
        # without a clock, an ack is shown as it was set (the CLI always passes one)
        row.append(ack_mark(ack, ack.at if now is None else now) if ack is not None else "")
    active = sum(1 for a in acks if a is not None and a.active(a.at if now is None else now))
    return [*header, "ACK"], active


def _hygiene_table(view: StatusView) -> str:
    """The failing sender hygiene pairs, and when each check last ran (when any is set up)."""
    if not view.checks:
        return ""
    failing = [
        [
            p.list,
            p.target,
            p.group,
            rfc3339(p.since) or "",
            ",".join(p.codes),
            "; ".join(p.meanings),
        ]
        for p in view.failing
    ]
    checks = [[r.name, rfc3339(r.last_cycle_end) or "never"] for r in view.checks]
    return (
        "\n"
        + table(["CHECK", "TARGET", "GROUP", "SINCE", "RESULT", "REASON"], failing)
        + "\n"
        + table(["CHECK", "LAST RUN"], checks)
    )


def _instances_table(view: StatusView, now: float | None) -> str:
    if not view.instances:
        return ""
    rows = [
        [
            i.id,
            i.host,
            str(i.pid),
            i.version,
            (rfc3339(i.heartbeat) or "") if now is None else f"{age(now - i.heartbeat)} ago",
            str(i.shards),
            "leader" if i.leader else "",
        ]
        for i in view.instances
    ]
    header = ["INSTANCE", "HOST", "PID", "VERSION", "HEARTBEAT", "SHARDS", ""]
    return "\n" + table(header, rows)


def history_table(events: Iterable[Event]) -> str:
    """`rblwatch history`: one row per event, dashes where a list event has no target."""
    rows = [
        [
            rfc3339(e.at) or "",
            e.kind.value,
            e.target or "-",
            e.list or "-",  # a note is on a target, not on a list
            e.group or "-",
            ",".join(e.codes),
            "initial" if e.initial else e.detail,
        ]
        for e in events
    ]
    return table(["AT", "KIND", "TARGET", "LIST", "GROUP", "CODES", ""], rows)


class PlanLine(Protocol):
    """One list's query plan (`plan.PlanRow`), as the table reads it."""

    @property
    def list(self) -> str: ...
    @property
    def targets(self) -> int: ...
    @property
    def interval(self) -> float: ...
    @property
    def queries_per_day(self) -> int: ...
    @property
    def limit(self) -> int | None: ...
    @property
    def over(self) -> bool: ...


def plan_table(plan: Iterable[PlanLine]) -> str:
    """`rblwatch plan`: queries per day per list against its published limit."""
    rows = [
        [
            r.list,
            f"{r.targets:,}",
            f"{r.interval:g}s",
            f"{r.queries_per_day:,}",
            f"{r.limit:,}" if r.limit else "-",
            "OVER LIMIT" if r.over else "ok",
        ]
        for r in plan
    ]
    return table(["LIST", "TARGETS", "INTERVAL", "QUERIES/DAY", "LIMIT/DAY", ""], rows)


__all__ = ["PlanLine", "history_table", "plan_table", "status_table", "table"]
