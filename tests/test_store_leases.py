"""Several instances on one PostgreSQL database: shards, leases, fencing and the leader.

Against the session's throwaway cluster (`tests.postgres`), each instance a store of its own
(its own pool), as separate processes would be: the shards split fairly and each is held by
one instance; a newcomer gets its share from the holder's next tick; a silent instance's
shards go to a survivor after the lease, under a new epoch; a commit fenced by a lease that
was lost, or merely expired, writes nothing; one leader at a time; a clean `leave`; a list no
longer watched given up; claims at the same instant; and an instance paused mid-commit: the
server ends its idle transaction, and the others' ticks do not wait for it. Short leases and
real sleeps where time must pass, so the whole file takes seconds. A lone instance on either
store is in the contract suite.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from rblwatch.cluster import SHARDS, Fence, Instance, View
from rblwatch.config.model import StoreConfig
from rblwatch.model import CycleCommit, Event, EventKind, Health, ListStatus, PairState, PairStatus
from rblwatch.store import Fenced, Store, StoreError, open_store
from rblwatch.store import postgres as pg
from rblwatch.store.postgres_schema import FENCE_LEADER, SHARDS_DONE
from tests.postgres import Cluster
from tests.store_contract import T0, snapshot

LONG = 30.0  # a lease that never runs out during a test
SHORT = 1.0  # a lease a test outlives with a real sleep
ALL = frozenset(range(SHARDS))


@pytest.fixture
def url(postgres_cluster: Cluster) -> Iterator[str]:
    name = postgres_cluster.create_database()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_cluster.drop_database(name)


Opener = Callable[[], Store]


@pytest.fixture
def new_store(url: str) -> Iterator[Opener]:
    """Opens a store on the test's database per call (one per instance); all closed after."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_store(url))
        return opened[-1]

    try:
        yield open_one
    finally:
        for s in opened:
            s.close()


class Node:
    """One instance: its identity, its own store and its last view."""

    def __init__(self, name: str, store: Store, lists: Sequence[str] = ("zen",)) -> None:
        self.me = Instance(name, f"host-{name}", 1000 + len(name), "test", T0 + len(name), 0.0)
        self.store, self.lists = store, list(lists)
        self.view: View | None = None

    def tick(self, lease: float = LONG) -> View:
        self.view = self.store.tick(self.me, self.lists, lease)
        return self.view

    def shards(self, list_name: str = "zen") -> frozenset[int]:
        assert self.view is not None
        return self.view.shards_of(list_name)


def nodes(new_store: Opener, *names: str, lists: Sequence[str] = ("zen",)) -> list[Node]:
    return [Node(n, new_store(), lists) for n in names]


def settle(group: Sequence[Node], lease: float = LONG, rounds: int = 3) -> None:
    """Tick each node in turn, `rounds` times (enough for the release and the claim)."""
    for _ in range(rounds):
        for node in group:
            node.tick(lease)


def shard_rows(url: str, list_name: str = "zen") -> dict[int, tuple[Any, ...]]:
    """shard → (owner, epoch, last_done), as stored."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT shard, owner, epoch, last_done FROM shards WHERE list = %s", (list_name,)
        )
        return {int(s): (o, int(e), d) for s, o, e, d in rows}


def assert_split(group: Sequence[Node], url: str, list_name: str = "zen") -> None:
    """Every shard held by exactly one node, as its view and the database both say."""
    held = [node.shards(list_name) for node in group]
    assert sum(len(h) for h in held) == SHARDS and frozenset().union(*held) == ALL
    owners = {s: row[0] for s, row in shard_rows(url, list_name).items()}
    assert owners == {s: node.me.id for node in group for s in node.shards(list_name)}


def listed(target: str) -> PairState:
    return PairState(target, "zen", "mail", PairStatus.LISTED, T0, T0, ("127.0.0.2",))


def a_cycle(target: str = "192.0.2.1", after: int | None = None) -> CycleCommit:
    """A commit of every kind of row a cycle writes."""
    return CycleCommit(
        "zen",
        upserts=[listed(target)],
        seen=[target],
        events=[Event(EventKind.LISTED, "zen", T0, target=target, group="mail", after=after)],
        status=ListStatus("zen", last_cycle_end=T0, targets=1),
        budget_day="2027-01-15",
        budget_queries=1,
    )


def to_ops(event: Event) -> list[str]:
    return ["ops"]


def assert_refused_writing_nothing(
    store: Store, url: str, commit: CycleCommit, fence: Fence
) -> None:
    before = (snapshot(store), shard_rows(url))
    with pytest.raises(Fenced):
        store.commit(commit, to_ops, fence)
    assert (snapshot(store), shard_rows(url)) == before


# -- a fair split -----------------------------------------------------------------------------


def test_two_instances_split_the_shards_eight_and_eight(url: str, new_store: Opener) -> None:
    group = nodes(new_store, "a", "b", lists=("zen", "dbl"))
    settle(group)
    for name in ("zen", "dbl"):
        assert [len(n.shards(name)) for n in group] == [8, 8]
        assert_split(group, url, name)
    assert all(n.view is not None and n.view.live == 2 for n in group)


def test_three_instances_split_the_shards_six_six_four_and_instances_say_so(
    url: str, new_store: Opener
) -> None:
    group = nodes(new_store, "a", "b", "c")
    settle(group)
    assert sorted(len(n.shards()) for n in group) == [4, 6, 6]
    assert_split(group, url)
    seen = group[0].store.instances()
    assert [(i.id, i.shards) for i in seen] == [(n.me.id, len(n.shards())) for n in group]
    assert [i.id for i in seen if i.leader] == ["a"]  # the first to tick, never expired
    (a,) = (i for i in seen if i.id == "a")
    assert (a.host, a.pid, a.version, a.started) == ("host-a", 1001, "test", T0 + 1)
    assert group[0].view is not None and abs(a.heartbeat - group[0].view.now) < 5


def test_a_newcomer_gets_its_share_from_the_holders_next_tick(url: str, new_store: Opener) -> None:
    a, b = nodes(new_store, "a", "b")
    assert a.tick().shards_of("zen") == ALL
    joined = b.tick()
    assert (joined.shards_of("zen"), joined.live) == (frozenset(), 2)  # nothing free yet
    assert len(a.tick().shards_of("zen")) == 8  # released down to its share at once
    taken = b.tick()
    assert taken.shards_of("zen") == ALL - a.shards()
    assert {x.shard for x in taken.taken} == ALL - a.shards()
    assert {x.epoch for x in taken.taken} == {2}  # claimed once by a, once by b
    assert_split([a, b], url)


# -- a silent instance and fencing --------------------------------------------------------------


def test_a_silent_instances_shards_go_to_the_survivor_under_a_new_epoch_with_their_last_cycle(
    url: str, new_store: Opener
) -> None:
    a, b = nodes(new_store, "a", "b")
    settle([a, b], SHORT, rounds=2)
    assert_split([a, b], url)
    assert b.view is not None
    old = b.view.fence("zen")
    b.store.commit(a_cycle("198.51.100.1"), to_ops, old)  # b's last cycle, then silence
    done = {s: row[2] for s, row in shard_rows(url).items()}
    assert all(done[x.shard] is not None for x in old.leases)

    assert len(a.tick(SHORT).shards_of("zen")) == 8  # b is still live: nothing to take
    time.sleep(SHORT + 0.2)
    view = a.tick(SHORT)
    assert (view.shards_of("zen"), view.live) == (ALL, 1)
    assert {x.shard: x.epoch for x in view.taken} == {x.shard: x.epoch + 1 for x in old.leases}
    assert {x.shard: x.last_done for x in view.taken} == {
        x.shard: done[x.shard] for x in old.leases
    }

    # b wakes up and commits what it looked up meanwhile: refused, nothing written
    assert_refused_writing_nothing(b.store, url, a_cycle("198.51.100.2"), old)
    # a's commit under the current epochs lands and marks the shards' last cycle
    before = shard_rows(url)
    a.store.commit(a_cycle("198.51.100.3"), to_ops, view.fence("zen"))
    after = shard_rows(url)
    assert all(after[s][2] > (before[s][2] or 0) for s in ALL)
    assert [p.target for p in a.store.pairs()] == ["198.51.100.1", "198.51.100.3"]


def test_a_fence_of_a_lease_that_expired_unclaimed_is_refused_until_it_is_renewed(
    url: str, new_store: Opener
) -> None:
    (a,) = nodes(new_store, "a")
    fence = a.tick(SHORT).fence("zen")
    time.sleep(SHORT + 0.2)
    # nobody took the shards, but a commit past its lease is a late write all the same
    assert_refused_writing_nothing(a.store, url, a_cycle(), fence)
    # renewed under the same epochs (nobody wrote under another), the same fence holds again
    assert a.tick(SHORT).fence("zen") == fence
    a.store.commit(a_cycle(), to_ops, fence)
    assert [p.target for p in a.store.pairs()] == ["192.0.2.1"]


def test_a_fence_of_an_earlier_holding_is_refused_even_if_its_owner_holds_the_shard_again(
    url: str, new_store: Opener
) -> None:
    (a,) = nodes(new_store, "a")
    old = a.tick().fence("zen")
    a.store.leave("a")
    new = a.tick().fence("zen")
    assert {x.epoch for x in old.leases} == {1} and {x.epoch for x in new.leases} == {2}
    assert_refused_writing_nothing(a.store, url, a_cycle(), old)
    # one shard lost is enough: the fence of the shards a cycle covered must all hold
    mixed = Fence("a", (*new.leases[1:], old.leases[0]))
    assert_refused_writing_nothing(a.store, url, a_cycle(), mixed)
    a.store.commit(a_cycle(), to_ops, new)


def test_a_fenced_commit_marks_the_last_cycle_of_its_shards_only(
    url: str, new_store: Opener
) -> None:
    (a,) = nodes(new_store, "a")
    view = a.tick()
    a.store.commit(a_cycle(), to_ops, view.fence("zen", [3, 5]))
    done = {s: row[2] for s, row in shard_rows(url).items()}
    assert {s for s, d in done.items() if d is not None} == {3, 5}
    later = a.tick()
    assert view.now <= done[3] <= later.now
    assert {x.shard: x.last_done for x in later.leases if x.last_done} == {3: done[3], 5: done[5]}


def test_a_fenced_commit_refused_by_the_chain_key_leaves_the_last_cycle_as_it_was(
    url: str, new_store: Opener
) -> None:
    (a,) = nodes(new_store, "a")
    fence = a.tick().fence("zen")
    a.store.commit(a_cycle(after=0), to_ops, fence)
    assert_refused_writing_nothing(a.store, url, a_cycle(after=0), fence)


# -- the leader ---------------------------------------------------------------------------------


def leaders(group: Sequence[Node]) -> list[str]:
    return [n.me.id for n in group if n.view is not None and n.view.leader]


def test_one_leader_at_a_time_changing_only_when_its_lease_runs_out(
    url: str, new_store: Opener
) -> None:
    group = nodes(new_store, "a", "b", "c")
    settle(group, SHORT, rounds=2)
    assert leaders(group) == ["a"]
    down = Event(EventKind.LIST_UNHEALTHY, "zen", T0, detail="dead")
    for node in group[1:]:  # a non-leader's probe result is not written
        with pytest.raises(Fenced, match="no longer leads"):
            node.store.record_health(
                "zen", Health.DEAD, "dead", T0, down, to_ops, Fence(node.me.id, leader=True)
            )
    assert group[0].store.list_statuses() == [] and group[0].store.events() == []

    a, rest = group[0], group[1:]  # the leader falls silent
    settle(rest, SHORT, rounds=1)
    assert leaders(rest) == []  # its lease still runs
    time.sleep(SHORT + 0.2)
    settle(rest, SHORT, rounds=2)
    assert leaders(rest) == ["b"]
    assert [i.id for i in a.store.instances() if i.leader] == ["b"]
    with pytest.raises(Fenced):  # the old leader, awake again, writes nothing
        a.store.record_health("zen", Health.DEAD, "dead", T0, down, to_ops, Fence("a", leader=True))
    written = rest[0].store.record_health(
        "zen", Health.DEAD, "dead", T0, down, to_ops, Fence("b", leader=True)
    )
    assert written is not None and a.store.outbox_counts() == {"ops": 1}
    assert a.tick(SHORT).leader is False  # and does not take it back


def test_leave_frees_the_shards_and_leadership_at_once_and_removes_the_instance(
    url: str, new_store: Opener
) -> None:
    a, b = nodes(new_store, "a", "b")
    settle([a, b])
    assert leaders([a, b]) == ["a"]
    lost = a.shards()
    a.store.leave("a")
    assert [(i.id, i.shards, i.leader) for i in b.store.instances()] == [("b", 8, False)]
    assert all(row[0] != "a" for row in shard_rows(url).values())
    view = b.tick()
    assert (view.shards_of("zen"), view.leader, view.live) == (ALL, True, 1)
    assert {x.shard for x in view.taken} == lost


# -- at the same instant ------------------------------------------------------------------------


def test_instances_claiming_at_the_same_moment_never_hold_one_shard_twice(
    url: str, new_store: Opener
) -> None:
    group = nodes(new_store, "a", "b", "c", "d", lists=("zen", "dbl"))
    rounds = 6
    views: list[list[View | None]] = [[None] * len(group) for _ in range(rounds)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(group), timeout=30)

    def run(i: int) -> None:
        node = group[i]
        try:
            for r in range(rounds):
                barrier.wait()
                views[r][i] = node.tick()
                if r == 2:  # and once more all from nothing, after a clean stop of everyone
                    barrier.wait()
                    node.store.leave(node.me.id)
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(group))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for r, round_views in enumerate(views):
        for name in ("zen", "dbl"):
            held = [v.shards_of(name) for v in round_views if v is not None]
            assert sum(map(len, held)) == len(frozenset().union(*held)), (r, name, held)
    settle(group, rounds=2)
    assert sorted(len(n.shards()) for n in group) == [4, 4, 4, 4]
    assert_split(group, url)
    assert len(leaders(group)) == 1


# -- a process paused mid-commit -----------------------------------------------------------------


def test_a_transaction_left_idle_is_ended_by_the_server_freeing_its_shard_rows(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a paused commit must not keep its shards locked past their lease (claims skip locked
    # rows, so no survivor could take them)
    default_lease_ms = StoreConfig().lease * 1000
    assert default_lease_ms > pg.IDLE_IN_TRANSACTION_MS
    monkeypatch.setattr(pg, "IDLE_IN_TRANSACTION_MS", 200)  # read by each new connection
    store = open_store(url)
    try:
        me = Instance("a", "host-a", 1, "test", T0, 0.0)
        fence = store.tick(me, ["zen"], LONG).fence("zen")
        freed: list[bool] = []

        def paused(event: Event) -> list[str]:  # runs inside the commit's transaction
            time.sleep(0.8)
            with psycopg.connect(url, autocommit=True) as other:
                rows = other.execute("SELECT shard FROM shards FOR UPDATE NOWAIT").fetchall()
                freed.append(len(rows) == SHARDS)
            return ["ops"]

        with pytest.raises(StoreError) as exc:
            store.commit(a_cycle(), paused, fence)
        assert not isinstance(exc.value, Fenced)
        assert freed == [True]
        assert store.pairs() == [] and store.events() == []
        assert all(row[2] is None for row in shard_rows(url).values())
        store.commit(a_cycle(), to_ops, fence)  # the pool replaced the ended connection
        assert len(store.events()) == 1
    finally:
        store.close()


def test_an_instance_gives_up_the_shards_of_a_list_it_no_longer_watches(
    url: str, new_store: Opener
) -> None:
    (a,) = nodes(new_store, "a", lists=("zen", "dbl"))
    a.tick()
    a.lists = ["zen"]  # a reload dropped the list
    assert {x.list for x in a.tick().leases} == {"zen"}
    assert {row[0] for row in shard_rows(url, "dbl").values()} == {None}
    assert [(i.id, i.shards) for i in a.store.instances()] == [("a", SHARDS)]


def test_a_tick_does_not_wait_for_another_instances_commit_in_progress(
    url: str, new_store: Opener
) -> None:
    # a commit marks its shards' last cycle just before it ends; an instance paused right
    # there (SIGSTOP) must not hold up the others' heartbeats, hence their leases
    a, b = nodes(new_store, "a", "b")
    settle([a, b])
    with psycopg.connect(url) as paused:
        paused.execute(SHARDS_DONE, (time.time(), None, "zen", sorted(a.shards())))
        ticked = threading.Thread(target=b.tick, daemon=True)
        ticked.start()
        ticked.join(timeout=3)
        waited = ticked.is_alive()
        paused.rollback()
    ticked.join(timeout=10)
    assert not waited, "b's tick waited for a's open commit"
    assert b.shards() == ALL - a.shards()


def test_a_fence_that_holds_no_shard_of_the_committed_list_is_refused(
    new_store: Opener, url: str
) -> None:
    [a] = nodes(new_store, "a", lists=("zen", "other"))
    view = a.tick()
    # the fence of another list's shards, or an empty one, vouches for nothing of "zen"
    assert_refused_writing_nothing(a.store, url, a_cycle(), view.fence("other"))
    assert_refused_writing_nothing(a.store, url, a_cycle(), Fence(a.me.id))
    a.store.commit(a_cycle(), to_ops, view.fence("zen"))  # its own shards of it: written
    assert [p.target for p in a.store.pairs("zen")] == ["192.0.2.1"]


def test_a_tick_does_not_wait_for_the_leaders_health_write_in_progress(
    url: str, new_store: Opener
) -> None:
    # record_health locks the leader's lease row for its transaction; a leader paused there
    # (SIGSTOP) must not hold up every other instance's heartbeat until the server ends it
    a, b = nodes(new_store, "a", "b")
    settle([a, b])
    leader = a if a.view is not None and a.view.leader else b
    other = b if leader is a else a
    with psycopg.connect(url) as paused:
        paused.execute(FENCE_LEADER, (leader.me.id, time.time() - 3600))
        ticked = threading.Thread(target=other.tick, daemon=True)
        ticked.start()
        ticked.join(timeout=3)
        waited = ticked.is_alive()
        paused.rollback()
    ticked.join(timeout=10)
    assert not waited, "a tick waited for the leader's open health write"
    assert other.view is not None and not other.view.leader


def test_a_list_only_some_instances_watch_is_shared_among_those_alone(
    new_store: Opener, url: str
) -> None:
    # a reload that adds a list reaches the instances one by one (or their configs differ):
    # the list's shards must not wait for instances that do not watch it
    a = Node("a", new_store(), ("zen", "other"))
    b = Node("b", new_store(), ("zen",))
    settle([a, b])
    assert a.shards("other") == ALL  # b does not watch it: a holds all of it
    assert_split([a, b], url, "zen")
    assert len(a.shards("zen")) == len(b.shards("zen")) == SHARDS // 2
    b.lists = ["zen", "other"]  # b reloads with the list too: now they share it
    settle([a, b])
    assert_split([a, b], url, "other")
    assert len(b.shards("other")) == SHARDS // 2


def test_a_list_s_last_success_is_its_oldest_shard_s_so_a_stuck_half_shows(
    new_store: Opener, url: str
) -> None:
    # the list's row is written by whichever instance committed last, for its shards only:
    # its last success must be the oldest of its shards', or one instance's cycles failing
    # for good would hide behind the other's (RblwatchCycleStale would never fire)
    a, b = nodes(new_store, "a", "b")
    settle([a, b])

    def done(node: Node, at: float) -> None:
        status = ListStatus("zen", last_cycle_start=at - 5, last_cycle_end=at, targets=8)
        status = replace(status, last_cycle_success=at)
        assert node.view is not None
        node.store.commit(CycleCommit("zen", status=status), to_ops, node.view.fence("zen"))

    def success() -> float | None:
        [row] = a.store.list_statuses()
        return row.last_cycle_success

    done(a, T0 + 100)
    assert success() is None  # b's half has never completed a cycle
    done(b, T0 + 50)
    assert success() == T0 + 50
    done(a, T0 + 200)  # only a goes on: the row says T0 + 200, the list is as old as b's half
    assert a.store.list_statuses()[0].last_cycle_end == T0 + 200
    assert success() == T0 + 50
    done(b, T0 + 210)
    assert success() == T0 + 200
