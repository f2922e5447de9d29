"""The /metrics collector (SPEC §11) over a real SQLite store, read through a fresh registry."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rblwatch.cluster import Instance, Lease, View
from rblwatch.config import parse_config
from rblwatch.metrics import RblwatchCollector, build_registry, render
from rblwatch.model import CycleCommit, EventKind, Health, ListStatus, Reason
from rblwatch.runtime import Runtime
from rblwatch.store import open_store
from tests.postgres import Cluster
from tests.webstate import GROUPS, LISTS, SECRET, T0, clean, event, listed, make_runtime, put

PAIR = {"target": "192.0.2.1", "list": "corp-bl", "group": "mail"}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def sample_names(registry: CollectorRegistry) -> set[str]:
    return {s.name for family in registry.collect() for s in family.samples}


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


def test_a_listed_pair_is_exported_with_target_list_and_group_and_its_since(
    runtime: Runtime,
) -> None:
    put(runtime, [listed("192.0.2.1", since=T0)])
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_listed", **PAIR) == 1.0
    assert value(registry, "rblwatch_listed_since_timestamp_seconds", **PAIR) == T0


def test_a_stored_clean_pair_is_absent_by_default(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1"), clean("192.0.2.2")])
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_listed", **(PAIR | {"target": "192.0.2.2"})) is None


def test_per_target_all_also_exports_stored_clean_pairs_as_zero(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path, per_target="all")
    put(runtime, [listed("192.0.2.1"), clean("192.0.2.2")])
    registry = build_registry(runtime)
    clean_pair = PAIR | {"target": "192.0.2.2"}
    assert value(registry, "rblwatch_listed", **clean_pair) == 0.0
    assert value(registry, "rblwatch_listed", **PAIR) == 1.0
    # a clean pair has no listing to date
    assert value(registry, "rblwatch_listed_since_timestamp_seconds", **clean_pair) is None


def test_per_target_none_exports_no_per_target_series_but_keeps_the_counts(
    tmp_path: Path,
) -> None:
    runtime = make_runtime(tmp_path, per_target="none")
    put(runtime, [listed("192.0.2.1")])
    registry = build_registry(runtime)
    names = sample_names(registry)
    assert "rblwatch_listed" not in names
    assert "rblwatch_listed_since_timestamp_seconds" not in names
    assert value(registry, "rblwatch_listings", list="corp-bl", group="mail") == 1.0


def test_listings_count_every_configured_list_and_group_with_zeros(runtime: Runtime) -> None:
    put(
        runtime,
        [listed("192.0.2.1"), listed("192.0.2.2"), listed("example.com", "corp-dbl", "web")],
    )
    registry = build_registry(runtime)
    counts = {
        (lst, group): value(registry, "rblwatch_listings", list=lst, group=group)
        for lst in LISTS
        for group in GROUPS
    }
    assert counts == {
        ("corp-bl", "mail"): 2.0,
        ("corp-bl", "web"): 0.0,
        ("spamhaus-zen", "mail"): 0.0,
        ("spamhaus-zen", "web"): 0.0,
        ("corp-dbl", "mail"): 0.0,
        ("corp-dbl", "web"): 1.0,
    }


def test_pairs_of_a_list_no_longer_configured_are_not_exported(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1", "old-list")])
    text = render(build_registry(runtime)).decode()
    assert "old-list" not in text


def test_every_reason_event_kind_and_receiver_is_there_at_zero_from_the_start(
    runtime: Runtime,
) -> None:
    registry = build_registry(runtime)
    for lst in LISTS:
        assert value(registry, "rblwatch_queries_total", list=lst) == 0.0
        assert value(registry, "rblwatch_cycles_skipped_total", list=lst) == 0.0
        for reason in Reason:
            errors = value(registry, "rblwatch_query_errors_total", list=lst, reason=reason.value)
            assert errors == 0.0
    for kind in EventKind:
        assert value(registry, "rblwatch_events_total", kind=kind.value) == 0.0
    assert value(registry, "rblwatch_alert_deliveries_total", receiver="ops") == 0.0
    assert value(registry, "rblwatch_alert_delivery_failures_total", receiver="ops") == 0.0
    assert value(registry, "rblwatch_alert_queue", receiver="ops") == 0.0


def test_a_configured_list_missing_from_the_stats_is_still_exported_at_zero(
    runtime: Runtime,
) -> None:
    del runtime.stats.lists["spamhaus-zen"]
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_queries_total", list="spamhaus-zen") == 0.0
    assert "spamhaus-zen" not in runtime.stats.lists  # the collector only reads


def test_counters_come_from_the_process_stats(runtime: Runtime) -> None:
    stats = runtime.stats
    stats.list("corp-bl").queries = 42
    stats.list("corp-bl").errors[Reason.TIMEOUT] = 3
    stats.list("corp-bl").cycles_skipped = 2
    stats.events[EventKind.DELISTED] = 5
    stats.alert_deliveries["ops"] = 7
    stats.alert_failures["ops"] = 1
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_queries_total", list="corp-bl") == 42.0
    assert value(registry, "rblwatch_query_errors_total", list="corp-bl", reason="timeout") == 3.0
    assert value(registry, "rblwatch_cycles_skipped_total", list="corp-bl") == 2.0
    assert value(registry, "rblwatch_events_total", kind="delisted") == 5.0
    assert value(registry, "rblwatch_alert_deliveries_total", receiver="ops") == 7.0
    assert value(registry, "rblwatch_alert_delivery_failures_total", receiver="ops") == 1.0


def test_the_query_duration_histogram_has_the_stats_buckets(runtime: Runtime) -> None:
    h = runtime.stats.list("corp-bl").duration
    h.observe(0.0005)
    h.observe(0.02, times=2)
    h.observe(60.0)
    registry = build_registry(runtime)

    def bucket(le: str) -> float | None:
        return value(registry, "rblwatch_query_duration_seconds_bucket", list="corp-bl", le=le)

    assert bucket("0.001") == 1.0
    assert bucket("0.025") == 3.0
    assert bucket("10.0") == 3.0
    assert bucket("+Inf") == 4.0
    assert value(registry, "rblwatch_query_duration_seconds_count", list="corp-bl") == 4.0
    total = value(registry, "rblwatch_query_duration_seconds_sum", list="corp-bl")
    assert total == pytest.approx(60.0405)


def test_list_health_is_1_only_when_known_healthy(runtime: Runtime) -> None:
    runtime.store.record_health("corp-bl", Health.HEALTHY, "", T0, None)
    runtime.store.record_health("spamhaus-zen", Health.DEAD, "127.0.0.2 not listed", T0, None)
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_list_healthy", list="corp-bl") == 1.0
    assert value(registry, "rblwatch_list_healthy", list="spamhaus-zen") == 0.0
    # corp-dbl has health checks off and no verdict: nothing blocks its lookups
    assert value(registry, "rblwatch_list_healthy", list="corp-dbl") == 1.0


def test_a_list_not_probed_yet_is_not_healthy(runtime: Runtime) -> None:
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_list_healthy", list="corp-bl") == 0.0


def test_cycle_gauges_come_from_the_stored_list_row_and_are_absent_before_a_cycle(
    runtime: Runtime,
) -> None:
    status = ListStatus(
        name="corp-bl", last_cycle_end=T0, last_cycle_success=T0 - 60, last_cycle_duration=12.5
    )
    runtime.store.commit(CycleCommit(list="corp-bl", status=status))
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_cycle_duration_seconds", list="corp-bl") == 12.5
    success = value(registry, "rblwatch_last_cycle_success_timestamp_seconds", list="corp-bl")
    assert success == T0 - 60
    assert value(registry, "rblwatch_cycle_duration_seconds", list="spamhaus-zen") is None


def test_the_alert_queue_counts_undelivered_outbox_rows(runtime: Runtime) -> None:
    put(runtime, events=[event("192.0.2.1", T0), event("192.0.2.2", T0)])
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_alert_queue", receiver="ops") == 2.0


def test_a_removed_receiver_s_waiting_rows_are_not_exported(runtime: Runtime) -> None:
    put(runtime, events=[event("192.0.2.1", T0)])
    runtime.config = dataclasses.replace(
        runtime.config, alerts=dataclasses.replace(runtime.config.alerts, receivers=())
    )
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_alert_queue", receiver="ops") is None
    assert runtime.store.outbox_counts() == {"ops": 1}  # kept for the receiver's return


def test_targets_per_group_are_exported(runtime: Runtime) -> None:
    runtime.targets_per_group = {"mail": 4, "web": 1}
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_targets", group="mail") == 4.0
    assert value(registry, "rblwatch_targets", group="web") == 1.0


def test_reload_gauges_and_build_info(runtime: Runtime) -> None:
    runtime.stats.started_at = T0
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_config_last_reload_successful") == 1.0
    assert value(registry, "rblwatch_config_last_reload_success_timestamp_seconds") == T0
    runtime.stats.reload_ok = False
    runtime.stats.reload_success_at = T0 + 10
    assert value(registry, "rblwatch_config_last_reload_successful") == 0.0
    assert value(registry, "rblwatch_config_last_reload_success_timestamp_seconds") == T0 + 10
    [info] = [f for f in registry.collect() if f.name == "rblwatch_build_info"]
    [sample] = info.samples
    assert sample.value == 1.0
    assert sample.labels["version"] == "9.9.9"
    assert re.fullmatch(r"3\.\d+\.\d+.*", sample.labels["python"])


def test_no_zone_store_url_or_receiver_url_appears_in_the_metrics(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")], [event("192.0.2.1", T0)])
    text = render(build_registry(runtime)).decode()
    assert SECRET not in text
    assert "zone" not in text
    assert "secret-store-path" not in text
    assert "hooks.example.net" not in text


def test_render_is_byte_for_byte_what_generate_latest_writes(runtime: Runtime) -> None:
    odd = 'a"b\\c\nd'
    put(
        runtime,
        [listed("192.0.2.1", since=T0 + 0.25), listed(odd, group=odd), clean("192.0.2.2")],
    )
    runtime.stats.list("corp-bl").duration.observe(0.003)
    registry = CollectorRegistry()
    registry.register(RblwatchCollector(runtime))
    assert render(registry) == generate_latest(registry)


def test_the_metrics_text_parses_back_to_the_same_samples(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1"), listed("192.0.2.2")])
    families = {
        f.name: f for f in text_string_to_metric_families(render(build_registry(runtime)).decode())
    }
    listed_samples = families["rblwatch_listed"].samples
    assert sorted(s.labels["target"] for s in listed_samples) == ["192.0.2.1", "192.0.2.2"]
    assert {s.value for s in listed_samples} == {1.0}
    assert families["rblwatch_queries"].type == "counter"
    assert families["rblwatch_query_duration_seconds"].type == "histogram"


def test_building_the_registry_reads_nothing_and_leaves_the_default_registry_alone(
    runtime: Runtime,
) -> None:
    before = set(REGISTRY._names_to_collectors)
    runtime.store.close()  # any read would raise
    registry = build_registry(runtime)
    assert set(REGISTRY._names_to_collectors) == before
    assert registry is not REGISTRY


def test_the_registry_includes_this_process_metrics(runtime: Runtime) -> None:
    names = sample_names(build_registry(runtime))
    assert "process_cpu_seconds_total" in names


def test_an_allow_list_hit_is_exported_as_allowlisted_never_as_listed(tmp_path: Path) -> None:
    runtime = make_runtime(tmp_path)
    config = parse_config(
        {
            "lists": ["dnswl", {"name": "corp-bl", "zone": "bl.example.net", "kind": "ip"}],
            "targets": [{"group": "mail", "addresses": ["192.0.2.0/30"]}],
        }
    )
    runtime.config = config
    put(runtime, [listed("192.0.2.1", list_name="dnswl"), listed("192.0.2.2")])
    registry = build_registry(runtime)
    assert (
        value(registry, "rblwatch_listed", target="192.0.2.1", list="dnswl", group="mail") is None
    )
    assert (
        value(registry, "rblwatch_allowlisted", target="192.0.2.1", list="dnswl", group="mail")
        == 1.0
    )
    assert (
        value(registry, "rblwatch_listed", target="192.0.2.2", list="corp-bl", group="mail") == 1.0
    )


def test_overrun_cycles_and_dropped_replies_are_exported(runtime: Runtime) -> None:
    runtime.stats.list("corp-bl").cycles_overrun = 2
    runtime.stats.replies_dropped = 7
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_cycles_overrun_total", list="corp-bl") == 2.0
    assert value(registry, "rblwatch_cycles_overrun_total", list="corp-dbl") == 0.0
    assert value(registry, "rblwatch_replies_dropped_total") == 7.0


# --- several instances ---------------------------------------------------------------------------


def test_before_its_first_heartbeat_an_instance_leads_nothing_and_holds_no_shard(
    runtime: Runtime,
) -> None:
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_instance_leader") == 0.0
    for name in LISTS:
        assert value(registry, "rblwatch_instance_shards_held", list=name) == 0.0
    # how many instances live is not known until a heartbeat has counted them
    assert "rblwatch_instances_live" not in sample_names(registry)


def test_the_cluster_gauges_are_this_instance_s_last_heartbeat(runtime: Runtime) -> None:
    registry = build_registry(runtime)
    leases = (Lease("corp-bl", 0, 1), Lease("corp-bl", 3, 4), Lease("spamhaus-zen", 5, 2))
    runtime.view = View("b2", leases, leader=False, live=2, now=T0)
    assert value(registry, "rblwatch_instance_leader") == 0.0
    assert value(registry, "rblwatch_instance_shards_held", list="corp-bl") == 2.0
    assert value(registry, "rblwatch_instance_shards_held", list="spamhaus-zen") == 1.0
    assert value(registry, "rblwatch_instance_shards_held", list="corp-dbl") == 0.0
    assert value(registry, "rblwatch_instances_live") == 2.0
    # alone on SQLite: the leader, every shard
    runtime.view = runtime.store.tick(Instance("a1", "h", 1, "9.9.9", T0, 0.0), LISTS, 30.0)
    assert value(registry, "rblwatch_instance_leader") == 1.0
    assert value(registry, "rblwatch_instance_shards_held", list="corp-dbl") == 16.0
    assert value(registry, "rblwatch_instances_live") == 1.0


# what every instance reads from the shared store; the rest is each process's own
SHARED = frozenset(
    {
        "rblwatch_listed",
        "rblwatch_listed_since_timestamp_seconds",
        "rblwatch_allowlisted",
        "rblwatch_listings",
        "rblwatch_list_healthy",
        "rblwatch_cycle_duration_seconds",
        "rblwatch_last_cycle_success_timestamp_seconds",
        "rblwatch_alert_queue",
    }
)


def samples_of(registry: CollectorRegistry, names: frozenset[str]) -> list[tuple[object, ...]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in registry.collect()
        if family.name in names
        for s in family.samples
    )


def test_every_instance_on_a_shared_store_exports_the_same_listings_and_lists(
    tmp_path: Path, postgres_cluster: Cluster
) -> None:
    name = postgres_cluster.create_database()
    runtimes = [make_runtime(tmp_path / n) for n in ("a", "b")]
    try:
        for rt in runtimes:
            rt.store.close()
            rt.store = open_store(postgres_cluster.url(name))
        a, b = runtimes
        put(a, [listed("192.0.2.1"), listed("example.com", "corp-dbl", "web")])
        put(a, events=[event("192.0.2.1", T0)])  # an outbox row for "ops"
        a.store.record_health("corp-bl", Health.HEALTHY, "", T0, None)
        b.store.commit(
            CycleCommit(
                list="spamhaus-zen",
                status=ListStatus(
                    "spamhaus-zen", last_cycle_duration=3.0, last_cycle_success=T0 + 60
                ),
            )
        )
        a.stats.list("corp-bl").queries = 10  # only a looked up anything
        registries = [build_registry(rt) for rt in runtimes]
        shared = [samples_of(r, SHARED) for r in registries]
        assert shared[0] == shared[1]
        names = {s[0] for s in shared[0]}
        assert names >= SHARED - {"rblwatch_allowlisted"}  # every shared family has samples
        assert value(registries[1], "rblwatch_listed", **PAIR) == 1.0
        assert value(registries[1], "rblwatch_alert_queue", receiver="ops") == 1.0
        # the process counters stay each instance's own
        assert [value(r, "rblwatch_queries_total", list="corp-bl") for r in registries] == [
            10.0,
            0.0,
        ]
    finally:
        for rt in runtimes:
            rt.store.close()
        postgres_cluster.drop_database(name)


def test_cycles_the_store_did_not_answer_and_refused_commits_are_exported(
    runtime: Runtime,
) -> None:
    runtime.stats.list("corp-bl").store_down = 3
    runtime.stats.list("corp-dbl").commits_refused = 1
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_cycles_store_down_total", list="corp-bl") == 3.0
    assert value(registry, "rblwatch_cycles_store_down_total", list="corp-dbl") == 0.0
    assert value(registry, "rblwatch_commits_refused_total", list="corp-dbl") == 1.0
    assert value(registry, "rblwatch_commits_refused_total", list="corp-bl") == 0.0


def test_while_the_store_is_away_the_scrape_answers_without_what_only_the_store_knows(
    runtime: Runtime,
) -> None:
    put(runtime, [listed("192.0.2.2")])
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_store_up") == 1.0
    assert (
        value(registry, "rblwatch_listed", target="192.0.2.2", list="corp-bl", group="mail") == 1.0
    )
    runtime.store_ok = False  # the heartbeat found it away: the scrape does not wait for it
    registry = build_registry(runtime)
    assert value(registry, "rblwatch_store_up") == 0.0
    assert (
        value(registry, "rblwatch_listed", target="192.0.2.2", list="corp-bl", group="mail") is None
    )
    assert value(registry, "rblwatch_cycles_overrun_total", list="corp-bl") == 0.0


class CountedReads:
    """A store whose full reads of the pairs are counted (the rest is the real store's)."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.reads = 0

    def pair_summaries(self) -> object:
        self.reads += 1
        return self._store.pair_summaries()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def _ours(body: bytes) -> list[bytes]:
    """A scrape's lines without the process collector's (CPU time moves between scrapes)."""
    return [line for line in body.splitlines() if b"process_" not in line]


def test_a_scrape_reads_the_pairs_again_only_when_a_commit_moved_them(runtime: Runtime) -> None:
    # issue 14: 21,000 listings were read and formatted on every scrape; they change only
    # when a cycle commits (an event, the listed count, a list row), so they are kept meanwhile
    put(runtime, [listed("192.0.2.1", since=T0)])
    counted = CountedReads(runtime.store)
    runtime.store = counted  # type: ignore[assignment]
    registry = build_registry(runtime)
    first = _ours(render(registry))
    # (the process collector's CPU seconds move between two scrapes: only ours are compared)
    assert _ours(render(registry)) == first and counted.reads == 1
    assert value(registry, "rblwatch_listed", **PAIR) == 1.0 and counted.reads == 1
    put(runtime, [listed("192.0.2.2", since=T0)], [event("192.0.2.2", T0)])
    assert value(registry, "rblwatch_listed", **(PAIR | {"target": "192.0.2.2"})) == 1.0
    assert counted.reads == 2
    # a cycle that only rewrote its list's row (a target moved out, quietly) is seen too
    runtime.store.commit(
        CycleCommit(
            list="corp-bl", deletes=["192.0.2.1"], status=ListStatus("corp-bl", last_cycle_end=T0)
        )
    )
    assert value(registry, "rblwatch_listed", **PAIR) is None
    assert counted.reads == 3


def _collector(registry: CollectorRegistry) -> RblwatchCollector:
    (collector,) = [c for c in registry._collector_to_names if isinstance(c, RblwatchCollector)]
    return collector


def test_after_a_commit_the_families_are_built_off_the_scrape_and_a_scrape_meanwhile_waits_not(
    runtime: Runtime,
) -> None:
    # issue 14: the first scrape after a /14's commit rebuilt 32,768 listings' families
    # itself, sharing the GIL with the cycle (~0.6 s); the daemon's registry rebuilds them
    # after each commit (`warm`), and a scrape during that build takes the families kept
    put(runtime, [listed("192.0.2.1", since=T0)])
    counted = CountedReads(runtime.store)
    runtime.store = counted  # type: ignore[assignment]
    registry = build_registry(runtime, warm=True)
    assert runtime.on_commit  # the engine calls it after each commit
    collector = _collector(registry)
    assert value(registry, "rblwatch_listed", **PAIR) == 1.0 and counted.reads == 1
    other = PAIR | {"target": "192.0.2.2"}
    put(runtime, [listed("192.0.2.2", since=T0)], [event("192.0.2.2", T0)])
    with collector._building:  # a build under way in another thread
        # the kept families, not a wait for the build nor a build of its own
        assert value(registry, "rblwatch_listed", **other) is None
        assert counted.reads == 1
    collector.warm()  # what the commit's hook runs in a worker thread
    assert counted.reads == 2
    assert value(registry, "rblwatch_listed", **other) == 1.0
    assert counted.reads == 2  # the scrape found them built
    # a commit under way (the engine's hooks around it): a scrape that reads its marks
    # before the warm-up is asked for still takes the kept families, not builds its own
    third = PAIR | {"target": "192.0.2.3"}
    for hook in runtime.before_commit:
        hook()
    put(runtime, [listed("192.0.2.3", since=T0)], [event("192.0.2.3", T0)])
    assert value(registry, "rblwatch_listed", **third) is None and counted.reads == 2

    async def committed() -> None:
        for hook in runtime.on_commit:
            hook()  # on the loop: warm in a worker thread
        for _ in range(500):
            if counted.reads == 3:
                return
            await asyncio.sleep(0.01)

    asyncio.run(committed())
    assert counted.reads == 3
    assert value(registry, "rblwatch_listed", **third) == 1.0 and counted.reads == 3


def test_a_scrape_after_a_reload_waits_for_the_build_of_the_new_config(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1", since=T0)])
    registry = build_registry(runtime, warm=True)
    collector = _collector(registry)
    assert value(registry, "rblwatch_listed", **PAIR) == 1.0
    runtime.config = dataclasses.replace(runtime.config)  # a reload: families of another config
    got: list[float | None] = []
    with collector._building:
        scrape = threading.Thread(
            target=lambda: got.append(value(registry, "rblwatch_listed", **PAIR))
        )
        scrape.start()
        scrape.join(0.3)
        assert scrape.is_alive() and not got  # never the old config's families
    scrape.join(10)
    assert got == [1.0]
