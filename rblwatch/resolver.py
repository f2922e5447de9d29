"""The async DNS client, built for throughput: many lookups in flight over a few UDP sockets.

Why not dnspython's resolver on the hot path: it builds message objects and raises NXDOMAIN as
an exception for every lookup (~540 µs each), while a DNSBL scan is almost entirely NXDOMAIN.
Here a query's wire format is a prebuilt per-list tail (zone, type, class) behind a patched
header and the target's labels, and a reply is read only as far as its header, question and
A/TXT records. dnspython does the rare path (TCP retries after truncation) and the tests check
the hand-built wire format against it.

Security: replies are accepted only from the address and port the query went to, with the
query's ID and its exact question. Each socket is connected to its server, so the kernel
discards datagrams from any other address or port before they reach us (they cannot be
counted: the price of that filter, which also saves the address handling of every call);
whatever does arrive with the wrong ID or question is dropped and counted (`stats.dropped`).
IDs come from the OS's random source and every run opens fresh sockets on random ports.

Results are handed to a callback rather than collected: a /16 scan must not hold a quarter of
a million result objects alive.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rblwatch.lookup import zone_wire

log = logging.getLogger("rblwatch.resolver")

QTYPE_A = 1
QTYPE_TXT = 16
_CLASS_IN = b"\x00\x01"
# after the ID: a standard query with recursion desired (the server may be a recursive
# resolver), QDCOUNT 1, no other sections
_HEADER_TAIL = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
_HEADER_LEN = 12
_MAX_UDP = 4096
_ID = struct.Struct(">H")


class Status:
    """How an exchange ended (ints, not an enum: this is compared on the hot path)."""

    OK = 0
    TIMEOUT = 1
    NETWORK = 2
    BAD_REPLY = 3  # a reply that matched our query but could not be parsed


# key, template index, status, rcode, rdatas of the asked type (4-byte A addresses or TXT
# rdata; the list is shared and must not be kept or changed), their minimum TTL
ResultCallback = Callable[[object, int, int, int, list[bytes], int | None], None]
_NO_RDATA: list[bytes] = []


@dataclass(frozen=True, slots=True)
class Template:
    """What is constant for every query of one list and type: the wire tail and the servers."""

    tail: bytes  # zone labels + root + QTYPE + QCLASS
    servers: tuple[tuple[str, int], ...]
    qtype: int = QTYPE_A

    @staticmethod
    def build(zone: str, servers: Iterable[tuple[str, int]], qtype: int = QTYPE_A) -> Template:
        tail = zone_wire(zone)
        return Template(tail + struct.pack(">H", qtype) + _CLASS_IN, tuple(servers), qtype)


# A job is one name asked on one or more lists: (key, templates, labels in front of the zone).
# Fanning a target out over its lists in the resolver, rather than one job per lookup, halves
# the per-lookup work of building and iterating jobs on a scan.
Job = tuple[object, tuple[Template, ...], bytes]


@dataclass(slots=True)
class ResolverStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0  # replies that matched no query in flight (spoofed, late, garbage)
    timeouts: int = 0  # attempts that timed out (a lookup may retry)
    nxdomain: int = 0  # plain NXDOMAIN results counted rather than reported (count_nxdomain)
    tcp: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)


class RunResult(NamedTuple):
    nxdomain: int  # plain NXDOMAINs counted instead of reported (count_nxdomain)
    sent: int  # queries sent by this run, retries included


class Durations:
    """How long answered queries took, in cumulative-free buckets (a histogram's raw counts).

    Kept as bucket counts with bisect (C) because it is fed from the receive loop.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = list(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last is above every bound
        self.total = 0.0

    def observe_since(self, end: float, starts: Iterable[float]) -> None:
        """Observe `end - start` for each of `starts` (a burst of replies read at once)."""
        counts, bounds, where = self.counts, self.bounds, bisect.bisect_left
        total = 0.0
        for start in starts:
            took = end - start
            counts[where(bounds, took)] += 1
            total += took
        self.total += total


# A lookup in flight is a list, not an object: it is created for every lookup of a scan and a
# list literal costs a fraction of an instance. Fields:
_KEY, _INDEX, _TEMPLATE, _QUESTION, _ATTEMPT, _DEADLINE, _WIRE_KEY = range(7)
_Entry = list[Any]
# a template as _fill uses it: (index in its job, template, wire tail, socket key bases, how
# many bases)
_Route = tuple[int, "Template", bytes, tuple[int, ...], int]
_OK = 0  # Status.OK, as a constant for the hot path


def _random_ids() -> Iterator[int]:
    """Query IDs from the OS's random source, 4,096 per read, iterated in C throughout."""
    blocks = iter(lambda: memoryview(os.urandom(8192)).cast("H"), None)
    return itertools.chain.from_iterable(blocks)


def normalize_server(host: str, port: int) -> tuple[str, int]:
    """A server as the (numeric address, port) that recvfrom reports, so replies can be matched."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICSERV)
    addr = info[0][4]
    return (str(addr[0]), int(addr[1]))


def system_nameservers(path: str = "/etc/resolv.conf") -> tuple[tuple[str, int], ...]:
    """The nameservers of resolv.conf (the default when none are configured)."""
    servers: list[tuple[str, int]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    servers.append((parts[1].split("%")[0], 53))
    except OSError:
        pass
    return tuple(servers) or (("127.0.0.1", 53),)


class Resolver:
    """Runs batches of DNS lookups with at most `max_in_flight` outstanding at once.

    `timeout` is per attempt; a lookup is tried `attempts` times (over the template's servers
    in turn) before it ends as a timeout. A truncated UDP reply is retried over TCP.
    """

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        max_in_flight: int = 64,
        sockets: int = 2,
    ) -> None:
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.max_in_flight = max(1, max_in_flight)
        # runs at the same time (the daemon's lists) share max_in_flight: each gets an equal
        # share of it, so one list's cycle cannot starve another's
        self.in_flight = 0
        self._batches: list[_Batch] = []
        self.n_sockets = max(1, sockets)
        self.stats = ResolverStats()
        self._ids = _random_ids()

    async def run(
        self,
        jobs: Iterable[Job],
        on_result: ResultCallback,
        *,
        count_nxdomain: bool = False,
        durations: Durations | None = None,
        max_qps: float | None = None,
    ) -> RunResult:
        """Look up every job on each of its templates.

        `on_result(key, i, ...)` is called once per (job, template i), in completion order.
        With `count_nxdomain`, plain NXDOMAIN replies (the bulk of a scan) are only counted:
        the count is returned and they are not reported. `durations` collects how long each
        answered query took; `max_qps` caps the rate of queries sent (a list's etiquette).
        """
        batch = _Batch(self, iter(jobs), on_result, count_nxdomain)
        batch.durations = durations
        batch.max_qps = max_qps
        self._batches.append(batch)
        try:
            await batch.run()
        finally:
            self._batches.remove(batch)
            for other in self._batches:  # their share of max_in_flight just grew
                other.poke()
        self.stats.nxdomain += batch.nxdomain
        return RunResult(batch.nxdomain, batch.sent)

    def _drop(self, why: str) -> None:
        self.stats.dropped += 1
        self.stats.drop_reasons[why] = self.stats.drop_reasons.get(why, 0) + 1


class _Batch:
    """One run of the resolver: its sockets, the lookups in flight and their deadlines.

    Each socket is connected to one server, so the kernel already discards datagrams from any
    other address or port; what reaches us is then matched on ID and question. The pending
    dict is keyed by (socket index << 16 | query ID) and, being insertion-ordered with one
    timeout for all, is also the deadline queue.
    """

    def __init__(
        self,
        resolver: Resolver,
        jobs: Iterator[Job],
        on_result: ResultCallback,
        count_nxdomain: bool,
    ) -> None:
        self.r = resolver
        self.jobs = jobs
        self.on_result = on_result
        self.count_nxdomain = count_nxdomain
        self.nxdomain = 0
        self.durations: Durations | None = None
        self.max_qps: float | None = None
        self.started = time.monotonic()
        self.first_sends = 0  # queries started, for max_qps
        self.sent = 0  # datagrams sent, retries included (a list's query budget counts these)
        self.refill: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, _Entry] = {}
        self.in_flight = 0
        self.exhausted = False
        self.job: Job | None = None  # the job being fanned out, and its next template
        self.next_index = 0
        self.route: list[_Route] = []  # what _fill needs of the templates of `route_of`
        self.route_of: tuple[Template, ...] | None = None
        self.socks: list[socket.socket] = []
        # their descriptors: os.read/os.write parse their arguments for a fraction of what
        # socket.recv/send do (~800 instructions a lookup), and read(2)/write(2) on a
        # connected datagram socket are recv(2)/send(2) without flags
        self.fds: list[int] = []
        self.by_server: dict[tuple[str, int], list[int]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.error: BaseException | None = None

    async def run(self) -> None:
        try:
            self._fill()
            self._check_done()
            self._arm_timer()
            await self.done
        finally:
            self._close()
        if self.error is not None:
            raise self.error

    # -- sockets ------------------------------------------------------------------------------

    def _open(self, server: tuple[str, int]) -> list[int]:
        """Sockets connected to `server`, each bound to a random local port."""
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        idxs = []
        for _ in range(self.r.n_sockets):
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.connect(server)
            i = len(self.socks)
            self.socks.append(s)
            self.fds.append(s.fileno())
            self.loop.add_reader(s.fileno(), self._on_readable, i)
            idxs.append(i)
        self.by_server[server] = idxs
        return idxs

    def _open_or_none(self, server: tuple[str, int]) -> list[int] | None:
        try:
            return self._open(server)
        except OSError as exc:
            log.warning("cannot open a socket to nameserver %s port %d: %s", *server, exc)
            return None

    def _close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.refill is not None:
            self.refill.cancel()
        for t in self.tasks:
            t.cancel()
        for s in self.socks:
            self.loop.remove_reader(s.fileno())
            s.close()
        self.socks.clear()
        self.fds.clear()
        # a run cancelled (a cycle past its deadline) or failed leaves lookups unanswered:
        # give their places back, or the resolver, which outlives the run, stays full
        self.r.in_flight -= self.in_flight
        self.in_flight = 0

    # -- sending ------------------------------------------------------------------------------

    def _fill(self) -> None:
        """Top the window up to max_in_flight from the jobs, a job's templates in turn."""
        if self.done.done():  # failed (or finished): callbacks queued before that send nothing
            return
        room = self._room()
        if room <= 0:
            return
        deadline = time.monotonic() + self.r.timeout
        started = sent = 0
        if self.job is not None:  # a job the window split: its remaining templates first
            started, sent = self._resume(room, deadline)
        if started < room and self.job is None:
            more, more_sent = self._start_jobs(room - started, deadline)
            started += more
            sent += more_sent
        self._account(started, sent)

    def _start_jobs(self, room: int, deadline: float) -> tuple[int, int]:
        """First attempts of whole jobs while they fit in `room`: (lookups started, sent).

        The hot half of the resolver, so the send is written out here (retries use `_send`).
        A job with more templates than the room left is started as far as it fits and
        finished by `_resume` in a later fill.
        """
        jobs, pending, ids, fds, pack = self.jobs, self.pending, self.r._ids, self.fds, _ID.pack
        header_tail, write = _HEADER_TAIL, os.write
        route, route_of = self.route, self.route_of
        started = unsent = 0
        for job in jobs:  # the caller made sure there is room for one lookup at least
            jkey, tpls, prefix = job
            if tpls is not route_of:
                route = self._route(tpls)
                route_of = self._cacheable(tpls, route)
                # stored at once: a callback failing further down must not leave the cached
                # route of one tuple of templates standing for another
                self.route, self.route_of = route, route_of
            if len(route) > room - started:
                self.job, self.next_index = job, 0
                more, more_sent = self._resume(room - started, deadline)
                return started + more, started - unsent + more_sent
            started += len(route)
            for ti, tpl, tail, bases, n in route:
                if not n:  # no server, or no socket to it (say, IPv6 without a route)
                    started -= 1
                    self.on_result(jkey, ti, Status.NETWORK, 0, _NO_RDATA, None)
                    continue
                qid = next(ids)
                key = bases[qid % n] | qid
                while key in pending:
                    qid = next(ids)
                    key = bases[qid % n] | qid
                q = prefix + tail
                # insertion order is send order, which is deadline order
                pending[key] = e = [jkey, ti, tpl, q, 0, deadline, key]
                try:
                    write(fds[key >> 16], pack(qid) + header_tail + q)
                except BlockingIOError:
                    unsent += 1  # the socket buffer is full: the attempt times out, is retried
                except OSError:
                    unsent += 1
                    del pending[key]
                    self._retry_or_finish(e, Status.NETWORK)  # counted as started all the same
            if started >= room:
                break
        else:
            self.exhausted = True
        return started, started - unsent

    def _resume(self, room: int, deadline: float) -> tuple[int, int]:
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
                self.on_result(jkey, ti, Status.NETWORK, 0, _NO_RDATA, None)
                continue
            started += 1
            e = [jkey, ti, tpl, prefix + tpl.tail, 0, deadline, 0]
            sent += self._transmit(e, bases)
        return started, sent

    def _transmit(self, e: _Entry, bases: tuple[int, ...]) -> int:
        """Send an attempt on one of `bases`' sockets under a fresh ID: 1 if a datagram went.

        A failing socket ends the attempt at once (retried, or a network error).
        """
        pending, ids = self.pending, self.r._ids
        qid = next(ids)
        key = bases[qid % len(bases)] | qid
        while key in pending:
            qid = next(ids)
            key = bases[qid % len(bases)] | qid
        e[_WIRE_KEY] = key
        pending[key] = e
        try:
            os.write(self.fds[key >> 16], _ID.pack(qid) + _HEADER_TAIL + e[_QUESTION])
            return 1
        except BlockingIOError:
            return 0
        except OSError:
            del pending[key]
            self._retry_or_finish(e, Status.NETWORK)
            return 0

    def _route(self, tpls: tuple[Template, ...]) -> list[_Route]:
        """For each template of a job: its index, itself, its wire tail and its key bases.

        A key base is a socket index shifted past the 16 bits of a query ID; an empty tuple
        means the template cannot be sent (no server, or no socket to it). Cached for the
        last tuple of templates seen: a scan's jobs share one per target kind.
        """
        route: list[_Route] = []
        for ti, tpl in enumerate(tpls):
            idxs: list[int] | None = None
            if tpl.servers:
                idxs = self.by_server.get(tpl.servers[0]) or self._open_or_none(tpl.servers[0])
            bases = tuple(si << 16 for si in idxs or ())
            route.append((ti, tpl, tpl.tail, bases, len(bases)))
        return route

    @staticmethod
    def _cacheable(tpls: tuple[Template, ...], route: list[_Route]) -> tuple[Template, ...] | None:
        """`tpls`, unless a socket to one of its servers failed to open: then the next job
        works its route out again (and tries to open it again), as a single failure (say,
        out of descriptors for a moment) must not fail every later lookup of the run."""
        if any(n == 0 and tpl.servers for _ti, tpl, _tail, _bases, n in route):
            return None
        return tpls

    def _account(self, started: int, sent: int) -> None:
        """Book a burst of first attempts: in flight here and resolver-wide, and sent."""
        self.in_flight += started
        self.r.in_flight += started
        self.first_sends += started
        self.r.stats.sent += sent
        self.sent += sent

    def _room(self) -> int:
        """How many lookups may start now: the window's free places, within max_qps."""
        r = self.r
        share = -(-r.max_in_flight // max(1, len(r._batches)))
        room = min(r.max_in_flight - r.in_flight, share - self.in_flight)
        if room <= 0 or self.exhausted:
            return 0
        return room if self.max_qps is None else self._qps_room(room)

    def _qps_room(self, room: int) -> int:
        """How many queries may start now under max_qps; arms a refill when none may."""
        assert self.max_qps is not None
        allowed = int((time.monotonic() - self.started) * self.max_qps) + 1 - self.first_sends
        if allowed <= 0 and self.refill is None:

            def refill() -> None:
                self.refill = None
                try:
                    self._fill()
                    self._check_done()
                except BaseException as exc:
                    self._fail(exc)

            self.refill = self.loop.call_later(1 / self.max_qps, refill)
        return min(room, allowed)

    def _send(self, e: _Entry, deadline: float) -> None:
        """Send one attempt (a retry) to the next server in turn."""
        servers = e[_TEMPLATE].servers
        server = servers[e[_ATTEMPT] % len(servers)]
        idxs = self.by_server.get(server) or self._open_or_none(server)
        if idxs is None:
            self._retry_or_finish(e, Status.NETWORK)
            return
        e[_DEADLINE] = deadline
        n = self._transmit(e, tuple(si << 16 for si in idxs))
        self.r.stats.sent += n
        self.sent += n

    # -- receiving ----------------------------------------------------------------------------

    def _on_readable(self, si: int) -> None:
        try:
            self._drain(si)
            self._fill()
            self._check_done()
        except BaseException as exc:  # a failing callback must end the run, not hang it
            self._fail(exc)

    def _drain(self, si: int) -> None:
        """Read every reply waiting on a socket and settle the lookups they answer."""
        read, fd = os.read, self.fds[si]
        pending = self.pending
        count_nxdomain = self.count_nxdomain
        base = si << 16
        plain = other = settled = dropped = 0  # plain: NXDOMAINs only counted, the bulk
        durations = self.durations
        arrived: list[float] = []  # the deadlines of the answered attempts, for durations
        while True:
            try:
                data = read(fd, _MAX_UDP)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # e.g. ICMP port unreachable: the query times out or is retried
            try:
                e = pending.get(base | data[0] << 8 | data[1])
                if e is None:  # no such query in flight
                    dropped += 1
                    self.r._drop("id")
                    continue
                q = e[_QUESTION]
                flags = data[2]
                if (
                    not flags & 0x80
                    or data[5] != 1
                    or data[4]
                    or not (
                        data.startswith(q, _HEADER_LEN)
                        # case may be echoed differently
                        or data[_HEADER_LEN : _HEADER_LEN + len(q)].lower() == q
                    )
                ):
                    dropped += 1
                    self.r._drop("question" if len(data) >= _HEADER_LEN else "id")
                    continue
            except IndexError:  # too short for a header
                dropped += 1
                self.r._drop("id")
                continue
            del pending[e[_WIRE_KEY]]
            if durations is not None:
                arrived.append(e[_DEADLINE])
            if flags & 0x02 or data[7] or data[6] or data[3] & 0x0F != 3 or not count_nxdomain:
                other += 1
                settled += self._settle(e, data, flags)
                continue
            plain += 1
        if arrived:
            assert durations is not None
            # one clock read per burst: every reply of it arrived by now. An attempt was sent
            # at deadline - timeout, so it took (now + timeout) - deadline.
            durations.observe_since(time.monotonic() + self.r.timeout, arrived)
        self.r.stats.received += plain + other + dropped
        self.nxdomain += plain
        self.in_flight -= plain + settled
        self.r.in_flight -= plain + settled

    def _settle(self, e: _Entry, data: bytes, flags: int) -> int:
        """Report a matched reply other than a counted NXDOMAIN: 1, or 0 if it goes to TCP."""
        if flags & 0x02:  # TC: the answer did not fit; ask again over TCP
            self._start_tcp(e)
            return 0
        if data[7] == 0 and data[6] == 0:  # no answer records: NXDOMAIN, NODATA, errors
            self.on_result(e[_KEY], e[_INDEX], _OK, data[3] & 0x0F, _NO_RDATA, None)
        else:
            self._answers(e, data, _HEADER_LEN + len(e[_QUESTION]))
        return 1

    def _answers(self, e: _Entry, data: bytes, offset: int) -> None:
        try:
            rdatas, ttl = _read_answers(data, offset, e[_TEMPLATE].qtype)
        except (IndexError, struct.error, ValueError):
            self.on_result(e[_KEY], e[_INDEX], Status.BAD_REPLY, data[3] & 0x0F, _NO_RDATA, None)
            return
        self.on_result(e[_KEY], e[_INDEX], _OK, data[3] & 0x0F, rdatas, ttl)

    def _finish(
        self, e: _Entry, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
    ) -> None:
        self.in_flight -= 1
        self.r.in_flight -= 1
        self.on_result(e[_KEY], e[_INDEX], status, rcode, rdatas, ttl)

    def _retry_or_finish(self, e: _Entry, status: int) -> None:
        e[_ATTEMPT] += 1
        if e[_ATTEMPT] < self.r.attempts:
            self._send(e, time.monotonic() + self.r.timeout)
        else:
            self._finish(e, status, 0, _NO_RDATA, None)

    # -- timeouts and completion --------------------------------------------------------------

    def _arm_timer(self) -> None:
        tick = min(0.05, self.r.timeout / 4)
        self.timer = self.loop.call_later(tick, self._on_timer)

    def _on_timer(self) -> None:
        try:
            now = time.monotonic()
            # every attempt has the same timeout and the dict keeps send order, so the oldest
            # entries are the first to expire: stop at the first one still running
            expired: list[_Entry] = []
            for e in self.pending.values():
                if e[_DEADLINE] > now:
                    break
                expired.append(e)
            for e in expired:
                del self.pending[e[_WIRE_KEY]]
                self.r.stats.timeouts += 1
                self._retry_or_finish(e, Status.TIMEOUT)
            self._fill()
            self._check_done()
        except BaseException as exc:
            self._fail(exc)
            return
        if not self.done.done():
            self._arm_timer()

    def poke(self) -> None:
        """Another run of the same resolver ended: use the room it left."""
        try:
            self._fill()
            self._check_done()
        except BaseException as exc:
            self._fail(exc)

    def _check_done(self) -> None:
        if self.exhausted and self.in_flight == 0 and not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self.done.done():
            self.done.set_result(None)

    # -- TCP ----------------------------------------------------------------------------------

    def _start_tcp(self, e: _Entry) -> None:
        self.r.stats.tcp += 1
        task = self.loop.create_task(self._tcp(e))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _tcp(self, e: _Entry) -> None:
        import dns.asyncquery  # the rare path: not worth its import time at every start
        import dns.exception
        import dns.message
        import dns.name

        tpl = e[_TEMPLATE]
        server = tpl.servers[e[_ATTEMPT] % len(tpl.servers)]
        qname = dns.name.from_wire(e[_QUESTION], 0)[0]
        query = dns.message.make_query(qname, tpl.qtype)
        status, rcode, ttl = Status.OK, 0, None
        rdatas: list[bytes] = []
        try:
            resp = await dns.asyncquery.tcp(
                query, server[0], timeout=self.r.timeout, port=server[1]
            )
            rcode = resp.rcode()
            rdatas, ttl = _rdatas_from_message(resp, tpl.qtype)
        except dns.exception.Timeout:
            status = Status.TIMEOUT
        except (OSError, EOFError):
            status = Status.NETWORK
        except dns.exception.DNSException:
            status = Status.BAD_REPLY
        except Exception:  # anything else must still end the lookup, or the run waits forever
            log.exception("TCP retry failed unexpectedly")
            status = Status.BAD_REPLY
        try:
            self._finish(e, status, rcode, rdatas, ttl)
            self._fill()
            self._check_done()
        except BaseException as exc:
            self._fail(exc)


def _skip_name(data: bytes, off: int) -> int:
    """Offset just past a (possibly compressed) domain name starting at `off`."""
    while True:
        n = data[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        if n & 0xC0:
            raise ValueError("bad label type")
        off += n + 1


def _read_answers(data: bytes, off: int, qtype: int) -> tuple[list[bytes], int | None]:
    """The rdata of the answer records of type `qtype` and their smallest TTL.

    `off` points just past the question section (whose bytes were already matched).
    """
    ancount = data[6] << 8 | data[7]
    rdatas: list[bytes] = []
    ttl: int | None = None
    for _ in range(ancount):
        off = _skip_name(data, off)
        rtype, _rclass, rttl, rdlen = struct.unpack_from(">HHIH", data, off)
        off += 10
        end = off + rdlen
        if end > len(data):
            raise ValueError("truncated record")
        if rtype == qtype:
            if qtype == QTYPE_A and rdlen != 4:
                # callers read A rdata as 4 bytes: any other length is a malformed reply
                raise ValueError("A record of the wrong length")
            rdatas.append(data[off:end])
            ttl = rttl if ttl is None else min(ttl, rttl)
        off = end
    return rdatas, ttl


def _rdatas_from_message(msg: Any, qtype: int) -> tuple[list[bytes], int | None]:
    """The same as `_read_answers`, from a dnspython message (the TCP path)."""
    rdatas: list[bytes] = []
    ttl: int | None = None
    for rrset in msg.answer:
        if rrset.rdtype != qtype:
            continue
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
        rdatas.extend(rd.to_wire() for rd in rrset)
    return rdatas, ttl
