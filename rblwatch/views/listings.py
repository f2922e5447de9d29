"""The console's listings page as pure functions: the search, the filters, the order and the
rows of one page (issue 11: search by address, CIDR, domain, list, group or TXT; numeric
address order; paging for 10,000+ rows).

The caller hands in the stored pairs (already in `listing_order`, which it may keep between
requests: sorting 10,000 addresses is most of the cost) and gets back one page of rows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from rblwatch.model import PairState, PairStatus, a_label
from rblwatch.views.pairs import PairItem
from rblwatch.views.ui import (
    PER_PAGE_DEFAULT,
    BadParameter,
    Paged,
    Stamp,
    delist_href,
    paginate,
    stamp,
    target_order,
    unicode_name,
    whole,
)

STATES = ("listed", "pending", "clean", "all")  # what the state filter offers
SORTS = ("target", "since", "list")
_PARAMS = frozenset({"q", "list", "group", "state", "sort", "page", "per_page"})


@dataclass(frozen=True, slots=True)
class ListingQuery:
    """What the listings page was asked for (every field as the form sends it back)."""

    q: str = ""
    list: str = ""
    group: str = ""
    state: str = "listed"
    sort: str = "target"
    page: int = 1
    per_page: int = PER_PAGE_DEFAULT

    def link(self, **change: object) -> str:
        """The query string of this query with some fields changed (for paging links)."""
        from urllib.parse import urlencode

        fields = {
            "q": self.q,
            "list": self.list,
            "group": self.group,
            "state": self.state,
            "sort": self.sort,
            "page": self.page,
            "per_page": self.per_page,
        }
        fields.update(change)
        defaults = ListingQuery()
        kept = {k: v for k, v in fields.items() if v != getattr(defaults, k)}
        return "?" + urlencode(kept) if kept else "?"


def listing_query(params: Mapping[str, str]) -> ListingQuery:
    """The query a request's parameters ask for; BadParameter naming the one that is wrong."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise BadParameter(f"unknown parameter {unknown[0]!r} (use {', '.join(sorted(_PARAMS))})")
    state = params.get("state") or "listed"
    if state not in STATES:
        raise BadParameter(f"state: {state!r} is not one of {', '.join(STATES)}")
    sort = params.get("sort") or "target"
    if sort not in SORTS:
        raise BadParameter(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
    return ListingQuery(
        q=(params.get("q") or "").strip(),
        list=params.get("list") or "",
        group=params.get("group") or "",
        state=state,
        sort=sort,
        page=whole(params.get("page"), "page", 1),
        per_page=whole(params.get("per_page"), "per_page", PER_PAGE_DEFAULT),
    )


def listing_order(pairs: Iterable[PairState]) -> list[PairState]:
    """Pairs by target (numerically: 192.0.2.50 before 192.0.2.200), then list."""
    return sorted(pairs, key=lambda p: (target_order(p.target), p.list))


def _network(q: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" not in q:
        return None
    try:
        return ipaddress.ip_network(q, strict=False)
    except ValueError:
        return None


def _address(q: str) -> str | None:
    try:
        return str(ipaddress.ip_address(q))
    except ValueError:
        return None


def _domain(q: str) -> str | None:
    """The A-label form of a domain typed in Unicode ("bücher.example"), if it has one."""
    if q.isascii() or " " in q:
        return None
    try:
        return ".".join(a_label(label) for label in q.rstrip(".").split("."))
    except ValueError:
        return None


def _in_network(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Callable[[str], bool]:
    def inside(target: str) -> bool:
        try:
            return ipaddress.ip_address(target) in net
        except ValueError:
            return False

    return inside


def matcher(q: str) -> Callable[[PairState], bool]:
    """What a search matches: an address exactly, the addresses inside a CIDR, otherwise the
    text anywhere in the target (A-label or Unicode), the list or group name, the meanings
    or the TXT (case-insensitive)."""
    net = _network(q)
    if net is not None:
        inside = _in_network(net)
        return lambda p: inside(p.target)
    address = _address(q)
    if address is not None:
        return lambda p: p.target == address
    text = q.lower()
    needles = [text] + [d for d in (_domain(text),) if d]

    def found(p: PairState) -> bool:
        hay = (p.target, p.list.lower(), p.group.lower(), (p.txt or "").lower(), *p.meanings)
        return any(n in h.lower() for n in needles for h in hay)

    return found


def _state_ok(state: str) -> Callable[[PairState], bool]:
    if state == "listed":
        return lambda p: p.status is PairStatus.LISTED
    if state == "clean":
        return lambda p: p.status is PairStatus.CLEAN and p.pending is None
    if state == "pending":
        return lambda p: p.pending is not None
    return lambda p: True


def select(ordered: Sequence[PairState], query: ListingQuery) -> list[PairState]:
    """The pairs (in `listing_order`) the query's search and filters keep, in its order."""
    state_ok = _state_ok(query.state)
    found = matcher(query.q) if query.q else None
    kept = [
        p
        for p in ordered
        if state_ok(p)
        and (not query.list or p.list == query.list)
        and (not query.group or p.group == query.group)
        and (found is None or found(p))
    ]
    if query.sort == "since":
        kept.sort(key=lambda p: -p.since)  # stable: equal times keep the target order
    elif query.sort == "list":
        kept.sort(key=lambda p: p.list)
    return kept


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One row of the listings table (or of the overview's newest listings)."""

    target: str
    unicode: str | None  # the IDN in Unicode, shown beside its A-label
    list: str
    group: str
    state: str  # "listed", "clean" or "pending"
    since: Stamp | None
    codes: tuple[str, ...]
    meanings: tuple[str, ...]
    txt: str | None
    delist: str | None  # an http(s) link, or None
    # from the pairs view (`with_items`): who acknowledged it (active acks only), whether it
    # has had no good answer for two intervals, and its last lookup's error reason
    ack_by: str | None = None
    ack_note: str = ""
    stale: bool = False
    error: str | None = None


def listing_row(p: PairState, delist: Mapping[str, str | None], now: float | None) -> ListingRow:
    state = "pending" if p.pending is not None else p.status.value
    return ListingRow(
        p.target,
        unicode_name(p.target),
        p.list,
        p.group,
        state,
        stamp(p.since, now),
        p.codes,
        p.meanings,
        p.txt,
        delist_href(delist.get(p.list)),
    )


def listing_page(
    ordered: Sequence[PairState],
    query: ListingQuery,
    delist: Mapping[str, str | None],
    now: float | None,
) -> Paged[ListingRow]:
    """The rows of the page the query asks for (rows are built for that page only)."""
    page = paginate(select(ordered, query), query.page, query.per_page)
    rows = [listing_row(p, delist, now) for p in page.items]
    return Paged(rows, page.page, page.per_page, page.total)


def marked(row: ListingRow, item: PairItem | None, now: float) -> ListingRow:
    """The row with its pair's ack, staleness and last error (`item`: the pairs view's)."""
    if item is None:
        return row
    ack = item.ack if item.ack is not None and item.ack.active(now) else None
    return replace(
        row,
        ack_by=ack.by if ack is not None else None,
        ack_note=ack.note if ack is not None else "",
        stale=item.stale,
        error=item.last_reason.value if item.last_reason is not None else None,
    )


def with_items(
    page: Paged[ListingRow], items: Mapping[tuple[str, str], PairItem], now: float
) -> Paged[ListingRow]:
    """A page's rows marked with their pairs' items (`views.pairs.pair_items`)."""
    rows = [marked(r, items.get((r.target, r.list)), now) for r in page.items]
    return Paged(rows, page.page, page.per_page, page.total)


__all__ = [
    "SORTS",
    "STATES",
    "ListingQuery",
    "ListingRow",
    "listing_order",
    "listing_page",
    "listing_query",
    "listing_row",
    "marked",
    "matcher",
    "select",
    "with_items",
]
