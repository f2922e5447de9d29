"""The console's view models (`rblwatch.views`: ui, listings, detail, eventlog, page) as pure
functions: records in, rows, pages and sentences out."""

from __future__ import annotations

import pytest

from rblwatch.model import (
    DnsList,
    Event,
    EventKind,
    Health,
    Kind,
    ListStatus,
    OutcomeKind,
    ResolverState,
)
from rblwatch.views import detail, eventlog, listings
from rblwatch.views.page import NOT_KNOWN, Problems, banners, counts, overview, summary
from rblwatch.views.pairs import PairItem
from rblwatch.views.status import Budget, PairCounts, status_view
from rblwatch.views.ui import (
    BadParameter,
    delist_href,
    paginate,
    stamp,
    target_order,
    unicode_name,
)
from tests.webstate import T0, clean, listed, make_config

# --- shared pieces ----------------------------------------------------------------------------


def test_addresses_sort_by_number_ipv4_then_ipv6_then_domains() -> None:
    values = ["example.com", "192.0.2.200", "2001:db8::10", "192.0.2.50", "2001:db8::9", "a.test"]
    assert sorted(values, key=target_order) == [
        "192.0.2.50",
        "192.0.2.200",
        "2001:db8::9",
        "2001:db8::10",
        "a.test",
        "example.com",
    ]


def test_an_idn_is_shown_in_unicode_and_an_ascii_name_is_not() -> None:
    assert unicode_name("xn--bcher-kva.example") == "bücher.example"
    assert unicode_name("example.com") is None
    assert unicode_name("xn--zz.example") is None  # not decodable: the A-label alone
    assert unicode_name("2001:db8::1") is None


def test_times_are_utc_iso_with_an_age_either_way() -> None:
    assert stamp(T0, T0 + 125) == stamp(T0, T0 + 125)
    s = stamp(T0, T0 + 125)
    assert s is not None and (s.iso, s.age) == ("2026-11-27T12:00:00Z", "2m 5s ago")
    later = stamp(T0 + 180, T0)
    assert later is not None and later.age == "in 3m 0s"
    assert stamp(None, T0) is None
    bare = stamp(T0, None)
    assert bare is not None and bare.age == ""


def test_only_http_delisting_links_are_links() -> None:
    assert delist_href("https://x.example/d") == "https://x.example/d"
    assert delist_href("javascript:alert(1)") is None
    assert delist_href(None) is None


def test_a_page_past_the_end_is_the_last_and_pages_count_from_one() -> None:
    page = paginate(list(range(250)), 9, 100)
    assert (page.page, page.pages, page.first, page.last) == (3, 3, 201, 250)
    assert (page.prev, page.next) == (2, None)
    empty = paginate([], 1, 100)
    assert (empty.pages, empty.first, empty.last, empty.next) == (1, 0, 0, None)


# --- listings -----------------------------------------------------------------------------------

PAIRS = listings.listing_order(
    [
        listed("192.0.2.200"),
        listed("192.0.2.50", txt="Listed for spam, see https://bl.example/q"),
        listed("192.0.2.50", "spamhaus-zen", group="web"),
        listed("2001:db8::1"),
        listed("xn--bcher-kva.example", "corp-dbl", group="web"),
        clean("198.51.100.7"),
    ]
)


def found(q: str, **kw: str) -> list[tuple[str, str]]:
    query = listings.listing_query({"q": q, **kw})
    return [(p.target, p.list) for p in listings.select(PAIRS, query)]


def test_listings_are_in_numeric_address_order_and_clean_rows_are_left_out() -> None:
    assert found("") == [
        ("192.0.2.50", "corp-bl"),
        ("192.0.2.50", "spamhaus-zen"),
        ("192.0.2.200", "corp-bl"),
        ("2001:db8::1", "corp-bl"),
        ("xn--bcher-kva.example", "corp-dbl"),
    ]


def test_search_by_address_is_exact_and_by_cidr_takes_what_it_contains() -> None:
    assert found("192.0.2.50") == [("192.0.2.50", "corp-bl"), ("192.0.2.50", "spamhaus-zen")]
    assert found("192.0.2.128/25") == [("192.0.2.200", "corp-bl")]
    assert found("2001:db8::/32") == [("2001:db8::1", "corp-bl")]
    assert found("2001:0db8:0::1") == [("2001:db8::1", "corp-bl")]


def test_search_by_domain_in_unicode_or_a_label_by_list_group_and_txt() -> None:
    assert found("bücher.example") == [("xn--bcher-kva.example", "corp-dbl")]
    assert found("xn--bcher") == [("xn--bcher-kva.example", "corp-dbl")]
    assert found("spamhaus-zen") == [("192.0.2.50", "spamhaus-zen")]
    assert found("WEB") == [("192.0.2.50", "spamhaus-zen"), ("xn--bcher-kva.example", "corp-dbl")]
    assert found("listed for SPAM") == [("192.0.2.50", "corp-bl")]


def test_filters_by_list_group_and_state_combine_with_the_search() -> None:
    assert found("192.0.2.50", list="corp-bl") == [("192.0.2.50", "corp-bl")]
    assert found("", group="web", list="corp-dbl") == [("xn--bcher-kva.example", "corp-dbl")]
    assert found("", state="clean") == [("198.51.100.7", "corp-bl")]
    assert len(found("", state="all")) == 6


def test_a_pending_change_is_its_own_state() -> None:
    import dataclasses

    pending = dataclasses.replace(listed("192.0.2.9"), pending=OutcomeKind.CLEAN, pending_count=1)
    query = listings.listing_query({"state": "pending"})
    assert listings.select([pending, listed("192.0.2.8")], query) == [pending]
    assert listings.listing_row(pending, {}, None).state == "pending"


def test_bad_listing_parameters_name_themselves() -> None:
    with pytest.raises(BadParameter, match="unknown parameter 'qq'"):
        listings.listing_query({"qq": "x"})
    with pytest.raises(BadParameter, match="state: 'gone' is not one of"):
        listings.listing_query({"state": "gone"})
    with pytest.raises(BadParameter, match="page: must be at least 1, got 0"):
        listings.listing_query({"page": "0"})
    with pytest.raises(BadParameter, match="per_page: not a whole number"):
        listings.listing_query({"per_page": "many"})


def test_ten_thousand_listings_come_a_hundred_a_page_with_their_links() -> None:
    many = listings.listing_order(
        listed(f"10.0.{i >> 8}.{i & 255}", since=T0 + i) for i in range(10_000)
    )
    query = listings.listing_query({"page": "50", "q": "10.0.0.0/8"})
    page = listings.listing_page(many, query, {"corp-bl": "https://d.example/"}, T0 + 20_000)
    assert (page.total, page.pages, len(page.items)) == (10_000, 100, 100)
    assert page.items[0].target == "10.0.19.36"  # the 4,901st address
    assert page.items[0].delist == "https://d.example/"
    assert query.link(page=51) == "?q=10.0.0.0%2F8&page=51"
    newest = listings.listing_page(many, listings.listing_query({"sort": "since"}), {}, None)
    assert newest.items[0].target == "10.0.39.15"


def test_a_listing_row_carries_its_txt_its_idn_and_a_safe_delist_link() -> None:
    row = listings.listing_row(
        listed("xn--bcher-kva.example", "corp-dbl", txt="why"),
        {"corp-dbl": "javascript:alert(1)"},
        T0 + 60,
    )
    assert (row.unicode, row.txt, row.delist, row.state) == (
        "bücher.example",
        "why",
        None,
        "listed",
    )
    assert row.since is not None and row.since.age == "1m 0s ago"


# --- target and list pages ---------------------------------------------------------------------

LISTS = [
    DnsList("corp-bl", "bl.example", delist_url="https://corp.example/d"),
    DnsList("zen", "zen.example"),
    DnsList("new-bl", "new.example"),
    DnsList("dbl", "dbl.example", kind=Kind.DOMAIN),
]


def test_a_target_page_says_listed_clean_or_not_checked_for_every_list() -> None:
    history = [Event(EventKind.LISTED, "corp-bl", T0, target="192.0.2.1", group="mail")]
    page = detail.target_page(
        "192.0.2.1", LISTS, [listed("192.0.2.1", txt="spam")], {"corp-bl", "zen"}, history, T0
    )
    states = {s.list: (s.state, s.why) for s in page.states}
    assert states == {
        "corp-bl": ("listed", ""),
        "zen": ("clean", ""),  # looked up, no row: clean
        "new-bl": ("not checked", "not looked up yet"),  # never "clean" unasked
        "dbl": ("not checked", "takes no ipv4 targets"),
    }
    corp = page.states[0]
    assert (corp.txt, corp.delist, corp.codes) == ("spam", "https://corp.example/d", ("127.0.0.2",))
    assert page.listed == 1
    assert [e.kind for e in page.history] == ["listed"]


def test_a_list_page_has_its_error_rate_codes_seen_next_cycle_and_health_history() -> None:
    status = ListStatus(
        "corp-bl", Health.HEALTHY, last_cycle_start=T0, last_cycle_end=T0 + 30,
        last_cycle_lookups=200, last_cycle_errors=3,
    )  # fmt: skip
    pairs = [
        listed("192.0.2.1", codes=("127.0.0.2", "127.0.0.4"), meanings=("spam", "xbl")),
        listed("192.0.2.2", codes=("127.0.0.2",), meanings=("spam",)),
        clean("192.0.2.3"),
    ]
    events = [
        Event(EventKind.LISTED, "corp-bl", T0 + 5, target="192.0.2.2"),
        Event(EventKind.LIST_RECOVERED, "corp-bl", T0 + 4),
        Event(EventKind.LIST_UNHEALTHY, "corp-bl", T0 + 1, detail="127.0.0.2 not listed"),
    ]
    budgets = {"corp-bl": Budget(120, 100)}
    page = detail.list_page(LISTS[0], status, 1800.0, pairs, events, budgets, T0 + 60)
    assert page.error_rate == "1.5 %"
    assert [(c.code, c.meaning, c.pairs) for c in page.codes] == [
        ("127.0.0.2", "spam", 2),
        ("127.0.0.4", "xbl", 1),
    ]
    assert page.next_cycle is not None and page.next_cycle.iso == "2026-11-27T12:30:00Z"
    assert [e.kind for e in page.health_history] == ["list_recovered", "list_unhealthy"]
    assert page.listed == 2 and page.budget is not None and page.budget.exhausted
    assert detail.error_rate(ListStatus("x")) == ""
    few = ListStatus("x", last_cycle_lookups=65_536, last_cycle_errors=3)
    assert detail.error_rate(few) == "< 0.1 %"


# --- events --------------------------------------------------------------------------------------


def test_the_events_filters_parse_and_refuse_what_they_cannot_use() -> None:
    q = eventlog.event_query({"kind": "listed", "since": "2026-11-27T12:00:00 00:00", "page": "2"})
    assert (q.kind, q.since_at, q.page) == ("listed", T0, 2)
    assert q.link(page=3) == "?kind=listed&since=2026-11-27T12%3A00%3A00+00%3A00&page=3"
    with pytest.raises(BadParameter, match="kind: 'boom' is not an event kind"):
        eventlog.event_query({"kind": "boom"})
    with pytest.raises(BadParameter, match="since: not an RFC 3339 time"):
        eventlog.event_query({"since": "yesterday"})


def test_a_kind_filter_pages_through_what_the_store_returned() -> None:
    events = [
        Event(EventKind.LISTED if i % 2 else EventKind.DELISTED, "bl", T0 - i, target=f"t{i}")
        for i in range(250)
    ]
    query = eventlog.EventQuery(kind="listed", page=1)
    shown, more = eventlog.page_of(events, query)
    assert len(shown) == 100 and more and all(e.kind is EventKind.LISTED for e in shown)
    shown, more = eventlog.page_of(events, eventlog.EventQuery(kind="listed", page=2))
    assert len(shown) == 25 and not more
    assert eventlog.EventQuery(kind="listed").read_limit == 2000
    assert eventlog.EventQuery().read_limit == 100
    row = eventlog.event_row(events[1], T0)
    assert (row.kind, row.tone) == ("listed", "bad")


# --- the overview ------------------------------------------------------------------------------


def test_before_any_cycle_every_count_is_not_known_and_nothing_listed_is_never_said() -> None:
    view = status_view([], [], make_config().lists, 5)
    assert [c.value for c in counts(view)] == [NOT_KNOWN] * 4
    assert summary(view) == "No list has completed a cycle yet: nothing is known about the targets."


def test_after_a_cycle_the_listings_count_is_known_and_the_rest_not_until_counted() -> None:
    rows = [ListStatus("corp-bl", last_cycle_end=T0)]
    view = status_view([listed("192.0.2.1")], rows, make_config().lists, 5)
    assert [(c.label, c.value) for c in counts(view)] == [
        ("listed", "1"),
        ("unknown", NOT_KNOWN),
        ("errors", NOT_KNOWN),
        ("acknowledged", NOT_KNOWN),
    ]
    assert summary(view) == "1 listings (2 lists have not completed a cycle yet)."
    import dataclasses

    counted = dataclasses.replace(view, counts=PairCounts(20, 1, 12, 7, 2, 1, 1))
    assert [c.value for c in counts(counted)] == ["1", "7", "2", "1"]
    empty = dataclasses.replace(counted, listings=[])
    assert summary(empty).startswith("No target is known to be listed; 7 pairs are unknown")


def test_a_resolver_outage_is_a_banner_and_the_counts_are_not_known() -> None:
    import dataclasses

    rows = [ListStatus("corp-bl", last_cycle_end=T0)]
    view = status_view([], rows, make_config().lists, 5)
    down = dataclasses.replace(view, resolver=ResolverState("unreachable", T0, "timeout"))
    [banner] = banners(down, Problems(), T0 + 60)
    assert banner.tone == "bad"
    assert banner.text == (
        "The resolver is unreachable since 2026-11-27T12:00:00Z: no list can be checked (timeout)."
    )
    assert counts(down)[0].value == NOT_KNOWN
    assert "No target is listed" not in summary(down)


def test_spent_budgets_unresolved_hostnames_and_runtime_problems_are_banners() -> None:
    import dataclasses

    view = dataclasses.replace(
        status_view([], [], make_config().lists, 5),
        budgets={"corp-bl": Budget(100, 100), "zen": Budget(5, None)},
        unresolved=[("mail", "mx.example", "NXDOMAIN")],
    )
    texts = [b.text for b in banners(view, Problems(store_ok=False, reload_ok=False), None)]
    assert texts == [
        "The store did not answer the last heartbeat: what this page shows may be out of date.",
        "The last configuration reload failed: the previous configuration is still running "
        "(see the log).",
        "Daily query budget spent: corp-bl.",
        "Hostnames that did not resolve: mx.example.",
    ]
    o = overview(view, [], make_config().lists, "1.0", now=T0, default_interval=1800.0)
    budget = {r.name: (r.budget, r.budget_exhausted) for r in o.lists}
    assert budget["corp-bl"] == ("100 / 100", True)
    assert budget["spamhaus-zen"] == ("", False)


def test_the_overview_lists_the_newest_listings_first_and_each_list_s_next_cycle() -> None:
    rows = [ListStatus("corp-bl", last_cycle_start=T0, last_cycle_end=T0 + 10)]
    pairs = [listed("192.0.2.1", since=T0 - 50), listed("192.0.2.2", since=T0)]
    view = status_view(pairs, rows, make_config().lists, 5)
    o = overview(view, [], make_config().lists, "1.0", now=T0 + 20, default_interval=600.0)
    assert [r.target for r in o.newest] == ["192.0.2.2", "192.0.2.1"]
    corp = o.lists[0]
    assert corp.listed == 2 and corp.next_cycle is not None
    assert (corp.next_cycle.iso, corp.next_cycle.age) == ("2026-11-27T12:10:00Z", "in 9m 40s")


def test_a_target_page_carries_its_acknowledgements_and_notes_newest_note_first() -> None:
    from rblwatch.model import Ack, Note

    acks = [
        Ack("192.0.2.1", "corp-bl", "ops", T0, "on it", until=T0 + 60,
            delisting_requested_at=T0 + 10, delisting_note="form sent"),
        Ack("192.0.2.9", "corp-bl", "ops", T0),  # another target's: left out
    ]  # fmt: skip
    notes = [Note("192.0.2.1", "ann", T0, "old"), Note("192.0.2.1", "bob", T0 + 5, "new")]
    page = detail.target_page("192.0.2.1", LISTS, [], set(), [], T0 + 120, acks, notes)
    [ack] = page.acks
    assert (ack.list, ack.by, ack.note, ack.active, ack.delisting_note) == (
        "corp-bl", "ops", "on it", False, "form sent",
    )  # fmt: skip
    assert [n.text for n in page.notes] == ["new", "old"]


# --- the pairs view on the console's pages ---------------------------------------------------


def _item(**kw: object) -> PairItem:
    base: dict[str, object] = {
        "target": "192.0.2.1",
        "list": "corp-bl",
        "group": "mail",
        "state": "listed",
        "last_outcome": "listed",
        "last_reason": None,
        "last_checked": T0,
        "last_good_at": T0,
        "stale": False,
    }
    return PairItem(**{**base, **kw})  # type: ignore[arg-type]


def test_a_listing_row_carries_its_active_ack_staleness_and_last_error() -> None:
    from rblwatch.model import Ack, Reason

    row = listings.listing_row(listed("192.0.2.1"), {}, T0)
    ack = Ack("192.0.2.1", "corp-bl", "alice", T0, "ticket 9")
    marked = listings.marked(row, _item(ack=ack, stale=True, last_reason=Reason.TIMEOUT), T0)
    assert (marked.ack_by, marked.ack_note, marked.stale, marked.error) == (
        "alice",
        "ticket 9",
        True,
        "timeout",
    )
    expired = Ack("192.0.2.1", "corp-bl", "alice", T0 - 99, "old", until=T0 - 1)
    assert listings.marked(row, _item(ack=expired), T0).ack_by is None
    assert listings.marked(row, None, T0) == row


def test_a_target_page_gives_each_looked_up_list_its_last_answer_and_ack() -> None:
    from rblwatch.model import Ack, Reason

    lists = make_config().lists
    items = {
        ("192.0.2.1", "corp-bl"): _item(),
        ("192.0.2.1", "spamhaus-zen"): _item(
            list="spamhaus-zen",
            state="unknown",
            last_outcome="error",
            last_reason=Reason.BLOCKED,
            last_good_at=None,
            stale=True,
        ),
    }
    ack = Ack("192.0.2.1", "corp-bl", "alice", T0, "on it")
    page = detail.target_page(
        "192.0.2.1",
        lists,
        [listed("192.0.2.1")],
        {"corp-bl", "spamhaus-zen"},
        [],
        T0,
        acks=[ack],
        items=items,
    )
    bl, zen, dbl = page.states
    assert bl.answer is not None and (bl.answer.outcome, bl.answer.stale) == ("listed", False)
    assert bl.ack is not None and bl.ack.by == "alice"
    assert zen.answer is not None and (zen.answer.outcome, zen.answer.reason) == (
        "error",
        "blocked",
    )
    assert zen.answer.stale and zen.answer.good is None
    assert dbl.state == "not checked" and dbl.answer is None  # never an answer unasked


def test_counted_pairs_say_n_listed_m_unknown_and_an_outage_keeps_listed_not_known() -> None:
    import dataclasses

    rows = [ListStatus(n, last_cycle_end=T0) for n in ("corp-bl", "spamhaus-zen", "corp-dbl")]
    view = status_view([listed("192.0.2.1")], rows, make_config().lists, 5)
    view = dataclasses.replace(view, counts=PairCounts(9, 1, 6, 2, 1, 2, 0))
    assert summary(view) == "1 listed, 2 unknown, 1 error."
    shown = counts(view)
    assert [(c.value, c.tone) for c in shown] == [
        ("1", "bad"),
        ("2", "warn"),
        ("1", "warn"),
        ("0", ""),
    ]
    down = dataclasses.replace(view, resolver=ResolverState("unreachable", T0, "timeout"))
    listed_count = counts(down)[0]
    assert (listed_count.value, listed_count.note) == (
        NOT_KNOWN,
        "1 listed at the last good answers",
    )
    assert counts(down)[1].value == "2"
