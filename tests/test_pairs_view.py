"""The pairs view (`rblwatch.views.pairs`): states, staleness, order, filters, paging, counts."""

from __future__ import annotations

import time

import pytest

from rblwatch.model import (
    Ack,
    Kind,
    ListStatus,
    OutcomeKind,
    PairError,
    PairState,
    PairStatus,
    Reason,
    TargetKind,
    make_targets,
)
from rblwatch.views.pairs import (
    ListPairs,
    Ordered,
    PairsQuery,
    pair_counts,
    pair_json,
    pairs_page,
    pairs_query,
)

NOW = 1_800_000_000.0
INTERVAL = 3600.0


def listed(target: str, list_name: str = "bl", **kw: object) -> PairState:
    return PairState(
        target=target,
        list=list_name,
        group="mail",
        status=PairStatus.LISTED,
        since=NOW - 86400,
        first_seen=NOW - 86400,
        codes=("127.0.0.2",),
        **kw,  # type: ignore[arg-type]
    )


def ips(values: list[str]) -> Ordered:
    return Ordered(make_targets(values, TargetKind.IPV4, "mail"))


def bl(
    values: list[str],
    *,
    success: float | None = NOW - 60,
    rows: list[PairState] = (),  # type: ignore[assignment]
    errors: list[PairError] = (),  # type: ignore[assignment]
    name: str = "bl",
) -> ListPairs:
    return ListPairs(
        name=name,
        kind=Kind.IP,
        interval=INTERVAL,
        ordered=ips(values),
        status=ListStatus(name, last_cycle_success=success, last_cycle_end=success),
        rows={p.target: p for p in rows},
        errors={e.target: e for e in errors},
    )


def page(lists: list[ListPairs], **query: object) -> list[dict[str, object]]:
    got = pairs_page(lists, pairs_query(**query), NOW)  # type: ignore[arg-type]
    return [pair_json(p) for p in got.items]


def test_a_pair_without_rows_answered_clean_at_the_list_s_last_cycle() -> None:
    [item] = page([bl(["192.0.2.1"])])
    assert item["state"] == "clean" and item["last_outcome"] == "clean"
    assert item["last_checked"] == item["last_good_at"] == "2027-01-15T07:59:00Z"
    assert item["stale"] is False and item["ack"] is None and item["last_reason"] is None


def test_addresses_come_in_numeric_order_not_as_strings() -> None:
    lists = [bl(["192.0.2.200", "192.0.2.50", "10.0.0.1"])]
    assert [p["target"] for p in page(lists)] == ["10.0.0.1", "192.0.2.50", "192.0.2.200"]


def test_an_errored_pair_keeps_its_state_and_says_why_and_when_it_last_answered() -> None:
    err = PairError("192.0.2.2", "bl", Reason.SERVFAIL, NOW - 30, "SERVFAIL", NOW - 3600)
    items = page([bl(["192.0.2.1", "192.0.2.2"], rows=[listed("192.0.2.2")], errors=[err])])
    assert items[1]["state"] == "listed" and items[1]["last_outcome"] == "error"
    assert items[1]["last_reason"] == "servfail"
    assert items[1]["last_good_at"] == "2027-01-15T07:00:00Z" and items[1]["stale"] is False


def test_no_good_answer_for_two_intervals_is_stale_and_never_clean() -> None:
    old = NOW - 2 * INTERVAL - 1
    err = PairError("192.0.2.2", "bl", Reason.TIMEOUT, NOW - 30, "", old)
    items = page(
        [bl(["192.0.2.1", "192.0.2.2", "192.0.2.3"], rows=[listed("192.0.2.3")], errors=[err])]
    )
    assert [(p["state"], p["stale"]) for p in items] == [
        ("clean", False),
        ("unknown", True),  # clean before, stale now: not counted clean
        ("listed", False),
    ]


def test_a_list_without_a_completed_cycle_for_two_intervals_makes_every_pair_stale() -> None:
    lp = bl(["192.0.2.1", "192.0.2.2"], success=NOW - 3 * INTERVAL, rows=[listed("192.0.2.2")])
    items = page([lp])
    assert [(p["state"], p["stale"]) for p in items] == [("unknown", True), ("listed", True)]
    counts = pair_counts([lp], NOW)
    assert (counts.total, counts.listed, counts.clean, counts.unknown, counts.stale) == (
        2,
        1,
        0,
        1,
        2,
    )


def test_a_pair_never_answered_is_unknown() -> None:
    never = PairError("192.0.2.1", "bl", Reason.TIMEOUT, NOW - 30, "", None)
    [item] = page([bl(["192.0.2.1"], errors=[never])])
    assert item["state"] == "unknown" and item["last_good_at"] is None and item["stale"] is True
    [item] = page([bl(["192.0.2.1"], success=None)])  # the list never completed a cycle
    assert item["state"] == "unknown" and item["last_checked"] is None


def test_the_list_s_own_error_row_speaks_for_every_pair_without_one() -> None:
    whole = PairError("", "bl", Reason.TIMEOUT, NOW - 30, "3 of 3 lookups failed", NOW - 600)
    lp = bl(["192.0.2.1", "192.0.2.2", "192.0.2.3"], rows=[listed("192.0.2.3")], errors=[whole])
    items = page([lp])
    assert {p["last_outcome"] for p in items} == {"error"}
    assert {p["last_reason"] for p in items} == {"timeout"}
    assert [p["state"] for p in items] == ["clean", "clean", "listed"]  # fresh enough still
    assert pair_counts([lp], NOW).errors == 3


def test_a_pending_listing_shows_its_last_answer_and_its_believed_state() -> None:
    pending = PairState(
        "192.0.2.1", "bl", "mail", PairStatus.CLEAN, NOW - 86400, NOW - 86400,
        pending=OutcomeKind.LISTED, pending_count=1, pending_since=NOW - 60,
    )  # fmt: skip
    [item] = page([bl(["192.0.2.1"], rows=[pending])])
    assert (item["state"], item["last_outcome"]) == ("clean", "listed")


def test_filters_by_target_network_list_and_state() -> None:
    lists = [
        bl(["192.0.2.1", "192.0.2.130", "198.51.100.7"], rows=[listed("192.0.2.130")]),
        bl(["192.0.2.1", "192.0.2.130", "198.51.100.7"], name="zen"),
    ]
    assert [(p["list"], p["target"]) for p in page(lists, target="192.0.2.130")] == [
        ("bl", "192.0.2.130"),
        ("zen", "192.0.2.130"),
    ]
    net = page(lists, target="192.0.2.0/24", list_name="zen")
    assert [p["target"] for p in net] == ["192.0.2.1", "192.0.2.130"]
    assert [(p["list"], p["target"]) for p in page(lists, state="listed")] == [
        ("bl", "192.0.2.130")
    ]
    assert len(page(lists, state="clean")) == 5
    assert page(lists, state="unknown") == []


def test_pages_follow_the_cursor_to_the_end_without_repeats() -> None:
    values = [f"10.0.{i // 256}.{i % 256}" for i in range(1000)]
    lists = [bl(values), bl(values, name="zen")]
    seen: list[tuple[object, object]] = []
    cursor = None
    while True:
        got = pairs_page(lists, pairs_query(limit=300, cursor=cursor), NOW)
        seen.extend((p.list, p.target) for p in got.items)
        if got.next_cursor is None:
            break
        cursor = got.next_cursor
    assert len(seen) == 2000 and len(set(seen)) == 2000
    assert seen[999:1001] == [("bl", "10.0.3.231"), ("zen", "10.0.0.0")]


def test_stored_pairs_of_targets_not_enumerated_are_shown_in_order() -> None:
    # a hostname's address: listed, but the config alone (no daemon) does not name it
    items = page([bl(["192.0.2.1", "192.0.2.9"], rows=[listed("192.0.2.5")])])
    assert [(p["target"], p["state"]) for p in items] == [
        ("192.0.2.1", "clean"),
        ("192.0.2.5", "listed"),
        ("192.0.2.9", "clean"),
    ]


def test_an_acknowledgement_is_rendered_and_counted() -> None:
    lp = bl(["192.0.2.1"], rows=[listed("192.0.2.1")])
    ack = Ack("192.0.2.1", "bl", "alice", NOW - 60, note="on it")
    got = pairs_page([lp], PairsQuery(), NOW, {("192.0.2.1", "bl"): ack})
    shown = pair_json(got.items[0])["ack"]
    assert shown == {
        "target": "192.0.2.1",
        "list": "bl",
        "by": "alice",
        "at": "2027-01-15T07:59:00Z",
        "note": "on it",
        "until": None,
        "delisting_requested_at": None,
        "delisting_note": "",
    }
    assert pair_counts([lp], NOW, {("192.0.2.1", "bl"): ack}).acknowledged == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"state": "gone"}, "state: must be one of listed, clean, unknown, got 'gone'"),
        ({"limit": "x"}, "limit: not a whole number: 'x'"),
        ({"limit": "0"}, "limit: must be at least 1, got 0"),
        ({"target": "not a target!"}, "target: "),
        ({"target": "192.0.2.0/33"}, "target: '192.0.2.0/33' is neither a target nor a network"),
        ({"cursor": "%%%"}, "cursor: '%%%' is not a cursor this API gave (start without one)"),
    ],
)
def test_a_bad_parameter_is_one_line_naming_it(query: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as e:
        pairs_query(**query)  # type: ignore[arg-type]
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_a_limit_above_the_maximum_is_capped() -> None:
    assert pairs_query(limit="5000").limit == 1000


def test_262144_pairs_with_10000_listings_page_and_count_fast() -> None:
    values = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(65536)]
    ordered = Ordered(make_targets(values, TargetKind.IPV4, "mail"))  # sorted once, kept
    lists = []
    for n in range(4):
        name = f"l{n}"
        rows = {v: listed(v, name) for v in values[n * 2500 : (n + 1) * 2500]}
        status = ListStatus(name, last_cycle_success=NOW - 60)
        lists.append(ListPairs(name, Kind.IP, INTERVAL, ordered, status, rows, {}))
    start = time.perf_counter()
    counts = pair_counts(lists, NOW)
    first = pairs_page(lists, PairsQuery(), NOW)
    found = pairs_page(lists, pairs_query(target="10.0.3.7"), NOW)
    deep = pairs_page(lists, pairs_query(state="listed", cursor=first.next_cursor), NOW)
    spent = time.perf_counter() - start
    assert (counts.total, counts.listed, counts.clean) == (262_144, 10_000, 252_144)
    assert len(first.items) == 100 and [p.target for p in found.items] == ["10.0.3.7"] * 4
    assert len(deep.items) == 100
    assert spent < 1.0, spent  # well under: 10,000 rows looked at, never 262,144 sorted
