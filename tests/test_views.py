"""The views (SPEC §9, §10) as pure functions: records in, JSON objects and text out."""

from __future__ import annotations

import dataclasses
import json

from rblwatch import catalogue as cat
from rblwatch.model import DnsList, Health, ListStatus
from rblwatch.views.lists import lists_json, lists_table
from rblwatch.views.page import render_page
from rblwatch.views.status import events_json, parse_rfc3339, rfc3339, status_json, status_view
from rblwatch.views.tables import status_table, table
from tests.webstate import T0, clean, event, listed, make_config


def all_lists() -> list[DnsList]:
    return list(cat.catalogue().values())


# --- status and events (the API objects, which the CLI prints too) -------------------------------


def test_events_json_is_a_pure_function_of_the_events() -> None:
    e = event("192.0.2.1", T0 + 0.9)
    assert events_json([e]) == {
        "events": [
            {
                "id": None,
                "kind": "listed",
                "target": "192.0.2.1",
                "hostname": None,
                "list": "corp-bl",
                "group": "mail",
                "at": "2026-11-27T12:00:00Z",  # whole seconds, rounded down
                "codes": ["127.0.0.2"],
                "initial": False,
            }
        ]
    }


def test_rfc3339_round_trips_whole_seconds() -> None:
    assert rfc3339(T0) == "2026-11-27T12:00:00Z"
    assert parse_rfc3339("2026-11-27T12:00:00Z") == T0
    assert rfc3339(None) is None


def test_the_status_view_keeps_configured_lists_only_in_config_order() -> None:
    config = make_config()
    pairs = [listed("192.0.2.9", "gone-bl"), listed("192.0.2.2"), listed("192.0.2.1"), clean("x")]
    rows = [ListStatus(name="gone-bl"), ListStatus(name="corp-dbl", health=Health.DEAD)]
    view = status_view(pairs, rows, config.lists, 7)
    assert [(p.target, p.list) for p in view.listings] == [
        ("192.0.2.1", "corp-bl"),
        ("192.0.2.2", "corp-bl"),
    ]
    assert [(r.name, r.health) for r in view.lists] == [
        ("corp-bl", Health.UNKNOWN),
        ("spamhaus-zen", Health.UNKNOWN),
        ("corp-dbl", Health.DEAD),
    ]
    assert status_json(view)["targets"] == 7


def test_the_page_and_the_table_are_built_from_the_view_alone() -> None:
    config = make_config()
    view = status_view([listed("192.0.2.1")], [], config.lists, 5)
    page = render_page(view, [event("192.0.2.1", T0)], config.lists, "9.9.9")
    assert "5 targets · 1 listings · version 9.9.9" in page
    assert '<a href="https://corp.example.net/delist?a=1&amp;b=2"' in page
    text = status_table(view)
    assert text.endswith("\n1 listed pairs, 5 targets\n")


def test_a_table_pads_every_column_but_the_last() -> None:
    assert table(["A", "BB", "C"], [["aaa", "b", "c  "]]) == "A    BB  C\naaa  b   c\n"


# --- the lists (rblwatch lists) ------------------------------------------------------------------

JSON_KEYS = {
    "name",
    "zone",
    "kind",
    "ipv6",
    "purpose",
    "status",
    "status_since",
    "codes",
    "bits",
    "errors",
    "error_bits",
    "delist_url",
    "access",
    "daily_query_limit",
    "health",
}


def test_lists_json_has_one_stable_object_per_list() -> None:
    rows = lists_json(all_lists())
    assert [row["name"] for row in rows] == list(cat.catalogue())
    for row in rows:
        assert set(row) == JSON_KEYS
        assert row["health"] is None
    json.dumps(rows)  # serialisable as is


def test_lists_json_uses_plain_values_and_string_bit_keys() -> None:
    surbl, zen = lists_json([cat.get("surbl-multi"), cat.get("spamhaus-zen")])
    assert surbl["kind"] == "domain"
    assert surbl["bits"] == {
        "4": "DM - disposable mail domains",
        "8": "PH - phishing",
        "16": "MW - malware",
        "32": "CT - click-tracker domains",
        "64": "ABUSE - spam and abuse (former SC/AB/JP)",
        "128": "CR - cracked sites",
    }
    assert surbl["error_bits"] == {"1": "blocked"}
    assert zen["errors"] == {
        "127.255.255.252": "blocked",
        "127.255.255.254": "blocked",
        "127.255.255.255": "rate_limited",
    }
    assert zen["ipv6"] is True
    assert zen["daily_query_limit"] == 300_000


def test_lists_json_fills_health_when_given() -> None:
    rows = lists_json([cat.get("psbl"), cat.get("spamcop")], {"psbl": "healthy"})
    assert [row["health"] for row in rows] == ["healthy", None]


def test_views_show_the_masked_zone_never_the_secret() -> None:
    keyed = dataclasses.replace(
        cat.get("spamhaus-zen-dqs"),
        zone="s3cr3tkey.zen.dq.spamhaus.net",
        display_zone="***.zen.dq.spamhaus.net",
    )
    assert lists_json([keyed])[0]["zone"] == "***.zen.dq.spamhaus.net"
    table = lists_table([keyed])
    assert "***.zen.dq.spamhaus.net" in table
    assert "s3cr3tkey" not in table


def test_lists_table_has_a_health_column_only_when_health_is_given() -> None:
    lists = [cat.get("spamhaus-zen"), cat.get("sorbs")]
    plain = lists_table(lists).splitlines()
    assert plain[0].split() == [
        "NAME",
        "KIND",
        "IPV6",
        "PURPOSE",
        "STATUS",
        "ZONE",
        "DAILY",
        "LIMIT",
    ]
    assert plain[1].split() == [
        "spamhaus-zen",
        "ip",
        "yes",
        "block",
        "active",
        "zen.spamhaus.org",
        "300,000",
    ]
    assert plain[2].split()[-1] == "-"
    probed = lists_table(lists, {"spamhaus-zen": "blocked"}).splitlines()
    assert probed[0].split()[-1] == "HEALTH"
    assert probed[1].split()[-1] == "blocked"
    assert probed[2].split()[-1] == "-"
    assert lists_table(lists).endswith("-\n")
