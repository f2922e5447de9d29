"""Defects found reviewing the sender hygiene work, each pinned by the test that found it."""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rblwatch.alerts.formats.base import Context
from rblwatch.alerts.formats.standard_webhooks import json_body
from rblwatch.checks.hygiene import items_of, run_pass
from rblwatch.cli import main
from rblwatch.config import Config, parse_config
from rblwatch.engine import Engine
from rblwatch.hygiene.runner import items_for
from rblwatch.inventory import Inventory
from rblwatch.model import Event, EventKind, Target, TargetKind, frozen_map
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from tests.faultdns import Action, Fault, FaultDns
from tests.staticdns import StaticDns

SENDERS = [f"192.0.2.{i}" for i in range(1, 41)]


def hygiene_config(port: int, **hygiene: Any) -> Config:
    return parse_config(
        {
            "resolver": {"nameservers": [f"127.0.0.1:{port}"], "timeout": "1s", "attempts": 1},
            "schedule": {"confirm": 2, "jitter": 0},
            "lists": [{"name": "bl", "zone": "bl.test", "kind": "ip"}],
            "targets": [
                {
                    "group": "mail",
                    "addresses": SENDERS,
                    "domains": ["example.com"],
                    "hygiene": {"checks": ["fcrdns"], **hygiene},
                }
            ],
        }
    )


def ptr_queries(dns: FaultDns) -> int:
    return sum(dns.count(f"{'.'.join(reversed(ip.split('.')))}.in-addr.arpa") for ip in SENDERS)


def _resolving_to(address: str):  # type: ignore[no-untyped-def]
    async def resolve(
        names: Sequence[str], group: str
    ) -> tuple[list[Target], list[tuple[str, str]]]:
        return [Target(address, TargetKind.IPV4, group, n) for n in names[:1]], []

    return resolve


def test_a_sending_ip_shared_by_two_groups_is_checked_for_each_group_s_domains() -> None:
    # the inventory keeps one target per address (the first group's), which the DNSBL lookups
    # want; a group's SPF pairs must still take every address the group itself names
    cfg = parse_config(
        {
            "targets": [
                {"group": "a", "addresses": ["192.0.2.10"], "domains": ["a.example"]},
                {
                    "group": "b",
                    "addresses": ["192.0.2.0/28"],
                    "domains": ["b.example"],
                    "hygiene": {},
                },
                {
                    "group": "c",
                    "hostnames": ["mx.c.example"],
                    "domains": ["c.example"],
                    "hygiene": {},
                },
            ]
        }
    )
    found = asyncio.run(Inventory(_resolving_to("192.0.2.10")).current(cfg))
    spf = {i.key for i in items_of(cfg, "spf", found)}
    assert "b.example 192.0.2.10" in spf  # a's address too, first in the inventory
    assert "c.example 192.0.2.10" in spf  # c's hostname resolves to it
    assert len(spf) == 16 + 1
    fcrdns = [i for i in items_of(cfg, "fcrdns", found) if i.key == "192.0.2.10"]
    assert [i.group for i in fcrdns] == ["b"]  # one pair per address: the first group asking


def test_a_hygiene_pass_leaves_the_event_loop_s_default_threads_to_the_store(
    faultdns: FaultDns, tmp_path: Path
) -> None:
    # the store, /metrics and the cluster's lease ticks all run in the loop's default
    # executor (asyncio.to_thread; 6 threads on 2 cores): a pass that waits on a slow DNS
    # for minutes must not sit on one of them, let alone one per check
    faultdns.default = Action(Fault.DROP)
    store = SqliteStore(str(tmp_path / "state.db"))
    engine = Engine(Runtime(hygiene_config(faultdns.port), store))

    async def scenario() -> float:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        cycle = asyncio.create_task(engine.cycle("fcrdns"))
        await asyncio.sleep(0.3)  # the pass is under way, waiting on the DNS
        start = time.monotonic()
        await asyncio.wait_for(asyncio.to_thread(store.pairs), 5)
        took = time.monotonic() - start
        cycle.cancel()
        return took

    try:
        assert asyncio.run(scenario()) < 0.5
    finally:
        store.close()


def test_a_pass_abandoned_at_its_deadline_stops_asking(faultdns: FaultDns, tmp_path: Path) -> None:
    # 40 PTR lookups that time out after 1s each, 8 at a time: 5s of work. Abandoned at its
    # deadline the pass must not go on querying (and holding its threads) behind the
    # scheduler's back while the next cycle starts another
    faultdns.default = Action(Fault.DROP)
    store = SqliteStore(str(tmp_path / "state.db"))
    engine = Engine(Runtime(hygiene_config(faultdns.port), store))

    async def scenario() -> None:
        report = await engine.cycle("fcrdns", deadline=0.3)
        assert report.cut and report.unchecked == report.lookups  # none answered in time

    try:
        asyncio.run(scenario())
        time.sleep(1.5)  # the lookups in flight at the deadline time out by now
        after = ptr_queries(faultdns)
        time.sleep(1.5)
        assert ptr_queries(faultdns) == after
        assert after <= 8 + 8  # those in flight, and at most one more each
    finally:
        store.close()


def test_a_check_event_s_json_webhook_carries_the_group_s_labels() -> None:
    # SPEC §6: a group's labels are copied into alert payloads (a team's own webhook routes
    # on them); the listing events have them, and the check events must too
    event = Event(
        kind=EventKind.CHECK_FAILED,
        list="spf",
        at=1_795_780_800.0,
        target="example.com 192.0.2.10",
        group="mail",
        codes=("softfail",),
        meanings=("softfail via ~all: add ip4:192.0.2.10",),
    )
    ctx = Context(labels=frozen_map({"team": "mail-ops"}))
    data = json.loads(json_body(event, ctx))["data"]
    assert data["labels"] == {"team": "mail-ops"}
    assert (data["check"], data["result"], data["state"]) == ("spf", "softfail", "fail")


@pytest.mark.parametrize("check", ["spf", "fcrdns"])
def test_asking_for_an_ip_check_without_an_ip_is_a_usage_error_not_a_silent_pass(
    check: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `--check spf --check dmarc` used to run dmarc alone and exit 0: the SPF check asked
    # for was dropped without a word
    args = ["hygiene", "--config.file", str(tmp_path / "none.yaml")]
    args += ["example.com", "--check", check, "--check", "dmarc", "--nameserver", "127.0.0.1:9"]
    (tmp_path / "none.yaml").write_text("{}\n")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"rblwatch: --check {check} needs --ip (the sending IPs to check)"]


def test_a_pass_holds_its_outcomes_not_every_result_s_detail_and_trace() -> None:
    # 1,024 sending IPs x the domains: a pass of tens of thousands of SPF pairs. Each result
    # carries its record, detail and trace (~30 lines); the engine needs only the outcome, so
    # the pass must not hold all the results at once before reducing them
    domains = [f"d{i}.example" for i in range(2)]
    dns = StaticDns()
    for d in domains:
        dns.txt(d, "v=spf1 mx " + " ".join(f"ip4:198.51.{j}.0/24" for j in range(20)) + " ~all")
        dns.add(d, "MX", (10, f"mx.{d}"))
        dns.add(f"mx.{d}", "A", "192.0.2.1")
    ips = [f"10.0.{i // 250}.{i % 250}" for i in range(500)]
    items = items_for(["spf"], domains, ips, lambda d: ())
    tracemalloc.start()
    try:
        run = run_pass(dns, items)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(run.outcomes) == 1000 and run.lookups == 1000  # every pair softfails
    assert peak - kept < 1_500_000  # all 1,000 results at once would be ~3.7 MB more
