"""The one list schema (SPEC §7): the rules for a DNS list, whether the built-in catalogue or a
config's `lists` defines it.

`LIST_FIELDS` are the keys both may write; a config adds `CONFIG_FIELDS` (how this deployment asks
a list), the catalogue its own few (status, access …). `build_list` turns the parsed fields into a
DnsList and applies the rules across fields, so an entry means the same wherever it is written.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from rblwatch.config.values import (
    _VAR,
    DAY,
    MIN_INTERVAL,
    _bool,
    _choice,
    _dns_name,
    _duration,
    _expand,
    _http_url,
    _int,
    _list_name,
    _nameserver,
    _number,
    _read_file,
    _text,
)
from rblwatch.config.walker import (
    Parser,
    _call,
    _Ctx,
    _exclusive,
    _Invalid,
    _items,
    _join,
    _kind_of,
    _one_of,
    _required,
    _show,
    _unique,
    _walk,
)
from rblwatch.model import DnsList, Kind, Purpose, Reason, Status, frozen_map

MAX_INTERVAL = 7 * DAY  # a list checked less often than weekly is not being watched
MAX_JITTER = DAY
MAX_QPS = 100_000.0
MAX_DAILY_LIMIT = 1_000_000_000
_BITS = frozenset(1 << n for n in range(8))


@dataclass(frozen=True, slots=True)
class _Zone:
    value: str
    display: str | None  # None: nothing secret in it


def _zone(ctx: _Ctx, path: str, raw: object) -> _Zone:
    if not isinstance(raw, str):
        raise ValueError(f"must be a string, not {_kind_of(raw)}")
    if not ctx.expand and "$" in raw:  # the catalogue's ${VAR}s: a name once a value is put in
        _dns_name(_VAR.sub("x", raw), raw)
        return _Zone(raw.strip().removesuffix("."), None)
    if not ctx.expand:
        return _Zone(_dns_name(raw), None)
    value, display = _expand(ctx.env, raw)
    return _Zone(_dns_name(value, display), display and display.strip().lower().removesuffix("."))


def _zone_file(ctx: _Ctx, path: str, raw: object) -> _Zone:
    return _Zone(_dns_name(_read_file(ctx, path, raw), "***"), "***")


def _answer(text: object) -> str:
    """A listing or error answer: an IPv4 address in 127.0.0.0/8."""
    try:
        address = ipaddress.IPv4Address(text.strip() if isinstance(text, str) else "-")
    except ValueError:
        raise ValueError(f"{_show(text)} is not an IPv4 address") from None
    if not address.is_loopback:
        raise ValueError(f"{address} is outside 127.0.0.0/8 (list answers are 127.x.x.x)")
    return str(address)


def _bit(key: object) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= 255:
        raise ValueError(f"bit values are numbers from 1 to 255, not {_show(key)}")
    if key not in _BITS:
        # a mask of several bits would make one answer both a listing and an error
        raise ValueError(f"bit values are single bits (1, 2, 4 … 128), not {key}")
    return key


def _keyed(ctx: _Ctx, path: str, raw: object, key: Callable[[object], Any], value: Parser) -> Any:
    if not isinstance(raw, Mapping):
        raise ValueError(f"must be a mapping, not {_kind_of(raw)}")
    out: dict[Any, Any] = {}
    for k, v in raw.items():
        sub = _join(path, k)
        out[_call(lambda _c, _p, r: key(r), ctx, sub, k)] = _call(value, ctx, sub, v)
    return MappingProxyType(out)


def _reason(ctx: _Ctx, path: str, raw: object) -> Reason:
    return Reason(_choice(Reason.BLOCKED.value, Reason.RATE_LIMITED.value)(ctx, path, raw))


def _codes(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    return frozen_map(_keyed(ctx, path, raw, _answer, _text))


def _bits(ctx: _Ctx, path: str, raw: object) -> Mapping[int, str]:
    result: Mapping[int, str] = _keyed(ctx, path, raw, _bit, _text)
    return result


def _error_map(key: Callable[[object], Any]) -> Parser:
    """A list of answers (each `blocked`) or a mapping answer → blocked | rate_limited."""

    def parse(ctx: _Ctx, path: str, raw: object) -> Mapping[Any, Reason]:
        if isinstance(raw, list):
            keys = _items(lambda _c, _p, r: key(r))(ctx, path, raw)
            return MappingProxyType(dict.fromkeys(keys, Reason.BLOCKED))
        result: Mapping[Any, Reason] = _keyed(ctx, path, raw, key, _reason)
        return result

    return parse


def _strings(ctx: _Ctx, path: str, raw: object) -> tuple[str, ...]:
    """One string or a list of them (test points); validated once the list's kind is known."""
    if isinstance(raw, str):
        return (_call(_text, ctx, _join(path, 0), raw),)
    result: tuple[str, ...] = _items(_text)(ctx, path, raw)
    return result


def _enum(cls: type[Kind] | type[Purpose] | type[Status]) -> Parser:
    return lambda ctx, path, raw: cls(_choice(*cls)(ctx, path, raw))


LIST_FIELDS: Mapping[str, Parser] = {
    "name": _list_name,
    "zone": _zone,
    "kind": _enum(Kind),
    "ipv6": _bool,
    "purpose": _enum(Purpose),
    "codes": _codes,
    "bits": _bits,
    "errors": _error_map(_answer),
    "error_bits": _error_map(_bit),
    "description": _text,
    "delist_url": _http_url,
    "test_listed": _strings,
    "test_clean": _strings,
    "health_check": _bool,
    "max_qps": _number(MAX_QPS),
    "daily_query_limit": _int(1, MAX_DAILY_LIMIT),
}
CONFIG_FIELDS: Mapping[str, Parser] = {
    "use": _text,
    "zone_file": _zone_file,
    "nameservers": _items(_nameserver),
    "interval": _duration(MAX_INTERVAL, MIN_INTERVAL),
    "jitter": _duration(MAX_JITTER, zero_ok=True),
}
# a config's list keys in the order messages suggest them
_CONFIG_LIST_FIELDS: Mapping[str, Parser] = {
    "name": _list_name,
    "use": _text,
    "zone": _zone,
    **LIST_FIELDS,
    **CONFIG_FIELDS,
}


def _test_point(kind: Kind) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        text = str(raw).strip()
        if kind is Kind.DOMAIN:
            return _dns_name(text)
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise ValueError(
                f"{_show(text)} is not an IP address (test points of an ip list)"
            ) from None

    return parse


def build_list(ctx: _Ctx, path: str, fields: dict[str, Any], base: DnsList | None) -> DnsList:
    """A DnsList from parsed fields (over `base`, a catalogue entry, if given), checked."""
    zone = _one_of(fields, "zone", "zone_file")
    if zone is not None:
        fields["zone"], fields["display_zone"] = zone[1].value, zone[1].display
    kind = fields.get("kind", base.kind if base else Kind.IP)
    for key in ("test_listed", "test_clean"):
        if key in fields:
            fields[key] = _items(_test_point(kind))(ctx, _join(path, key), list(fields[key]))
    result = DnsList(**fields) if base is None else dataclasses.replace(base, **fields)
    check_answers(path, result)
    return result


def check_answers(path: str, lst: DnsList) -> None:
    """An answer is a listing or an error, never both (checked after overrides too)."""
    if lst.codes and lst.bits:
        raise _Invalid(path, "codes and bits: use one or the other (override the other with {})")
    both = [str(a) for a in lst.errors if a in lst.codes]
    both += [str(b) for b in lst.error_bits if b in lst.bits]
    if both:
        raise _Invalid(path, f"{both[0]} is both a listing and an error answer")


# --- a config's lists ----------------------------------------------------------------------------


def _catalogue_list(path: str, name: str, where: str) -> DnsList:
    """A catalogue entry by name; unknown names are reported at `where`, defunct ones at `path`."""
    # not at import: the catalogue module uses these rules, and is read only when named
    from rblwatch.config import catalogue

    try:
        found = catalogue.get(name)
    except KeyError:
        raise _Invalid(where, f"unknown list {_show(name)} (see 'rblwatch lists')") from None
    if found.status is Status.DEFUNCT:
        raise _Invalid(path, catalogue.defunct_message(found))
    return found


def _keyed_zone(ctx: _Ctx, path: str, lst: DnsList) -> DnsList:
    """A catalogue entry whose zone holds a key (`${SPAMHAUS_DQS_KEY}.zen…`), expanded."""
    if "$" not in lst.zone:
        return lst
    try:
        zone = _zone(ctx, path, lst.zone)
    except ValueError as e:
        raise _Invalid(path, f"{e} (the zone of {lst.name!r} is {lst.zone!r})") from None
    return dataclasses.replace(lst, zone=zone.value, display_zone=zone.display)


def _list_entry(ctx: _Ctx, path: str, raw: object) -> DnsList:
    if isinstance(raw, str):
        return _keyed_zone(ctx, path, _catalogue_list(path, _text(ctx, path, raw), path))
    if not isinstance(raw, Mapping):
        raise ValueError(f"must be a list name or a mapping, not {_kind_of(raw)}")
    _exclusive(path, raw, ("zone", "zone_file"))
    fields = _walk(ctx, path, raw, _CONFIG_LIST_FIELDS)
    use = fields.pop("use", None)
    base = None if use is None else _catalogue_list(path, use, _join(path, "use"))
    if base is None:
        _required(fields, path, "name")
        _required(fields, path, "zone", "for a custom list (or 'use: NAME' to start from one)")
        _required(fields, path, "kind", "for a custom list: ip or domain")
    else:
        _required(fields, path, "name", "with 'use' (the name the list is shown and exported as)")
        has_zone = "zone" in fields or "zone_file" in fields
        base = base if has_zone else _keyed_zone(ctx, path, base)
    return build_list(ctx, path, fields, base)


def parse_lists(ctx: _Ctx, path: str, raw: object) -> tuple[DnsList, ...]:
    lists: tuple[DnsList, ...] = _items(_list_entry)(ctx, path, raw)
    if not lists:
        raise ValueError("empty; remove the key to use the default lists")
    _unique(path, [x.name for x in lists], "list name")
    return lists


def default_lists() -> tuple[DnsList, ...]:
    """The catalogue's default lists: what a config without `lists` checks."""
    from rblwatch.config import catalogue  # only when the catalogue is used: a start-up cost

    return tuple(catalogue.get(name) for name in catalogue.default_names())
