"""`/api/v1/status` pages its listings (issue 14): `limit`, `cursor`, `next_cursor`.

At 21,000 listings the whole status was 4 MB built in ~360 ms; a page reads its listings from
the store as such (`Store.listings`, SQL LIMIT on (target, list)) and sends only those.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from rblwatch.model import PairState
from rblwatch.runtime import Runtime
from rblwatch.views.status import LISTINGS_LIMIT_DEFAULT
from tests.test_web import Reply, serve
from tests.webstate import listed, make_runtime, put


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


def pages(runtime: Runtime, first: str) -> list[dict[str, Any]]:
    """Every page of the status from `first` on, following `next_cursor`."""

    async def action(request: Callable[..., Awaitable[Reply]]) -> list[dict[str, Any]]:
        out, path = [], first
        while True:
            reply = await request(path)
            assert reply.status == 200, reply.text
            doc: dict[str, Any] = reply.json()
            out.append(doc)
            if doc["next_cursor"] is None:
                return out
            sep = "&" if "?" in first else "?"
            path = f"{first}{sep}cursor={doc['next_cursor']}"

    return serve(runtime, action)  # type: ignore[no-any-return]


def test_the_status_listings_come_in_pages_that_together_are_every_listing(
    runtime: Runtime,
) -> None:
    targets = [f"192.0.2.{i}" for i in range(7)]
    put(runtime, [*map(listed, targets), *(listed(t, "spamhaus-zen") for t in targets[:3])])
    [whole] = pages(runtime, "/api/v1/status")
    every = [(x["target"], x["list"]) for x in whole["listings"]]
    assert len(every) == 10 and every == sorted(every)
    got = pages(runtime, "/api/v1/status?limit=3")
    assert [len(doc["listings"]) for doc in got] == [3, 3, 3, 1]
    assert [(x["target"], x["list"]) for doc in got for x in doc["listings"]] == every
    # each page is the whole status otherwise: the counts are of every pair
    assert {doc["counts"]["listed"] for doc in got} == {10}


def test_a_status_page_is_a_thousand_listings_by_default(runtime: Runtime) -> None:
    n = LISTINGS_LIMIT_DEFAULT + 1
    put(runtime, [listed(f"10.0.{i >> 8}.{i & 255}") for i in range(n)])
    first, last = pages(runtime, "/api/v1/status")
    assert len(first["listings"]) == LISTINGS_LIMIT_DEFAULT and len(last["listings"]) == 1
    assert last["next_cursor"] is None


class PagesRead:
    """A store whose listing reads are noted (the rest is the real store's)."""

    def __init__(self, store: object) -> None:
        self._store = store
        self.reads: list[int] = []

    def listings(self, *args: Any, **kwargs: Any) -> list[PairState]:
        found: list[PairState] = self._store.listings(*args, **kwargs)  # type: ignore[attr-defined]
        self.reads.append(len(found))
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_a_status_page_reads_from_the_store_only_the_listings_it_shows(
    runtime: Runtime,
) -> None:
    put(runtime, [listed(f"10.0.0.{i}") for i in range(50)])
    counted = PagesRead(runtime.store)
    runtime.store = counted  # type: ignore[assignment]
    [*_, last] = pages(runtime, "/api/v1/status?limit=20")
    # a page and the one row that says there is a next: never every listing at once
    assert counted.reads == [21, 21, 10]
    assert len(last["listings"]) == 10


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("limit=0", "limit: must be at least 1"),
        ("limit=many", "limit: not a whole number"),
        ("cursor=bm90IGEgY3Vyc29y", "not a cursor this API gave"),
        ("limit=1&limit=2", "limit: given 2 times"),
    ],
)
def test_a_bad_status_page_is_a_400_that_says_why(
    runtime: Runtime, query: str, problem: str
) -> None:
    reply = serve(runtime, lambda request: request(f"/api/v1/status?{query}"))
    assert reply.status == 400
    assert problem in reply.json()["error"]
