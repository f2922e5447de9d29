"""Turning what users write (addresses, CIDRs, domains, @FILE) into canonical Targets (SPEC §6).

Pure: no sockets, no clocks. The only I/O is `read_target_file`, which the command line needs
for `@FILE`. Networks are handled as integer ranges rather than `ipaddress` objects, because a
/16 is 65,536 targets and excluding a few /24s from it must stay linear, not quadratic.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import socket
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from rblwatch.model import TARGET_KINDS, Target, TargetKind, a_label
from rblwatch.targetlist import TargetList, TargetListBuilder

IPV6_MIN_PREFIX = 120  # a /120 is 256 addresses; anything larger is almost surely a mistake
_MAX_NAME = 253
_MAX_LABEL = 63
_MAX_V4 = 2**32 - 1
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")
# IDNA (RFC 3490 §3.1, UTS 46) treats these as label separators too, and so do we
_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class TargetError(ValueError):
    """A target the user wrote cannot be used; the message is one line naming it."""


@dataclass(frozen=True, slots=True)
class _Range:
    """An inclusive range of addresses of one family, with the text it came from."""

    kind: TargetKind
    first: int
    last: int
    source: str


@dataclass(frozen=True, slots=True)
class _Domain:
    value: str
    source: str


_Spec = _Range | _Domain


def _bad(text: str, why: str) -> TargetError:
    return TargetError(f"target {text!r}: {why}")


# --- parsing one piece of text ----------------------------------------------------------------


# the address kinds by IP version, from the kind table
_BY_VERSION = {info.ip_version: k for k, info in TARGET_KINDS.items() if info.ip_version}


def _kind_of(version: int) -> TargetKind:
    return _BY_VERSION[version]


def _parse_address(text: str) -> _Range:
    if ":" not in text:
        # fast path for the common case (a /16 in a target file is 65,536 of these): the C
        # parser is as strict as ipaddress (no leading zeros, no short forms)
        try:
            n = int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
            return _Range(TargetKind.IPV4, n, n, text)
        except OSError:
            pass
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise _bad(text, f"not a valid IPv{6 if ':' in text else 4} address") from None
    n = int(addr)
    return _Range(_kind_of(addr.version), n, n, text)


def _parse_network(text: str, ipv4_min_prefix: int) -> _Range:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _bad(text, "not an address, network or domain") from None
    if int(net.network_address) != int(ipaddress.ip_address(text.partition("/")[0])):
        # strict=True would say so too, but only after we could not tell which error it was
        raise _bad(text, f"host bits set (did you mean {net}?)")
    if net.version == 4 and net.prefixlen < ipv4_min_prefix:
        raise _bad(
            text,
            f"IPv4 networks larger than /{ipv4_min_prefix} are refused "
            f"(set limits.ipv4_min_prefix to {net.prefixlen} or lower to allow it)",
        )
    if net.version == 6 and net.prefixlen < IPV6_MIN_PREFIX:
        raise _bad(text, f"IPv6 networks larger than /{IPV6_MIN_PREFIX} are refused")
    first = int(net.network_address)
    return _Range(_kind_of(net.version), first, first + net.num_addresses - 1, text)


def _parse_ip(text: str, ipv4_min_prefix: int) -> _Range:
    """An address or a CIDR, or TargetError."""
    if "%" in text:  # ipaddress accepts scoped IPv6 (fe80::1%eth0); a DNS list cannot
        raise _bad(text, "scoped IPv6 addresses cannot be looked up")
    if "/" in text:
        return _parse_network(text, ipv4_min_prefix)
    return _parse_address(text)


def _looks_like_ip(text: str) -> bool:
    # "999.1.1.1" is syntactically a host name, but nobody means it as one: a TLD is never
    # all digits, and the user deserves "not a valid IPv4 address" rather than a lookup.
    return "/" in text or ":" in text or _DIGITS_AND_DOTS.fullmatch(text) is not None


def _to_a_label(label: str, text: str) -> str:
    try:
        return a_label(label)
    except ValueError as e:
        raise _bad(text, str(e)) from None


def _check_label(label: str, text: str) -> None:
    if not label:
        raise _bad(text, "empty label")
    if len(label) > _MAX_LABEL:
        raise _bad(text, f"label longer than {_MAX_LABEL} characters")
    if _LABEL.fullmatch(label) is None:
        raise _bad(
            text,
            "not an address, network or domain (a domain label holds letters, digits, "
            "'-' and '_' and neither starts nor ends with '-')",
        )


def normalize_domain(text: str) -> str:
    """The canonical form of a domain: A-labels, lower case, no trailing dot; or TargetError.

    Lower-casing comes before IDNA because ASCII labels are not passed through it (they may
    hold '_', which IDNA refuses).
    """
    name = text.strip().lower().translate(_IDNA_DOTS).removesuffix(".")
    if not name:
        raise _bad(text, "empty")
    labels = [_to_a_label(label, text) for label in name.split(".")]
    for label in labels:
        _check_label(label, text)
    if len(labels) < 2:
        raise _bad(text, "a domain needs at least one dot")
    value = ".".join(labels)
    if len(value) > _MAX_NAME:
        raise _bad(text, f"domain longer than {_MAX_NAME} characters")
    if labels[-1].isdigit():
        raise _bad(text, "not an address, network or domain")
    return value


def _parse_spec(text: str, ipv4_min_prefix: int) -> _Spec:
    """Classify and validate one target without expanding it."""
    stripped = text.strip()
    if not stripped:
        raise _bad(text, "empty")
    if _looks_like_ip(stripped):
        return _parse_ip(stripped, ipv4_min_prefix)
    return _Domain(normalize_domain(stripped), stripped)


# --- expansion ----------------------------------------------------------------------------------


def _format_ipv4(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def _format_ipv6(n: int) -> str:
    return str(ipaddress.IPv6Address(n))


# an address kind's text from its number
_FORMAT = {TargetKind.IPV4: _format_ipv4, TargetKind.IPV6: _format_ipv6}


def _merge(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-adjacent inclusive ranges covering the same addresses."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _subtract(first: int, last: int, holes: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The parts of [first, last] outside `holes` (merged, sorted), in ascending order."""
    # start from the last hole that begins at or before `first`: it may cover the start
    i = max(bisect.bisect_right(holes, (first, last)) - 1, 0)
    while first <= last and i < len(holes):
        hole_first, hole_last = holes[i]
        if hole_first > last:
            break
        if hole_last >= first:
            if hole_first > first:
                yield first, hole_first - 1
            first = hole_last + 1
        i += 1
    if first <= last:
        yield first, last


class _Collector:
    """Targets in first-seen order without duplicates, kept compact (`TargetList`).

    IPv4 duplicates are found by number: the networks added so far as merged ranges, the
    addresses added one by one as a set made only when a later addition needs it (a check of
    one network or one file of addresses never makes it).
    """

    def __init__(self, group: str) -> None:
        self.group = group
        self.out = TargetListBuilder()
        self.seen: set[str] = set()  # values of the targets that are not IPv4
        self.covered: list[tuple[int, int]] = []  # IPv4 networks added, merged
        self.pending: list[array[int]] = []  # IPv4 addresses added one by one, not yet in `singles`
        self.singles: set[int] = set()

    @property
    def targets(self) -> TargetList:
        return self.out.build()

    def _single_set(self) -> set[int]:
        for numbers in self.pending:
            self.singles.update(numbers)
        self.pending = []
        return self.singles

    def _covered(self, n: int) -> bool:
        i = bisect.bisect_right(self.covered, (n, _MAX_V4)) - 1
        return i >= 0 and self.covered[i][0] <= n <= self.covered[i][1]

    def add(self, value: str, kind: TargetKind, source: str) -> None:
        if kind is TargetKind.IPV4:
            n = int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big")
            singles = self._single_set()
            if n not in singles and not self._covered(n):
                singles.add(n)
                self.out.add_numbers((n,), self.group, None if source == value else source)
        elif value not in self.seen:
            self.seen.add(value)
            self.out.add_object(Target(value, kind, self.group, source))

    def add_many(self, values: Iterable[str], kind: TargetKind) -> None:
        """Canonical IPv4 values, each its own source, added in bulk (a /16 in a file)."""
        assert kind is TargetKind.IPV4
        fresh = list(dict.fromkeys(values))
        if self.covered or self.pending or self.singles:
            for v in fresh:
                self.add(v, kind, v)
            return
        packed = array("I", b"".join(map(socket.inet_aton, fresh)))
        if sys.byteorder == "little":
            packed.byteswap()
        self.pending.append(packed)
        self.out.add_numbers(packed, self.group, None)

    def add_range(self, first: int, last: int, kind: TargetKind, source: str) -> None:
        if kind is not TargetKind.IPV4:
            fmt = _FORMAT[kind]
            for n in range(first, last + 1):
                self.add(fmt(n), kind, source)
            return
        singles = sorted(self._single_set())
        for a, b in list(_subtract(first, last, self.covered)):
            # around the addresses added one by one before: each keeps its first position
            lo, hi = bisect.bisect_left(singles, a), bisect.bisect_right(singles, b)
            at = a
            for n in singles[lo:hi]:
                if at < n:
                    self.out.add_range(at, n - 1, self.group, source)
                at = n + 1
            if at <= b:
                self.out.add_range(at, b, self.group, source)
        self.covered = _merge([*self.covered, (first, last)])

    def add_spec(self, spec: _Spec, holes: dict[TargetKind, list[tuple[int, int]]]) -> None:
        if isinstance(spec, _Domain):
            self.add(spec.value, TargetKind.DOMAIN, spec.source)
            return
        for first, last in _subtract(spec.first, spec.last, holes.get(spec.kind, [])):
            self.add_range(first, last, spec.kind, spec.source)


def parse_target(text: str, *, group: str = "", ipv4_min_prefix: int = 16) -> TargetList:
    """The targets one piece of text stands for: an address, every address of a CIDR, a domain."""
    out = _Collector(group)
    out.add_spec(_parse_spec(text, ipv4_min_prefix), {})
    return out.targets


def canonical_target(text: str) -> str:
    """One address or domain in the form the store keeps (compressed IPv6, A-label domain),
    or a hygiene SPF pair's "domain IP", for filters such as `history --target`: what a user
    types need not be canonical."""
    text = text.strip()
    if "/" in text:
        raise _bad(text, "a single address or domain, not a network")
    name, _, ip = text.partition(" ")
    if ip.strip():  # an SPF pair's key: the domain, then the sending IP
        return f"{parse_target(name)[0].value} {parse_target(ip.strip())[0].value}"
    return parse_target(text)[0].value


def _parse_ip_only(text: str, ipv4_min_prefix: int, what: str) -> _Range:
    spec = _parse_spec(text, ipv4_min_prefix)
    if isinstance(spec, _Domain):
        raise _bad(text, f"{what} takes addresses and networks; put domains under domains")
    return spec


def _parse_domain_only(text: str) -> _Domain:
    spec = _parse_spec(text, 0)
    if isinstance(spec, _Range):
        raise _bad(text, "domains takes domains; put addresses under addresses")
    return spec


def expand(
    addresses: Iterable[str],
    exclude: Iterable[str] = (),
    domains: Iterable[str] = (),
    *,
    group: str = "",
    ipv4_min_prefix: int = 16,
) -> TargetList:
    """The targets of one config group: addresses and CIDRs minus `exclude`, then domains.

    Excludes may be any size (excluding a /8 from a /24 is harmless), so no prefix limit
    applies to them. Duplicates keep their first position.
    """
    includes: list[_Spec] = [_parse_ip_only(t, ipv4_min_prefix, "addresses") for t in addresses]
    by_kind: dict[TargetKind, list[tuple[int, int]]] = {}
    for text in exclude:
        hole = _parse_ip_only(text, 0, "exclude")
        by_kind.setdefault(hole.kind, []).append((hole.first, hole.last))
    holes = {kind: _merge(ranges) for kind, ranges in by_kind.items()}
    names: list[_Spec] = [_parse_domain_only(text) for text in domains]
    out = _Collector(group)
    for spec in includes + names:
        out.add_spec(spec, holes)
    return out.targets


# --- the command line ---------------------------------------------------------------------------


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise TargetError(f"cannot read target file {path!r}: {reason}") from None


def _lines(raw: str) -> list[tuple[int, str]]:
    """(line number, target text) for each line holding a target; comments run to line end."""
    lines = ((no, line.partition("#")[0].strip()) for no, line in enumerate(raw.splitlines(), 1))
    return [(no, text) for no, text in lines if text]


def _read_lines(path: str) -> list[tuple[int, str]]:
    return _lines(_read_text(path))


def _parse_file_specs(path: str, ipv4_min_prefix: int) -> Iterator[_Spec]:
    for lineno, text in _read_lines(path):
        try:
            yield _parse_spec(text, ipv4_min_prefix)
        except TargetError as e:
            raise TargetError(f"{path}:{lineno}: {e}") from None


def read_target_file(path: str, *, ipv4_min_prefix: int = 16) -> list[str]:
    """The targets listed in a file (`@FILE`), one a line, each validated (errors name FILE:LINE).

    Blank lines and `#` comments are skipped; `#` cannot occur in any valid target.
    """
    return [spec.source for spec in _parse_file_specs(path, ipv4_min_prefix)]


def parse_cli_targets(args: Sequence[str], *, ipv4_min_prefix: int = 16) -> TargetList:
    """The targets of `rblwatch check TARGET...`, where a TARGET may be `@FILE`."""
    out = _Collector("")
    for arg in args:
        if arg.startswith("@"):
            _add_file(out, arg[1:], ipv4_min_prefix)
        else:
            out.add_spec(_parse_spec(arg, ipv4_min_prefix), {})
    return out.targets


# a file of nothing but IPv4 addresses, one a line: what a big target file almost always is
_PLAIN_IPV4_FILE = re.compile(r"[0-9.\r\n]*")


def _plain_ipv4(raw: str) -> list[str] | None:
    """The addresses of a file holding only IPv4 addresses and line ends, or None.

    The fast path of `_add_file`: with no other characters, whitespace splitting yields
    exactly the file's non-blank lines, and inet_pton is the same check the slow path makes.
    Anything else (a comment, a network, a bad line) is left to the slow path, which knows
    line numbers for its errors.
    """
    if _PLAIN_IPV4_FILE.fullmatch(raw) is None:
        return None
    texts = raw.split()
    pton, af = socket.inet_pton, socket.AF_INET
    try:
        for text in texts:
            pton(af, text)
    except OSError:
        return None
    return texts


def _add_file(out: _Collector, path: str, ipv4_min_prefix: int) -> None:
    """Every target of a file; validated in full before anything is added.

    A file without a single target is an error, not "0 lookups, all clean": it is almost
    always the wrong file, or a list that an export left empty.
    """
    raw = _read_text(path)
    plain = _plain_ipv4(raw)
    if plain is not None:
        if not plain:
            raise TargetError(f"{path}: no targets in the file (only blank lines)")
        out.add_many(plain, TargetKind.IPV4)
        return
    specs: list[_Spec | str] = []
    pton, af = socket.inet_pton, socket.AF_INET
    for lineno, text in _lines(raw):
        try:
            pton(af, text)  # a plain IPv4 address, the bulk of any big file: already canonical
            specs.append(text)
            continue
        except OSError:
            pass
        try:
            specs.append(_parse_spec(text, ipv4_min_prefix))
        except TargetError as e:
            raise TargetError(f"{path}:{lineno}: {e}") from None
    if not specs:
        raise TargetError(f"{path}: no targets in the file (only blank lines and comments)")
    ipv4 = TargetKind.IPV4
    for spec in specs:
        if isinstance(spec, str):
            out.add(spec, ipv4, spec)
        else:
            out.add_spec(spec, {})
