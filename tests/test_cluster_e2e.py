"""End to end: several real `rblwatch run` processes on one real PostgreSQL (issue 10).

Two or three daemons share one database and one rbldnsd on 127.0.0.1, and deliver alerts to
one webhook receiver, which counts what arrives by `webhook-id`. Listings added and removed
must raise exactly one event and one delivery each, whatever happens to the instances: a
kill -9 mid-work, a SIGSTOP past the lease, the database stopped and started again, three
instances starting together on an empty database. Every wait is bounded.
"""

from __future__ import annotations

import collections
import itertools
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rblwatch.cluster import SHARDS, shard_of
from rblwatch.store.postgres_schema import MARKER_TABLE, SCHEMA_VERSION
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.postgres import Cluster, LocalCluster, local_cluster
from tests.rbldnsd import Rbldnsd
from tests.test_daemon import metric
from tests.webhooks import WebhookReceiver

ZONE = "bl.test"
BASE = [":127.0.0.2:Listed: $", "127.0.0.2"]  # the RFC 5782 test point, always listed
LEASE = 3.0
INTERVAL = 1.0
# 64 addresses: every one of the 16 shards has some (crc32 spreads them)
NETWORK = "192.0.2.0/26"
ADDRESSES = [f"192.0.2.{i}" for i in range(64)]


@pytest.fixture
def dns(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    return rbldnsd


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def database(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)


def listed(dns: Rbldnsd, addresses: list[str]) -> None:
    dns.rewrite_zone(ZONE, [*BASE, *(f"{a} :127.0.0.2:spam from $" for a in addresses)])


class Instances:
    """N daemons with one config each (the same but for the listen port), one database."""

    def __init__(self, tmp: Path, dns: Rbldnsd, url: str, hooks: WebhookReceiver) -> None:
        self.tmp, self.dns, self.url, self.hooks = tmp, dns, url, hooks
        self.all: list[DaemonProcess] = []

    def make(self) -> DaemonProcess:
        n = len(self.all)
        port = free_tcp_port()
        extra = f"""\
alerts:
  receivers:
    - name: ops
      url: {self.hooks.url}/hook
      backoff: {{initial: 100ms, max: 500ms}}
"""
        text = config_text(
            dns_port=self.dns.port,
            web_port=port,
            store=self.tmp / "unused.db",
            addresses=(NETWORK,),
            extra=extra,
        )
        text = text.replace(
            f"url: sqlite:///{self.tmp / 'unused.db'}", f'url: "{self.url}"\n  lease: {LEASE:g}s'
        )
        text = text.replace("confirm: 2", "confirm: 1")
        cfg = self.tmp / f"rblwatch-{n}.yaml"
        cfg.write_text(text)
        d = DaemonProcess(cfg)
        d.web_port = port
        self.all.append(d)
        return d

    def start(self, n: int) -> list[DaemonProcess]:
        made = [self.make() for _ in range(n)]
        for d in made:
            d.start(d.web_port)
        return made

    def close(self) -> None:
        for d in self.all:
            d.close()


@pytest.fixture
def instances(
    tmp_path: Path, dns: Rbldnsd, database: str, hooks: WebhookReceiver
) -> Iterator[Instances]:
    group = Instances(tmp_path, dns, database, hooks)
    try:
        yield group
    finally:
        group.close()


def sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def owners(url: str) -> dict[int, str | None]:
    rows = sql(
        url,
        "SELECT shard, owner FROM shards WHERE list = 'bl'"
        " AND expires > extract(epoch FROM clock_timestamp())",
    )
    return {int(s): o for s, o in rows}


def split(url: str, n: int) -> bool:
    """Every shard of the list held, by `n` distinct instances."""
    held = owners(url)
    return len(held) == SHARDS and len(set(held.values())) == n


def received(hooks: WebhookReceiver) -> collections.Counter[tuple[str, str]]:
    """(type, target) of every delivery received, counted by webhook-id once each."""
    seen: dict[str, tuple[str, str]] = {}
    for r in hooks.delivered():
        doc = json.loads(r.body)
        seen[r.id] = (doc["type"], doc["data"]["target"])
    return collections.Counter(seen.values())


def assert_once_each(hooks: WebhookReceiver, url: str) -> None:
    """Every webhook-id arrived with one body, and no transition was stored or sent twice."""
    bodies: dict[str, set[bytes]] = {}
    for r in hooks.delivered():
        bodies.setdefault(r.id, set()).add(r.body)
    assert all(len(b) == 1 for b in bodies.values())
    dup = sql(
        url,
        "SELECT kind, target, after_id, count(*) FROM events WHERE target IS NOT NULL"
        " GROUP BY kind, target, after_id HAVING count(*) > 1",
    )
    assert dup == []
    # per target the events alternate listed / delisted: a doubled change would repeat one
    for (target,) in sql(url, "SELECT DISTINCT target FROM events WHERE target IS NOT NULL"):
        kinds = [
            k for (k,) in sql(url, "SELECT kind FROM events WHERE target = %s ORDER BY id", target)
        ]
        assert all(a != b for a, b in itertools.pairwise(kinds)), (target, kinds)
    ids = [f"evt_{i}" for (i,) in sql(url, "SELECT id FROM events WHERE target IS NOT NULL")]
    delivered = collections.Counter(r.id for r in hooks.delivered())
    assert set(delivered) <= set(ids)
    # one delivery per event: no webhook-id was accepted twice (by one instance or two)
    assert set(delivered.values()) <= {1}, {i: n for i, n in delivered.items() if n > 1}


def test_two_instances_split_the_work_and_raise_one_event_and_one_delivery_per_change(
    instances: Instances, dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    a, b = instances.start(2)
    wait_until("the shards split between the two", lambda: split(instances.url, 2), timeout=20)
    picked = ADDRESSES[::4]  # 16 addresses over many shards: both instances find some
    by = owners(instances.url)
    assert len({by[shard_of(x)] for x in picked}) == 2
    listed(dns, picked)
    want = {("listing.created", x) for x in picked}
    wait_until("one delivery per listing", lambda: set(received(hooks)) >= want, timeout=30)
    listed(dns, [])
    gone = {("listing.removed", x) for x in picked}
    wait_until("one delivery per delisting", lambda: set(received(hooks)) >= want | gone, 30)
    time.sleep(2 * INTERVAL + 1)  # cycles keep running: nothing more may arrive
    got = received(hooks)
    assert set(got) == want | gone and set(got.values()) == {1}
    assert_once_each(hooks, instances.url)
    # both tell the same truth, and show both instances
    for d in (a, b):
        doc = d.json("/api/v1/events?limit=1000")
        assert sum(e["kind"] == "listed" for e in doc["events"]) == len(picked)
    assert a.stop() == 0 and b.stop() == 0


def test_kill_9_of_an_instance_and_the_survivor_takes_over_within_an_interval_and_the_lease(
    instances: Instances, dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    a, b = instances.start(2)
    wait_until("the shards split between the two", lambda: split(instances.url, 2), timeout=20)
    by = owners(instances.url)
    b_id = next(o for o in by.values() if o is not None and str(b.proc.pid) in o)  # type: ignore[union-attr]
    theirs = [x for x in ADDRESSES if by[shard_of(x)] == b_id][:4]
    assert theirs
    b.kill9()
    killed = time.monotonic()
    listed(dns, theirs)
    want = {("listing.created", x) for x in theirs}
    wait_until(
        "the survivor raising the dead one's listings", lambda: set(received(hooks)) >= want, 30
    )
    took = time.monotonic() - killed
    # the lease runs out, the next heartbeat takes the shards, their overdue cycle runs at once
    # (rbldnsd re-reads its zone each second: one second more)
    assert took <= INTERVAL + LEASE + LEASE / 3 + 2.5, took
    wait_until("the survivor holding every shard", lambda: split(instances.url, 1), timeout=10)
    time.sleep(2 * INTERVAL)
    got = received(hooks)
    assert set(got) == want and set(got.values()) == {1}
    assert_once_each(hooks, instances.url)
    assert a.stop() == 0


def test_an_instance_paused_past_its_lease_writes_nothing_late_and_nothing_is_doubled(
    instances: Instances, dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    a, b = instances.start(2)
    wait_until("the shards split between the two", lambda: split(instances.url, 2), timeout=20)
    picked = ADDRESSES[::3]
    listed(dns, picked)
    want = {("listing.created", x) for x in picked}
    wait_until("the listings", lambda: set(received(hooks)) >= want, timeout=30)
    b.signal(signal.SIGSTOP)
    try:
        wait_until("the other taking every shard", lambda: split(instances.url, 1), timeout=15)
        listed(dns, [])  # while b sleeps: a delists them all
        gone = {("listing.removed", x) for x in picked}
        wait_until("the delistings", lambda: set(received(hooks)) >= want | gone, timeout=30)
    finally:
        b.signal(signal.SIGCONT)
    # b wakes with cycles due and leases it no longer holds: its late results are refused
    wait_until("the two sharing again", lambda: split(instances.url, 2), timeout=20)
    time.sleep(2 * INTERVAL)
    got = received(hooks)
    assert set(got) == want | gone and set(got.values()) == {1}
    assert_once_each(hooks, instances.url)
    assert a.stop() == 0 and b.stop() == 0


def test_three_instances_starting_together_on_an_empty_database_make_one_schema(
    instances: Instances, dns: Rbldnsd
) -> None:
    made = [instances.make() for _ in range(3)]
    threads = [threading.Thread(target=d.start, args=(d.web_port,)) for d in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for d in made:
        assert d.get("/-/ready")[0] == 200, d.log()
    assert sql(instances.url, f"SELECT version FROM {MARKER_TABLE}") == [(SCHEMA_VERSION,)]
    wait_until("16 shards over three instances", lambda: split(instances.url, 3), timeout=20)
    for d in made:
        assert d.stop() == 0
    # a clean stop hands the leases back at once
    assert owners(instances.url) == {}


@pytest.fixture
def own_postgres() -> Iterator[LocalCluster]:
    with local_cluster() as cluster:
        yield cluster


def test_the_database_stopped_and_started_again_loses_no_event_and_raises_no_false_one(
    tmp_path: Path, dns: Rbldnsd, hooks: WebhookReceiver, own_postgres: LocalCluster
) -> None:
    name = own_postgres.create_database()
    group = Instances(tmp_path, dns, own_postgres.url(name), hooks)
    try:
        a, b = group.start(2)
        wait_until("the shards split", lambda: split(group.url, 2), timeout=20)
        first = ADDRESSES[:8]
        listed(dns, first)
        want = {("listing.created", x) for x in first}
        wait_until("the listings", lambda: set(received(hooks)) >= want, timeout=30)
        own_postgres.stop()
        try:
            for d in (a, b):
                wait_until("not ready", lambda d=d: d.get("/-/ready")[0] == 503, timeout=15)
            later = ADDRESSES[8:12]
            listed(dns, first[4:] + later)  # 4 delisted, 4 new, while the database is away
            for d in (a, b):
                # cycles are skipped and counted, and the process keeps running
                wait_until(
                    "a cycle counted as not run",
                    lambda d=d: (metric(d, "rblwatch_cycles_store_down_total", list="bl") or 0) > 0,
                    timeout=20,
                )
                assert d.proc is not None and d.proc.poll() is None, d.log()
        finally:
            own_postgres.start()
        for d in (a, b):
            wait_until("ready again", lambda d=d: d.get("/-/ready")[0] == 200, timeout=30)
        expect = want | {("listing.created", x) for x in later}
        expect |= {("listing.removed", x) for x in first[:4]}
        wait_until("every change after the outage", lambda: set(received(hooks)) >= expect, 40)
        time.sleep(2 * INTERVAL)
        got = received(hooks)
        assert set(got) == expect and set(got.values()) == {1}
        assert_once_each(hooks, group.url)
        assert "Traceback" not in a.log() + b.log()
        assert a.stop() == 0 and b.stop() == 0
    finally:
        group.close()
