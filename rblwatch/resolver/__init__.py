"""The async DNS client, built for throughput: many lookups in flight over a few UDP sockets.

Why not dnspython's resolver on the hot path: it builds message objects and raises NXDOMAIN as
an exception for every lookup (~540 µs each), while a DNSBL scan is almost entirely NXDOMAIN.
Here a query's wire format is a prebuilt per-list tail (zone, type, class) behind a patched
header and the target's labels, and a reply is read only as far as its header, question and
answer records (`rblwatch.wire`, checked against dnspython by a differential test).

Security: replies are accepted only from the address and port the query went to, with the
query's ID and its exact question (or none, for the error replies dnspython takes without
one). Each socket is connected to its server, so the kernel discards datagrams from any other
address or port; whatever does arrive with the wrong ID or question is dropped and counted
(`stats.dropped`). IDs come from the OS's random source and every run opens fresh sockets on
random ports.

Results are handed to a callback rather than collected: a /16 scan must not hold a quarter of
a million result objects alive.

The parts: `client` (Resolver), `loop` (one run's send and receive loops and timers),
`sockets`, `window` (the shared window and max_qps), `tcp` (the fallback), `servers`
(nameserver addresses), `vocab` (what they all speak).
"""

from __future__ import annotations

from rblwatch.resolver.client import Resolver
from rblwatch.resolver.servers import normalize_server, system_nameservers
from rblwatch.resolver.vocab import (
    Durations,
    Job,
    ResolverStats,
    ResultCallback,
    RunResult,
    Status,
    Template,
)
from rblwatch.wire import QTYPE_A, QTYPE_TXT

__all__ = [
    "QTYPE_A",
    "QTYPE_TXT",
    "Durations",
    "Job",
    "Resolver",
    "ResolverStats",
    "ResultCallback",
    "RunResult",
    "Status",
    "Template",
    "normalize_server",
    "system_nameservers",
]
