"""An in-memory `Dns` for the hygiene checks' unit tests (and the RFC 7208 suite).

Zone data as {(name, rdtype): [values]} in `rblwatch.hygiene.dns`'s value shapes; names
listed in `missing` are NXDOMAIN, names in `broken` raise DnsTempError (a timeout), and any
other (name, type) is an empty answer of a name that exists. Every lookup is counted and
logged, so tests can assert what was asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rblwatch.hygiene.dns import DnsTempError, Records, Value


class StaticDns:
    def __init__(
        self,
        records: Mapping[tuple[str, str], Sequence[Value]] | None = None,
        *,
        missing: Iterable[str] = (),
        broken: Iterable[str] = (),
    ) -> None:
        self.records = {
            (n.lower().rstrip("."), t): tuple(v) for (n, t), v in (records or {}).items()
        }
        self.missing = {n.lower().rstrip(".") for n in missing}
        self.broken = {n.lower().rstrip(".") for n in broken}
        self.queries = 0
        self.asked: list[tuple[str, str]] = []

    def add(self, name: str, rdtype: str, *values: Value) -> None:
        key = (name.lower().rstrip("."), rdtype)
        self.records[key] = self.records.get(key, ()) + values

    def txt(self, name: str, *texts: str) -> None:
        """TXT records, each one string (split in 255-byte chunks as a server would)."""
        for text in texts:
            raw = text.encode()
            chunks = tuple(raw[i : i + 255] for i in range(0, len(raw), 255)) or (b"",)
            self.add(name, "TXT", chunks)

    def lookup(self, name: str, rdtype: str) -> Records:
        key = (name.lower().rstrip("."), rdtype)
        self.queries += 1
        self.asked.append(key)
        if key[0] in self.broken:
            raise DnsTempError("DNS timeout")
        if key[0] in self.missing:
            return Records((), exists=False)
        return Records(self.records.get(key, ()))
