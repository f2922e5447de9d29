"""A resolver outage is the resolver's state, not N dead lists (issue 11; `rblwatch.resolverstate`).

The engine against real peers: faultdns plays a resolver that answers nothing (SERVFAIL, or no
reply at all) and comes back; rbldnsd plays one that is stopped and started again. The alert
formats and the status object are checked on the events and rows the store really holds.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rblwatch import health
from rblwatch.alerts.formats import Context, Firing
from rblwatch.alerts.formats.alertmanager import FORMAT as ALERTMANAGER
from rblwatch.alerts.formats.alertmanager import RESOLVER_ALERT
from rblwatch.alerts.formats.slack import slack_body
from rblwatch.alerts.formats.standard_webhooks import json_body
from rblwatch.alerts.routing import receivers_for_all
from rblwatch.engine import Engine
from rblwatch.model import (
    CLEAN,
    CycleCommit,
    Event,
    EventKind,
    Health,
    PairState,
    PairStatus,
    Reason,
    ResolverState,
    error,
)
from rblwatch.resolverstate import SKIPPED
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.status import status_json
from rblwatch.views.tables import status_table
from rblwatch.web import read_status
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.faultdns import Action, Fault, FaultDns
from tests.rbldnsd import Rbldnsd
from tests.test_daemon import metric
from tests.test_engine import ADDRS, BL, ZONE, healthy, make_config, target_queries

ZONE2 = "bl2.test"
T0 = 1_795_780_800.0
BL2 = {**BL, "name": "bl2", "zone": ZONE2}
T = TypeVar("T")


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def kinds(store: SqliteStore) -> list[EventKind]:
    return [e.kind for e in store.events(limit=1000)]


def listed_row(target: str = "192.0.2.1") -> PairState:
    return PairState(
        target=target,
        list="bl",
        group="mail",
        status=PairStatus.LISTED,
        since=1.0,
        first_seen=1.0,
        codes=("127.0.0.2",),
    )


def dead_udp_port() -> int:
    """A loopback UDP port nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


# -- the rule ---------------------------------------------------------------------------------


def test_a_probe_that_heard_nothing_is_marked_transport_and_one_that_heard_anything_is_not() -> (
    None
):
    lst = make_config(53).lists[0]
    points = health.test_points(lst)

    timeout = [(p, error(Reason.TIMEOUT)) for p in points]
    assert health.evaluate(timeout) == health.Verdict(
        Health.DEAD, "test point 127.0.0.2 should be listed, got timeout", transport=True
    )
    mixed = [(points[0], error(Reason.SERVFAIL)), (points[1], CLEAN)]
    verdict = health.evaluate(mixed)
    assert verdict.health is Health.DEAD and not verdict.transport  # the list itself is dead


def test_the_resolver_state_changes_once_each_way() -> None:
    ok = ResolverState()
    down, gone = health.resolver_after(ok, False, "timeout", 100.0)
    assert down == ResolverState("unreachable", 100.0, "timeout")
    assert gone is not None and gone.kind is EventKind.RESOLVER_UNREACHABLE
    assert health.resolver_after(down, False, "still", 160.0) == (down, None)
    up, back = health.resolver_after(down, True, "answered", 400.0)
    assert up.reachable and back is not None
    assert (back.kind, back.since) == (EventKind.RESOLVER_RECOVERED, 100.0)
    assert health.resolver_after(up, True, "answered", 460.0) == (up, None)


# -- the engine against real peers ------------------------------------------------------------


def test_a_resolver_answering_servfail_is_one_outage_event_not_two_dead_lists(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    faultdns.default = Action(Fault.SERVFAIL)
    store.commit(CycleCommit("bl", upserts=[listed_row()]))
    engine = Engine(Runtime(make_config(faultdns.port, lists=[BL, BL2]), store))

    async def scenario() -> None:
        await engine.probe("bl")
        await engine.probe("bl2")
        for name in ("bl", "bl2"):
            report = await engine.cycle(name)
            assert report.skipped == SKIPPED and report.events == []

    run(scenario)
    assert kinds(store) == [EventKind.RESOLVER_UNREACHABLE]  # no list_unhealthy at all
    state = store.resolver_state()
    assert state.state == "unreachable" and "servfail" in state.detail
    statuses = {s.name: s for s in store.list_statuses()}
    assert {s.health for s in statuses.values()} == {Health.UNKNOWN}  # never judged dead
    assert {s.last_cycle_skipped for s in statuses.values()} == {SKIPPED}
    assert target_queries(faultdns, ADDRS) == 0  # the skipped cycles sent no lookups
    assert store.pairs("bl") == [listed_row()]  # the listing stands


def test_the_resolver_answering_again_is_one_recovery_and_the_lists_are_checked_again(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    faultdns.default = Action(Fault.DROP)  # timeouts
    now = [T0]
    cfg = make_config(faultdns.port, lists=[BL, BL2])
    engine = Engine(Runtime(cfg, store), clock=lambda: now[0])

    async def scenario() -> None:
        await engine.probe("bl")
        # probed just now: the cycle does not probe again, and sends nothing
        assert (await engine.cycle("bl")).skipped == SKIPPED
        faultdns.default = Action(Fault.NXDOMAIN)
        healthy(faultdns)
        healthy(faultdns, ZONE2)
        assert (await engine.cycle("bl")).skipped == SKIPPED
        now[0] += cfg.schedule.interval  # no probe for an interval: the cycle probes first
        first = await engine.cycle("bl")  # its probe hears the resolver back
        assert first.skipped == "" and first.lookups == 4
        second = await engine.cycle("bl2")
        assert second.skipped == "" and second.lookups == 4

    run(scenario)
    assert kinds(store) == [EventKind.RESOLVER_UNREACHABLE, EventKind.RESOLVER_RECOVERED]
    gone, back = store.events()
    assert back.since == gone.at
    assert store.resolver_state().reachable
    assert {s.name: s.health for s in store.list_statuses()} == {
        "bl": Health.HEALTHY,
        "bl2": Health.HEALTHY,
    }


def test_a_dead_list_behind_a_working_resolver_is_still_list_unhealthy(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    faultdns.rule(f"*.{ZONE}", Fault.DROP)  # the list's servers are gone; the resolver is not
    engine = Engine(Runtime(make_config(faultdns.port), store))
    verdict = run(lambda: engine.probe("bl"))
    assert verdict is not None and verdict.transport
    assert kinds(store) == [EventKind.LIST_UNHEALTHY]
    assert store.resolver_state() == ResolverState()  # nothing changed, nothing written


def test_a_list_silent_as_the_resolver_returns_is_judged_by_its_next_probe(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    faultdns.default = Action(Fault.DROP)
    engine = Engine(Runtime(make_config(faultdns.port), store))

    async def scenario() -> None:
        await engine.probe("bl")  # the resolver is gone
        faultdns.default = Action(Fault.NXDOMAIN)  # back, but the list's servers are not
        faultdns.rule(f"*.{ZONE}", Fault.DROP)
        await engine.probe("bl")  # its queries may have gone out before the resolver came back
        assert engine.health_of("bl") is Health.UNKNOWN
        await engine.probe("bl")  # asked through a resolver known to answer: the list's
        assert engine.health_of("bl") is Health.DEAD

    run(scenario)
    assert kinds(store) == [
        EventKind.RESOLVER_UNREACHABLE,
        EventKind.RESOLVER_RECOVERED,
        EventKind.LIST_UNHEALTHY,
    ]


def test_a_list_with_nameservers_of_its_own_is_judged_as_before(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    own = {**BL, "nameservers": [f"127.0.0.1:{dead_udp_port()}"]}
    engine = Engine(Runtime(make_config(faultdns.port, lists=[own]), store))
    run(lambda: engine.probe("bl"))
    assert kinds(store) == [EventKind.LIST_UNHEALTHY]
    assert store.resolver_state().reachable
    assert faultdns.queries == []  # the default resolver was not asked about it


def test_a_stopped_rbldnsd_resolver_is_unreachable_until_it_answers_again(
    rbldnsd: Rbldnsd, store: SqliteStore
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2", "192.0.2.1"])
    rbldnsd.start()
    now = [T0]
    cfg = make_config(rbldnsd.port or 0)
    engine = Engine(Runtime(cfg, store), clock=lambda: now[0])

    async def scenario() -> None:
        assert (await engine.probe("bl")) == health.HEALTHY
        rbldnsd.stop()
        verdict = await engine.probe("bl")
        assert verdict is not None and verdict.transport
        assert engine.health_of("bl") is Health.HEALTHY  # kept: the silence is the resolver's
        assert (await engine.cycle("bl")).skipped == SKIPPED
        rbldnsd.start()
        now[0] += cfg.schedule.interval  # the cycle probes first: nothing did for an interval
        back = await engine.cycle("bl")
        assert back.skipped == "" and back.lookups == 4

    run(scenario)
    assert kinds(store) == [EventKind.RESOLVER_UNREACHABLE, EventKind.RESOLVER_RECOVERED]


# -- what operators see -----------------------------------------------------------------------


def test_the_status_says_unreachable_and_marks_the_listings_stale(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    faultdns.default = Action(Fault.SERVFAIL)
    store.commit(CycleCommit("bl", upserts=[listed_row()]))
    cfg = make_config(
        faultdns.port, lists=[{**BL, "daily_query_limit": 1000}], alerts={"receivers": []}
    )
    engine = Engine(Runtime(cfg, store))

    async def scenario() -> None:
        await engine.probe("bl")
        await engine.cycle("bl")

    run(scenario)
    view = read_status(store, cfg, unresolved=[("mail", "mx.example.net", "NXDOMAIN")])
    doc = status_json(view)
    resolver = doc["resolver"]
    assert isinstance(resolver, dict) and resolver["state"] == "unreachable"
    assert resolver["since"] is not None and "servfail" in resolver["detail"]
    [row] = doc["lists"]  # type: ignore[misc]
    assert row["last_cycle"]["skipped"] == SKIPPED
    # the probe's test-point queries count against the day's budget (the cycle, just after
    # it, did not probe again)
    assert row["budget"] == {"used_today": 2, "limit": 1000, "exhausted": False}
    [listing] = doc["listings"]  # type: ignore[misc]
    assert listing["stale"] is True
    assert doc["unresolved"] == [
        {"group": "mail", "hostname": "mx.example.net", "reason": "NXDOMAIN"}
    ]
    first = status_table(view).splitlines()[0]
    assert first.startswith("RESOLVER UNREACHABLE since ")


def test_a_spent_budget_reads_exhausted_and_the_skipped_cycle_says_so(
    faultdns: FaultDns, store: SqliteStore
) -> None:
    healthy(faultdns)
    cfg = make_config(faultdns.port, lists=[{**BL, "daily_query_limit": 3}])
    engine = Engine(Runtime(cfg, store))

    async def scenario() -> None:
        await engine.probe("bl")  # 2 queries of 3
        assert (await engine.cycle("bl")).skipped == "budget_exhausted"  # 4 do not fit

    run(scenario)
    [row] = status_json(read_status(store, cfg))["lists"]  # type: ignore[misc]
    assert row["health"] == "healthy"
    assert row["last_cycle"]["skipped"] == "budget_exhausted"
    assert row["budget"] == {"used_today": 2, "limit": 3, "exhausted": False}
    store.commit(CycleCommit("bl", budget_day=_today(), budget_queries=1))
    [row] = status_json(read_status(store, cfg))["lists"]  # type: ignore[misc]
    assert row["budget"] == {"used_today": 3, "limit": 3, "exhausted": True}


def _today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


GONE = Event(
    EventKind.RESOLVER_UNREACHABLE, "", 1_795_780_800.0, detail="control query: timeout", id=7
)
BACK = Event(EventKind.RESOLVER_RECOVERED, "", 1_795_781_100.0, since=1_795_780_800.0, id=8)


def test_the_json_format_names_the_resolver_events() -> None:
    gone = json.loads(json_body(GONE, Context()))
    assert gone["type"] == "resolver.unreachable"
    assert gone["data"]["state"] == "unreachable"
    assert gone["data"]["since"] == "2026-11-27T12:00:00.000Z"
    assert gone["data"]["detail"] == "control query: timeout"
    back = json.loads(json_body(BACK, Context()))
    assert back["type"] == "resolver.recovered" and back["data"]["state"] == "ok"
    assert back["data"]["since"] == "2026-11-27T12:00:00.000Z"  # when the outage began


def test_slack_says_the_resolver_is_unreachable_and_back() -> None:
    assert json.loads(slack_body(GONE, Context()))["text"].startswith(
        ":warning: The resolver is unreachable"
    )
    assert "answers again" in json.loads(slack_body(BACK, Context()))["text"]


def test_alertmanager_fires_one_resolver_alert_while_unreachable_and_resolves_it() -> None:
    now, ttl = GONE.at + 10, 240.0
    [fired] = json.loads(
        ALERTMANAGER.event_request(GONE, Context(), secret=None, now=now, ttl=ttl).body
    )
    assert fired["labels"] == {"alertname": RESOLVER_ALERT}
    assert fired["endsAt"] > fired["startsAt"]
    [resolved] = json.loads(
        ALERTMANAGER.event_request(BACK, Context(), secret=None, now=BACK.at, ttl=ttl).body
    )
    assert resolved["labels"] == fired["labels"]
    assert (resolved["startsAt"], resolved["endsAt"]) == (
        fired["startsAt"],
        "2026-11-27T12:05:00.000Z",
    )
    down = ResolverState("unreachable", GONE.at, GONE.detail)
    [request] = ALERTMANAGER.resend_requests(Firing(resolver=down), now=now, ttl=ttl)
    [kept] = json.loads(request.body)
    assert kept["labels"] == {"alertname": RESOLVER_ALERT}  # re-posted while it lasts
    assert ALERTMANAGER.resend_requests(Firing(resolver=ResolverState()), now=now, ttl=ttl) == [
        *ALERTMANAGER.resend_requests(Firing(), now=now, ttl=ttl)
    ]


def test_the_resolver_events_go_to_every_receiver_whatever_its_groups() -> None:
    cfg = make_config(
        53,
        alerts={
            "receivers": [
                {"name": "all", "url": "http://127.0.0.1:1/a"},
                {"name": "mail-only", "url": "http://127.0.0.1:1/b", "groups": ["mail"]},
                {"name": "listings", "url": "http://127.0.0.1:1/c", "events": ["listed"]},
            ]
        },
    )
    pick = receivers_for_all(cfg.alerts.receivers)
    assert pick(GONE) == ["all", "mail-only"] and pick(BACK) == ["all", "mail-only"]


# -- the daemon, end to end -------------------------------------------------------------------


def test_the_daemon_reports_a_dead_resolver_once_and_its_return_once(
    tmp_path: Path, rbldnsd: Rbldnsd
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2", "192.0.2.1"])
    rbldnsd.start()
    web_port = free_tcp_port()
    cfg = tmp_path / "rblwatch.yaml"
    # rbldnsd is the resolver here: stopping it is the resolver's outage
    cfg.write_text(
        config_text(dns_port=rbldnsd.port or 0, web_port=web_port, store=tmp_path / "s.db")
    )
    d = DaemonProcess(cfg)
    try:
        d.start(web_port)
        wait_until("the listing", lambda: d.events("listed"))
        assert metric(d, "rblwatch_resolver_up") == 1.0

        rbldnsd.stop()
        [gone] = wait_until("resolver_unreachable", lambda: d.events("resolver_unreachable"))
        assert gone["list"] == "" and gone["target"] is None
        assert d.get("/-/ready") == (503, b"resolver unreachable\n")
        time.sleep(3)  # several intervals and probes without an answer
        assert len(d.events("resolver_unreachable")) == 1
        assert d.events("list_unhealthy") == [] and d.events("delisted") == []
        assert metric(d, "rblwatch_resolver_up") == 0.0
        assert metric(d, "rblwatch_list_healthy", list="bl") == 1.0  # not judged by silence
        status = d.json("/api/v1/status")
        assert status["resolver"]["state"] == "unreachable"
        assert [(x["target"], x["stale"]) for x in status["listings"]] == [("192.0.2.1", True)]

        def skipped() -> bool:
            return bool(d.json("/api/v1/status")["lists"][0]["last_cycle"]["skipped"] == SKIPPED)

        wait_until("a cycle skipped for the resolver", skipped, timeout=5)

        rbldnsd.start()
        [back] = wait_until("resolver_recovered", lambda: d.events("resolver_recovered"))
        wait_until("/-/ready 200", lambda: d.get("/-/ready")[0] == 200)
        time.sleep(2)
        assert len(d.events("resolver_recovered")) == 1
        assert len(d.events("resolver_unreachable")) == 1
        assert d.events("list_unhealthy") == [] and d.events("delisted") == []
        assert len(d.events("listed")) == 1
        assert metric(d, "rblwatch_resolver_up") == 1.0
        assert d.json("/api/v1/status")["resolver"]["state"] == "ok"
        assert back["at"] >= gone["at"]
        assert d.stop() == 0
    finally:
        d.close()
