"""Review of issue 11: an ack set while a cycle's commit delists its pair (PostgreSQL: the two
transactions really run at once) must not outlive the listing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rblwatch.model import Ack, CycleCommit, Event, EventKind, PairState, PairStatus
from rblwatch.store import Refused, Store
from rblwatch.store import acks as working
from tests.store_contract import BACKENDS, T0, Backend

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


def pair(status: PairStatus) -> PairState:
    listed = status is PairStatus.LISTED
    return PairState(IP, "zen", "mail", status, T0, T0, codes=("127.0.0.2",) if listed else ())


def test_an_ack_set_during_the_delisting_commit_does_not_outlive_the_listing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.commit(CycleCommit("zen", upserts=[pair(PairStatus.LISTED)], seen=[IP]))
    original = working.carried
    outcome: list[Any] = []

    def carried_then_an_operator_acks(db: Any, events: Any) -> Any:
        found = original(db, events)

        # the operator acknowledges the pair right after the commit read the acks (another
        # connection, its own transaction; a thread, since it may have to wait for ours)
        def ack() -> None:
            try:
                outcome.append(store.set_ack(Ack(IP, "zen", "alice", T0 + 5)))
            except Refused as e:
                outcome.append(e)

        worker = threading.Thread(target=ack)
        worker.start()
        worker.join(timeout=3)  # done, or waiting for the commit's lock on the pair
        outcome.append(worker)
        return found

    monkeypatch.setattr(working, "carried", carried_then_an_operator_acks)
    delisted = Event(EventKind.DELISTED, "zen", T0 + 10, target=IP, group="mail")
    store.commit(CycleCommit("zen", upserts=[pair(PairStatus.CLEAN)], events=[delisted]))
    worker = outcome[-1]
    worker.join(timeout=10)
    assert store.pairs()[0].status is PairStatus.CLEAN
    # either the ack came first (the delisting carries it and removes it) or it was refused
    assert store.acks() == [], (outcome, store.events())
