"""The sender hygiene part of the status views (API object, table, page): failing pairs split
back into domain, IP and selector, pairs of checks no group asks for left out, and a page that
never says "nothing fails" before any check has run."""

from __future__ import annotations

from rblwatch.console.render import render_page
from rblwatch.model import DnsList, ListStatus, PairState, PairStatus
from rblwatch.views.status import status_json, status_view
from rblwatch.views.tables import status_table

T0 = 1_790_000_000.0
LISTS = [DnsList(name="bl", zone="bl.test")]


def failing(check: str, key: str, result: str, reason: str) -> PairState:
    return PairState(
        target=key,
        list=check,
        group="mail",
        status=PairStatus.LISTED,
        since=T0,
        first_seen=T0,
        codes=(result,),
        meanings=(reason,),
    )


PAIRS = [
    failing("spf", "example.com 192.0.2.10", "softfail", "softfail via ~all"),
    failing("dkim", "s1._domainkey.example.com", "revoked", "the key is revoked (p= empty)"),
    failing("fcrdns", "2001:db8::25", "no_ptr", "no PTR record"),
    failing("dmarc", "example.org", "missing", "publish v=DMARC1"),  # dmarc not configured now
]
RAN = [ListStatus(name=c, last_cycle_end=T0 + 5) for c in ("spf", "dkim", "fcrdns")]


def test_the_api_object_splits_each_pair_into_what_it_checks() -> None:
    view = status_view(PAIRS, RAN, LISTS, 3, (), ["fcrdns", "spf", "dkim"])
    doc = status_json(view)["hygiene"]
    assert isinstance(doc, dict)
    assert [c["name"] for c in doc["checks"]] == ["fcrdns", "spf", "dkim"]
    got = {(f["check"], f["target"], f["ip"], f.get("selector")) for f in doc["failing"]}
    assert got == {
        ("spf", "example.com", "192.0.2.10", None),
        ("dkim", "example.com", None, "s1"),
        ("fcrdns", "2001:db8::25", "2001:db8::25", None),
    }  # dmarc's pair is gone with its check
    spf = next(f for f in doc["failing"] if f["check"] == "spf")
    assert (spf["result"], spf["reason"], spf["group"]) == ("softfail", "softfail via ~all", "mail")
    assert status_json(view)["listings"] == []  # a failing check is not a listing


def test_the_table_and_the_page_show_the_failures_and_their_reasons() -> None:
    view = status_view(PAIRS, RAN, LISTS, 3, (), ["fcrdns", "spf", "dkim"])
    text = status_table(view)
    assert "softfail via ~all" in text and "LAST RUN" in text
    assert text.rstrip().endswith("3 failing hygiene checks")
    page = render_page(view, [], LISTS, "1.0")
    assert "<h2>Sender hygiene</h2>" in page and "the key is revoked (p= empty)" in page
    assert "3 failing sender checks" in page


def test_nothing_failing_is_said_only_once_a_check_has_run() -> None:
    before = status_view([], [], LISTS, 3, (), ["spf"])
    assert "No sender check has run yet." in render_page(before, [], LISTS, "1.0")
    after = status_view([], RAN, LISTS, 3, (), ["spf"])
    page = render_page(after, [], LISTS, "1.0")
    assert "No sender check fails." in page and "has run yet" not in page


def test_without_hygiene_checks_the_views_say_nothing_of_them() -> None:
    view = status_view(PAIRS, RAN, LISTS, 3)
    assert status_json(view)["hygiene"] == {"checks": [], "failing": []}
    assert "Sender hygiene" not in render_page(view, [], LISTS, "1.0")
    assert "hygiene" not in status_table(view)
