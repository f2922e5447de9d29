"""IP addresses in bounce text: which ones could be a sending server's.

Pure. "Public-looking" means not loopback, link-local, multicast, unspecified, RFC 1918,
shared (100.64/10) or unique-local: the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32) count as public on purpose — they stand in for public
addresses in examples and tests, and a real bounce never carries them otherwise.
"""

from __future__ import annotations

import ipaddress
import re

_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
_BRACKETED = re.compile(r"[\[(]\s*(?:IPv6:)?([0-9A-Fa-f:.]{7,45})\s*[\])]")
_BARE_V4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?!\.?\d)")


def public_ip(text: str) -> str | None:
    """The address in canonical form when `text` is a public-looking IP, else None."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return None
    if any(ip.version == n.version and ip in n for n in _NOT_PUBLIC):
        return None
    return str(ip)


def bracketed_ips(text: str) -> list[str]:
    """Public-looking addresses written in brackets or parentheses: '[192.0.2.22]', '(IPv6:…)'."""
    return [ip for m in _BRACKETED.finditer(text) if (ip := public_ip(m[1])) is not None]


def bare_ipv4s(text: str) -> list[str]:
    """Public-looking IPv4 addresses anywhere in `text`, in order."""
    return [ip for m in _BARE_V4.finditer(text) if (ip := public_ip(m[1])) is not None]


__all__ = ["bare_ipv4s", "bracketed_ips", "public_ip"]
