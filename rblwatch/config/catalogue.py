"""The built-in catalogue of DNS lists (SPEC §7), read from `rblwatch/catalogue.yaml`.

The facts live in the YAML file (data, not code). It is read once, through importlib.resources so
it works from a wheel or a zip, and validated by the same list rules as a config's custom lists
(`lists.py`), plus the catalogue's own keys (status, access …). Its `${VAR}`s are kept as written:
a config that uses a keyed list expands them. A bad edit raises ValueError naming the list and the
key, so it fails the test suite instead of shipping.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import yaml

from rblwatch.config.lists import LIST_FIELDS, _enum, build_list
from rblwatch.config.providers import Provider, parse_providers
from rblwatch.config.values import _VAR, _list_name, _text
from rblwatch.config.walker import (
    Parser,
    _Ctx,
    _Invalid,
    _items,
    _required,
    _walk,
)
from rblwatch.model import DnsList, Status

_RESOURCE = "catalogue.yaml"
_TOP_KEYS = frozenset({"defaults", "lists", "providers"})
# written out in every entry, so a reader of the file never has to know a default
_REQUIRED = ("name", "zone", "kind", "ipv6", "purpose", "status")
_CATALOGUE = _Ctx(env={}, base_dir=None, expand=False)


@dataclass(frozen=True, slots=True)
class _Catalogue:
    lists: Mapping[str, DnsList]
    defaults: tuple[str, ...]
    providers: Mapping[str, Provider] = field(default_factory=lambda: MappingProxyType({}))


def catalogue() -> Mapping[str, DnsList]:
    """Every built-in list by name, in file order (read-only; loaded once per process)."""
    return _load().lists


def default_names() -> tuple[str, ...]:
    """The lists `rblwatch check` uses when there is no config: free, keyless and active."""
    return _load().defaults


def providers() -> Mapping[str, Provider]:
    """The provider-run lists (Microsoft's, Proofpoint's …) by name, in file order: named by
    bounces, never asked over DNS (`rblwatch.config.providers`)."""
    return _load().providers


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


@functools.cache
def _load() -> _Catalogue:
    from importlib import resources  # only when a list is looked up: a start-up cost

    text = resources.files("rblwatch").joinpath(_RESOURCE).read_text(encoding="utf-8")
    return parse_catalogue(text)


def parse_catalogue(text: str) -> _Catalogue:
    """Validate and build the whole catalogue from YAML text (tests feed it bad edits)."""
    doc = yaml.safe_load(text)  # our own file, not user input
    if not isinstance(doc, dict):
        raise ValueError(f"{_RESOURCE}: expected a mapping with keys {sorted(_TOP_KEYS)}")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise ValueError(f"{_RESOURCE}: unknown top-level key {sorted(map(str, unknown))[0]!r}")
    lists = _parse_lists(doc.get("lists"))
    defaults = _parse_defaults(doc.get("defaults"), lists)
    found = parse_providers(doc.get("providers"), frozenset(lists), _RESOURCE)
    return _Catalogue(MappingProxyType(lists), defaults, found)


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
    names = raw if isinstance(raw, list) and all(isinstance(n, str) for n in raw) else []
    if not names or len(set(names)) != len(names):
        raise ValueError(f"{where}: expected distinct list names")
    for name in names:
        lst = lists.get(name)
        if lst is None:
            raise ValueError(f"{where}: unknown list {name!r}")
        if lst.status is not Status.ACTIVE or _VAR.search(lst.zone):
            raise ValueError(f"{where}: {name!r} is not active and keyless")
    return tuple(names)


def _date(ctx: _Ctx, path: str, raw: object) -> str:
    if isinstance(raw, datetime.date):  # an unquoted 2024-06-05
        return raw.isoformat()
    if isinstance(raw, int) and not isinstance(raw, bool):  # an unquoted 2003
        return str(raw)
    return _text(ctx, path, raw)


# the list rules, and what only the catalogue says about a list
_FIELDS: Mapping[str, Parser] = {
    **LIST_FIELDS,
    "access": _text,
    "status": _enum(Status),
    "status_since": _date,
    "status_reason": _text,
    "sources": _items(_text),  # documentation only: keys of the reference file's sources table
}
_PROSE = ("description", "access", "status_reason")  # folded YAML: one line each


def _parse_list(index: int, raw: object) -> DnsList:
    if not isinstance(raw, dict):
        raise ValueError(f"{_RESOURCE}: lists.{index}: expected a mapping")
    try:
        name = _list_name(_CATALOGUE, "name", raw.get("name"))
    except ValueError as e:
        raise ValueError(f"{_RESOURCE}: lists.{index}: name: {e}") from None
    try:
        fields = _walk(_CATALOGUE, "", raw, _FIELDS)
        for key in _REQUIRED:
            _required(fields, "", key)
        fields.pop("sources", None)
        fields.update({k: " ".join(fields[k].split()) for k in _PROSE if k in fields})
        lst = build_list(_CATALOGUE, "", fields, None)
        _check_status(lst)
    except _Invalid as e:
        where = f"{e.path}: " if e.path else ""
        raise ValueError(f"{_RESOURCE}: list {name!r}: {where}{e.problem}") from None
    return lst


def _check_status(lst: DnsList) -> None:
    if lst.status is Status.DEFUNCT and not (lst.status_since and lst.status_reason):
        raise _Invalid("status", "defunct needs status_since and status_reason")
    if lst.status is Status.UNCLEAR and not lst.status_reason:
        raise _Invalid("status", "unclear needs status_reason")
