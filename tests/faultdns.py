"""A fault-injecting DNS server on 127.0.0.1 (UDP and TCP, one port), for testing error handling.

rbldnsd only answers correctly; the failures a DNSBL client meets in the wild (timeouts, SERVFAIL,
truncation, garbage, spoofed or misdirected replies, resolvers rewriting NXDOMAIN) come from here.
What the server does is chosen per query name:

    srv = FaultDns().start()
    srv.rule("2.0.0.127.bl.test", Fault.ANSWER, a=["127.0.0.2"], txt=["listed"], ttl=60)
    srv.rule("*.dead.test", Fault.DROP)                         # that name and every name below it
    srv.sequence("3.0.0.127.bl.test", [Action(Fault.DROP), Action(Fault.ANSWER)])  # retry succeeds
    srv.default = Action(Fault.NXDOMAIN)                        # names without a rule
    ...
    srv.count("2.0.0.127.bl.test")                  # queries received for that name
    srv.count("2.0.0.127.bl.test", transport="tcp")
    srv.stop()

Loss and timing, for congestion tests: ``srv.loss = Loss(every=100)`` (or ``Loss(p=0.01, seed=1)``)
loses UDP queries on the way in, before any rule sees them (``srv.lost`` lists them), and
``srv.stamp_arrivals()`` records each UDP query's kernel arrival time (``srv.arrivals``, seconds),
so a test can see how the client spaced its datagrams whatever this thread's scheduling.

Exact names win over ``*.`` suffix rules, longer suffixes over shorter. Faults that only make sense
on UDP (TRUNCATE, WRONG_PORT, SPOOF_THEN_REAL, ``then_real``) send the plain real answer over TCP.

Replies no well-behaved server sends (an A record of class CHAOS, a compression loop, an opcode
other than QUERY) are built byte by byte: ``Fault.RAW`` sends what ``build(query wire)`` returns,
on either transport, and :func:`reply_wire` / :func:`rr` put such a reply together:

    srv.rule(name, Fault.RAW, build=lambda q: reply_wire(q, answers=[rr(QUESTION, a="127.0.0.2",
                                                                         rdclass=CLASS_CH)]))
"""

from __future__ import annotations

import contextlib
import enum
import heapq
import itertools
import random
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

HOST = "127.0.0.1"
_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)  # Linux's value where Python lacks it
_TIMEVAL = struct.Struct("@ll")
# What SPOOF_THEN_REAL's forged first reply says, so a client that accepts it is visibly wrong.
SPOOF_A = "127.0.0.66"


class Fault(enum.Enum):
    """How the server treats a query."""

    ANSWER = "answer"  # A (and TXT) records from the Action; also "answer outside 127/8"
    NXDOMAIN = "nxdomain"
    NODATA = "nodata"  # NOERROR, empty answer section
    DROP = "drop"  # no reply at all: the client times out
    SERVFAIL = "servfail"
    REFUSED = "refused"
    TRUNCATE = "truncate"  # UDP: TC bit, no answers; TCP: the real answer
    GARBAGE = "garbage"  # the query ID followed by random bytes that do not parse
    WRONG_ID = "wrong_id"  # the real answer under another query ID
    WRONG_QUESTION = "wrong_question"  # an answer for another name
    WRONG_PORT = "wrong_port"  # the real answer from another source port
    SPOOF_THEN_REAL = "spoof_then_real"  # wrong-ID reply saying SPOOF_A, then the real one
    DELAY = "delay"  # the real answer after delay_ms
    FORMERR = "formerr"
    NOTIMP = "notimp"
    RAW = "raw"  # the bytes Action.build makes of the query's wire format


@dataclass(frozen=True)
class Action:
    """One behaviour with its data. ``a``/``txt``/``ttl``/``cname`` are "the real answer".

    ``delay_ms`` is the wait for DELAY, and before the real reply of SPOOF_THEN_REAL and of
    ``then_real``. ``then_real`` makes WRONG_ID, WRONG_QUESTION and WRONG_PORT follow the bad
    reply with the real one (without it: the bad reply and then nothing).
    ``cname`` answers with a CNAME from the query name to it, then the A records at the target.
    ``question=False`` leaves the question section out of an error reply (FORMERR, SERVFAIL,
    NOTIMP, REFUSED), as some servers do. ``build`` is RAW's reply, from the query's wire.
    """

    fault: Fault = Fault.ANSWER
    a: Sequence[str] = ("127.0.0.2",)
    txt: Sequence[str] = ()
    ttl: int = 300
    delay_ms: int = 50
    then_real: bool = False
    cname: str | None = None
    question: bool = True
    build: Callable[[bytes], bytes] | None = None


@dataclass(frozen=True)
class Loss:
    """UDP queries lost on the way in: every ``every``-th one, and/or each with probability
    ``p`` drawn from a generator seeded with ``seed`` (the same losses in every run)."""

    every: int = 0
    p: float = 0.0
    seed: int = 14


@dataclass(frozen=True)
class Query:
    """One query as received, for assertions on attempts, retries and TCP use."""

    name: str  # lower case, no trailing dot
    rdtype: str  # "A", "TXT", ...
    transport: str  # "udp" or "tcp"
    id: int


def _key(name: str | dns.name.Name) -> str:
    return str(name).rstrip(".").lower()


class FaultDns:
    """The server: one thread serving UDP and TCP on 127.0.0.1:``port`` until stop()."""

    def __init__(self) -> None:
        self.default = Action(Fault.NXDOMAIN)
        self.port = 0
        self.queries: list[Query] = []
        # Bugs in this server, raised by stop() so a test never blames the client for them.
        self.errors: list[BaseException] = []
        self._rules: dict[str, list[Action]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(5782)
        self._sel = selectors.DefaultSelector()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._conns: dict[socket.socket, bytearray] = {}
        self._wire: dict[int, bytes] = {}  # the last query's wire format by ID
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.loss: Loss | None = None
        self.lost: list[Query] = []  # queries Loss took, in arrival order
        self.arrivals: list[float] | None = None  # kernel arrival times, once stamp_arrivals()
        self._udp_seen = 0
        self._loss_rng: random.Random | None = None

    # -- configuration -----------------------------------------------------------------------

    def rule(self, name: str, fault: Fault = Fault.ANSWER, **data: Any) -> None:
        """Treat every query for ``name`` (or, as ``*.zone``, zone and names below it) so.

        ``data`` are the other fields of :class:`Action` (a, txt, ttl, delay_ms, then_real, cname).
        """
        self.sequence(name, [Action(fault, **data)])

    def sequence(self, name: str, actions: Iterable[Action]) -> None:
        """Treat successive queries for ``name`` with successive actions; the last one repeats."""
        actions = list(actions)
        if not actions:
            raise ValueError("sequence needs at least one action")
        with self._lock:
            self._rules[_key(name)] = actions

    def clear(self) -> None:
        """Forget all rules and counts (the default action stays)."""
        with self._lock:
            self._rules.clear()
            self.queries.clear()

    def count(self, name: str, *, transport: str | None = None, rdtype: str | None = None) -> int:
        """How many queries for ``name`` arrived (optionally only over one transport / type)."""
        key = _key(name)
        with self._lock:
            return sum(
                1
                for q in self.queries
                if q.name == key
                and (transport is None or q.transport == transport)
                and (rdtype is None or q.rdtype == rdtype.upper())
            )

    def stamp_arrivals(self) -> None:
        """Record every UDP query's arrival time as the kernel stamped it (SO_TIMESTAMP)."""
        assert self._udp is not None, "start() first"
        self._udp.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
        self.arrivals = []

    def _lose(self, wire: bytes) -> bool:
        """Whether Loss takes this UDP query (recorded in ``lost`` if so)."""
        loss = self.loss
        if loss is None:
            return False
        self._udp_seen += 1
        if self._loss_rng is None:
            self._loss_rng = random.Random(loss.seed)
        taken = bool(loss.every and self._udp_seen % loss.every == 0)
        taken = (loss.p > 0 and self._loss_rng.random() < loss.p) or taken
        if taken:
            with contextlib.suppress(dns.exception.DNSException):
                q = dns.message.from_wire(wire)
                if q.question:
                    name = _key(q.question[0].name)
                    rdtype = dns.rdatatype.to_text(q.question[0].rdtype)
                    with self._lock:
                        self.lost.append(Query(name, rdtype, "udp", q.id))
        return taken

    def _recv_stamped(self, sock: socket.socket) -> tuple[bytes, Any]:
        wire, ancdata, _flags, peer = sock.recvmsg(65535, socket.CMSG_SPACE(_TIMEVAL.size))
        assert self.arrivals is not None
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP:
                sec, usec = _TIMEVAL.unpack(data[: _TIMEVAL.size])
                self.arrivals.append(sec + usec / 1e6)
        return wire, peer

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to send queries to."""
        return (HOST, self.port)

    def _action_for(self, name: str) -> Action:
        """The action for the next query of ``name``; consumes one step of a sequence."""
        with self._lock:
            actions = self._rules.get(name)
            if actions is None:
                labels = name.split(".")
                # Longest matching "*." rule first: labels[i:] shrinks from the full name.
                for i in range(len(labels)):
                    actions = self._rules.get("*." + ".".join(labels[i:]))
                    if actions is not None:
                        break
            if not actions:
                return self.default
            return actions.pop(0) if len(actions) > 1 else actions[0]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FaultDns:
        """Bind UDP and TCP on one free port and serve in a daemon thread."""
        for _attempt in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((HOST, port))
            except OSError:  # the TCP side of that port is taken: try another
                udp.close()
                tcp.close()
                continue
            break
        else:
            raise RuntimeError("no port free for both UDP and TCP")
        tcp.listen(16)
        udp.setblocking(False)
        tcp.setblocking(False)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._sel.register(udp, selectors.EVENT_READ, self._on_udp)
        self._sel.register(tcp, selectors.EVENT_READ, self._on_accept)
        self._thread = threading.Thread(target=self._serve, name=f"faultdns:{port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (bounded: it polls every 50 ms) and close every socket.

        Raises if a handler failed while serving: the test's DNS peer misbehaved unplanned.
        """
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for sock in [*self._conns, self._udp, self._tcp]:
            if sock is not None:
                sock.close()
        self._conns.clear()
        self._sel.close()
        if self.errors:
            raise RuntimeError(f"faultdns handler failed: {self.errors[0]!r}") from self.errors[0]

    def __enter__(self) -> FaultDns:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            timeout = 0.05
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - time.monotonic()))
            for key, _events in self._sel.select(timeout):
                self._guarded(key.data, key.fileobj)
            while self._timers and self._timers[0][0] <= time.monotonic():
                self._guarded(heapq.heappop(self._timers)[2])

    def _guarded(self, fn: Callable[..., None], *args: object) -> None:
        """Run a handler; a bug in it is recorded for stop() instead of killing the thread."""
        try:
            fn(*args)
        except Exception as exc:
            self.errors.append(exc)

    def _later(self, delay_ms: int, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the server thread after ``delay_ms``, without blocking other queries."""
        heapq.heappush(self._timers, (time.monotonic() + delay_ms / 1000, next(self._seq), fn))

    # -- transports --------------------------------------------------------------------------

    def _on_udp(self, sock: socket.socket) -> None:
        try:
            if self.arrivals is not None:
                wire, peer = self._recv_stamped(sock)
            else:
                wire, peer = sock.recvfrom(65535)
        except OSError:
            return
        if self._lose(wire):
            return
        query = self._parse(wire, "udp")
        if query is not None:
            self._udp_reply(query, peer)

    def _on_accept(self, sock: socket.socket) -> None:
        try:
            conn, _peer = sock.accept()
        except OSError:
            return
        conn.setblocking(False)
        self._conns[conn] = bytearray()
        self._sel.register(conn, selectors.EVENT_READ, self._on_tcp)

    def _on_tcp(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65535)
        except OSError:
            data = b""
        if not data:
            self._sel.unregister(conn)
            del self._conns[conn]
            conn.close()
            return
        buf = self._conns[conn]
        buf += data
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            size = struct.unpack("!H", buf[:2])[0]
            wire = bytes(buf[2 : 2 + size])
            del buf[: 2 + size]
            query = self._parse(wire, "tcp")
            if query is not None:
                self._tcp_reply(query, conn)

    def _parse(self, wire: bytes, transport: str) -> dns.message.Message | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        self._wire[query.id] = wire  # for RAW replies, built from the query's bytes
        if not query.question:
            return None
        q = query.question[0]
        record = Query(_key(q.name), dns.rdatatype.to_text(q.rdtype), transport, query.id)
        with self._lock:
            self.queries.append(record)
        return query

    # -- behaviours --------------------------------------------------------------------------

    def _udp_reply(self, query: dns.message.Message, peer: tuple[str, int]) -> None:
        action = self._action_for(_key(query.question[0].name))
        udp = self._udp
        assert udp is not None

        def send(wire: bytes) -> None:
            udp.sendto(wire, peer)

        def send_real() -> None:
            send(self._answer(query, action).to_wire())

        fault = action.fault
        if fault is Fault.DROP:
            return
        if fault is Fault.DELAY:
            self._later(action.delay_ms, send_real)
        elif fault is Fault.TRUNCATE:
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.TC
            send(reply.to_wire())
        elif fault is Fault.WRONG_PORT:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                other.bind((HOST, 0))
                other.sendto(self._answer(query, action).to_wire(), peer)
        elif fault is Fault.SPOOF_THEN_REAL:
            spoof = self._answer(query, Action(a=(SPOOF_A,), ttl=action.ttl))
            spoof.id = (query.id + 1) & 0xFFFF
            send(spoof.to_wire())
            self._later(action.delay_ms, send_real)
            return
        else:
            send(self._reply(query, action))
        if action.then_real and fault in (Fault.WRONG_ID, Fault.WRONG_QUESTION, Fault.WRONG_PORT):
            self._later(action.delay_ms, send_real)

    def _tcp_reply(self, query: dns.message.Message, conn: socket.socket) -> None:
        action = self._action_for(_key(query.question[0].name))

        def send(wire: bytes) -> None:
            with contextlib.suppress(OSError):  # the client gave up: nothing to tell it
                conn.sendall(struct.pack("!H", len(wire)) + wire)

        if action.fault is Fault.DROP:
            return
        if action.fault is Fault.DELAY:
            self._later(action.delay_ms, lambda: send(self._answer(query, action).to_wire()))
            return
        send(self._reply(query, action))

    def _reply(self, query: dns.message.Message, action: Action) -> bytes:
        """The wire reply for the faults that are one immediate message on either transport."""
        fault = action.fault
        rcodes = {
            Fault.NXDOMAIN: dns.rcode.NXDOMAIN,
            Fault.SERVFAIL: dns.rcode.SERVFAIL,
            Fault.REFUSED: dns.rcode.REFUSED,
            Fault.NODATA: dns.rcode.NOERROR,
            Fault.FORMERR: dns.rcode.FORMERR,
            Fault.NOTIMP: dns.rcode.NOTIMP,
        }
        if fault in rcodes:
            reply = dns.message.make_response(query)
            reply.set_rcode(rcodes[fault])
            if not action.question:
                reply.question = []
            return reply.to_wire()
        if fault is Fault.RAW:
            assert action.build is not None, "Fault.RAW needs build="
            return action.build(self._wire[query.id])
        if fault is Fault.GARBAGE:
            return self._garbage(query.id)
        if fault is Fault.WRONG_ID:
            reply = self._answer(query, action)
            reply.id = (query.id + 1) & 0xFFFF
            return reply.to_wire()
        if fault is Fault.WRONG_QUESTION:
            other = dns.name.from_text("wrong-question", origin=query.question[0].name)
            return self._answer(query, action, owner=other).to_wire()
        # ANSWER, and over TCP also TRUNCATE / WRONG_PORT / SPOOF_THEN_REAL: the real answer.
        return self._answer(query, action).to_wire()

    def _answer(
        self, query: dns.message.Message, action: Action, owner: dns.name.Name | None = None
    ) -> dns.message.Message:
        """The real answer: A or TXT records of ``action`` for the question (at ``owner``)."""
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        q = query.question[0]
        if owner is not None:
            # A reply about another name: its question section says so too.
            reply.question = [dns.rrset.RRset(owner, q.rdclass, q.rdtype)]
        name = owner or q.name
        if action.cname is not None:
            target = dns.name.from_text(action.cname)
            reply.answer.append(dns.rrset.from_text(name, action.ttl, "IN", "CNAME", str(target)))
            name = target
        if q.rdtype == dns.rdatatype.A and action.a:
            reply.answer.append(
                dns.rrset.from_text_list(name, action.ttl, "IN", "A", list(action.a))
            )
        elif q.rdtype == dns.rdatatype.TXT and action.txt:
            texts = ['"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in action.txt]
            reply.answer.append(dns.rrset.from_text_list(name, action.ttl, "IN", "TXT", texts))
        return reply

    def _garbage(self, query_id: int) -> bytes:
        """The query's ID (so it looks addressed to the client) and bytes that do not parse."""
        while True:
            size = self._rng.randint(12, 64)
            wire = struct.pack("!H", query_id) + self._rng.randbytes(size)
            try:
                dns.message.from_wire(wire)
            except Exception:  # any parse failure is what we want
                return wire


# -- replies built byte by byte (Fault.RAW) --------------------------------------------------------

CLASS_IN = 1
CLASS_CH = 3
QUESTION = 0x0C  # an owner given as this int is a compression pointer to it: the question's name


def name_wire(name: str) -> bytes:
    """A name as uncompressed wire labels (``""`` is the root)."""
    labels = [p.encode() for p in name.rstrip(".").split(".") if p]
    return b"".join(bytes([len(p)]) + p for p in labels) + b"\x00"


def rr(
    owner: str | int | bytes,
    *,
    a: str | None = None,
    rdtype: int = 1,
    rdclass: int = CLASS_IN,
    ttl: int = 300,
    rdata: bytes | None = None,
    rdlength: int | None = None,
) -> bytes:
    """One resource record: owner a name, a pointer (int) or raw bytes; rdata an address (``a``)
    or raw bytes; ``rdlength`` may lie about the rdata's length."""
    if isinstance(owner, int):
        head = struct.pack("!H", 0xC000 | owner)
    elif isinstance(owner, bytes):
        head = owner
    else:
        head = name_wire(owner)
    body = socket.inet_aton(a) if a is not None else (rdata or b"")
    size = len(body) if rdlength is None else rdlength
    return head + struct.pack("!HHIH", rdtype, rdclass, ttl, size) + body


def reply_wire(
    query: bytes,
    *,
    rcode: int = 0,
    answers: Sequence[bytes] = (),
    question: bool = True,
    opcode: int = 0,
    ancount: int | None = None,
) -> bytes:
    """A reply to ``query`` (its wire format): its ID, QR|AA|RD|RA, the RCODE, the question
    echoed unless ``question=False``, then ``answers`` as given (``ancount`` may lie)."""
    qd = query[12:] if question else b""
    flags = 0x8000 | opcode << 11 | 0x0400 | 0x0100 | 0x0080 | rcode
    count = len(answers) if ancount is None else ancount
    header = query[:2] + struct.pack("!HHHHH", flags, 1 if question else 0, count, 0, 0)
    return header + qd + b"".join(answers)
