"""The built-in catalogue of DNS lists (SPEC §7); its views are in `rblwatch.views.lists`.

The facts live in `catalogue.yaml` next to this module (data, not code). It is read once, through
importlib.resources so it works from a wheel or a zip, and validated strictly: an unknown key, a
code outside 127.0.0.0/8 or a defunct list without a date raises ValueError naming the list and
the key, so a bad edit fails the test suite instead of shipping.
"""

from __future__ import annotations

import datetime
import enum
import functools
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import TypeVar

import yaml

from rblwatch.model import DnsList, Kind, Purpose, Reason, Status

__all__ = ["catalogue", "default_names", "defunct_message", "get"]

_RESOURCE = "catalogue.yaml"
_TOP_KEYS = frozenset({"defaults", "lists"})
_REQUIRED = frozenset({"name", "zone", "kind", "ipv6", "purpose", "status"})
_OPTIONAL = frozenset(
    {
        "codes",
        "bits",
        "errors",
        "error_bits",
        "description",
        "delist_url",
        "access",
        "status_since",
        "status_reason",
        "test_listed",
        "test_clean",
        "health_check",
        "max_qps",
        "daily_query_limit",
        "sources",  # documentation only: keys of the reference file's sources table
    }
)
# Only these two reasons are something a list *answers*; the rest arise on our side.
_ANSWERED_REASONS = frozenset({Reason.BLOCKED, Reason.RATE_LIMITED})
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_BIT_VALUES = frozenset(1 << n for n in range(8))

_E = TypeVar("_E", bound=enum.Enum)
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class _Catalogue:
    lists: Mapping[str, DnsList]
    defaults: tuple[str, ...]


# --------------------------------------------------------------------------- public API


def catalogue() -> Mapping[str, DnsList]:
    """Every built-in list by name, in file order (read-only; loaded once per process)."""
    return _load().lists


def default_names() -> tuple[str, ...]:
    """The lists `rblwatch check` uses when there is no config: free, keyless and active."""
    return _load().defaults


def get(name: str) -> DnsList:
    """The catalogue entry called `name`; KeyError for a name the catalogue does not know."""
    try:
        return _load().lists[name]
    except KeyError:
        raise KeyError(name) from None


def defunct_message(lst: DnsList) -> str:
    """One line telling a user why a list must go, for config errors and `check --list`."""
    since = f" since {lst.status_since}" if lst.status_since else ""
    reason = " ".join(lst.status_reason.split()).rstrip(".") or "it no longer works"
    return f"{lst.name!r} is {lst.status.value}{since}: {reason}; remove it from lists"


# --------------------------------------------------------------------------- loading


@functools.cache
def _load() -> _Catalogue:
    text = resources.files("rblwatch").joinpath(_RESOURCE).read_text(encoding="utf-8")
    return _parse_catalogue(text)


def _parse_catalogue(text: str) -> _Catalogue:
    """Validate and build the whole catalogue from YAML text (tests feed it bad edits)."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError(f"{_RESOURCE}: expected a mapping with keys {sorted(_TOP_KEYS)}")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{_RESOURCE}: unknown top-level key {sorted(map(str, unknown))[0]!r}")
    lists = _parse_lists(doc.get("lists"))
    defaults = _parse_defaults(doc.get("defaults"), lists)
    return _Catalogue(MappingProxyType(lists), defaults)


def _parse_lists(raw: object) -> dict[str, DnsList]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{_RESOURCE}: lists: expected a non-empty sequence")
    lists: dict[str, DnsList] = {}
    for index, entry in enumerate(raw):
        lst = _parse_list(index, entry)
        if lst.name in lists:
            raise ValueError(f"{_RESOURCE}: list {lst.name!r}: name: duplicate")
        lists[lst.name] = lst
    return lists


def _parse_defaults(raw: object, lists: Mapping[str, DnsList]) -> tuple[str, ...]:
    where = f"{_RESOURCE}: defaults"
    names = _str_tuple(where, raw)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{where}: expected distinct list names")
    for name in names:
        lst = lists.get(name)
        if lst is None:
            raise ValueError(f"{where}: unknown list {name!r}")
        if lst.status is not Status.ACTIVE or _PLACEHOLDER.search(lst.zone):
            raise ValueError(f"{where}: {name!r} is not active and keyless")
    return names


def _parse_list(index: int, raw: object) -> DnsList:
    if not isinstance(raw, dict):
        raise ValueError(f"{_RESOURCE}: lists.{index}: expected a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{_RESOURCE}: lists.{index}: name: expected lowercase operator-list")
    where = f"{_RESOURCE}: list {name!r}"
    _check_keys(where, raw)
    lst = _build(where, raw)
    _check_consistency(where, lst)
    return lst


def _check_keys(where: str, raw: Mapping[object, object]) -> None:
    for key in raw:
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise ValueError(f"{where}: {key}: unknown key")
    for key in sorted(_REQUIRED - set(raw)):
        raise ValueError(f"{where}: {key}: missing")


def _build(where: str, raw: Mapping[str, object]) -> DnsList:
    def opt(key: str, parse: Callable[[str, object], _V], default: _V) -> _V:
        return parse(f"{where}: {key}", raw[key]) if key in raw else default

    _str_tuple(f"{where}: sources", raw.get("sources", []))
    return DnsList(
        name=str(raw["name"]),
        zone=opt("zone", _zone, ""),
        kind=opt("kind", _enum_parser(Kind), Kind.IP),
        ipv6=opt("ipv6", _bool, False),
        purpose=opt("purpose", _enum_parser(Purpose), Purpose.BLOCK),
        codes=opt("codes", _codes, MappingProxyType({})),
        bits=opt("bits", _bits, MappingProxyType({})),
        errors=opt("errors", _errors, MappingProxyType({})),
        error_bits=opt("error_bits", _error_bits, MappingProxyType({})),
        description=opt("description", _text, ""),
        delist_url=opt("delist_url", _url, None),
        access=opt("access", _text, ""),
        status=opt("status", _enum_parser(Status), Status.ACTIVE),
        status_since=opt("status_since", _date, None),
        status_reason=opt("status_reason", _text, ""),
        test_listed=opt("test_listed", _str_tuple, None),
        test_clean=opt("test_clean", _str_tuple, None),
        health_check=opt("health_check", _bool, True),
        max_qps=opt("max_qps", _positive_float, None),
        daily_query_limit=opt("daily_query_limit", _limit, None),
    )


def _check_consistency(where: str, lst: DnsList) -> None:
    """Rules across fields: an answer is a listing or an error, never both."""
    if lst.codes and lst.bits:
        raise ValueError(f"{where}: codes and bits: use one or the other")
    for answer in set(lst.codes) & set(lst.errors):
        raise ValueError(f"{where}: errors: {answer} is also a listing code")
    for bit in set(lst.bits) & set(lst.error_bits):
        raise ValueError(f"{where}: error_bits: {bit} is also a listing bit")
    if lst.status is Status.DEFUNCT and not (lst.status_since and lst.status_reason):
        raise ValueError(f"{where}: status: defunct needs status_since and status_reason")
    if lst.status is Status.UNCLEAR and not lst.status_reason:
        raise ValueError(f"{where}: status: unclear needs status_reason")


# --------------------------------------------------------------------------- field parsers
# Each takes (where, value) and returns the typed value or raises ValueError naming `where`.


def _text(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string")
    return " ".join(value.split())


def _zone(where: str, value: object) -> str:
    zone = _text(where, value)
    if not zone or " " in zone or zone != zone.strip("."):
        raise ValueError(f"{where}: expected a DNS zone name without leading or trailing dots")
    return zone


def _url(where: str, value: object) -> str:
    url = _text(where, value)
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"{where}: expected an http(s) URL")
    return url


def _bool(where: str, value: object) -> bool:
    # YAML 1.1 spells booleans many ways; demand a real one so "yes"/"unknown" are caught.
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false")
    return value


def _date(where: str, value: object) -> str:
    if isinstance(value, datetime.date):  # an unquoted 2024-06-05
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool):  # an unquoted 2003
        return str(value)
    return _text(where, value)


def _limit(where: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: expected a positive integer or null")
    return value


def _positive_float(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{where}: expected a positive number")
    return float(value)


def _str_tuple(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a sequence of strings")
    return tuple(_text(f"{where}.{i}", item) for i, item in enumerate(value))


def _enum_parser(cls: type[_E]) -> Callable[[str, object], _E]:
    def parse(where: str, value: object) -> _E:
        for member in cls:
            if member.value == value:
                return member
        choices = ", ".join(str(m.value) for m in cls)
        raise ValueError(f"{where}: expected one of {choices}")

    return parse


def _answer(where: str, value: object) -> str:
    """An A-record value as a canonical string; lists answer inside 127.0.0.0/8 only."""
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not an IPv4 address") from None
    if address not in _LOOPBACK:
        raise ValueError(f"{where}: {value} is outside 127.0.0.0/8")
    return str(address)


def _bit(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in _BIT_VALUES:
        raise ValueError(f"{where}: {value!r} is not a bit value of one octet (1, 2, 4 … 128)")
    return value


def _reason(where: str, value: object) -> Reason:
    reason = _enum_parser(Reason)(where, value)
    if reason not in _ANSWERED_REASONS:
        raise ValueError(f"{where}: expected blocked or rate_limited")
    return reason


def _codes(where: str, value: object) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    return MappingProxyType({_answer(where, k): _text(f"{where}.{k}", v) for k, v in value.items()})


def _bits(where: str, value: object) -> Mapping[int, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    return MappingProxyType({_bit(where, k): _text(f"{where}.{k}", v) for k, v in value.items()})


def _errors(where: str, value: object) -> Mapping[str, Reason]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    return MappingProxyType(
        {_answer(where, k): _reason(f"{where}.{k}", v) for k, v in value.items()}
    )


def _error_bits(where: str, value: object) -> Mapping[int, Reason]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping")
    return MappingProxyType({_bit(where, k): _reason(f"{where}.{k}", v) for k, v in value.items()})
