"""The one DNS interface the hygiene checks use, and its implementation on the configured
nameservers.

Every hygiene lookup goes through a `Dns`: the daemon's configured nameservers and timeout
(`resolver:`), never a library's private resolver or the system's behind its back (pyspf's
own lookups are routed here too, `spf.py`). A pass keeps one `CachingDns`, which asks each
(name, type) once — ten domains' SPF against twenty IPs read each record once, not twenty
times — and counts the queries it sent (for the budget and the metrics).

Answers are plain values: A/AAAA addresses as text, PTR/CNAME/NS names without the trailing
dot in lower case, MX as (preference, exchange), TXT as the tuple of a record's strings (bytes,
as on the wire: SPF and DKIM join them). A name that does not exist and a name without records
of the type are both an empty answer (`Records.exists` tells them apart, for SPF's void
lookups and DMARC's fallback); a timeout, SERVFAIL or REFUSED raises `DnsTempError`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

RDTYPES = ("A", "AAAA", "MX", "PTR", "TXT", "CNAME", "NS")

Value = str | tuple[int, str] | tuple[bytes, ...]


class DnsTempError(Exception):
    """The DNS could not answer now (timeout, SERVFAIL, REFUSED, no server): an `error`."""


class Records(NamedTuple):
    values: tuple[Value, ...]
    exists: bool = True  # False: NXDOMAIN (the name does not exist at all)


class Dns(Protocol):
    """What a hygiene check may ask. `queries` counts what was sent to a server."""

    queries: int

    def lookup(self, name: str, rdtype: str) -> Records: ...


def txt_strings(records: Records) -> list[str]:
    """Each TXT record's strings joined (RFC 7208 §3.3, RFC 6376 §3.6.2.2), as text."""
    out = []
    for v in records.values:
        if isinstance(v, tuple):
            out.append(b"".join(x for x in v if isinstance(x, bytes)).decode("utf-8", "replace"))
    return out


def _value(rdata: object, rdtype: str) -> Value:
    if rdtype in ("A", "AAAA"):
        return str(rdata.address)  # type: ignore[attr-defined]
    if rdtype == "MX":
        exchange = rdata.exchange.to_text(omit_final_dot=True).lower()  # type: ignore[attr-defined]
        return (int(rdata.preference), exchange)  # type: ignore[attr-defined]
    if rdtype == "TXT":
        return tuple(rdata.strings)  # type: ignore[attr-defined]
    return str(rdata.target.to_text(omit_final_dot=True)).lower()  # type: ignore[attr-defined]


class CachingDns:
    """`Dns` on the configured nameservers ((host, port) pairs; () = resolv.conf's), one
    query per (name, type) per instance, errors included: a dead server costs one timeout
    per name, not one per check. Safe to share between threads."""

    def __init__(
        self, nameservers: Sequence[tuple[str, int]] = (), timeout: float = 2.0, attempts: int = 2
    ) -> None:
        if nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(h, p) for h, p in nameservers
            ]
        else:
            self._resolver = dns.resolver.Resolver()
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout * max(1, attempts)
        self._resolver.retry_servfail = False
        self._cache: dict[tuple[str, str], Records | DnsTempError] = {}
        self._asking: dict[tuple[str, str], threading.Event] = {}
        self._lock = threading.Lock()
        self._abandoned = threading.Event()
        self.queries = 0

    def abandon(self) -> None:
        """End the pass using this instance: every lookup from now on raises DnsTempError,
        so its threads stop at their next lookup instead of finishing a pass nobody awaits."""
        self._abandoned.set()

    def lookup(self, name: str, rdtype: str) -> Records:
        key = (name.lower().rstrip("."), rdtype)
        while True:
            if self._abandoned.is_set():
                raise DnsTempError("the pass was abandoned (past its deadline)")
            with self._lock:
                hit = self._cache.get(key)
                asking = self._asking.get(key) if hit is None else None
                if hit is None and asking is None:
                    mine = self._asking[key] = threading.Event()
            if hit is not None:
                break
            if asking is not None:
                asking.wait()  # another thread asks this very question now: one query, not two
                continue
            try:
                hit = self._ask(*key)
                with self._lock:
                    self._cache[key] = hit
            finally:  # an unexpected failure: a waiter asks instead, never waits for ever
                with self._lock:
                    del self._asking[key]
                mine.set()
            break
        if isinstance(hit, DnsTempError):
            raise hit
        return hit

    def _ask(self, name: str, rdtype: str) -> Records | DnsTempError:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.SyntaxError:
            # too long, a label over 63 octets, an empty label: no such name can exist, so
            # none is asked (an error would leave the check undecided for ever)
            return Records((), exists=False)
        with self._lock:
            self.queries += 1
        try:
            answer = self._resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return Records((), exists=False)
        except dns.exception.DNSException as e:
            return _temp(e)
        if answer.rrset is None:
            return Records(())
        return Records(tuple(_value(r, rdtype) for r in answer.rrset))


def _temp(e: dns.exception.DNSException) -> DnsTempError:
    if isinstance(e, dns.exception.Timeout):
        return DnsTempError("DNS timeout")
    if isinstance(e, dns.resolver.NoNameservers):
        return DnsTempError("no nameserver answered (SERVFAIL or REFUSED)")
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return DnsTempError(f"DNS error: {text}")


__all__ = ["RDTYPES", "CachingDns", "Dns", "DnsTempError", "Records", "Value", "txt_strings"]
