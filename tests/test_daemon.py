"""End to end: `rblwatch run` against a real rbldnsd whose zone the tests rewrite (SPEC §4, §13).

rbldnsd runs with `-c 1`, so rewriting a zone file lists or delists an address within a
second; the daemon cycles every second with confirm 2, so a change becomes an event a few
seconds later. Everything is on 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rblwatch.scheduler import FIRST_SLACK_S
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.rbldnsd import Rbldnsd

# within FIRST_SLACK_S of an hour-long interval's grid point the first cycle (or a made-up
# one) is that point's (`scheduler`): a test run just before the top of the hour waits for it
FIRST_CYCLE_S = FIRST_SLACK_S + 15
ZONE = "bl.test"
BASE = [":127.0.0.2:Listed: $", "127.0.0.2"]  # the RFC 5782 test point, always listed
LISTED = "192.0.2.1 :127.0.0.2:spam from $"


@pytest.fixture
def dns(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    return rbldnsd


@pytest.fixture
def daemon(tmp_path: Path, dns: Rbldnsd) -> Iterator[DaemonProcess]:
    cfg = tmp_path / "rblwatch.yaml"
    web_port = free_tcp_port()
    cfg.write_text(config_text(dns_port=dns.port, web_port=web_port, store=tmp_path / "state.db"))
    d = DaemonProcess(cfg)
    try:
        yield d
    finally:
        d.close()


def start(d: DaemonProcess) -> None:
    port = int(d.config.read_text().split("listen_address: 127.0.0.1:")[1].split()[0])
    d.start(port)


def listed(dns: Rbldnsd, *lines: str) -> None:
    dns.rewrite_zone(ZONE, [*BASE, *lines])


def cycled(d: DaemonProcess) -> bool:
    lists = d.json("/api/v1/status")["lists"]
    return bool(lists) and all(x["health"] == "healthy" and x["last_cycle_end"] for x in lists)


def events_for(d: DaemonProcess, target: str, kind: str) -> list[dict[str, object]]:
    return [e for e in d.events(kind) if e["target"] == target]


def metric(d: DaemonProcess, name: str, **labels: str) -> float | None:
    _, body = d.get("/metrics")
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def test_a_new_listing_is_one_listed_event_and_its_removal_one_delisted_event(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    start(daemon)
    wait_until("a healthy first cycle", lambda: cycled(daemon))
    assert daemon.events() == []  # clean targets are a silent baseline

    listed(dns, LISTED)
    wait_until("the listed event", lambda: events_for(daemon, "192.0.2.1", "listed"))
    time.sleep(2.5)  # more cycles must not repeat it
    [event] = events_for(daemon, "192.0.2.1", "listed")
    assert event["initial"] is False
    assert event["codes"] == ["127.0.0.2"]
    assert event["list"] == "bl" and event["group"] == "mail"
    status = daemon.json("/api/v1/status")
    assert [(x["target"], x["list"]) for x in status["listings"]] == [("192.0.2.1", "bl")]
    assert metric(daemon, "rblwatch_listed", target="192.0.2.1", list="bl", group="mail") == 1.0
    assert metric(daemon, "rblwatch_listings", list="bl", group="mail") == 1.0

    listed(dns)
    wait_until("the delisted event", lambda: events_for(daemon, "192.0.2.1", "delisted"))
    time.sleep(2.5)
    assert len(events_for(daemon, "192.0.2.1", "delisted")) == 1
    assert len(events_for(daemon, "192.0.2.1", "listed")) == 1
    assert daemon.json("/api/v1/status")["listings"] == []
    assert metric(daemon, "rblwatch_listed", target="192.0.2.1", list="bl", group="mail") is None
    assert daemon.stop() == 0


def test_a_listing_already_there_at_start_is_an_initial_event(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    listed(dns, LISTED)
    start(daemon)
    [event] = wait_until("the initial event", lambda: events_for(daemon, "192.0.2.1", "listed"))
    assert event["initial"] is True


def test_a_dead_list_server_is_unhealthy_and_never_a_delisting(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    # the list asks its server itself: its death is the list's (through the resolver, it
    # would be the resolver's outage: test_resolver_outage)
    text = daemon.config.read_text()
    daemon.config.write_text(
        text.replace("    kind: ip\n", f'    kind: ip\n    nameservers: ["127.0.0.1:{dns.port}"]\n')
    )
    listed(dns, LISTED)
    start(daemon)
    wait_until("the listing", lambda: events_for(daemon, "192.0.2.1", "listed"))

    dns.stop()
    [down] = wait_until("list_unhealthy", lambda: daemon.events("list_unhealthy"))
    assert down["target"] is None and down["list"] == "bl"
    time.sleep(4)  # several intervals without answers
    assert daemon.events("delisted") == []
    assert len(daemon.events("list_unhealthy")) == 1
    assert [x["target"] for x in daemon.json("/api/v1/status")["listings"]] == ["192.0.2.1"]
    assert metric(daemon, "rblwatch_list_healthy", list="bl") == 0.0

    dns.start()
    wait_until("list_recovered", lambda: daemon.events("list_recovered"))
    time.sleep(2.5)
    assert daemon.events("delisted") == []
    assert len(events_for(daemon, "192.0.2.1", "listed")) == 1
    assert metric(daemon, "rblwatch_list_healthy", list="bl") == 1.0


def test_kill_9_and_a_restart_lose_nothing_and_duplicate_nothing(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    start(daemon)
    wait_until("a first cycle", lambda: cycled(daemon))
    listed(dns, LISTED, "192.0.2.2 :127.0.0.4:exploited")
    # kill while the change is being confirmed or committed: whatever was committed stays
    wait_until("a pending or confirmed change", lambda: daemon.events("listed") or _pending(daemon))
    daemon.kill9()
    start(daemon)
    wait_until(
        "both listed events",
        lambda: {e["target"] for e in daemon.events("listed")} == {"192.0.2.1", "192.0.2.2"},
    )
    daemon.kill9()
    start(daemon)
    time.sleep(3)
    for target in ("192.0.2.1", "192.0.2.2"):
        assert len(events_for(daemon, target, "listed")) == 1, daemon.events()
    ids = [e["id"] for e in daemon.events()]
    assert len(ids) == len(set(ids))

    listed(dns)
    wait_until("both delistings", lambda: len(daemon.events("delisted")) == 2)
    daemon.kill9()
    start(daemon)
    time.sleep(2.5)
    assert len(daemon.events("delisted")) == 2
    assert daemon.json("/api/v1/status")["listings"] == []


def _pending(d: DaemonProcess) -> bool:
    # a listing becomes pending after one cycle; the store file is the only witness
    import sqlite3

    store = d.config.parent / "state.db"
    with sqlite3.connect(store) as db:
        return bool(db.execute("SELECT count(*) FROM pairs").fetchone()[0])


def test_an_invalid_config_on_reload_keeps_the_daemon_on_the_old_one(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    start(daemon)
    wait_until("a first cycle", lambda: cycled(daemon))
    good = daemon.config.read_text()
    daemon.config.write_text(good + "surprise: 1\n")
    daemon.signal(signal.SIGHUP)
    wait_until(
        "the failed reload in metrics",
        lambda: metric(daemon, "rblwatch_config_last_reload_successful") == 0.0,
    )
    assert "surprise" in daemon.log()
    assert daemon.get("/-/ready")[0] == 200
    listed(dns, LISTED)
    wait_until("a listing found on the old config", lambda: daemon.events("listed"))

    status, body = daemon.post("/-/reload")
    assert status != 200 and b"surprise" in body

    daemon.config.write_text(good.replace("confirm: 2", "confirm: 1"))
    status, body = daemon.post("/-/reload")
    assert status == 200, body
    assert metric(daemon, "rblwatch_config_last_reload_successful") == 1.0
    assert daemon.stop() == 0


def test_sigterm_stops_the_daemon_within_seconds_with_exit_0(daemon: DaemonProcess) -> None:
    start(daemon)
    t0 = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - t0 < 10


def test_sigterm_mid_lookup_abandons_the_cycles_without_a_traceback(tmp_path: Path) -> None:
    # a resolver that never answers: every probe and cycle is waiting on its lookups when the
    # signal comes, and each abandoned job must end quietly (APScheduler logs a job that
    # raised CancelledError with a traceback)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        web_port = free_tcp_port()
        cfg = tmp_path / "rblwatch.yaml"
        text = config_text(dns_port=port, web_port=web_port, store=tmp_path / "s.db")
        cfg.write_text(text.replace("timeout: 300ms", "timeout: 5s"))
        d = DaemonProcess(cfg)
        try:
            d.start(web_port)
            wait_until("a lookup sent", lambda: _datagram_waiting(silent))
            time.sleep(0.5)  # the probes' and cycles' jobs are all waiting now
            assert d.stop(timeout=15) == 0
        finally:
            d.close()
    assert "Traceback" not in d.log(), d.log()
    assert "raised an exception" not in d.log()


def _datagram_waiting(sock: socket.socket) -> bool:
    """Whether a datagram is waiting on `sock` (read without blocking; left unanswered)."""
    sock.setblocking(False)
    try:
        return bool(sock.recv(4096, socket.MSG_PEEK))
    except BlockingIOError:
        return False


def test_a_listen_address_in_use_is_one_line_and_exit_2_not_a_traceback(
    daemon: DaemonProcess,
) -> None:
    port = int(daemon.config.read_text().split("listen_address: 127.0.0.1:")[1].split()[0])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        daemon.start(port, wait_ready=False)
        assert daemon.proc is not None
        code = daemon.proc.wait(10)
    assert code == 2
    assert "Traceback" not in daemon.log()
    assert f"web.listen_address: cannot listen on 127.0.0.1:{port}" in daemon.log()


def test_metrics_have_the_names_and_labels_of_the_spec(daemon: DaemonProcess, dns: Rbldnsd) -> None:
    listed(dns, LISTED)
    start(daemon)
    wait_until("the listing", lambda: daemon.events("listed"))
    _, body = daemon.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    for name in (
        "rblwatch_listed",
        "rblwatch_listed_since_timestamp_seconds",
        "rblwatch_listings",
        "rblwatch_targets",
        "rblwatch_list_healthy",
        "rblwatch_queries",
        "rblwatch_query_errors",
        "rblwatch_query_duration_seconds",
        "rblwatch_cycle_duration_seconds",
        "rblwatch_last_cycle_success_timestamp_seconds",
        "rblwatch_cycles_skipped",
        "rblwatch_events",
        "rblwatch_config_last_reload_successful",
        "rblwatch_build_info",
    ):
        assert name in families, name
    assert metric(daemon, "rblwatch_targets", group="mail") == 5.0
    assert (metric(daemon, "rblwatch_queries_total", list="bl") or 0) > 0
    assert metric(daemon, "rblwatch_query_errors_total", list="bl", reason="timeout") == 0.0
    assert (metric(daemon, "rblwatch_events_total", kind="listed") or 0) >= 1
    assert (metric(daemon, "rblwatch_query_duration_seconds_count", list="bl") or 0) > 0
    for family in families.values():
        for s in family.samples:
            assert "zone" not in s.labels


def test_sd_notify_messages_reach_a_real_notify_socket(tmp_path: Path, dns: Rbldnsd) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    cfg = tmp_path / "rblwatch.yaml"
    web_port = free_tcp_port()
    cfg.write_text(config_text(dns_port=dns.port, web_port=web_port, store=tmp_path / "s.db"))
    d = DaemonProcess(cfg, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    got: list[str] = []

    def receive(line: str, after: int = 0) -> int:
        """Read datagrams until one at index >= `after` contains `line`; its index."""
        while True:
            for i in range(after, len(got)):
                if line in got[i]:
                    return i
            got.append(sock.recv(4096).decode())

    try:
        d.start(web_port, wait_ready=False)
        ready = receive("READY=1")
        assert d.get("/-/ready")[0] == 200  # READY=1 only once the listener is up
        receive("WATCHDOG=1", ready)
        receive("STATUS=", ready)
        mark = len(got)
        d.signal(signal.SIGHUP)
        reloading = receive("RELOADING=1", mark)
        receive("READY=1", reloading + 1)
        d.signal(signal.SIGTERM)
        receive("STOPPING=1", reloading)
        assert d.proc is not None and d.proc.wait(10) == 0
    finally:
        d.close()
        sock.close()


def test_a_hostname_that_never_resolves_is_one_log_line_not_one_a_cycle(
    tmp_path: Path, dns: Rbldnsd
) -> None:
    # the daemon cycles every second; rbldnsd serves no such name, so every cycle's
    # resolution of it fails the same way: one line for the problem, not one per cycle
    cfg = tmp_path / "rblwatch.yaml"
    web_port = free_tcp_port()
    text = config_text(
        dns_port=dns.port,
        web_port=web_port,
        store=tmp_path / "state.db",
        extra="    hostnames: [mx1.nowhere.test]\n",
    )
    cfg.write_text(text)
    d = DaemonProcess(cfg)
    try:
        d.start(web_port)
        # five targets a cycle: wait for six cycles' queries (health probes add a few more)
        wait_until("six cycles", lambda: (metric(d, "rblwatch_queries_total", list="bl") or 0) > 30)
    finally:
        d.stop()
    lines = [line for line in d.log().splitlines() if "mx1.nowhere.test" in line]
    assert len(lines) == 1, "\n".join(lines)


def test_a_list_added_on_reload_has_its_first_cycle_at_once_not_an_interval_later(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    # alone on SQLite the instance holds every shard of every list, also of one just added:
    # the new list's first cycle must not find "no shard of this list held" and then wait
    # for the next point of its (long) interval
    start(daemon)
    wait_until("a first cycle", lambda: cycled(daemon))
    text = daemon.config.read_text()
    added = "  - name: bl2\n    zone: bl.test\n    kind: ip\n    interval: 1h\ntargets:\n"
    daemon.config.write_text(text.replace("targets:\n", added, 1))
    status, body = daemon.post("/-/reload")
    assert status == 200, body

    def bl2_cycled() -> bool:
        lists = {x["name"]: x for x in daemon.json("/api/v1/status")["lists"]}
        return "bl2" in lists and bool(lists["bl2"]["last_cycle_end"])

    wait_until("the new list's first cycle", bl2_cycled, timeout=FIRST_CYCLE_S)
    assert daemon.stop() == 0


def test_a_cycle_skipped_for_an_unhealthy_list_runs_once_it_is_healthy_not_an_interval_later(
    daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    # the list's test point missing at start: unhealthy, its first cycle skipped. Its
    # interval is an hour: once a probe (every second) finds it healthy it must cycle then
    text = daemon.config.read_text().replace("\n  interval: 1s\n", "\n  interval: 1h\n")
    assert "interval: 1h" in text and "health_interval: 1s" in text
    daemon.config.write_text(text)
    dns.rewrite_zone(ZONE, [LISTED])
    port = int(daemon.config.read_text().split("listen_address: 127.0.0.1:")[1].split()[0])
    daemon.start(port, wait_ready=False)
    wait_until("the listener", lambda: daemon.get("/-/healthy")[0] == 200)

    def bl() -> dict[str, Any]:
        lists: list[dict[str, Any]] = daemon.json("/api/v1/status")["lists"]
        return lists[0]["last_cycle"] if lists else {}

    wait_until(
        "the first cycle skipped",
        lambda: bl().get("skipped") == "list_unhealthy",
        timeout=FIRST_CYCLE_S,
    )
    assert bl()["success"] is None
    listed(dns, LISTED)  # the test point back
    # at once, or with the grid's own cycle if that comes within FIRST_SLACK_S
    wait_until(
        "a cycle after the list is healthy", lambda: bl().get("success"), timeout=FIRST_CYCLE_S
    )
    assert bl()["skipped"] is None
    assert daemon.stop() == 0
