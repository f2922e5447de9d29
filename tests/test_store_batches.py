"""The outbox in batches (`claim_deliveries`, `deliveries_done`, `deliveries_retry`): part of the
store contract, run once per backend of `tests.store_contract.BACKENDS` like
`test_store_contract.py`.

A grouped receiver's sender takes the head of its outbox and the rows right behind it as one
message; the rules of `claim_delivery` still hold: one sender per row and per receiver, and no
row goes out while an older one of its receiver waits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rblwatch.model import CycleCommit, Delivery, Event, EventKind
from rblwatch.store import Store
from tests.store_contract import BACKENDS, T0, Backend


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


def fill(store: Store, n: int, at: float = T0) -> list[Event]:
    events = [
        Event(EventKind.LISTED, "zen", at, target=f"t{i:04}.test", group="mail") for i in range(n)
    ]
    return store.commit(CycleCommit("zen", events=events), to_ops)


def targets(batch: list[Delivery]) -> list[str | None]:
    return [d.event.target for d in batch]


def test_a_batch_is_the_head_and_the_rows_behind_it_in_order_held_for_one_sender(
    store: Store,
) -> None:
    assert store.claim_deliveries("ops", "a", T0, 30, limit=10) == []
    fill(store, 5)
    mine = store.claim_deliveries("ops", "a", T0, 30, limit=3)
    assert targets(mine) == ["t0000.test", "t0001.test", "t0002.test"]
    assert {(d.held_by, d.held_until) for d in mine} == {("a", T0 + 30)}
    # another sender is shown the held head alone, never the rows behind the batch
    (theirs,) = store.claim_deliveries("ops", "b", T0 + 1, 30, limit=3)
    assert (theirs.id, theirs.held_by) == (mine[0].id, "a")
    store.deliveries_done([d.id for d in mine])
    rest = store.claim_deliveries("ops", "b", T0 + 1, 30, limit=10)
    assert targets(rest) == ["t0003.test", "t0004.test"]
    assert {d.held_by for d in rest} == {"b"}


def test_the_head_waits_until_it_is_group_wait_old(store: Store) -> None:
    fill(store, 3)
    # young: shown as it is, held for nobody, so a sender knows how long to wait
    (young,) = store.claim_deliveries("ops", "a", T0 + 9.9, 30, limit=10, group_wait=10)
    assert (young.event.target, young.held_by, young.created) == ("t0000.test", None, T0)
    batch = store.claim_deliveries("ops", "a", T0 + 10, 30, limit=10, group_wait=10)
    assert targets(batch) == ["t0000.test", "t0001.test", "t0002.test"]


def test_a_row_waiting_for_its_retry_ends_the_batch_before_it(store: Store) -> None:
    fill(store, 4)
    first, second = store.claim_deliveries("ops", "a", T0, 30, limit=2)
    store.delivery_retry(second.id, T0 + 60, "HTTP 503")  # as a lone row would be
    store.deliveries_done([first.id])
    # the head waits: shown alone and unheld, and nothing behind it is handed out
    (head,) = store.claim_deliveries("ops", "a", T0 + 1, 30, limit=10)
    assert (head.id, head.held_by, head.next_attempt) == (second.id, None, T0 + 60)
    assert len(store.claim_deliveries("ops", "a", T0 + 60, 30, limit=10)) == 3


def test_a_failed_batch_is_retried_together_each_row_counting_the_attempt(store: Store) -> None:
    fill(store, 3)
    batch = store.claim_deliveries("ops", "a", T0, 30, limit=2)
    store.deliveries_retry([d.id for d in batch], T0 + 5, "HTTP 503")
    (head,) = store.claim_deliveries("ops", "b", T0 + 4, 30, limit=10)
    assert (head.held_by, head.attempts) == (None, 1)
    again = store.claim_deliveries("ops", "b", T0 + 5, 30, limit=10)
    assert [d.attempts for d in again] == [1, 1, 0]  # the third joins the retried two
    assert {d.held_by for d in again} == {"b"}
    store.deliveries_done([d.id for d in again])
    store.deliveries_done([d.id for d in again])  # twice is harmless
    assert store.outbox_counts() == {}
    assert len(store.events()) == 3  # the history stays


def test_a_held_batch_goes_to_another_sender_once_its_hold_ends(store: Store) -> None:
    fill(store, 3)
    batch = store.claim_deliveries("ops", "a", T0, 30, limit=3)
    (shown,) = store.claim_deliveries("ops", "b", T0 + 29, 30, limit=3)
    assert shown.held_by == "a"
    taken = store.claim_deliveries("ops", "b", T0 + 30, 30, limit=3)
    assert [d.id for d in taken] == [d.id for d in batch]
    assert {d.held_by for d in taken} == {"b"}


def test_limit_one_and_no_wait_is_claim_delivery(store: Store) -> None:
    fill(store, 2)
    (one,) = store.claim_deliveries("ops", "a", T0, 30)
    assert one == store.claim_delivery("ops", "a", T0, 30)


def test_senders_of_two_stores_racing_never_send_one_row_twice(backend: Backend) -> None:
    stores = [backend.open(), backend.open()]
    try:
        events = fill(stores[0], 300)
        sent: dict[str, list[int]] = {"a": [], "b": []}
        order: list[list[int]] = []
        lock = threading.Lock()

        def drain(owner: str, store: Store) -> None:
            for _ in range(2000):
                batch = store.claim_deliveries("ops", owner, T0, 30, limit=25)
                if not batch:
                    return
                if batch[0].held_by != owner:
                    continue  # the other one has the head: try again
                with lock:
                    order.append([d.event.id or 0 for d in batch])
                sent[owner].extend(d.id for d in batch)
                store.deliveries_done([d.id for d in batch])

        threads = [threading.Thread(target=drain, args=p) for p in zip("ab", stores, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        everything = sent["a"] + sent["b"]
        assert len(everything) == len(set(everything)) == len(events)
        # batches went out in the receiver's order, whoever took each
        assert [i for batch in order for i in batch] == [e.id for e in events]
    finally:
        for s in stores:
            s.close()
