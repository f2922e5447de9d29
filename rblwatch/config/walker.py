"""The table-driven key-path walker: each section is a table of key → parser.

A parser takes (ctx, key path, raw value) and either returns the value or raises ValueError, which
the walker turns into an error at that key (`_Invalid`, made a ConfigError by the loader). Paths
count list indexes from 0: `lists.2.zone`.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rblwatch.config.model import LimitsConfig

SHOWN_CHARS = 60  # a bad value is echoed in a message at most this long (then "…")


@dataclass(frozen=True, slots=True)
class _Ctx:
    env: Mapping[str, str]
    base_dir: Path | None
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    # False for the built-in catalogue: its ${VAR}s stay as written, expanded by a config later
    expand: bool = True


class _Invalid(Exception):
    """A problem at a key path; parse_config adds the source to make it a ConfigError."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


Parser = Callable[[_Ctx, str, object], Any]  # (ctx, key path, raw value) -> value or ValueError


def _join(path: str, key: object) -> str:
    return f"{path}.{_show_key(key)}" if path else _show_key(key)


def _show_key(key: object) -> str:
    # str(), not repr(): a YAML key 256 or 2024-06-05 is written as the user wrote it
    text = _show(key) if isinstance(key, int) and not isinstance(key, bool) else str(key)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _call(parser: Parser, ctx: _Ctx, path: str, raw: object) -> Any:
    try:
        return parser(ctx, path, raw)
    except ValueError as e:  # a leaf's problem belongs to this key
        raise _Invalid(path, str(e)) from None


def _mapping(path: str, raw: object) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise _Invalid(path, f"must be a mapping, not {_kind_of(raw)}")
    for key in raw:
        if not isinstance(key, str):
            raise _Invalid(_join(path, key), "keys must be strings")
    return raw


def _walk(ctx: _Ctx, path: str, raw: object, fields: Mapping[str, Parser]) -> dict[str, Any]:
    """Parse a mapping by its table; keys with a null value count as absent."""
    out: dict[str, Any] = {}
    for key, value in _mapping(path, raw).items():
        parser = fields.get(key)
        if parser is None:
            raise _Invalid(_join(path, key), _unknown_key(key, fields))
        if value is not None:
            out[key] = _call(parser, ctx, _join(path, key), value)
    return out


def _unknown_key(key: str, fields: Mapping[str, Parser]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    return f"unknown key {_show(key)}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _section(cls: Callable[..., Any], fields: Mapping[str, Parser]) -> Parser:
    return lambda ctx, path, raw: cls(**_walk(ctx, path, raw, fields))


def _items(item: Parser) -> Parser:
    """A YAML sequence, each element parsed by `item` at `path.N`."""

    def parse(ctx: _Ctx, path: str, raw: object) -> tuple[Any, ...]:
        if not isinstance(raw, list):
            raise ValueError(f"must be a list, not {_kind_of(raw)}")
        return tuple(_call(item, ctx, _join(path, i), value) for i, value in enumerate(raw))

    return parse


def _unique(path: str, names: list[str], what: str) -> None:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise _Invalid(
                _join(path, i), f"duplicate {what} {_show(name)} (also {_join(path, first[name])})"
            )
        first[name] = i


def _required(fields: Mapping[str, Any], path: str, key: str, why: str = "") -> Any:
    if key not in fields:
        raise _Invalid(_join(path, key), "required" + (f" {why}" if why else ""))
    return fields[key]


def _exclusive(path: str, raw: object, *pairs: tuple[str, str]) -> None:
    """Alternative keys (`url` / `url_file`): both given is an error, before any file is read."""
    for a, b in pairs:
        if isinstance(raw, Mapping) and raw.get(a) is not None and raw.get(b) is not None:
            raise _Invalid(_join(path, b), f"give {a} or {b}, not both")


def _one_of(fields: dict[str, Any], a: str, b: str) -> tuple[str, Any] | None:
    """Pop whichever of two alternative keys is given: (key, value), or None."""
    key = a if a in fields else b
    return (key, fields.pop(key)) if key in fields else None


def _kind_of(raw: object) -> str:
    if raw is None:
        return "empty"
    if isinstance(raw, bool):
        return "true/false"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    return "a list" if isinstance(raw, list) else "a mapping" if isinstance(raw, Mapping) else "?"


# reprlib bounds the work as well as the text: a value built of YAML aliases may stand for
# millions of nodes that a plain str() would spell out in full
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHOWN_CHARS


def _show(raw: object) -> str:
    """A bad value as a message may echo it: strings quoted, everything cut to a short excerpt."""
    if isinstance(raw, str):
        text = repr(raw[:SHOWN_CHARS]) + ("…" if len(raw) > SHOWN_CHARS else "")
        if len(text) > SHOWN_CHARS + 3:  # escapes: a character may be spelled in 10 (\U0001eebc)
            text = text[: SHOWN_CHARS + 1] + "…"
    elif isinstance(raw, bool | float) or raw is None:
        text = str(raw)
    elif isinstance(raw, int):
        text = str(raw) if raw.bit_length() <= 128 else "a very large number"
    else:
        text = _REPR.repr(raw)
    return text
