"""A run's UDP sockets: opened per server on first use, connected, each on a random port.

Each socket is connected to its server, so the kernel discards datagrams from any other
address or port before they reach us (they cannot be counted: the price of that filter, which
also saves the address handling of every call). A lookup's key in the pending table is its
socket's index shifted past the 16 bits of the query ID (a "key base") or'ed with the ID.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from rblwatch.resolver.path import Path
from rblwatch.resolver.vocab import Route, Template

log = logging.getLogger("rblwatch.resolver")


class Sockets:
    """The sockets of one run, by server, with the readers registered on the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        per_server: int,
        receive_buffer: int,
        on_readable: Callable[[int], object],
        path_to: Callable[[tuple[str, int]], Path],
    ) -> None:
        self.loop = loop
        self.per_server = per_server
        self.receive_buffer = receive_buffer
        self.on_readable = on_readable  # called with the socket's index
        self.socks: list[socket.socket] = []
        # their descriptors: os.read/os.write parse their arguments for a fraction of what
        # socket.recv/send do (~800 instructions a lookup), and read(2)/write(2) on a
        # connected datagram socket are recv(2)/send(2) without flags
        self.fds: list[int] = []
        # each socket's server's path (window, RTT), by socket index like `fds`
        self.path_to = path_to
        self.paths: list[Path] = []
        self.by_server: dict[tuple[str, int], list[int]] = {}

    def open(self, server: tuple[str, int]) -> list[int]:
        """Sockets connected to `server`, each bound to a random local port."""
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        idxs = []
        for _ in range(self.per_server):
            s = socket.socket(family, socket.SOCK_DGRAM)
            try:
                s.setblocking(False)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
                s.connect(server)
            except OSError:
                s.close()  # not kept, so closed here: a server we cannot reach leaks nothing
                raise
            i = len(self.socks)
            self.socks.append(s)
            self.fds.append(s.fileno())
            self.paths.append(self.path_to(server))
            self.loop.add_reader(s.fileno(), self.on_readable, i)
            idxs.append(i)
        self.by_server[server] = idxs
        return idxs

    def to(self, server: tuple[str, int]) -> list[int] | None:
        """The indices of the sockets to `server`, opened if need be; None if that failed."""
        idxs = self.by_server.get(server)
        if idxs:
            return idxs
        try:
            return self.open(server)
        except OSError as exc:
            log.warning("cannot open a socket to nameserver %s port %d: %s", *server, exc)
            return None

    def close(self) -> None:
        for s in self.socks:
            self.loop.remove_reader(s.fileno())
            s.close()
        self.socks.clear()
        self.fds.clear()
        self.paths.clear()

    def route(self, tpls: tuple[Template, ...]) -> list[Route]:
        """For each template of a job: its index, itself, its wire tail and its key bases.

        An empty tuple of bases means the template cannot be sent (no server, or no socket
        to it).
        """
        route: list[Route] = []
        for ti, tpl in enumerate(tpls):
            idxs: list[int] | None = None
            if tpl.servers:
                idxs = self.to(tpl.servers[0])
            bases = tuple(si << 16 for si in idxs or ())
            route.append((ti, tpl, tpl.tail, bases, len(bases)))
        return route

    @staticmethod
    def cacheable(tpls: tuple[Template, ...], route: list[Route]) -> tuple[Template, ...] | None:
        """`tpls`, unless a socket to one of its servers failed to open: then the next job
        works its route out again (and tries to open it again), as a single failure (say,
        out of descriptors for a moment) must not fail every later lookup of the run."""
        if any(n == 0 and tpl.servers for _ti, tpl, _tail, _bases, n in route):
            return None
        return tpls

    def one_path(self, route: list[Route]) -> Path | None:
        """The path every template of `route` is sent on, if there is one: the send loop's
        fast case (one server, every template sendable), which books the window in bulk."""
        paths = {self.paths[b >> 16] for _ti, _tpl, _tail, bases, _n in route for b in bases}
        if len(paths) != 1 or any(n == 0 for *_rest, n in route):
            return None
        return paths.pop()
