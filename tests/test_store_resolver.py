"""The store's resolver state (issue 11), on every backend of the contract suite.

`resolver_state` / `record_resolver` are part of the `Store` contract: the same fixtures as
`test_store_contract.py`, one fresh database per test and backend.
"""

from __future__ import annotations

import pytest

from rblwatch.cluster import Fence
from rblwatch.model import CycleCommit, Event, EventKind, ListStatus, ResolverState
from rblwatch.store import Fenced, Store
from tests.store_contract import T0, Backend
from tests.test_store_contract import backend, store, to_ops

__all__ = ["backend", "store"]  # the contract suite's fixtures, used here by name

DOWN = ResolverState("unreachable", T0, "test point 127.0.0.2: timeout")
GONE = Event(EventKind.RESOLVER_UNREACHABLE, "", T0, detail=DOWN.detail)


def test_a_store_never_told_says_the_resolver_is_ok(store: Store) -> None:
    assert store.resolver_state() == ResolverState("ok", None, "")
    assert store.resolver_state().reachable


def test_an_outage_is_one_event_with_its_outbox_rows_and_keeps_its_since(store: Store) -> None:
    written = store.record_resolver(DOWN, GONE, to_ops)
    assert written is not None and written.id is not None
    assert written.kind is EventKind.RESOLVER_UNREACHABLE and written.list == ""
    assert store.events() == [written]
    assert store.outbox_counts() == {"ops": 1}
    # a second decider from the same old "ok": its event is not written, the since stays
    later = ResolverState("unreachable", T0 + 60, "again")
    again = Event(EventKind.RESOLVER_UNREACHABLE, "", T0 + 60)
    assert store.record_resolver(later, again, to_ops) is None
    assert store.resolver_state() == ResolverState("unreachable", T0, "again")
    assert len(store.events()) == 1 and store.outbox_counts() == {"ops": 1}


def test_a_recovery_says_when_the_outage_began(store: Store) -> None:
    store.record_resolver(DOWN, GONE, to_ops)
    back = Event(EventKind.RESOLVER_RECOVERED, "", T0 + 300)
    written = store.record_resolver(ResolverState("ok", T0 + 300, "answered"), back, to_ops)
    assert written is not None and written.since == T0
    assert store.resolver_state() == ResolverState("ok", T0 + 300, "answered")
    assert [e.kind for e in store.events()] == [
        EventKind.RESOLVER_UNREACHABLE,
        EventKind.RESOLVER_RECOVERED,
    ]
    # recovered twice (two deciders): one event
    twice = Event(EventKind.RESOLVER_RECOVERED, "", T0 + 301)
    assert store.record_resolver(ResolverState("ok", T0 + 301), twice, to_ops) is None


def test_a_skipped_cycle_says_why_in_its_row(store: Store) -> None:
    row = ListStatus("zen", last_cycle_end=T0, last_cycle_skipped="resolver_unreachable")
    store.commit(CycleCommit("zen", status=row))
    [stored] = store.list_statuses()
    assert stored.last_cycle_skipped == "resolver_unreachable"
    store.commit(CycleCommit("zen", status=ListStatus("zen", last_cycle_end=T0 + 60)))
    [stored] = store.list_statuses()
    assert stored.last_cycle_skipped is None  # the next cycle ran


def test_only_the_leader_records_the_resolver(backend: Backend, store: Store) -> None:
    fence = Fence("nobody", leader=True)
    if backend.name == "sqlite":
        # one process alone uses a SQLite file: it always leads, whatever the fence says
        assert store.record_resolver(DOWN, GONE, to_ops, fence) is not None
        assert not store.resolver_state().reachable
        return
    with pytest.raises(Fenced, match="no longer leads"):
        store.record_resolver(DOWN, GONE, to_ops, fence)
    assert store.resolver_state().reachable and store.events() == []
