"""The store as the event loop sees it: every call runs in a worker thread.

Store methods are synchronous and short, but a slow disk (or, later, a database round trip)
must never stall the event loop that sends lookups and watchdog pings. So every caller on the
loop goes through this one facade instead of sprinkling `asyncio.to_thread` over the daemon;
a store that is natively asynchronous can later replace it behind the same methods.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from rblwatch.cluster import SHARDS, Fence, Instance, View
from rblwatch.model import (
    Ack,
    CycleCommit,
    Delivery,
    Event,
    Health,
    ListStatus,
    Note,
    PairError,
    PairState,
    PairSummary,
    ReceiversFor,
    ResolverState,
)
from rblwatch.store import Store

T = TypeVar("T")


class AsyncStore:
    """Awaitable twins of every `Store` method (the contract suite checks that none is
    missing), plus `read` for a view built from several reads."""

    __slots__ = ("sync",)

    def __init__(self, store: Store) -> None:
        self.sync = store

    async def read(self, build: Callable[[Store], T]) -> T:
        """Run `build(store)` in a thread: a view that reads and formats thousands of rows."""
        return await asyncio.to_thread(build, self.sync)

    async def pairs(self, list_name: str | None = None) -> list[PairState]:
        return await asyncio.to_thread(self.sync.pairs, list_name)

    async def listings(
        self,
        lists: Collection[str],
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[PairState]:
        return await asyncio.to_thread(self.sync.listings, lists, after, limit)

    async def pair_summaries(self) -> list[PairSummary]:
        return await asyncio.to_thread(self.sync.pair_summaries)

    async def pair_errors(
        self, list_name: str | None = None, target: str | None = None
    ) -> list[PairError]:
        return await asyncio.to_thread(self.sync.pair_errors, list_name, target)

    async def seen(self, list_name: str) -> set[str]:
        return await asyncio.to_thread(self.sync.seen, list_name)

    async def commit(
        self,
        commit: CycleCommit,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> list[Event]:
        return await asyncio.to_thread(self.sync.commit, commit, receivers_for, fence)

    async def chain_heads(self, list_name: str, targets: Collection[str]) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.chain_heads, list_name, targets)

    async def record_health(
        self,
        name: str,
        health: Health,
        detail: str,
        at: float,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        return await asyncio.to_thread(
            self.sync.record_health, name, health, detail, at, event, receivers_for, fence
        )

    async def resolver_state(self) -> ResolverState:
        return await asyncio.to_thread(self.sync.resolver_state)

    async def record_resolver(
        self,
        state: ResolverState,
        event: Event | None,
        receivers_for: ReceiversFor | None = None,
        fence: Fence | None = None,
    ) -> Event | None:
        return await asyncio.to_thread(
            self.sync.record_resolver, state, event, receivers_for, fence
        )

    async def list_statuses(self) -> list[ListStatus]:
        return await asyncio.to_thread(self.sync.list_statuses)

    async def events(
        self,
        *,
        since: float | None = None,
        limit: int = 100,
        target: str | None = None,
        list_name: str | None = None,
        newest_first: bool = False,
    ) -> list[Event]:
        return await asyncio.to_thread(
            functools.partial(
                self.sync.events,
                since=since,
                limit=limit,
                target=target,
                list_name=list_name,
                newest_first=newest_first,
            )
        )

    async def reminders_sent(self) -> list[tuple[str, str, str, float]]:
        return await asyncio.to_thread(self.sync.reminders_sent)

    async def listed_count(self) -> int:
        return await asyncio.to_thread(self.sync.listed_count)

    async def set_ack(self, ack: Ack) -> Event:
        return await asyncio.to_thread(self.sync.set_ack, ack)

    async def clear_ack(self, target: str, list_name: str, by: str, at: float) -> Event | None:
        return await asyncio.to_thread(self.sync.clear_ack, target, list_name, by, at)

    async def request_delisting(
        self, target: str, list_name: str, by: str, note: str, at: float
    ) -> Event:
        return await asyncio.to_thread(self.sync.request_delisting, target, list_name, by, note, at)

    async def acks(self, list_name: str | None = None, target: str | None = None) -> list[Ack]:
        return await asyncio.to_thread(self.sync.acks, list_name, target)

    async def add_note(self, note: Note) -> Note:
        return await asyncio.to_thread(self.sync.add_note, note)

    async def notes(self, target: str) -> list[Note]:
        return await asyncio.to_thread(self.sync.notes, target)

    async def budget_used(self, list_name: str, day: str) -> int:
        return await asyncio.to_thread(self.sync.budget_used, list_name, day)

    async def reserve_budget(self, list_name: str, day: str, queries: int, limit: int) -> bool:
        return await asyncio.to_thread(self.sync.reserve_budget, list_name, day, queries, limit)

    async def due_deliveries(self, receiver: str, now: float, limit: int = 100) -> list[Delivery]:
        return await asyncio.to_thread(self.sync.due_deliveries, receiver, now, limit)

    async def claim_delivery(
        self, receiver: str, owner: str, now: float, hold: float
    ) -> Delivery | None:
        return await asyncio.to_thread(self.sync.claim_delivery, receiver, owner, now, hold)

    async def claim_deliveries(
        self,
        receiver: str,
        owner: str,
        now: float,
        hold: float,
        limit: int = 1,
        group_wait: float = 0.0,
    ) -> list[Delivery]:
        return await asyncio.to_thread(
            self.sync.claim_deliveries, receiver, owner, now, hold, limit, group_wait
        )

    async def deliveries_done(self, delivery_ids: Collection[int]) -> None:
        await asyncio.to_thread(self.sync.deliveries_done, delivery_ids)

    async def deliveries_retry(
        self, delivery_ids: Collection[int], next_attempt: float, error: str
    ) -> None:
        await asyncio.to_thread(self.sync.deliveries_retry, delivery_ids, next_attempt, error)

    async def delivery_done(self, delivery_id: int) -> None:
        await asyncio.to_thread(self.sync.delivery_done, delivery_id)

    async def delivery_retry(self, delivery_id: int, next_attempt: float, error: str) -> None:
        await asyncio.to_thread(self.sync.delivery_retry, delivery_id, next_attempt, error)

    async def outbox_counts(self) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.outbox_counts)

    async def tick(
        self, me: Instance, lists: Sequence[str], lease: float, shards: int = SHARDS
    ) -> View:
        return await asyncio.to_thread(self.sync.tick, me, lists, lease, shards)

    async def instances(self) -> list[Instance]:
        return await asyncio.to_thread(self.sync.instances)

    async def leave(self, owner: str) -> None:
        await asyncio.to_thread(self.sync.leave, owner)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
