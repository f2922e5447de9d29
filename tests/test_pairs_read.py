"""The status and pairs pages read whole only the rows they show (issue 14): their counts,
pages and stale listings, made from the pairs' summaries, must be exactly what the full read
(every pair whole, as before) makes of the same store — on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rblwatch.config import Config
from rblwatch.model import (
    Ack,
    CycleCommit,
    Health,
    ListStatus,
    PairError,
    PairState,
    PairStatus,
    Reason,
    ResolverState,
)
from rblwatch.pairsource import PairsRead, PairsSource, read_console, read_pairs
from rblwatch.store import Store, open_store
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.pairs import (
    PairsPage,
    pair_counts,
    pair_json,
    pair_summary,
    pairs_page,
    pairs_query,
)
from rblwatch.views.status import ListingsQuery, PairCounts, status_json
from tests.postgres import Cluster
from tests.webstate import T0, listed, make_config

HOUR = 3600.0


def _row(name: str, health: Health = Health.HEALTHY, success: float | None = T0) -> ListStatus:
    return ListStatus(name, health, "", T0 - HOUR, T0 - 5, T0, success, 5.0, 5, 0, 5)


def _pending(target: str, list_name: str) -> PairState:
    return PairState(
        target,
        list_name,
        "mail",
        PairStatus.CLEAN,
        since=T0 - HOUR,
        first_seen=T0 - HOUR,
        pending=PairStatus.LISTED,
        pending_codes=("127.0.0.2",),
        pending_count=1,
        pending_since=T0 - 60,
    )


def _clean_row(target: str, list_name: str) -> PairState:
    return PairState(target, list_name, "mail", PairStatus.CLEAN, T0 - 60, T0 - 2 * HOUR)


def fill(store: Store) -> None:
    """A store of every kind of pair: listed (acked, ack expired, not acked), pending, clean
    with history, error rows fresh and stale, a list-wide error row, targets the last cycle
    did not look up, stored targets no longer configured, an unhealthy list."""
    # corp-bl: healthy; its last cycle looked up three of the four addresses
    store.commit(
        CycleCommit(
            "corp-bl",
            seen=["192.0.2.0", "192.0.2.1", "192.0.2.2"],
            status=_row("corp-bl"),
            upserts=[
                listed("192.0.2.1"),
                listed("192.0.2.3"),  # not looked up by the last cycle
                _pending("192.0.2.2", "corp-bl"),
                *(listed(f"198.51.100.{i}", since=T0 - i) for i in range(1, 40)),  # extras
                _clean_row("198.51.100.200", "corp-bl"),
            ],
            errors=[
                PairError("192.0.2.0", "corp-bl", Reason.TIMEOUT, T0, last_good_at=T0 - HOUR),
                PairError("198.51.100.3", "corp-bl", Reason.SERVFAIL, T0, last_good_at=T0 - 30),
                PairError("198.51.100.250", "corp-bl", Reason.TIMEOUT, T0, last_good_at=None),
            ],
        )
    )
    # spamhaus-zen: most of its last cycle failed (the list's own error row)
    store.commit(
        CycleCommit(
            "spamhaus-zen",
            seen=["192.0.2.0", "192.0.2.1", "192.0.2.2", "192.0.2.3"],
            status=_row("spamhaus-zen", success=T0 - HOUR),
            upserts=[listed("192.0.2.2", "spamhaus-zen"), _clean_row("192.0.2.0", "spamhaus-zen")],
            errors=[
                PairError("", "spamhaus-zen", Reason.REFUSED, T0, last_good_at=T0 - HOUR),
                PairError("192.0.2.3", "spamhaus-zen", Reason.TIMEOUT, T0, last_good_at=T0 - 9),
            ],
        )
    )
    # corp-dbl: unhealthy, so stopped: its pairs are stale at once
    store.commit(
        CycleCommit(
            "corp-dbl",
            seen=["example.com"],
            status=_row("corp-dbl", Health.DEAD),
            upserts=[
                listed("example.com", "corp-dbl", group="web"),
                listed("old.example.org", "corp-dbl", group="web"),
            ],
        )
    )
    for name in ("corp-bl", "spamhaus-zen"):
        store.record_health(name, Health.HEALTHY, "", T0 - HOUR, None)
    store.record_health("corp-dbl", Health.DEAD, "test point unanswered", T0 - 60, None)
    for target, until in (("192.0.2.1", None), ("198.51.100.5", T0 + 120), ("198.51.100.6", T0)):
        store.set_ack(Ack(target, "corp-bl", "ops", T0 - 30, until=until))
    store.set_ack(Ack("example.com", "corp-dbl", "ops", T0 - 30))


def full_read(store: Store, cfg: Config, read: PairsRead) -> list[object]:
    """The lists as every page read them before: every pair whole."""
    lists = read.source.lists(store, cfg, read, store.pairs(), store.list_statuses())
    return list(lists)


def every_page(
    build: object, store: Store, cfg: Config, read: PairsRead, **query: object
) -> list[dict[str, object]]:
    """Every page of the pairs the query selects, 7 at a time, as JSON."""
    out: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        q = pairs_query(limit=7, cursor=cursor, **query)  # type: ignore[arg-type]
        page: PairsPage = build(q)  # type: ignore[operator]
        out += [pair_json(p) for p in page.items]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def check_same(store: Store, cfg: Config, now: float) -> None:
    read = PairsRead(PairsSource(), None, now)
    lists = full_read(store, cfg, read)
    acks = {(a.target, a.list): a for a in store.acks()}
    counts, stale = pair_summary(lists, now, acks)  # type: ignore[arg-type]
    view, _ = read_console(store, cfg, None, read, listings=ListingsQuery(limit=5))
    assert view.counts == counts
    _, by_pairs = read_pairs(store, cfg, read, pairs_query())
    assert by_pairs == counts
    # and what the view shows pair by pair, counted
    items = pairs_page(lists, pairs_query(limit=1000), now, acks).items  # type: ignore[arg-type]
    assert counts == PairCounts(
        len(items),
        sum(i.state == "listed" for i in items),
        sum(i.state == "clean" for i in items),
        sum(i.state == "unknown" for i in items),
        sum(i.last_outcome == "error" for i in items),
        sum(i.stale for i in items),
        sum(i.state == "listed" and i.ack is not None and i.ack.active(now) for i in items),
    )
    assert stale == {(i.target, i.list) for i in items if i.stale and i.state == "listed"}
    # each list's counts too, not only their sum
    light = read.source.lists(store, cfg, read, store.pair_summaries(), store.list_statuses())
    for whole, summed in zip(lists, light, strict=True):
        assert pair_counts([summed], now, acks) == pair_counts([whole], now, acks)  # type: ignore[list-item]
    # the listings' stale marks, page by page
    doc = status_json(view)
    for item in doc["listings"]:  # type: ignore[attr-defined]
        assert item["stale"] == ((item["target"], item["list"]) in stale)
    everything = status_json(read_console(store, cfg, None, read)[0])
    marks = {(i["target"], i["list"]): i["stale"] for i in everything["listings"]}  # type: ignore[attr-defined]
    assert marks == {
        (p.target, p.list): (p.target, p.list) in stale
        for p in store.listings([lst.name for lst in cfg.subjects])
    }
    # the pairs pages: outcome, codes, staleness and ack of every pair, each filter
    for query in ({}, {"state": "listed"}, {"state": "clean"}, {"state": "unknown"}):
        old = every_page(lambda q: pairs_page(lists, q, now, acks), store, cfg, read, **query)  # type: ignore[arg-type]
        new = every_page(lambda q: read_pairs(store, cfg, read, q)[0], store, cfg, read, **query)
        assert new == old
        first = read_console(store, cfg, None, read, pairs_query(limit=7, **query))[1]  # type: ignore[arg-type]
        assert [pair_json(p) for p in first.items] == old[:7]


def check_moments(store: Store) -> None:
    cfg = make_config()
    fill(store)
    # fresh; past two intervals; long after; and with the resolver unreachable
    interval = cfg.schedule.interval
    for now in (T0 + 60, T0 + 2 * interval + 1, T0 + 30 * interval):
        check_same(store, cfg, now)
    store.record_resolver(ResolverState("unreachable", T0 + 30, "timeout"), None)
    check_same(store, cfg, T0 + 60)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "state.db"))
    try:
        yield s
    finally:
        s.close()


def test_the_pages_counts_from_summaries_are_the_full_read_s_on_sqlite(
    sqlite: SqliteStore,
) -> None:
    check_moments(sqlite)


def test_the_pages_counts_from_summaries_are_the_full_read_s_on_postgres(
    postgres_cluster: Cluster,
) -> None:
    name = postgres_cluster.create_database()
    store = open_store(postgres_cluster.url(name))
    try:
        check_moments(store)
    finally:
        store.close()
        postgres_cluster.drop_database(name)


def test_a_page_reads_whole_only_the_pairs_it_shows(sqlite: SqliteStore) -> None:
    fill(sqlite)
    cfg = make_config()
    whole: list[int] = []
    real = sqlite.pairs_of

    def counted(list_name: str, targets: object) -> list[PairState]:
        got = real(list_name, targets)  # type: ignore[arg-type]
        whole.append(len(got))
        return got

    sqlite.pairs_of = counted  # type: ignore[method-assign]
    sqlite.pairs = None  # type: ignore[assignment,method-assign]  # never every pair whole
    read = PairsRead(PairsSource(), None, T0 + 60)
    page, _ = read_pairs(sqlite, cfg, read, pairs_query(limit=7))
    assert sum(whole) <= 7 and len(page.items) == 7
    view, _ = read_console(sqlite, cfg, None, read, listings=ListingsQuery(limit=5))
    assert len(view.listings) == 5 and view.next_cursor is not None
