"""The daily query budget shared by every instance of a store: reservations (both stores).

A cycle reserves its lookups before sending them (`Store.reserve_budget`) and its commit then
counts the difference to what it really sent, so instances sharing one database never spend
a list's budget twice, and a cycle abandoned past its deadline has still paid for its queries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rblwatch.model import CycleCommit
from rblwatch.store import Store
from tests.store_contract import BACKENDS, Backend

DAY = "2027-01-15"


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


def test_a_reservation_that_fits_is_counted_at_once_and_one_that_does_not_is_not(
    store: Store,
) -> None:
    assert store.reserve_budget("zen", DAY, 60, 100)
    assert store.budget_used("zen", DAY) == 60
    assert not store.reserve_budget("zen", DAY, 41, 100)
    assert store.budget_used("zen", DAY) == 60  # refused: nothing counted
    assert store.reserve_budget("zen", DAY, 40, 100)  # exactly to the limit
    assert store.budget_used("zen", DAY) == 100
    assert not store.reserve_budget("zen", DAY, 1, 100)
    assert not store.reserve_budget("other", DAY, 101, 100)  # too big even for a fresh day
    assert store.budget_used("other", DAY) == 0
    assert store.budget_used("zen", "2027-01-16") == 0  # a day of its own


def test_a_commit_corrects_a_reservation_by_what_was_really_sent(store: Store) -> None:
    assert store.reserve_budget("zen", DAY, 50, 1000)
    # 50 reserved, 62 sent (retries): the commit adds the 12 more
    store.commit(CycleCommit("zen", budget_day=DAY, budget_queries=12))
    assert store.budget_used("zen", DAY) == 62
    assert store.reserve_budget("zen", DAY, 50, 1000)
    # 50 reserved, 30 sent (the list went unhealthy mid-way): the commit gives 20 back
    store.commit(CycleCommit("zen", budget_day=DAY, budget_queries=-20))
    assert store.budget_used("zen", DAY) == 92


def test_instances_reserving_at_once_never_spend_more_than_the_budget(
    backend: Backend,
) -> None:
    stores = [backend.open() for _ in range(4)]
    try:
        granted: list[bool] = []
        lock = threading.Lock()
        start = threading.Barrier(len(stores))

        def reserve(s: Store) -> None:
            start.wait()
            for _ in range(25):
                ok = s.reserve_budget("zen", DAY, 7, 500)
                with lock:
                    granted.append(ok)

        threads = [threading.Thread(target=reserve, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # 100 attempts of 7 against 500: exactly 71 fit, and the count says so
        assert sum(granted) == 500 // 7
        assert stores[0].budget_used("zen", DAY) == 7 * (500 // 7)
    finally:
        for s in stores:
            s.close()
