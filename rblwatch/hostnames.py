"""Resolving `hostnames:` entries to address targets, afresh every cycle (SPEC §6).

An adapter (it does DNS I/O through dnspython). A hostname that fails to resolve is reported,
never raised: one broken MX record must not stop the other targets from being checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from rblwatch.model import Kind, Target, kind_of_value
from rblwatch.targets import TargetError, normalize_domain

_RDTYPES = ("A", "AAAA")
_NXDOMAIN = "no such domain (NXDOMAIN)"
_NO_RECORDS = "no A or AAAA records"
# a name that answered, with no address: a mail-only domain, not a failed lookup
NO_ADDRESSES = frozenset({_NXDOMAIN, _NO_RECORDS})


def _make_resolver(
    nameservers: Sequence[tuple[str, int]], timeout: float
) -> dns.asyncresolver.Resolver:
    """A resolver on the given (host, port) pairs, or on resolv.conf when there are none."""
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        # Do53Nameserver carries its own port; Resolver.port would force one port on all
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in nameservers]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _describe(exc: dns.exception.DNSException, timeout: float) -> str:
    """One short line for a failed lookup (dnspython's own texts run to several lines)."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return _NXDOMAIN
    if isinstance(exc, dns.exception.Timeout):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, dns.resolver.NoNameservers):
        return "no nameserver gave a usable answer (SERVFAIL or REFUSED)"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def _lookup(
    resolver: dns.asyncresolver.Resolver, qname: dns.name.Name, rdtype: str, timeout: float
) -> tuple[list[str], str | None]:
    """The addresses of one type, and an error message if the lookup failed (not just empty)."""
    try:
        answer = await resolver.resolve(qname, rdtype, search=False)
    except dns.resolver.NoAnswer:
        return [], None
    except dns.exception.DNSException as e:
        return [], _describe(e, timeout)
    # an RRset has no order (round-robin servers shuffle it); sorting keeps cycles comparable.
    # str(ip_address) is the canonical form targets.py gives a written address.
    addresses = sorted(ipaddress.ip_address(rdata.address) for rdata in answer)
    return [str(address) for address in addresses], None


async def _resolve_one(
    resolver: dns.asyncresolver.Resolver, name: str, timeout: float
) -> tuple[list[str], str | None]:
    """All addresses of one hostname, and an error message for the part that failed.

    Half an answer (A fine, AAAA timed out) returns the addresses found *and* an error, so the
    caller checks what it can while the user still hears that something was missed.
    """
    try:
        qname = dns.name.from_text(normalize_domain(name))
    except TargetError as e:
        return [], str(e)
    results = await asyncio.gather(*(_lookup(resolver, qname, t, timeout) for t in _RDTYPES))
    addresses = [address for found, _ in results for address in found]
    errors = {rdtype: err for rdtype, (_, err) in zip(_RDTYPES, results, strict=True) if err}
    if len(set(errors.values())) == 1:
        return addresses, next(iter(errors.values()))
    if errors:
        return addresses, "; ".join(f"{rdtype}: {err}" for rdtype, err in errors.items())
    return addresses, None if addresses else _NO_RECORDS


async def resolve_hostnames(
    names: Sequence[str],
    *,
    nameservers: Sequence[tuple[str, int]] = (),
    timeout: float = 2.0,
    group: str = "",
) -> tuple[list[Target], list[tuple[str, str]]]:
    """Address targets for `names` (source = the hostname), and (hostname, error) for failures.

    Names resolve concurrently; an address reached through two names is returned once, under
    the first. `timeout` bounds each name's A and AAAA lookups, which run side by side.
    """
    try:
        resolver = _make_resolver(nameservers, timeout)
    except dns.resolver.NoResolverConfiguration:
        return [], [(name, "no system resolver configured (resolv.conf)") for name in names]
    results = await asyncio.gather(*(_resolve_one(resolver, name, timeout) for name in names))
    targets: list[Target] = []
    failures: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, (addresses, err) in zip(names, results, strict=True):
        for address in addresses:
            if address not in seen:
                seen.add(address)
                targets.append(Target(address, kind_of_value(address, Kind.IP), group, name))
        if err is not None:
            failures.append((name, err))
    return targets, failures
