"""Query etiquette arithmetic (SPEC §5): queries per day per list, and `rblwatch plan`.

queries/day = targets the list takes * 86400 / interval + test points * 86400 / health_interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rblwatch import cli
from rblwatch import plan as plan_mod
from rblwatch.config import Config, parse_config

TARGETS: list[dict[str, Any]] = [
    # 4 addresses + 1 hostname (counted as one IPv4 address) + 1 IPv6 address + 1 domain
    {
        "group": "mail",
        "addresses": ["192.0.2.0/30", "2001:db8::25"],
        "hostnames": ["mx1.example.net"],
        "domains": ["example.com"],
    }
]
LISTS: list[dict[str, Any]] = [
    {"name": "bl", "zone": "bl.test", "kind": "ip", "interval": "1h"},  # 5 IPv4, 2 test points
    {"name": "bl6", "zone": "bl6.test", "kind": "ip", "ipv6": True},  # 6 targets, 4 points
    {"name": "dbl", "zone": "dbl.test", "kind": "domain", "health_check": False},  # 1, none
    {"name": "tight", "zone": "t.test", "kind": "ip", "daily_query_limit": 407},
]


def make_config(**overrides: Any) -> Config:
    data = {
        "schedule": {"interval": "30m", "health_interval": "10m"},
        "lists": LISTS,
        "targets": TARGETS,
        **overrides,
    }
    return parse_config(data, source="plan.yaml")


def test_queries_per_day_are_lookups_per_interval_plus_health_probes() -> None:
    rows = {r.list: r for r in plan_mod.plan(make_config())}

    assert (rows["bl"].targets, rows["bl"].interval) == (5, 3600)
    assert rows["bl"].queries_per_day == 5 * 24 + 2 * 144
    assert (rows["bl6"].targets, rows["bl6"].interval) == (6, 1800)
    assert rows["bl6"].queries_per_day == 6 * 48 + 4 * 144
    assert rows["dbl"].queries_per_day == 1 * 48  # health checks off: no probes
    assert rows["tight"].queries_per_day == 5 * 48 + 2 * 144 == 528


def test_over_is_set_only_for_a_list_whose_plan_exceeds_its_daily_limit() -> None:
    rows = {r.list: r for r in plan_mod.plan(make_config())}
    assert rows["tight"].limit == 407 and rows["tight"].over
    assert not rows["bl"].over and rows["bl"].limit is None

    at_limit = [{**LISTS[3], "daily_query_limit": 528}]
    [row] = plan_mod.plan(make_config(lists=at_limit))
    assert not row.over  # exactly the limit is within it


def test_warnings_name_each_list_over_its_limit_and_what_to_do() -> None:
    [line] = plan_mod.warnings(make_config())
    assert line.startswith("list tight: about 528 queries/day exceed its limit of 407")
    assert "interval" in line
    assert plan_mod.warnings(make_config(lists=LISTS[:3])) == []


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "rblwatch.yaml"
    data = {"schedule": {"interval": "30m", "health_interval": "10m"}}
    path.write_text(yaml.safe_dump({**data, "lists": LISTS, "targets": TARGETS}))
    return path


def test_plan_prints_a_row_per_list_with_its_limit_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan", "--config.file", str(write_config(tmp_path))]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["LIST", "TARGETS", "INTERVAL", "QUERIES/DAY", "LIMIT/DAY"]
    rows = {line.split()[0]: line.split()[1:] for line in out[1:]}
    assert rows["bl"] == ["5", "3600s", "408", "-", "ok"]
    assert rows["bl6"] == ["6", "1800s", "864", "-", "ok"]
    assert rows["dbl"] == ["1", "1800s", "48", "-", "ok"]
    assert rows["tight"] == ["5", "1800s", "528", "407", "OVER", "LIMIT"]


def test_plan_with_a_missing_config_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"

    assert cli.main(["plan", "--config.file", str(missing)]) == 2

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and str(missing) in captured.err
