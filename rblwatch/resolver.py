"""The async DNS client, built for throughput: many lookups in flight over a few UDP sockets.

Why not dnspython's resolver on the hot path: it builds message objects and raises NXDOMAIN as
an exception for every lookup (~540 µs each), while a DNSBL scan is almost entirely NXDOMAIN.
Here a query's wire format is a prebuilt per-list tail (zone, type, class) behind a patched
header and the target's labels, and a reply is read only as far as its header, question and
A/TXT records. dnspython still does the rare paths: zone names, TCP retries after truncation.

Security: replies are accepted only from the address and port the query went to, with the
query's ID and its exact question; anything else is dropped and counted (`stats.dropped`).
IDs come from the OS's random source and every run opens fresh sockets on random ports.

Results are handed to a callback rather than collected: a /16 scan must not hold a quarter of
a million result objects alive.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rdatatype

QTYPE_A = 1
QTYPE_TXT = 16
_CLASS_IN = b"\x00\x01"
_FLAGS_RD = b"\x01\x00"  # standard query, recursion desired (the resolver may be recursive)
_COUNTS = b"\x00\x01\x00\x00\x00\x00\x00\x00"  # QDCOUNT 1, no other sections
_HEADER_LEN = 12
_MAX_UDP = 4096
_ID = struct.Struct(">H")


class Status:
    """How an exchange ended (ints, not an enum: this is compared on the hot path)."""

    OK = 0
    TIMEOUT = 1
    NETWORK = 2
    BAD_REPLY = 3  # a reply that matched our query but could not be parsed


# key, status, rcode, rdatas of the asked type (4-byte A addresses or TXT rdata), minimum TTL
ResultCallback = Callable[[object, int, int, list[bytes], int | None], None]


@dataclass(frozen=True, slots=True)
class Template:
    """What is constant for every query of one list and type: the wire tail and the servers."""

    tail: bytes  # zone labels + root + QTYPE + QCLASS
    servers: tuple[tuple[str, int], ...]
    qtype: int = QTYPE_A

    @staticmethod
    def build(zone: str, servers: Iterable[tuple[str, int]], qtype: int = QTYPE_A) -> Template:
        tail = dns.name.from_text(zone).canonicalize().to_wire() or b"\x00"
        return Template(tail + struct.pack(">H", qtype) + _CLASS_IN, tuple(servers), qtype)


# (key, template, labels in front of the zone)
Job = tuple[object, Template, bytes]


@dataclass(slots=True)
class ResolverStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0  # replies that matched no query in flight (spoofed, late, garbage)
    timeouts: int = 0  # attempts that timed out (a lookup may retry)
    tcp: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)


class _Pending:
    __slots__ = ("attempt", "deadline", "id", "job", "question", "server", "sock")

    def __init__(self, job: Job, question: bytes) -> None:
        self.job = job
        self.question = question
        self.attempt = 0
        self.deadline = 0.0
        self.id = -1  # (socket index << 16) | query ID while in flight, -1 otherwise
        self.sock = 0
        self.server: tuple[str, int] = ("", 0)


def _random_ids() -> Iterator[int]:
    while True:
        buf = os.urandom(8192)
        yield from memoryview(buf).cast("H")


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
        self.n_sockets = max(1, sockets)
        self.stats = ResolverStats()
        self._ids = _random_ids()

    async def run(self, jobs: Iterable[Job], on_result: ResultCallback) -> None:
        """Look up every job; `on_result` is called once per job, in completion order."""
        batch = _Batch(self, iter(jobs), on_result)
        await batch.run()

    def _drop(self, why: str) -> None:
        self.stats.dropped += 1
        self.stats.drop_reasons[why] = self.stats.drop_reasons.get(why, 0) + 1


class _Batch:
    """One run of the resolver: its sockets, the queries in flight and the timeout queue."""

    def __init__(self, resolver: Resolver, jobs: Iterator[Job], on_result: ResultCallback) -> None:
        self.r = resolver
        self.jobs = jobs
        self.on_result = on_result
        self.loop = asyncio.get_running_loop()
        self.pending: dict[int, _Pending] = {}
        self.in_flight = 0
        self.exhausted = False
        self.socks: list[socket.socket] = []
        self.families: dict[int, list[int]] = {}
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

    def _socket_for(self, server: tuple[str, int], n: int) -> int:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        idxs = self.families.get(family)
        if idxs is None:
            idxs = []
            for _ in range(self.r.n_sockets):
                s = socket.socket(family, socket.SOCK_DGRAM)
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))  # random port
                i = len(self.socks)
                self.socks.append(s)
                self.loop.add_reader(s.fileno(), self._on_readable, i)
                idxs.append(i)
            self.families[family] = idxs
        return idxs[n % len(idxs)]

    def _close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        for t in self.tasks:
            t.cancel()
        for s in self.socks:
            self.loop.remove_reader(s.fileno())
            s.close()
        self.socks.clear()

    # -- sending ------------------------------------------------------------------------------

    def _fill(self) -> None:
        """Top the window up to max_in_flight from the job iterator."""
        room = self.r.max_in_flight - self.in_flight
        jobs = self.jobs
        while room > 0 and not self.exhausted:
            job = next(jobs, None)
            if job is None:
                self.exhausted = True
                break
            tpl = job[1]
            if not tpl.servers:
                self.on_result(job[0], Status.NETWORK, 0, [], None)
                continue
            p = _Pending(job, job[2] + tpl.tail)
            self.in_flight += 1
            room -= 1
            self._send(p)

    def _send(self, p: _Pending) -> None:
        servers = p.job[1].servers
        server = servers[p.attempt % len(servers)]
        si = self._socket_for(server, p.attempt + self.r.stats.sent)
        pending = self.pending
        ids = self.r._ids
        while True:
            key = (si << 16) | next(ids)
            if key not in pending:
                break
        p.id, p.sock, p.server = key, si, server
        p.deadline = time.monotonic() + self.r.timeout
        pending[key] = p  # insertion order is send order, which is deadline order
        try:
            self.socks[si].sendto(_ID.pack(key & 0xFFFF) + _FLAGS_RD + _COUNTS + p.question, server)
            self.r.stats.sent += 1
        except BlockingIOError:
            pass  # the socket buffer is full: the attempt times out and is retried
        except OSError:
            del pending[key]
            p.id = -1
            self._retry_or_finish(p, Status.NETWORK)

    # -- receiving ----------------------------------------------------------------------------

    def _on_readable(self, si: int) -> None:
        sock = self.socks[si]
        handle = self._handle
        try:
            while True:
                try:
                    data, addr = sock.recvfrom(_MAX_UDP)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break  # e.g. an ICMP error queued on the socket; the query times out
                handle(si, data, addr)
            self._fill()
            self._check_done()
        except BaseException as exc:  # a failing callback must end the run, not hang it
            self._fail(exc)

    def _handle(self, si: int, data: bytes, addr: tuple[object, ...]) -> None:
        self.r.stats.received += 1
        if len(data) < _HEADER_LEN:
            self.r._drop("short")
            return
        key = (si << 16) | (data[0] << 8 | data[1])
        p = self.pending.get(key)
        if p is None:
            self.r._drop("id")
            return
        if addr[0] != p.server[0] or addr[1] != p.server[1]:
            self.r._drop("source")
            return
        q = p.question
        end = _HEADER_LEN + len(q)
        if not data[2] & 0x80 or data[4:6] != b"\x00\x01":
            self.r._drop("question")
            return
        asked = data[_HEADER_LEN:end]
        if asked != q and asked.lower() != q:  # servers may echo the name's case differently
            self.r._drop("question")
            return
        del self.pending[key]
        p.id = -1
        if data[2] & 0x02:  # TC: the answer did not fit; ask again over TCP
            self._start_tcp(p)
            return
        self._finish_reply(p, data, end)

    def _finish_reply(self, p: _Pending, data: bytes, offset: int) -> None:
        qtype = p.job[1].qtype
        try:
            rdatas, ttl = _read_answers(data, offset, qtype)
        except (IndexError, struct.error, ValueError):
            self._finish(p, Status.BAD_REPLY, data[3] & 0x0F, [], None)
            return
        self._finish(p, Status.OK, data[3] & 0x0F, rdatas, ttl)

    def _finish(self, p: _Pending, status: int, rcode: int, rdatas: list[bytes], ttl: int | None) -> None:
        self.in_flight -= 1
        self.on_result(p.job[0], status, rcode, rdatas, ttl)

    def _retry_or_finish(self, p: _Pending, status: int) -> None:
        p.attempt += 1
        if p.attempt < self.r.attempts:
            self._send(p)
        else:
            self._finish(p, status, 0, [], None)

    # -- timeouts and completion --------------------------------------------------------------

    def _arm_timer(self) -> None:
        tick = min(0.05, self.r.timeout / 4)
        self.timer = self.loop.call_later(tick, self._on_timer)

    def _on_timer(self) -> None:
        try:
            now = time.monotonic()
            pending = self.pending
            # every attempt has the same timeout and the dict keeps send order, so the oldest
            # entries are the first to expire: stop at the first one still running
            expired: list[_Pending] = []
            for key, p in pending.items():
                if p.deadline > now:
                    break
                expired.append(p)
            for p in expired:
                del pending[p.id]
                p.id = -1
                self.r.stats.timeouts += 1
                self._retry_or_finish(p, Status.TIMEOUT)
            self._fill()
            self._check_done()
        except BaseException as exc:
            self._fail(exc)
            return
        if not self.done.done():
            self._arm_timer()

    def _check_done(self) -> None:
        if self.exhausted and self.in_flight == 0 and not self.done.done():
            self.done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self.done.done():
            self.done.set_result(None)

    # -- TCP ----------------------------------------------------------------------------------

    def _start_tcp(self, p: _Pending) -> None:
        self.r.stats.tcp += 1
        task = self.loop.create_task(self._tcp(p))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _tcp(self, p: _Pending) -> None:
        tpl = p.job[1]
        qname = dns.name.from_wire(p.question, 0)[0]
        query = dns.message.make_query(qname, tpl.qtype)
        status, rcode, rdatas, ttl = Status.OK, 0, [], None
        try:
            resp = await dns.asyncquery.tcp(query, p.server[0], timeout=self.r.timeout, port=p.server[1])
            rcode = resp.rcode()
            rdatas, ttl = _rdatas_from_message(resp, tpl.qtype)
        except dns.exception.Timeout:
            status = Status.TIMEOUT
        except (OSError, EOFError):
            status = Status.NETWORK
        except dns.exception.DNSException:
            status = Status.BAD_REPLY
        try:
            self._finish(p, status, rcode, rdatas, ttl)
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
            rdatas.append(data[off:end])
            ttl = rttl if ttl is None else min(ttl, rttl)
        off = end
    return rdatas, ttl


def _rdatas_from_message(msg: dns.message.Message, qtype: int) -> tuple[list[bytes], int | None]:
    """The same as `_read_answers`, from a dnspython message (the TCP path)."""
    rdatas: list[bytes] = []
    ttl: int | None = None
    for rrset in msg.answer:
        if rrset.rdtype != qtype:
            continue
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
        rdatas.extend(rd.to_wire() for rd in rrset)
    return rdatas, ttl


def rdatatype_name(qtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))
