"""One run of the resolver: the send loop, the receive loop and the timers, and nothing else.

These two loops are the whole per-lookup cost of a scan, so they are written for it: the
send is written out in `_start_jobs` (retries use `_transmit`), attributes the loops use are
hoisted to locals, and a reply is read only as far as its header and question unless it is
more than a plain NXDOMAIN. The header and question checks are `wire.answer_offset` written
out (tests/test_resolver_replies.py holds the two together); what a reply's answers say is
read by `wire.read_answers`. Sockets, the window, the TCP fallback: their own modules.

Timeouts and retransmissions (`path.Path` has the rules): `retries`, mixed in.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rblwatch import wire
from rblwatch.resolver.path import Path
from rblwatch.resolver.retries import Retries
from rblwatch.resolver.sockets import Sockets
from rblwatch.resolver.tcp import Ending, TcpRetries
from rblwatch.resolver.vocab import (
    ATTEMPT,
    INDEX,
    KEY,
    NO_RDATA,
    QUESTION,
    SENT,
    TEMPLATE,
    WIRE_KEY,
    Durations,
    Entry,
    Job,
    ResultCallback,
    Route,
    Status,
    Template,
)
from rblwatch.resolver.window import Window

if TYPE_CHECKING:
    from rblwatch.resolver.client import Resolver

_OK = Status.OK
_HEADER_LEN = wire.HEADER_LEN
_HEADER_TAIL = wire.QUERY_HEADER_TAIL
_ID = struct.Struct(">H")
_JITTER = 0.25  # a retry's timeout is stretched by up to this share, at random
# the most datagrams one readiness callback reads: the rest wait in the socket for the next
# pass of the loop (its selector is level-triggered, so the socket is reported again), and
# whatever else is ready (a timer, a /metrics scrape's wake-up) runs in between. A window of
# thousands in flight, all answered while the loop was busy, is otherwise one long callback
DRAIN_MAX = 64


class Batch(Retries):
    """The lookups in flight of one run and their deadlines.

    What reaches a socket is matched on ID and question. The pending dict is keyed by
    (socket index << 16 | query ID) and, being insertion-ordered with one timeout for all
    first attempts, is also their deadline queue. Every entry point from the loop (a readable
    socket, the timer, a refill, a TCP retry ending, another run ending) goes through `_step`.

    Over the ~250-line mark on purpose: the send loop, the receive loop and the expiry share
    the pending table and the lookups' entries, which are touched for every lookup; split into
    objects, each of them would pay an attribute hop per lookup (the expiry and the retries
    are a mixin, `retries.Retries`, for that reason). Everything else (sockets, the windows
    and max_qps, TCP, parsing) already lives apart.
    """

    def __init__(
        self,
        resolver: Resolver,
        jobs: Iterator[Job],
        on_result: ResultCallback,
        *,
        count_nxdomain: bool = False,
        durations: Durations | None = None,
        max_qps: float | None = None,
        until: float | None = None,
    ) -> None:
        self.r = resolver
        self.jobs = jobs
        self.on_result = on_result
        self.count_nxdomain = count_nxdomain
        self.durations = durations
        self.nxdomain = 0
        self.loop = asyncio.get_running_loop()
        self.window = Window(resolver, self.loop, max_qps, self._step)
        self.sockets = Sockets(
            self.loop,
            resolver.n_sockets,
            resolver.receive_buffer,
            functools.partial(self._step, self._drain),
            self.window.path_to,
        )
        self.tcp = TcpRetries(self.loop, resolver.timeout)
        self.pending: dict[int, Entry] = {}
        self._init_retries()
        self.exhausted = False
        self.job: Job | None = None  # the job being fanned out, and its next template
        self.next_index = 0
        self.route: list[Route] = []  # what _start_jobs needs of the templates of `route_of`
        self.route_of: tuple[Template, ...] | None = None
        self.route_path: Path | None = None  # the one path of `route`, if it has one
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.error: BaseException | None = None
        self.until = until
        self.stopper: asyncio.TimerHandle | None = None
        self.in_tcp: dict[int, Entry] = {}  # the entries retried over TCP now, by id()

    async def run(self) -> None:
        try:
            if self.until is not None:
                wait = self.until - time.monotonic()
                if wait <= 0:
                    self.exhausted = True  # past its end already: nothing is sent
                else:
                    self.stopper = self.loop.call_later(wait, self._step, self._stop)
            if self._step(self._first_route):
                self._arm_timer()
            await self.done
        finally:
            self.close()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.stopper is not None:
            self.stopper.cancel()
        paths = self.sockets.paths
        for key in self.pending:  # unanswered: no longer in flight on their servers' windows
            paths[key >> 16].in_flight -= 1
        self.pending.clear()
        self.tcp.close()
        self.sockets.close()
        self.window.close()

    # -- the one guard --------------------------------------------------------------------------

    def _step(self, work: Callable[..., object] | None = None, *args: Any) -> bool:
        """Do `work`, top the window up and see whether the run is done. Any exception (a
        failing callback) ends the run with it rather than hanging it: False then."""
        try:
            if work is not None:
                work(*args)
            self._fill()
            if self.exhausted and self.window.in_flight == 0 and not self.done.done():
                self.done.set_result(None)
        except BaseException as exc:
            self.fail(exc)
            return False
        return True

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self.done.done():
            self.done.set_result(None)

    def _stop(self) -> None:
        """The run's `until`: start nothing more, and end every lookup still unanswered as
        abandoned (its place in the window given back), so that the run returns now."""
        self.exhausted = True
        abandoned: Ending = (Status.ABANDONED, 0, NO_RDATA, None)
        if self.job is not None:  # a job the window split: its templates not started
            jkey = self.job[0]
            for ti, *_ in self.route[self.next_index :]:
                self.on_result(jkey, ti, Status.ABANDONED, 0, NO_RDATA, None)
            self.job = None
        paths = self.sockets.paths
        entries = list(self.pending.values())
        for key in self.pending:  # no longer in flight on their servers' windows
            paths[key >> 16].in_flight -= 1
        self.pending.clear()
        entries += self.resend  # timed out and waiting to be sent again: not in flight
        self.resend.clear()
        self.retries.clear()
        self.older.clear()
        self.older_order.clear()
        for e in entries:
            self._finish(e, abandoned)
        tcp, self.in_tcp = self.in_tcp, {}
        self.tcp.close()
        for e in tcp.values():
            self._finish(e, abandoned)

    def poke(self) -> None:
        """Another run of the same resolver ended: use the room it left."""
        self._step()

    # -- sending --------------------------------------------------------------------------------

    def _first_route(self) -> None:
        """Join the first job's servers before the first fill, so that fill already meets
        their windows (a run joining a busy server must not burst past its share)."""
        first = next(self.jobs, None)
        if first is None:
            self.exhausted = True
            return
        self.jobs = itertools.chain((first,), self.jobs)
        for tpl in first[1]:
            if tpl.servers:
                self.window.path_to(tpl.servers[0])

    def _route(self, tpls: tuple[Template, ...]) -> None:
        route = self.route = self.sockets.route(tpls)
        # stored at once: a callback failing further down must not leave the cached route
        # of one tuple of templates standing for another
        self.route_of = self.sockets.cacheable(tpls, route)
        self.route_path = self.sockets.one_path(route)

    def _fill(self) -> None:
        """Send the retries due, then top the window up from the jobs, a job's templates in
        turn."""
        if self.done.done():  # failed or finished: send nothing more
            return
        if self.resend:
            self._resend()
        if self.exhausted:
            return
        now = time.monotonic()
        room = self.window.room(now)
        if room <= 0:
            return
        started = sent = 0
        if self.job is not None:  # a job the window split: its remaining templates first
            started, sent = self._resume(room, now)
        if started < room and self.job is None:
            more, more_sent = self._start_jobs(room - started, now)
            started += more
            sent += more_sent
        self.window.account(started, sent)

    def _start_jobs(self, room: int, now: float) -> tuple[int, int]:
        """First attempts of whole jobs while they fit in `room`: (lookups started, sent).

        The hot half of the resolver, so the send is written out here for a job whose
        templates all go to one server (retries and other jobs use `_transmit`), and that
        server's window is booked once for the lot. A job with more templates than the room
        left is started as far as it fits and finished by `_resume` in a later fill.
        """
        jobs, pending, ids, pack = self.jobs, self.pending, self.r.ids, _ID.pack
        fds, header_tail, write = self.sockets.fds, _HEADER_TAIL, os.write
        route, route_of, path = self.route, self.route_of, self.route_path
        started = unsent = 0
        booked = 0  # of `started`, lookups booked on a path already
        other = other_sent = 0  # started and sent by `_resume`
        for job in jobs:  # the caller made sure there is room for one lookup at least
            jkey, tpls, prefix = job
            if tpls is not route_of:
                _book(path, started - booked)
                booked = started
                self._route(tpls)
                route, route_of, path = self.route, self.route_of, self.route_path
            if path is None or len(route) > room - started:
                _book(path, started - booked)
                self.job, self.next_index = job, 0
                more, more_sent = self._resume(room - started, now)
                other, other_sent = other + more, other_sent + more_sent
                started += more
                booked = started
                if self.job is not None or started >= room:
                    return started, started - other - unsent + other_sent
                continue
            started += len(route)
            for ti, tpl, tail, bases, n in route:
                qid = next(ids)
                key = bases[qid % n] | qid
                while key in pending:
                    qid = next(ids)
                    key = bases[qid % n] | qid
                q = prefix + tail
                # insertion order is send order, which is deadline order
                pending[key] = e = [jkey, ti, tpl, q, 0, now, key]
                try:
                    write(fds[key >> 16], pack(qid) + header_tail + q)
                except BlockingIOError:
                    unsent += 1  # the socket buffer is full: the attempt times out, is retried
                except OSError:
                    unsent += 1
                    del pending[key]
                    # book the lot so far now, before a callback that may raise: what stays
                    # pending is then on the path, as `close` expects (rare: a failed write)
                    _book(path, started - booked)
                    booked = started
                    path.in_flight -= 1  # booked with the others, but never in flight
                    self._retry_or_finish(e, Status.NETWORK)  # counted as started all the same
            if started >= room:
                break
        else:
            self.exhausted = True
        _book(path, started - booked)
        return started, started - other - unsent + other_sent

    def _resume(self, room: int, now: float) -> tuple[int, int]:
        """First attempts of the split job's next templates, as many as `room` allows."""
        assert self.job is not None
        jkey, _tpls, prefix = self.job
        i = self.next_index
        todo = self.route[i : i + room]
        self.next_index = i + len(todo)
        if self.next_index == len(self.route):
            self.job = None
        started = sent = 0
        for ti, tpl, _tail, bases, n in todo:
            if not n:
                self.on_result(jkey, ti, Status.NETWORK, 0, NO_RDATA, None)
                continue
            started += 1
            e = [jkey, ti, tpl, prefix + tpl.tail, 0, now, 0]
            sent += self._transmit(e, bases)
        return started, sent

    def _transmit(self, e: Entry, bases: tuple[int, ...]) -> int:
        """Send an attempt on one of `bases`' sockets under a fresh ID: 1 if a datagram went.

        A failing socket ends the attempt at once (retried, or a network error).
        """
        pending, ids = self.pending, self.r.ids
        qid = next(ids)
        key = bases[qid % len(bases)] | qid
        while key in pending:
            qid = next(ids)
            key = bases[qid % len(bases)] | qid
        e[WIRE_KEY] = key
        try:
            os.write(self.sockets.fds[key >> 16], _ID.pack(qid) + _HEADER_TAIL + e[QUESTION])
            sent = 1
        except BlockingIOError:
            sent = 0
        except OSError:
            self._retry_or_finish(e, Status.NETWORK)
            return 0
        pending[key] = e
        self.sockets.paths[key >> 16].sent(1)
        return sent

    # -- receiving ------------------------------------------------------------------------------

    def _drain(self, si: int) -> None:
        """Read the replies waiting on a socket, `DRAIN_MAX` at most, and settle the lookups
        they answer."""
        read, fd = os.read, self.sockets.fds[si]
        pending, drop = self.pending, self.r.stats.drop
        count_nxdomain = self.count_nxdomain
        max_udp, base = self.r.max_udp, si << 16
        reply_bits, qr, tc, rcode_bits = wire.REPLY_BITS, wire.QR, wire.TC, wire.RCODE
        nxdomain, header_len = wire.RCODE_NXDOMAIN, _HEADER_LEN
        plain = other = settled = dropped = 0  # plain: NXDOMAINs only counted, the bulk
        # when the answered attempts were sent, for durations
        arrived: list[float] | None = None if self.durations is None else []
        last: Entry | None = None  # the last one answered, for an RTT sample
        try:
            for _ in range(DRAIN_MAX):
                try:
                    data = read(fd, max_udp)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # e.g. ICMP port unreachable: the query times out or is retried
                try:
                    e = pending.get(base | data[0] << 8 | data[1])
                    if e is None and (
                        not self.older
                        or (e := self._older(base | data[0] << 8 | data[1], data)) is None
                    ):  # no such query in flight (nor an earlier attempt still listened to)
                        dropped += 1
                        drop("id")
                        continue
                    q = e[QUESTION]
                    flags = data[2]
                    if (
                        flags & reply_bits != qr
                        or data[5] != 1
                        or data[4]
                        or not (
                            data.startswith(q, header_len)
                            # case may be echoed differently
                            or data[header_len : header_len + len(q)].lower() == q
                        )
                    ):
                        if not wire.error_without_question(data):
                            dropped += 1
                            drop("question" if len(data) >= header_len else "id")
                            continue
                        q = b""  # the answers follow the header
                except IndexError:  # too short for a header
                    dropped += 1
                    drop("id")
                    continue
                del pending[e[WIRE_KEY]]
                last = e
                if arrived is not None:
                    arrived.append(e[SENT])
                if (
                    flags & tc
                    or data[7]
                    or data[6]
                    or data[3] & rcode_bits != nxdomain
                    or not count_nxdomain
                ):
                    other += 1
                    settled += self._settle(e, data, flags, header_len + len(q))
                    continue
                plain += 1
        finally:  # a failing callback too: the replies taken are out of the path's flight
            self._drained(si, plain, other, settled, dropped, last, arrived)

    def _drained(
        self,
        si: int,
        plain: int,
        other: int,
        settled: int,
        dropped: int,
        last: Entry | None,
        arrived: list[float] | None,
    ) -> None:
        """Book a drain's replies: the path, the counters, the run's window."""
        if last is not None:
            self._answered(self.sockets.paths[si], plain + other, last, arrived)
        self.r.stats.received += plain + other + dropped
        self.nxdomain += plain
        self.window.release(plain + settled)

    def _answered(self, path: Path, n: int, last: Entry, arrived: list[float] | None) -> None:
        """A burst of `n` replies from `path`'s server, the last answering `last`: the window
        grows, the RTT is sampled, `arrived` (when they were sent) go to the durations."""
        now = time.monotonic()  # one clock read per burst: every reply of it arrived by now
        path.answered(n)
        if not last[ATTEMPT]:  # Karn: never a retransmitted lookup's time
            path.sample(now - last[SENT], now)
        if arrived:
            assert self.durations is not None
            self.durations.observe_since(now, arrived)

    def _settle(self, e: Entry, data: bytes, flags: int, offset: int) -> int:
        """Report a matched reply other than a counted NXDOMAIN: 1, or 0 if it goes to TCP.

        `offset` is where its answers start (past the question, if it had one).
        """
        if flags & wire.TC:  # the answer did not fit; ask again over TCP
            self._start_tcp(e)
            return 0
        rcode = data[3] & wire.RCODE
        if data[7] == 0 and data[6] == 0:  # no answer records: NXDOMAIN, NODATA, errors
            self.on_result(e[KEY], e[INDEX], _OK, rcode, NO_RDATA, None)
            return 1
        q = e[QUESTION]
        qname = q[:-4] if offset > _HEADER_LEN else b""
        try:
            rdatas, ttl = wire.read_answers(data, offset, qname, e[TEMPLATE].qtype, rcode)
        except wire.Malformed:
            self.on_result(e[KEY], e[INDEX], Status.BAD_REPLY, rcode, NO_RDATA, None)
            return 1
        self.on_result(e[KEY], e[INDEX], _OK, rcode, rdatas, ttl)
        return 1

    def _finish(self, e: Entry, ending: Ending) -> None:
        self.window.release(1)
        self.on_result(e[KEY], e[INDEX], *ending)

    def _start_tcp(self, e: Entry) -> None:
        self.r.stats.tcp += 1
        self.in_tcp[id(e)] = e
        servers = e[TEMPLATE].servers
        server = servers[e[ATTEMPT] % len(servers)]
        self.tcp.start(server, next(self.r.ids), e[QUESTION], functools.partial(self._tcp_done, e))

    def _tcp_done(self, e: Entry, ending: Ending) -> None:
        self.in_tcp.pop(id(e), None)
        self._step(self._finish, e, ending)


def _book(path: Path | None, n: int) -> None:
    """Book `n` first attempts sent on `path` (none: a job `_transmit` booked one by one)."""
    if path is not None:
        path.sent(n)
