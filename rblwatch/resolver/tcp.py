"""The TCP fallback: a lookup whose UDP reply was truncated is asked again over TCP.

The rare path (a DNSBL answer seldom fills a datagram), so plain asyncio streams, one
connection per retry, and the reply read by the same parser as every UDP reply
(`wire.parse_reply`): one rule for what is believed, whichever the transport.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

from rblwatch import wire
from rblwatch.resolver.vocab import NO_RDATA, Status

log = logging.getLogger("rblwatch.resolver")

_LENGTH = struct.Struct(">H")
# status, rcode, rdatas, TTL: what the lookup ends with
Ending = tuple[int, int, list[bytes], int | None]


async def exchange(server: tuple[str, int], qid: int, q: bytes, timeout: float) -> Ending:
    """Ask question `q` under `qid` over TCP and read the reply; never raises but for
    cancellation (a failure is a status, so the lookup always ends)."""
    try:
        async with asyncio.timeout(timeout):
            reply = await _ask(server, qid, q)
    except TimeoutError:
        return Status.TIMEOUT, 0, NO_RDATA, None
    except (OSError, EOFError):  # EOFError: asyncio.IncompleteReadError, a connection cut
        return Status.NETWORK, 0, NO_RDATA, None
    except wire.Malformed:
        return Status.BAD_REPLY, 0, NO_RDATA, None
    except Exception:  # anything else must still end the lookup, or the run waits forever
        log.exception("TCP retry failed unexpectedly")
        return Status.BAD_REPLY, 0, NO_RDATA, None
    if reply is None:  # not a reply to this query
        return Status.BAD_REPLY, 0, NO_RDATA, None
    return Status.OK, reply.rcode, reply.rdatas, reply.ttl


async def _ask(server: tuple[str, int], qid: int, q: bytes) -> wire.Reply | None:
    reader, writer = await asyncio.open_connection(server[0], server[1])
    try:
        query = _LENGTH.pack(qid) + wire.QUERY_HEADER_TAIL + q
        writer.write(_LENGTH.pack(len(query)) + query)
        await writer.drain()
        (size,) = _LENGTH.unpack(await reader.readexactly(2))
        return wire.parse_reply(await reader.readexactly(size), qid, q)
    finally:
        writer.close()


class TcpRetries:
    """The TCP retries in flight for one run: each ends its lookup through `finish`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self.loop = loop
        self.timeout = timeout
        self.tasks: set[asyncio.Task[None]] = set()

    def start(
        self, server: tuple[str, int], qid: int, q: bytes, finish: Callable[[Ending], None]
    ) -> None:
        task = self.loop.create_task(self._run(server, qid, q, finish))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(
        self, server: tuple[str, int], qid: int, q: bytes, finish: Callable[[Ending], None]
    ) -> None:
        finish(await exchange(server, qid, q, self.timeout))

    def close(self) -> None:
        for t in self.tasks:
            t.cancel()
