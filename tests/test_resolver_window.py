"""The resolver's window, IDs and bookkeeping against real peers (faultdns).

SPEC §8: at most max_in_flight queries outstanding, shared by concurrent runs; IDs random; every
job reported exactly once whatever the server does; the stats add up. Split from
tests/test_resolver.py, whose helpers these tests use.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from rblwatch.lookup import prefix_wire
from rblwatch.model import TargetKind
from rblwatch.resolver import Durations, Job, ResultCallback, Status, Template
from rblwatch.resolver.loop import Batch
from rblwatch.resolver.sockets import Sockets
from tests.faultdns import Action, Fault, FaultDns
from tests.test_resolver import ATTEMPTS, ZONE, Server, jobs_for, qname, resolver, run

# -- the window, the IDs and the bookkeeping ------------------------------------------------------


@pytest.mark.parametrize("window", [1, 3])
def test_no_more_than_max_in_flight_queries_are_outstanding(
    faultdns: FaultDns, window: int
) -> None:
    # Every reply is held back 40 ms, so by the time the k-th result is reported the server has
    # seen every query that was sent: k finished plus at most `window - 1` still in flight.
    faultdns.default = Action(Fault.DELAY, delay_ms=40)
    addresses = [f"192.0.2.{i}" for i in range(1, 10)]
    seen_at_result: list[int] = []
    got = run(
        resolver(timeout=1.0, max_in_flight=window),
        jobs_for(addresses, [faultdns.address]),
        lambda _key: seen_at_result.append(len(faultdns.queries)),
    )
    assert len(got) == len(addresses)
    outstanding = [seen - done for done, seen in enumerate(seen_at_result, start=1)]
    assert max(outstanding) == window - 1
    assert min(outstanding) >= 0


@pytest.mark.parametrize("window", [1, 2, 4])
def test_the_window_holds_when_a_job_has_more_templates_than_fit(
    faultdns: FaultDns, window: int
) -> None:
    # jobs of 3 templates in windows of 1, 2 and 4: a job is split across fills and the
    # window is never exceeded, while every (job, template) is asked and reported once
    faultdns.default = Action(Fault.DELAY, delay_ms=40)
    tpls = tuple(Template.build(z, [faultdns.address]) for z in ("a.test", "b.test", "c.test"))
    jobs: list[Job] = [
        (a, tpls, prefix_wire(a, TargetKind.IPV4)) for a in ("192.0.2.1", "192.0.2.2", "192.0.2.3")
    ]
    got: list[tuple[object, int]] = []
    seen_at_result: list[int] = []

    def on_result(
        key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        assert status == Status.OK
        got.append((key, i))
        seen_at_result.append(len(faultdns.queries))

    asyncio.run(resolver(timeout=1.0, max_in_flight=window).run(jobs, on_result))
    assert sorted(got, key=str) == sorted([(a, i) for a, _, _ in jobs for i in range(3)], key=str)
    outstanding = [seen - done for done, seen in enumerate(seen_at_result, start=1)]
    assert max(outstanding) == window - 1
    assert sorted(q.name for q in faultdns.queries) == sorted(
        qname(a, z) for a, _, _ in jobs for z in ("a.test", "b.test", "c.test")
    )


def test_concurrent_runs_share_max_in_flight_and_all_finish(faultdns: FaultDns) -> None:
    # the daemon runs several lists' cycles at once on one resolver: together they must stay
    # within max_in_flight, and a run that starts while another fills the window still runs
    faultdns.default = Action(Fault.DELAY, delay_ms=40)
    window = 4
    res = resolver(timeout=1.0, max_in_flight=window)
    seen_at_result: list[int] = []
    done: dict[str, int] = {"a": 0, "b": 0}

    def on_result(name: str) -> ResultCallback:
        def record(
            key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
        ) -> None:
            seen_at_result.append(len(faultdns.queries))
            done[name] += 1

        return record

    async def both() -> None:
        a = res.run(
            jobs_for([f"192.0.2.{i}" for i in range(12)], [faultdns.address]), on_result("a")
        )
        b = res.run(
            jobs_for([f"198.51.100.{i}" for i in range(12)], [faultdns.address]), on_result("b")
        )
        await asyncio.gather(a, b)

    asyncio.run(both())
    assert done == {"a": 12, "b": 12}
    outstanding = [seen - n for n, seen in enumerate(seen_at_result, start=1)]
    assert max(outstanding) <= window - 1
    assert res.in_flight == 0


def test_an_abandoned_run_gives_its_window_back_to_the_resolver(faultdns: FaultDns) -> None:
    """The daemon cancels a cycle that overruns its deadline; the resolver outlives it and
    must not count that run's unanswered queries as in flight for ever (later runs would
    find no room and hang)."""
    faultdns.rule("*.dead.test", Fault.DROP)
    res = resolver(timeout=5, attempts=1, max_in_flight=4)
    addresses = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"]
    got: list[object] = []

    async def scenario() -> None:
        slow = res.run(jobs_for(addresses, [faultdns.address], zone="dead.test"), _ignore)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(slow, 0.3)
        later = res.run(jobs_for(["127.0.0.2"], [faultdns.address]), lambda *a: got.append(a))
        await asyncio.wait_for(later, 2)

    asyncio.run(scenario())
    assert len(got) == 1
    assert res.in_flight == 0


def _ignore(*_: object) -> None:
    pass


def test_every_job_gets_exactly_one_result_whatever_the_server_does(faultdns: FaultDns) -> None:
    faults = [
        (Action(Fault.NXDOMAIN), Status.OK),
        (Action(a=["127.0.0.2"]), Status.OK),
        (Action(Fault.SERVFAIL), Status.OK),
        (Action(Fault.REFUSED), Status.OK),
        (Action(Fault.DROP), Status.TIMEOUT),
        (Action(Fault.GARBAGE), Status.TIMEOUT),
        (Action(Fault.WRONG_ID), Status.TIMEOUT),
        (Action(Fault.WRONG_QUESTION), Status.TIMEOUT),
        (Action(Fault.SPOOF_THEN_REAL, delay_ms=10), Status.OK),
        (Action(Fault.DELAY, delay_ms=30), Status.OK),
    ]
    addresses = [f"10.0.{i // 250}.{i % 250}" for i in range(500)]
    expected: dict[str, int] = {}
    for i, address in enumerate(addresses):
        action, status = faults[i % len(faults)]
        if i % 100 == 7:  # a few truncations: TCP connections are not free
            action, status = Action(Fault.TRUNCATE), Status.OK
        faultdns.sequence(qname(address), [action])
        expected[address] = status
    res = resolver(max_in_flight=200)
    got = run(res, jobs_for(addresses, [faultdns.address]))
    assert set(got) == set(addresses)  # `run` already fails on a second report
    assert {a: r.status for a, r in got.items()} == expected
    assert res.stats.tcp == 5


def test_query_ids_are_random(faultdns: FaultDns) -> None:
    addresses = [f"192.0.2.{i}" for i in range(100)]
    run(resolver(max_in_flight=100), jobs_for(addresses, [faultdns.address]))
    ids = [q.id for q in faultdns.queries]
    assert len(ids) == len(addresses)
    # 100 random 16-bit IDs: a repeat is possible (birthday odds ~7 %), a run of them is not
    assert len(set(ids)) >= 95
    steps = [b - a for a, b in itertools.pairwise(ids)]
    assert sum(1 for s in steps if abs(s) <= 1) < 5


def test_the_stats_add_up(faultdns: FaultDns) -> None:
    faultdns.rule(qname("127.0.0.3"), Fault.DROP)
    faultdns.rule(qname("127.0.0.4"), Fault.WRONG_ID)
    res = resolver()
    run(res, jobs_for(["127.0.0.2", "127.0.0.3", "127.0.0.4"], [faultdns.address]))
    assert res.stats.sent == 1 + ATTEMPTS + ATTEMPTS == len(faultdns.queries)
    assert res.stats.received == 1 + ATTEMPTS
    assert res.stats.dropped == ATTEMPTS
    assert res.stats.timeouts == 2 * ATTEMPTS


def test_a_server_no_socket_can_be_connected_to_ends_its_lookups_as_network_errors(
    faultdns: FaultDns,
) -> None:
    # connecting a UDP socket to the broadcast address fails at once (EACCES) and sends
    # nothing: a stand-in for an unroutable nameserver; the other server's lookups go on
    faultdns.rule(qname("127.0.0.2"), Fault.ANSWER, a=["127.0.0.2"])
    broken = jobs_for(["127.0.0.2"], [("255.255.255.255", 53)])
    fine = jobs_for(["127.0.0.2"], [faultdns.address])
    got: list[tuple[object, int]] = []

    def on_result(
        key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        got.append((id(key), status))

    res = resolver()
    asyncio.run(res.run([*broken, *fine], on_result))
    assert sorted(status for _, status in got) == [Status.OK, Status.NETWORK]
    assert res.in_flight == 0


def test_durations_count_every_answered_query_in_its_bucket(faultdns: FaultDns) -> None:
    # replies held back 60 ms: every answered query lands in (0.05, 0.5], none below
    faultdns.default = Action(Fault.DELAY, delay_ms=60)
    durations = Durations([0.01, 0.05, 0.5])
    addresses = [f"192.0.2.{i}" for i in range(1, 9)]

    def on_result(*_: object) -> None:
        pass

    jobs = jobs_for(addresses, [faultdns.address])
    asyncio.run(resolver(timeout=1.0, max_in_flight=4).run(jobs, on_result, durations=durations))
    assert durations.counts == [0, 0, len(addresses), 0]
    assert 0.06 * len(addresses) <= durations.total < 0.5 * len(addresses)


def test_a_socket_that_fails_to_open_once_is_tried_again_for_the_next_job(
    faultdns: FaultDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one failure to open (say, out of descriptors for a moment) fails that lookup only
    faultdns.default = Action(Fault.NXDOMAIN)
    real_open = Sockets.open
    failures = iter([True])

    def flaky_open(self: Sockets, server: Server) -> list[int]:
        if next(failures, False):
            raise OSError(24, "Too many open files")
        return real_open(self, server)

    monkeypatch.setattr(Sockets, "open", flaky_open)
    addresses = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    tpls = (Template.build(ZONE, [faultdns.address]),)  # one tuple, as a scan's jobs share
    jobs: list[Job] = [(a, tpls, prefix_wire(a, TargetKind.IPV4)) for a in addresses]
    got = run(resolver(max_in_flight=1), jobs)
    assert [got[a].status for a in addresses] == [Status.NETWORK, Status.OK, Status.OK]
    assert sorted(q.name for q in faultdns.queries) == [qname("192.0.2.2"), qname("192.0.2.3")]


def test_a_run_whose_callback_failed_sends_nothing_more() -> None:
    # the failure happens mid-job (a template without a server is reported at once); the
    # callbacks already queued in the loop (another socket's reader, the timer) still call
    # _fill, which must neither send more nor use one job's templates for another's
    with FaultDns() as server:

        async def go() -> list[tuple[object, bytes]]:
            one = (Template.build("one.test", [server.address]),)
            two = (Template.build("two.test", []), Template.build("three.test", [server.address]))
            jobs: list[Job] = [
                (n, tpls, prefix_wire(f"10.0.0.{n}", TargetKind.IPV4))
                for n, tpls in ((1, one), (2, two), (3, two))
            ]

            def on_result(key: object, *_: object) -> None:
                if key == 2:
                    raise RuntimeError("callback failed")

            res = resolver(max_in_flight=1)
            batch = Batch(res, iter(jobs), on_result, count_nxdomain=True)
            res.runs.append(batch)
            batch._fill()  # job 1 fills the window
            res.max_in_flight = 64
            with pytest.raises(RuntimeError):
                batch._fill()
            batch.fail(RuntimeError("callback failed"))
            batch._fill()  # a callback queued before the failure
            pending = [(e[0], e[2].tail) for e in batch.pending.values()]
            batch.close()
            return pending

        pending = asyncio.run(go())
    assert pending == [(1, Template.build("one.test", []).tail)]
