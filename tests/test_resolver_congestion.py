"""Congestion control and adaptive timeouts (issue 14), against real peers on loopback.

rbldnsd for the load (its 128 KiB receive buffer is what a burst overflows), faultdns for
loss, delay and the arrival times of datagrams. Assertions are on counts and generous bounds:
the machine may be busy. The arithmetic of `Path` itself is pinned without a network.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import pathlib
import time

import pytest

from rblwatch.lookup import RCODE_NOERROR, prefix_wire
from rblwatch.metrics import build_registry
from rblwatch.model import TargetKind
from rblwatch.resolver import Job, Resolver, Status, Template
from rblwatch.resolver.path import (
    BURST,
    INITIAL_WINDOW,
    LOSS_EVENT,
    LOSS_SHARE,
    RTO_FLOOR,
    Path,
)
from rblwatch.resolvercache import ResolverCache
from tests.faultdns import Action, Fault, FaultDns, Loss
from tests.rbldnsd import Rbldnsd
from tests.test_resolver import jobs_for, qname
from tests.webstate import make_runtime

ZONES = ("a.test", "b.test")


def _listed(net: ipaddress.IPv4Network) -> list[str]:
    """1 address in 32 of `net` listed."""
    return [":127.0.0.2:listed", *(str(ip) for i, ip in enumerate(net) if i % 32 == 5)]


class Tally:
    """What a run reported: errors by status, listed (key, template) pairs, and when."""

    def __init__(self) -> None:
        self.errors: dict[int, int] = {}
        self.listed: set[tuple[object, int]] = set()
        self.results = 0
        self.done_at: dict[object, float] = {}

    def __call__(
        self, key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        self.results += 1
        self.done_at[key] = time.monotonic()
        if status != Status.OK:
            self.errors[status] = self.errors.get(status, 0) + 1
        elif rcode == RCODE_NOERROR and rdatas:
            self.listed.add((key, i))


def _scan_jobs(net: ipaddress.IPv4Network, server: tuple[str, int]) -> list[Job]:
    tpls = tuple(Template.build(z, [server]) for z in ZONES)
    return [(str(ip), tpls, prefix_wire(str(ip), TargetKind.IPV4)) for ip in net]


def test_a_slash_20_at_4096_in_flight_against_rbldnsd_ends_without_errors(
    rbldnsd: Rbldnsd,
) -> None:
    # 8,192 lookups with room for 4,096 at once: sent in one burst they overflow rbldnsd's
    # receive buffer, and a lookup that lost three datagrams ends as a timeout
    net = ipaddress.IPv4Network("10.20.0.0/20")
    for z in ZONES:
        rbldnsd.add_zone(z, "ip4set", _listed(net))
    rbldnsd.start()
    res = Resolver(timeout=2.0, attempts=3, max_in_flight=4096)
    tally = Tally()
    asyncio.run(res.run(_scan_jobs(net, rbldnsd.address), tally, count_nxdomain=True))
    assert tally.errors == {}
    expected = {(str(ip), t) for i, ip in enumerate(net) if i % 32 == 5 for t in range(2)}
    assert tally.listed == expected
    assert res.in_flight == 0
    (path,) = res.paths.values()
    assert path.in_flight == 0


def test_with_one_percent_loss_a_lost_datagram_costs_one_rto_not_the_timeout() -> None:
    # 1,500 lookups, 1 % of the queries lost: with 3 attempts a lookup fails only if all
    # three are lost (1e-6 each), and a loss delays its lookup by about one RTO (the floor,
    # here), far less than the 5 s timeout
    with FaultDns() as srv:
        srv.loss = Loss(p=0.01, seed=7)
        addresses = [f"10.1.{i // 250}.{i % 250}" for i in range(1500)]
        res = Resolver(timeout=5.0, attempts=3, max_in_flight=256)
        tally = Tally()
        started = time.monotonic()
        asyncio.run(res.run(jobs_for(addresses, [srv.address]), tally))
        took = time.monotonic() - started
        lost = {q.name for q in srv.lost}
    assert tally.results == len(addresses)
    assert tally.errors == {}
    assert len(lost) >= 5  # the seed loses some: the test means something
    # every lookup that lost a datagram still ended well inside one timeout of the start
    by_name = {qname(a): a for a in addresses}
    assert max(tally.done_at[by_name[n]] for n in lost) - started < 2.5
    assert took < 2.5
    (path,) = res.paths.values()
    # each loss timed out and was sent again (a spurious timeout, on a busy machine, too)
    assert path.retransmissions == res.stats.timeouts >= len(srv.lost)


def test_the_rto_converges_to_the_measured_rtt() -> None:
    # every answer held back 80 ms: SRTT near 80 ms and the RTO a little above it, well below
    # the 2 s the first query waited
    with FaultDns() as srv:
        srv.default = Action(Fault.DELAY, delay_ms=80)
        addresses = [f"10.2.0.{i}" for i in range(200)]
        res = Resolver(timeout=2.0, attempts=2, max_in_flight=32)
        asyncio.run(res.run(jobs_for(addresses, [srv.address]), Tally()))
    (path,) = res.paths.values()
    assert path.srtt is not None
    assert 0.08 <= path.srtt < 0.3
    assert path.srtt < path.rto < 0.6
    assert res.stats.timeouts == 0


def test_karns_rule_a_retransmitted_lookup_gives_no_rtt_sample() -> None:
    # the first attempt is lost, the retry answered 100 ms later: that reply says nothing
    # about the first attempt, so there is still no SRTT
    with FaultDns() as srv:
        name = qname("10.3.0.1")
        srv.sequence(name, [Action(Fault.DROP), Action(Fault.DELAY, delay_ms=100)])
        res = Resolver(timeout=0.3, attempts=2, max_in_flight=4)
        tally = Tally()
        asyncio.run(res.run(jobs_for(["10.3.0.1"], [srv.address]), tally))
        assert srv.count(name) == 2
    assert tally.errors == {}
    (path,) = res.paths.values()
    assert path.srtt is None
    assert path.retransmissions == 1


def test_an_answer_slower_than_the_rto_but_within_the_timeout_is_still_taken() -> None:
    # the others answer at once (an RTO near the floor), one name only after 300 ms, as a
    # resolver recursing for it would: it is sent again at the RTO, and the first answer to
    # come, to whichever attempt, settles it; a lookup times out only after resolver.timeout
    with FaultDns() as srv:
        slow = qname("10.8.0.99")
        srv.rule(slow, Fault.DELAY, delay_ms=300, a=["127.0.0.4"])
        addresses = [*(f"10.8.0.{i}" for i in range(60)), "10.8.0.99"]
        res = Resolver(timeout=1.5, attempts=3, max_in_flight=8)
        got: dict[object, tuple[int, list[bytes]]] = {}

        def on_result(
            key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
        ) -> None:
            got[key] = (status, list(rdatas))

        asyncio.run(res.run(jobs_for(addresses, [srv.address]), on_result))
        assert srv.count(slow) >= 2  # it was sent again before its answer came
    assert got["10.8.0.99"] == (Status.OK, [bytes([127, 0, 0, 4])])
    assert all(status == Status.OK for status, _ in got.values())


def test_the_window_starts_small_halves_on_a_burst_of_losses_and_grows_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the window before and after each timeout, and how many results had come by then
    losses: list[tuple[float, float, int]] = []
    real_lost = Path.lost

    def lost(self: Path, sent_at: float, now: float, *, retry: bool = False) -> None:
        before = self.cwnd
        real_lost(self, sent_at, now, retry=retry)
        losses.append((before, self.cwnd, len(windows)))

    windows: list[float] = []  # the window at each result
    monkeypatch.setattr(Path, "lost", lost)
    with FaultDns() as srv:
        srv.stamp_arrivals()
        srv.default = Action(Fault.DELAY, delay_ms=20)
        addresses = [f"10.4.{i // 250}.{i % 250}" for i in range(3000)]
        for a in addresses[400:460]:  # a burst: 60 lookups in a row lost, both attempts
            srv.rule(qname(a), Fault.DROP)
        res = Resolver(timeout=1.0, attempts=2, max_in_flight=1024)
        asyncio.run(
            res.run(
                jobs_for(addresses, [srv.address]),
                lambda *_: windows.append(next(iter(res.paths.values())).cwnd),
            )
        )
        arrivals = sorted(srv.arrivals or [])
    # no answer can come back within 15 ms (they are held 20): what arrived by then is the
    # initial window
    assert sum(1 for t in arrivals if t < arrivals[0] + 0.015) <= INITIAL_WINDOW
    assert len(losses) >= 60, "the dropped lookups never timed out"
    decreases = [(before, after) for before, after, _at in losses if after < before]
    assert decreases, "a burst of losses never shrank the window"
    before, after = decreases[0]
    assert before > 2 * INITIAL_WINDOW  # it had grown
    assert after == max(before / 2, INITIAL_WINDOW)
    # growing again is pinned below without a network: here answers may queue on a busy
    # machine (faultdns is one Python thread), and a window holds while they do


def test_random_loss_of_two_percent_does_not_keep_the_window_small() -> None:
    # 2 % of the queries lost at random, 50 ms away: chance, not congestion. A window that
    # halved on each loss would hover near its floor (at 64 a round trip loses one or two);
    # this one reaches the ceiling
    seen: list[float] = []
    with FaultDns() as srv:
        srv.default = Action(Fault.DELAY, delay_ms=50)
        srv.loss = Loss(p=0.02, seed=11)
        addresses = [f"10.6.{i // 250}.{i % 250}" for i in range(3000)]
        res = Resolver(timeout=2.0, attempts=3, max_in_flight=128)
        tally = Tally()

        def on_result(*args: object) -> None:
            tally(*args)  # type: ignore[arg-type]
            seen.append(next(iter(res.paths.values())).cwnd)

        asyncio.run(res.run(jobs_for(addresses, [srv.address]), on_result))
        lost = len(srv.lost)
    assert tally.errors == {} and tally.results == len(addresses)
    assert lost >= 30  # the seed loses some: the test means something
    assert max(seen) >= 120


def test_sends_are_paced_never_a_whole_window_at_once() -> None:
    # replies held back 30 ms and room for 1,024: without pacing each round trip's answers
    # release a burst of up to the whole window; the kernel stamps every query's arrival,
    # so the count in any 1 ms is the sender's doing, whatever this machine's load
    with FaultDns() as srv:
        srv.stamp_arrivals()
        srv.default = Action(Fault.DELAY, delay_ms=30)
        addresses = [f"10.5.{i // 250}.{i % 250}" for i in range(2500)]
        res = Resolver(timeout=2.0, attempts=2, max_in_flight=1024)
        tally = Tally()
        asyncio.run(res.run(jobs_for(addresses, [srv.address]), tally))
        arrivals = sorted(srv.arrivals or [])
    assert tally.errors == {}
    assert len(arrivals) >= len(addresses)
    most, j = 0, 0
    for i, t in enumerate(arrivals):
        while arrivals[j] < t - 0.001:
            j += 1
        most = max(most, i - j + 1)
    # a full pacer (BURST) plus what it refills in 1 ms at up to 2 windows per 30 ms
    assert most <= BURST + 2 * 1024 // 30 + 8


def test_runs_at_the_same_time_share_a_servers_window() -> None:
    with FaultDns() as srv:
        srv.default = Action(Fault.DELAY, delay_ms=20)
        res = Resolver(timeout=1.0, attempts=2, max_in_flight=64)
        seen: list[int] = []

        async def both() -> None:
            def on_result(*_: object) -> None:
                if len(res.runs) == 2:
                    seen.extend(run.window.in_flight for run in res.runs)

            a = res.run(jobs_for([f"10.6.0.{i}" for i in range(200)], [srv.address]), on_result)
            b = res.run(jobs_for([f"10.6.1.{i}" for i in range(200)], [srv.address]), on_result)
            await asyncio.gather(a, b)

        asyncio.run(both())
    (path,) = res.paths.values()
    assert path.users == 0 and path.in_flight == 0
    # while both ran, neither held more than its half of the window (plus the one ending)
    assert seen and max(seen) <= 64 // 2 + 1


# -- the arithmetic of one path -------------------------------------------------------------------


def _path(ceiling: int = 1024) -> Path:
    return Path(timeout=2.0, ceiling=ceiling, granularity=0.0125)


def test_rfc_6298_first_sample_and_smoothing() -> None:
    p = _path()
    assert p.rto == 2.0  # no sample: the configured timeout
    p.sample(0.1, 1.0)
    assert (p.srtt, p.rttvar) == (0.1, 0.05)
    assert p.rto == pytest.approx(0.1 + 4 * 0.05)
    p.sample(0.1, 1.0)
    assert p.srtt == pytest.approx(0.1)
    assert p.rttvar == pytest.approx(0.0375)
    for _ in range(100):
        p.sample(0.001, 1.0)
    assert p.rto == RTO_FLOOR  # loopback: the floor, never less
    q = _path()
    q.sample(5.0, 1.0)
    assert q.rto == 2.0  # the configured timeout is the ceiling


def _lose(p: Path, n: int, sent_at: float, now: float) -> None:
    """`n` datagrams sent at `sent_at` time out within one round trip from `now`."""
    for i in range(n):
        p.lost(sent_at=sent_at, now=now + i * 1e-4)


def test_a_round_trip_of_losses_backs_the_rto_off_until_the_next_sample() -> None:
    p = _path()
    p.sample(0.1, 1.0)
    rto = p.rto
    p.sent(20)
    _lose(p, LOSS_EVENT, 1.0, 2.0)
    assert p.rto == pytest.approx(2 * rto)
    assert p.retry_timeout(1) == pytest.approx(4 * rto)
    assert p.retry_timeout(5) == 2.0
    p.sample(0.1, 1.0)
    assert p.rto < 2 * rto


def test_slow_start_doubles_per_window_then_grows_by_one_per_window() -> None:
    p = _path()
    p.sent(16)
    p.answered(16)
    assert p.cwnd == 32
    p.ssthresh = 32
    p.sent(32)
    p.answered(32)
    assert p.cwnd == pytest.approx(33, abs=0.1)


def test_the_window_halves_on_a_share_of_a_round_trip_lost_once_per_window() -> None:
    p = _path()
    p.cwnd = 400
    p.sent(400)
    share = round(LOSS_SHARE * 400)
    _lose(p, share, 1.0, 2.0)  # LOSS_SHARE of the window in one round trip: chance
    assert p.cwnd == 400
    p.lost(sent_at=1.0, now=2.005)  # one more in the same round trip: more than the share
    assert p.cwnd == 200
    _lose(p, 3 * share, 1.5, 2.006)  # sent before the decrease: the same loss event
    assert p.cwnd == 200
    _lose(p, share // 2 + 1, 2.05, 3.0)  # more than the share of 200
    assert p.cwnd == 100
    for t in range(10):
        _lose(p, max(LOSS_EVENT, int(LOSS_SHARE * p.cwnd) + 1), 3.0 + t + 0.5, 4.0 + t)
    assert p.cwnd == INITIAL_WINDOW  # and never below


def test_a_few_losses_in_a_small_window_and_losses_spread_over_round_trips_do_not_halve_it() -> (
    None
):
    p = _path()
    p.sample(0.05, 1.0)
    p.cwnd = 32
    p.sent(32)
    _lose(p, LOSS_EVENT - 1, 1.0, 2.0)  # 7 of 32 in a round trip: too few to be a burst
    assert p.cwnd == 32
    q = _path()
    q.sample(0.05, 1.0)
    q.cwnd = q.ssthresh = 256
    now = 2.0
    for _ in range(100):  # 100 round trips each losing 2 % (5 of 256) and answering the rest
        q.sent(256)
        q.answered(251)
        _lose(q, 5, now - 0.04, now)
        now += 0.06
    assert q.cwnd >= 256  # grew, never halved


def test_a_round_trip_losing_retransmissions_halves_the_window_however_few_its_losses() -> None:
    # random loss seldom takes a lookup's second attempt too (2 % of 2 %); a receive buffer
    # that overflows takes them with the rest: at 50 ms and 4,096 in flight, 2 % of the
    # datagrams lost, too few for the share, and lookups failing all three attempts
    p = _path()
    p.sample(0.05, 1.0)
    p.cwnd = 1000
    p.sent(1000)
    _lose(p, 2, 1.0, 2.0)  # first attempts
    p.lost(sent_at=1.0, now=2.001, retry=True)
    p.lost(sent_at=1.0, now=2.002, retry=True)
    assert p.cwnd == 1000  # two retransmissions lost: chance still
    p.lost(sent_at=1.0, now=2.003, retry=True)
    assert p.cwnd == 500
    p.lost(sent_at=3.0, now=4.0, retry=True)  # a later round trip starts its own count
    p.lost(sent_at=3.0, now=5.0, retry=True)
    p.lost(sent_at=3.0, now=6.0, retry=True)
    assert p.cwnd == 500


def test_after_a_loss_answers_grow_the_window_again() -> None:
    p = _path()
    p.sample(0.05, 1.0)
    p.cwnd = 400
    p.sent(400)
    _lose(p, round(LOSS_SHARE * 400) + 1, 1.0, 2.0)
    assert p.cwnd == 200
    for _ in range(10):  # ten round trips of a full window, answered
        p.answered(199)
        p.sent(199)
    assert 205 < p.cwnd < 215  # one more per round trip: additive, past ssthresh


def test_answers_that_queue_hold_the_window() -> None:
    p = _path()
    p.sample(0.02, 1.0)  # the least RTT
    p.sample(0.2, 1.1)
    p.sample(0.2, 1.2)  # SRTT now well above twice it
    p.sent(16)
    p.answered(16)
    assert p.cwnd == INITIAL_WINDOW
    assert p.ssthresh == INITIAL_WINDOW  # and slow start is over


def test_an_idle_window_does_not_grow() -> None:
    p = _path()
    p.sent(1)
    p.answered(1)
    assert p.cwnd == INITIAL_WINDOW  # one in flight of 16 says nothing about 32


def test_the_pacer_lets_a_burst_go_then_spreads_the_rest() -> None:
    p = _path()
    p.cwnd = 1000
    p.sample(0.1, 1.0)
    assert p.room(10.0) == BURST
    p.sent(BURST)
    assert p.room(10.0) == 0
    assert 0 < p.wait() < 0.001
    # 1.25 (past slow start: ssthresh below cwnd) x 1000 per 100 ms = 12.5 per ms
    p.ssthresh = 500
    assert p.room(10.002) == pytest.approx(25, abs=1)


def test_a_max_in_flight_above_4096_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rblwatch.resolver")
    Resolver(max_in_flight=4096)
    assert not caplog.records
    Resolver(max_in_flight=8192)
    assert len(caplog.records) == 1
    assert "max_in_flight 8192" in caplog.records[0].getMessage()


# -- metrics --------------------------------------------------------------------------------------


def test_each_nameservers_rtt_rto_window_and_retransmissions_are_exported(
    tmp_path: pathlib.Path,
) -> None:
    runtime = make_runtime(tmp_path)
    cache = ResolverCache()
    runtime.stats.nameservers = cache.gauges  # as the engine wires it
    res = cache.get(runtime.config.resolver)
    with FaultDns() as srv:
        name = qname("10.7.0.1")
        srv.sequence(name, [Action(Fault.DROP), Action(Fault.NXDOMAIN)])
        asyncio.run(res.run(jobs_for([f"10.7.0.{i}" for i in range(1, 9)], [srv.address]), Tally()))
        label = f"127.0.0.1:{srv.port}"
    registry = build_registry(runtime)
    (path,) = res.paths.values()
    assert registry.get_sample_value("rblwatch_resolver_rtt_seconds", {"nameserver": label}) == (
        path.srtt
    )
    assert registry.get_sample_value("rblwatch_resolver_rto_seconds", {"nameserver": label}) == (
        path.rto
    )
    window = registry.get_sample_value("rblwatch_resolver_window", {"nameserver": label})
    assert window == min(int(path.cwnd), path.ceiling) >= INITIAL_WINDOW
    retransmitted = {"nameserver": label}
    assert registry.get_sample_value("rblwatch_resolver_retransmissions_total", retransmitted) == 1
    # a new resolver config (a reload) starts a new resolver: the counter goes on, the gauges
    # of a nameserver it no longer uses go
    cache.get(dataclasses.replace(runtime.config.resolver, attempts=2))
    registry = build_registry(runtime)
    assert registry.get_sample_value("rblwatch_resolver_retransmissions_total", retransmitted) == 1
    assert registry.get_sample_value("rblwatch_resolver_window", {"nameserver": label}) is None
