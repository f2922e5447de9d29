"""The views (SPEC §9, §10) as pure functions: records in, JSON objects and text out."""

from __future__ import annotations

import dataclasses
import json

from rblwatch import catalogue as cat
from rblwatch.cluster import Instance
from rblwatch.console.render import render_page
from rblwatch.model import DnsList, Health, ListStatus
from rblwatch.views.lists import lists_json, lists_table
from rblwatch.views.status import (
    age,
    events_json,
    parse_rfc3339,
    rfc3339,
    status_json,
    status_view,
)
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


A = Instance("a1", "host-a", 101, "9.9.9", T0, T0 + 95, shards=32, leader=True)
B = Instance("b2", "host-b", 202, "9.9.8", T0 + 10, T0 + 80, shards=16)


def test_the_status_json_lists_every_instance_with_its_heartbeat_and_shards() -> None:
    view = status_view([], [], make_config().lists, 5, [A, B])
    assert status_json(view)["instances"] == [
        {
            "id": "a1",
            "host": "host-a",
            "pid": 101,
            "version": "9.9.9",
            "started": "2026-11-27T12:00:00Z",
            "last_heartbeat": "2026-11-27T12:01:35Z",
            "shards_held": 32,
            "leader": True,
        },
        {
            "id": "b2",
            "host": "host-b",
            "pid": 202,
            "version": "9.9.8",
            "started": "2026-11-27T12:00:10Z",
            "last_heartbeat": "2026-11-27T12:01:20Z",
            "shards_held": 16,
            "leader": False,
        },
    ]
    assert status_json(status_view([], [], [], 0))["instances"] == []


def test_the_page_shows_the_instances_their_heartbeat_ages_and_who_served_it() -> None:
    view = status_view([], [], make_config().lists, 5, [A, B])
    page = render_page(view, [], [], "9.9.9", now=T0 + 100, served_by="b2")
    assert "· served by b2 ·" in page
    assert "<h2>Instances</h2>" in page
    rows = [line for line in page.splitlines() if line.startswith("<tr><td>")]
    a_row = next(r for r in rows if "<td>a1</td>" in r)
    b_row = next(r for r in rows if "<td>b2 (this page)</td>" in r)
    assert "<td>host-a</td>" in a_row and ">5s ago</span>" in a_row
    assert "<td>32</td>" in a_row and '<span class="ok">leader</span>' in a_row
    assert ">20s ago</span>" in b_row and "<td>16</td>" in b_row and "leader" not in b_row


def test_a_page_without_instances_says_so_and_names_no_server() -> None:
    page = render_page(status_view([], [], [], 0), [], [], "9.9.9")
    assert "No instance has a heartbeat in the store yet." in page
    assert "served by" not in page


def test_the_status_table_lists_instances_only_when_the_store_has_some() -> None:
    lists = make_config().lists
    assert "INSTANCE" not in status_table(status_view([], [], lists, 5))
    text = status_table(status_view([], [], lists, 5, [A, B]), now=T0 + 100)
    rows = [line.split() for line in text.splitlines()]
    at = rows.index(["INSTANCE", "HOST", "PID", "VERSION", "HEARTBEAT", "SHARDS"])
    assert rows[at + 1] == ["a1", "host-a", "101", "9.9.9", "5s", "ago", "32", "leader"]
    assert rows[at + 2] == ["b2", "host-b", "202", "9.9.8", "20s", "ago", "16"]
    assert text.endswith("\n0 listed pairs, 5 targets\n")


def test_an_age_is_short_and_never_negative() -> None:
    assert [age(s) for s in (-3, 0, 59.9, 61, 3600 + 120, 2 * 86400 + 3 * 3600)] == [
        "0s",
        "0s",
        "59s",
        "1m 1s",
        "1h 2m",
        "2d 3h",
    ]


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
