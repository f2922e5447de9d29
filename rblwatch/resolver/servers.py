"""Nameserver addresses: as recvfrom reports them, and the system's from resolv.conf."""

from __future__ import annotations

import socket


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
