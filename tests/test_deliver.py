"""Cycles that always deliver (issue 14): a cycle cut at its deadline against a real rbldnsd,
the cycle-time estimates of `rblwatch plan`, and a bounded event log.

The deadline is made to fall mid-run by pacing the list (`max_qps`): rbldnsd answers at once,
so the cut is the deadline's alone, not a fault's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rblwatch import cli
from rblwatch import plan as plan_mod
from rblwatch.config import Config, parse_config
from rblwatch.engine import CycleReport, Engine, utc_day
from rblwatch.model import EventKind, PairStatus, Reason
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from tests.rbldnsd import Rbldnsd

ZONE = "bl.test"
T0 = 1_795_780_800.0
NET = "198.51.100.0/23"  # 512 targets
LISTED = [str(a) for a in ipaddress.ip_network(NET).hosts()][::4]  # 128 of them


def make_config(port: int, **lst: Any) -> Config:
    return parse_config(
        {
            "resolver": {"nameservers": [f"127.0.0.1:{port}"], "timeout": "1s", "attempts": 1},
            "schedule": {"confirm": 1, "jitter": 0},
            "lists": [{"name": "bl", "zone": ZONE, "kind": "ip", **lst}],
            "targets": [{"group": "mail", "addresses": [NET]}],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def listing(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(ZONE, "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2", *LISTED])
    rbldnsd.start()
    return rbldnsd


def test_a_cycle_cut_mid_run_commits_every_answered_pair_and_only_those(
    listing: Rbldnsd, store: SqliteStore
) -> None:
    # 512 lookups at 400/s take ~1.3s; the deadline at 0.6s cuts the run about half way
    cfg = make_config(listing.port or 0, max_qps=400, daily_query_limit=10_000)
    rt = Runtime(cfg, store)
    engine = Engine(rt, clock=lambda: T0)

    async def scenario() -> CycleReport:
        await engine.probe("bl")
        return await engine.cycle("bl", deadline=0.6)

    report = asyncio.run(scenario())
    assert report.cut and 0 < report.unchecked < 512 and report.lookups == 512
    seen = store.seen("bl")  # the targets answered: each had its first look
    errors = store.pair_errors("bl")
    assert all(e.reason is Reason.DEADLINE for e in errors)
    if any(e.target == "" for e in errors):  # most not checked: one row for the list
        [row] = errors
        assert f"{report.unchecked} not checked" in row.detail
    else:  # every target is answered or has its not-checked row, never both
        unanswered = {e.target for e in errors}
        assert not unanswered & seen and len(unanswered | seen) == 512
    assert len(seen) == 512 - report.unchecked
    listed = {p.target for p in store.pairs("bl") if p.status is PairStatus.LISTED}
    assert listed and listed == set(LISTED) & seen  # every answered listing, and no other
    assert {e.target for e in store.events(limit=1000) if e.kind is EventKind.LISTED} == listed
    queries = rt.stats.list("bl").queries
    assert queries >= len(seen) + len(listed)  # the answered lookups, the listings' TXT
    assert store.budget_used("bl", utc_day(T0)) == 2 + queries  # the probe's 2, and these


def test_initial_listings_are_one_log_line_per_list_and_cycle(
    listing: Rbldnsd, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(Runtime(make_config(listing.port or 0), store))

    async def scenario() -> CycleReport:
        await engine.probe("bl")
        return await engine.cycle("bl")

    with caplog.at_level(logging.WARNING, logger="rblwatch.engine"):
        report = asyncio.run(scenario())
    assert len(report.events) == 128 and all(e.initial for e in report.events)
    lines = [r.getMessage() for r in caplog.records if r.name == "rblwatch.engine"]
    assert lines == [f"list bl: 128 initial listings (first: {', '.join(LISTED[:3])}, …)"]


def test_a_cycle_s_news_is_at_most_twenty_lines_then_a_count(
    listing: Rbldnsd, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Engine(Runtime(make_config(listing.port or 0), store))

    async def scenario() -> None:
        await engine.probe("bl")
        await engine.cycle("bl")
        listing.rewrite_zone(ZONE, [":127.0.0.2:Listed: $", "127.0.0.2"])  # all delisted
        listing.wait_for_a(".".join([*reversed(LISTED[0].split(".")), ZONE]), [])
        caplog.clear()
        report = await engine.cycle("bl")
        assert len(report.events) == 128

    with caplog.at_level(logging.WARNING, logger="rblwatch.engine"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "rblwatch.engine"]
    assert len(lines) == 21 and all(line.startswith("delisted ") for line in lines[:20])
    assert lines[20] == "list bl: 108 more events this cycle not logged one by one (delisted: 108)"


# -- estimates ------------------------------------------------------------------------------


def big_config(**resolver: Any) -> Config:
    return parse_config(
        {
            "resolver": {"max_in_flight": 64, **resolver},
            "schedule": {"interval": "30m"},
            "lists": [
                {"name": "big", "zone": "big.test", "kind": "ip"},
                {"name": "paced", "zone": "p.test", "kind": "ip", "max_qps": 10},
            ],
            "targets": [{"group": "mail", "addresses": ["10.0.0.0/14"]}],
            "limits": {"ipv4_min_prefix": 14},
        },
        source="plan.yaml",
    )


def test_a_cycle_that_cannot_fit_its_interval_is_one_warning_line_naming_the_fix() -> None:
    # 262,144 lookups at 32 in flight (64 shared by 2 lists) and 100 ms: ~819 s, within 27m;
    # the paced list at 10 queries/s needs ~26,214 s
    big, paced = plan_mod.cycle_estimates(big_config())
    assert (big.lookups, big.window, big.rtt) == (262_144, 32, plan_mod.DEFAULT_RTT)
    assert big.fits and round(big.seconds) == 819
    assert not paced.fits and round(paced.seconds) == 26_214
    [line] = plan_mod.cycle_warnings(big_config())
    assert line == (
        "list paced: a cycle of 262,144 lookups needs ~26,214 s at its max_qps of 10; "
        "its interval is 30m: raise the interval or watch fewer targets on it"
    )
    # measured at 300 ms, the big list does not fit either
    [slow, _] = plan_mod.cycle_warnings(big_config(), {"big": 0.3})
    assert slow == (
        "list big: a cycle of 262,144 lookups needs ~2,458 s at 32 in flight (its share of "
        "64 with 2 lists) and 300 ms RTT measured; its interval is 30m: raise max_in_flight "
        "or the interval"
    )


def test_plan_warns_on_stderr_for_a_list_whose_cycle_cannot_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rblwatch.yaml"
    data = {
        "schedule": {"interval": "1m"},
        "lists": [{"name": "bl", "zone": "bl.test", "kind": "ip"}],
        "targets": [{"group": "mail", "addresses": ["10.0.0.0/16"]}],
    }
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["plan", "--config.file", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1].split()[0] == "bl"  # the table as before
    [line] = captured.err.splitlines()
    assert line.startswith("rblwatch: warning: list bl: a cycle of 65,536 lookups needs ~102 s")
    assert line.endswith("its interval is 1m: raise max_in_flight or the interval")


def test_the_daemon_warns_once_per_config_when_a_list_s_measured_rtt_cannot_fit(
    listing: Rbldnsd, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    def one_at_a_time() -> Config:  # 512 lookups, 1 in flight, 54s to do them in
        return parse_config(
            {
                "resolver": {"nameservers": [f"127.0.0.1:{listing.port}"], "max_in_flight": 1},
                "schedule": {"interval": "1m"},
                "lists": [{"name": "bl", "zone": ZONE, "kind": "ip"}],
                "targets": [{"group": "mail", "addresses": [NET]}],
            }
        )

    rt = Runtime(one_at_a_time(), store)
    engine = Engine(rt)
    with caplog.at_level(logging.WARNING, logger="rblwatch.engine"):
        asyncio.run(engine.probe("bl"))  # the test points' RTT on loopback: it fits
        assert caplog.records == []
        assert engine._timed["bl"][1] < 0.05  # measured, not assumed
        rt.config = one_at_a_time()  # a reload: judged afresh
        engine._check_timing("bl", 0.2)  # as if 200 ms: 512 x 0.2 = 102s
        engine._check_timing("bl", 0.3)  # the same config: said once
    [line] = [r.getMessage() for r in caplog.records]
    assert line == (
        "list bl: a cycle of 512 lookups needs ~102 s at 1 in flight and 200 ms RTT "
        "measured; its interval is 1m: raise max_in_flight or the interval"
    )
