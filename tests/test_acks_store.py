"""Working a listing in the store (issue 11 part 2): acks, delisting requests and notes.

Part of the store contract: each test runs once per backend of `tests.store_contract.BACKENDS`
(SQLite and PostgreSQL) on a fresh database, through `open_store` and the `Store` interface
only: what each operation writes (its event, never an outbox row), what it refuses, and how a
cycle's events carry the pair's ack and the end of a listing removes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from rblwatch.model import (
    Ack,
    CycleCommit,
    Event,
    EventKind,
    Note,
    PairState,
    PairStatus,
)
from rblwatch.store import Refused, Store, open_store
from rblwatch.store.aio import AsyncStore
from rblwatch.store.transfer import migrate
from tests.store_contract import BACKENDS, T0, Backend, PostgresBackend, snapshot

IP = "192.0.2.1"


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    s = backend.open()
    try:
        yield s
    finally:
        s.close()


def to_ops(event: Event) -> list[str]:
    return ["ops"]


def pair(target: str, status: PairStatus, list_name: str = "zen", at: float = T0) -> PairState:
    listed = status is PairStatus.LISTED
    return PairState(
        target=target,
        list=list_name,
        group="mail",
        status=status,
        since=at,
        first_seen=T0,
        codes=("127.0.0.2",) if listed else (),
        meanings=("SBL",) if listed else (),
    )


def transition(kind: EventKind, target: str = IP, list_name: str = "zen", at: float = T0) -> Event:
    return Event(kind, list_name, at, target=target, group="mail", codes=("127.0.0.2",))


def list_it(store: Store, target: str = IP, list_name: str = "zen", at: float = T0) -> Event:
    (event,) = store.commit(
        CycleCommit(
            list_name,
            upserts=[pair(target, PairStatus.LISTED, list_name, at)],
            seen=[target],
            events=[transition(EventKind.LISTED, target, list_name, at)],
        ),
        to_ops,
    )
    return event


def delist_it(store: Store, target: str = IP, at: float = T0 + 100) -> Event:
    (event,) = store.commit(
        CycleCommit(
            "zen",
            upserts=[pair(target, PairStatus.CLEAN, at=at)],
            events=[replace(transition(EventKind.DELISTED, target, at=at), since=T0)],
        ),
        to_ops,
    )
    return event


def ack(target: str = IP, list_name: str = "zen", **kw: object) -> Ack:
    fields: dict[str, object] = {"by": "alice", "at": T0 + 10, "note": "asked on ticket 123"}
    fields.update(kw)
    return Ack(target, list_name, **fields)  # type: ignore[arg-type]


# -- acknowledging ------------------------------------------------------------------------------


def test_an_ack_of_a_listing_is_stored_with_its_event_and_no_outbox_row(store: Store) -> None:
    list_it(store)
    before = store.outbox_counts()
    event = store.set_ack(ack(until=T0 + 86400))
    assert event.id is not None
    assert (event.kind, event.target, event.list, event.group) == (
        EventKind.ACKNOWLEDGED,
        IP,
        "zen",
        "mail",
    )
    assert event.detail == "by alice until 2027-01-16T08:00:00Z: asked on ticket 123"
    assert event.ack == ack(until=T0 + 86400)
    assert store.acks() == [ack(until=T0 + 86400)]
    assert store.events(target=IP)[-1] == event  # the ack read back from its event row
    assert store.outbox_counts() == before


def test_an_ack_of_a_pair_that_is_not_listed_is_refused_in_one_line_and_writes_nothing(
    store: Store,
) -> None:
    store.commit(CycleCommit("zen", upserts=[pair(IP, PairStatus.CLEAN)], seen=[IP]))
    before = snapshot(store)
    for attempt in (
        lambda: store.set_ack(ack()),
        lambda: store.set_ack(ack(target="192.0.2.99")),
        lambda: store.request_delisting(IP, "zen", "alice", "", T0),
    ):
        with pytest.raises(Refused) as refused:
            attempt()
        assert "is not listed on zen" in str(refused.value)
        assert "\n" not in str(refused.value)
    assert snapshot(store) == before and store.acks() == []


def test_a_re_ack_replaces_who_and_note_but_keeps_a_delisting_request(store: Store) -> None:
    list_it(store)
    store.set_ack(ack())
    store.request_delisting(IP, "zen", "bob", "form sent", T0 + 20)
    store.set_ack(ack(by="carol", at=T0 + 30, note="still on it"))
    [got] = store.acks()
    assert (got.by, got.at, got.note) == ("carol", T0 + 30, "still on it")
    assert (got.delisting_requested_at, got.delisting_note) == (T0 + 20, "form sent")


def test_a_delisting_request_acknowledges_a_pair_without_an_active_ack(store: Store) -> None:
    list_it(store)
    event = store.request_delisting(IP, "zen", "bob", "asked Spamhaus", T0 + 5)
    assert event.kind is EventKind.DELISTING_REQUESTED
    assert event.detail == "by bob: asked Spamhaus"
    want = Ack(
        IP, "zen", "bob", T0 + 5, delisting_requested_at=T0 + 5, delisting_note="asked Spamhaus"
    )
    assert store.acks() == [want] and event.ack == want
    # an expired ack is no ack: the request acknowledges the pair anew
    store.set_ack(ack(by="alice", at=T0 + 6, until=T0 + 7))
    store.request_delisting(IP, "zen", "carol", "again", T0 + 8)
    [got] = store.acks()
    assert (got.by, got.until, got.delisting_requested_at) == ("carol", None, T0 + 8)
    # an active one is kept, the request added to it
    store.set_ack(ack(by="dave", at=T0 + 9))
    store.request_delisting(IP, "zen", "erin", "third", T0 + 10)
    [got] = store.acks()
    assert (got.by, got.delisting_requested_at, got.delisting_note) == ("dave", T0 + 10, "third")


def test_clearing_an_ack_writes_its_event_once_and_none_when_there_is_none(store: Store) -> None:
    list_it(store)
    store.set_ack(ack())
    event = store.clear_ack(IP, "zen", "bob", T0 + 50)
    assert event is not None and event.kind is EventKind.UNACKNOWLEDGED
    assert (event.detail, event.group, event.ack) == ("by bob", "mail", None)
    assert store.acks() == []
    assert store.clear_ack(IP, "zen", "bob", T0 + 51) is None
    kinds = [e.kind for e in store.events(target=IP)]
    assert kinds == [EventKind.LISTED, EventKind.ACKNOWLEDGED, EventKind.UNACKNOWLEDGED]


def test_acks_are_filtered_by_list_and_target_and_expired_ones_are_returned_inactive(
    store: Store,
) -> None:
    for target, list_name in ((IP, "zen"), (IP, "sbl"), ("192.0.2.2", "zen")):
        list_it(store, target, list_name)
        store.set_ack(ack(target, list_name, until=T0 + 60))
    assert [(a.target, a.list) for a in store.acks()] == [
        (IP, "sbl"),
        (IP, "zen"),
        ("192.0.2.2", "zen"),
    ]
    assert [a.target for a in store.acks(list_name="zen")] == [IP, "192.0.2.2"]
    assert [a.list for a in store.acks(target=IP)] == ["sbl", "zen"]
    assert store.acks(list_name="zen", target="192.0.2.2") == [ack("192.0.2.2", until=T0 + 60)]
    [expired] = store.acks(list_name="sbl")
    assert expired.active(T0 + 59) and not expired.active(T0 + 60)


def test_operator_events_are_never_a_pair_s_chain_head(store: Store) -> None:
    listed = list_it(store)
    store.set_ack(ack())
    store.request_delisting(IP, "zen", "bob", "", T0 + 20)
    store.clear_ack(IP, "zen", "bob", T0 + 30)
    assert store.chain_heads("zen", [IP]) == {IP: listed.id}


# -- a cycle's events carry the ack; the end of a listing removes it -----------------------------


def test_a_cycle_event_of_an_acknowledged_pair_carries_the_ack_to_its_deliveries(
    store: Store,
) -> None:
    list_it(store)
    store.set_ack(ack())
    changed = replace(transition(EventKind.CHANGED, at=T0 + 40), codes=("127.0.0.4",))
    other = transition(EventKind.LISTED, "192.0.2.2", at=T0 + 40)
    written = store.commit(
        CycleCommit(
            "zen",
            upserts=[pair(IP, PairStatus.LISTED), pair("192.0.2.2", PairStatus.LISTED)],
            events=[changed, other],
        ),
        to_ops,
    )
    assert [e.ack for e in written] == [ack(), None]
    assert [e.ack for e in store.events(since=T0 + 40)] == [ack(), None]
    due = store.due_deliveries("ops", now=T0 + 1000)
    assert [d.event.ack for d in due] == [None, ack(), None]  # the first: the listing itself


def test_an_expired_ack_is_not_carried(store: Store) -> None:
    list_it(store)
    store.set_ack(ack(until=T0 + 30))
    changed = replace(transition(EventKind.CHANGED, at=T0 + 40), codes=("127.0.0.4",))
    (event,) = store.commit(CycleCommit("zen", events=[changed]), to_ops)
    assert event.ack is None


def test_a_delisting_carries_the_ack_and_removes_it_so_a_new_listing_starts_fresh(
    store: Store,
) -> None:
    list_it(store)
    store.request_delisting(IP, "zen", "alice", "asked", T0 + 10)
    delisted = delist_it(store)
    assert delisted.ack is not None and delisted.ack.delisting_note == "asked"
    assert store.acks() == []
    relisted = list_it(store, at=T0 + 200)
    assert relisted.ack is None
    assert store.events(since=T0 + 200)[0].ack is None


def test_a_hygiene_check_passing_again_removes_its_ack(store: Store) -> None:
    failing = replace(pair("example.com", PairStatus.LISTED, "dmarc"), codes=("fail",))
    store.commit(
        CycleCommit(
            "dmarc",
            upserts=[failing],
            seen=["example.com"],
            events=[transition(EventKind.CHECK_FAILED, "example.com", "dmarc")],
        )
    )
    store.set_ack(ack("example.com", "dmarc"))
    (passed,) = store.commit(
        CycleCommit(
            "dmarc",
            upserts=[pair("example.com", PairStatus.CLEAN, "dmarc")],
            events=[transition(EventKind.CHECK_PASSED, "example.com", "dmarc", T0 + 99)],
        )
    )
    assert passed.ack == ack("example.com", "dmarc")
    assert store.acks() == []


def test_a_delisting_of_one_pair_keeps_the_acks_of_the_others(store: Store) -> None:
    list_it(store)
    list_it(store, "192.0.2.2")
    list_it(store, IP, "sbl")
    for target, list_name in ((IP, "zen"), ("192.0.2.2", "zen"), (IP, "sbl")):
        store.set_ack(ack(target, list_name))
    delist_it(store)
    assert [(a.target, a.list) for a in store.acks()] == [(IP, "sbl"), ("192.0.2.2", "zen")]


# -- notes --------------------------------------------------------------------------------------


def test_notes_are_kept_per_target_oldest_first_each_with_its_event(store: Store) -> None:
    store.commit(CycleCommit("zen", seen=[IP, "192.0.2.2"]))
    first = store.add_note(Note(IP, "alice", T0 + 2, "customer says it is a test box"))
    second = store.add_note(Note(IP, "bob", T0 + 1, "moved to a new range"))
    store.add_note(Note("192.0.2.2", "bob", T0 + 3, "other"))
    assert first.id is not None and second.id is not None and first.id != second.id
    assert store.notes(IP) == [second, first]
    events = store.events(target=IP)
    assert [(e.kind, e.list, e.detail) for e in events] == [
        (EventKind.NOTE, "", "by bob: moved to a new range"),
        (EventKind.NOTE, "", "by alice: customer says it is a test box"),
    ]
    assert store.outbox_counts() == {}


def test_a_note_on_a_target_never_looked_up_is_refused(store: Store) -> None:
    with pytest.raises(Refused, match="never looked this target up"):
        store.add_note(Note("198.51.100.7", "alice", T0, "typo?"))
    assert store.notes("198.51.100.7") == [] and store.events() == []


# -- the async facade and moving a store ---------------------------------------------------------


def test_every_async_ack_method_gives_what_the_store_gives(backend: Backend) -> None:
    store = backend.open()
    db = AsyncStore(store)
    list_it(store)

    async def scenario() -> None:
        acked = await db.set_ack(ack())
        assert store.events()[-1] == acked
        assert await db.acks() == store.acks() == [ack()]
        assert await db.acks("zen", IP) == [ack()]
        requested = await db.request_delisting(IP, "zen", "bob", "sent", T0 + 20)
        assert requested.kind is EventKind.DELISTING_REQUESTED
        cleared = await db.clear_ack(IP, "zen", "bob", T0 + 30)
        assert cleared is not None and store.acks() == []
        note = await db.add_note(Note(IP, "bob", T0, "hello"))
        assert await db.notes(IP) == store.notes(IP) == [note]
        await db.close()

    asyncio.run(scenario())


def test_acks_and_notes_move_with_a_store_migrate_to_postgresql_and_back(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    backend = PostgresBackend(request)
    source = f"sqlite:///{tmp_path / 'src.db'}"
    with closing(open_store(source)) as store:
        list_it(store)
        store.set_ack(ack(until=T0 + 99))
        store.add_note(Note(IP, "alice", T0, "first"))
    copied = migrate(source, backend.url)
    assert (copied.rows["acks"], copied.rows["notes"]) == (1, 1)
    back = f"sqlite:///{tmp_path / 'back.db'}"
    migrate(backend.url, back)
    for url in (backend.url, back):
        with closing(open_store(url)) as store:
            assert store.acks() == [ack(until=T0 + 99)]
            [note] = store.notes(IP)
            assert note.text == "first"
            [acked] = [e for e in store.events(target=IP) if e.kind is EventKind.ACKNOWLEDGED]
            assert acked.ack == ack(until=T0 + 99)
            later = store.add_note(Note(IP, "bob", T0 + 1, "second"))
            assert later.id is not None and note.id is not None and later.id > note.id


def test_a_pair_whose_row_a_commit_deletes_loses_its_ack_and_others_keep_theirs(
    store: Store,
) -> None:
    list_it(store)
    list_it(store, "192.0.2.2")
    store.set_ack(ack())
    store.set_ack(ack("192.0.2.2"))
    store.commit(CycleCommit("zen", deletes=[IP]))  # its target is no longer configured
    assert [a.target for a in store.acks()] == ["192.0.2.2"]
    assert list_it(store, at=T0 + 500).ack is None
