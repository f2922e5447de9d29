"""The catalogue's provider-run lists (`providers:` in `rblwatch/catalogue.yaml`).

A mailbox provider's or filtering vendor's own blocklist (Microsoft's, Proofpoint's …) is named
by a bounce through the provider's codes or lookup pages, never by a DNS zone, and cannot be
queried: it is no `DnsList`, only the facts `explain-bounce` names it by and the page to delist
at. Validated as strictly as the lists: unknown keys are errors naming the entry and the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from rblwatch.config.values import _http_url, _list_name, _text
from rblwatch.config.walker import Parser, _Ctx, _Invalid, _items, _mapping, _required, _walk

_CATALOGUE = _Ctx(env={}, base_dir=None, expand=False)
_REQUIRED = ("name", "operator", "delist_url", "known_as", "description")
# an enhanced status code (RFC 3463) or a range of details of one: "5.7.606-649"
_STATUS_RANGE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?:-(\d{1,3}))?")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


@dataclass(frozen=True, slots=True)
class Provider:
    """A provider-run blocklist: named in bounces, delisted at a page, never asked over DNS."""

    name: str
    operator: str
    delist_url: str
    description: str
    known_as: tuple[str, ...]  # host names and URL paths of its pages, as a diagnostic has them
    codes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    lookup_url: str | None = None

    def names(self) -> tuple[str, ...]:
        """Every string that names this list in a diagnostic: its pages, then its codes with
        each range written out ("5.7.606-649" → "5.7.606" … "5.7.649")."""
        out = list(self.known_as)
        for code in self.codes:
            out.extend(expand_code(code))
        return tuple(dict.fromkeys(out))


def expand_code(code: str) -> tuple[str, ...]:
    """A code as written in the catalogue → the codes it stands for."""
    m = _STATUS_RANGE.fullmatch(code)
    if m is None or m.group(4) is None:
        return (code,)
    cls, subject, low, high = m.groups()
    return tuple(f"{cls}.{subject}.{d}" for d in range(int(low), int(high) + 1))


def _code(text: str) -> str:
    m = _STATUS_RANGE.fullmatch(text)
    if m is not None:
        if m.group(4) is not None and int(m.group(4)) <= int(m.group(3)):
            raise ValueError(f"range {text!r} must go from a lower detail to a higher one")
        return text
    if not _CODE.fullmatch(text):
        raise ValueError(f"invalid code {text!r} (letters, digits, '.', '_', '-')")
    return text


def _codes(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for key, value in _mapping(path, raw).items():
        try:
            out[_code(key)] = " ".join(_text(ctx, path, value).split())
        except ValueError as e:
            raise _Invalid(f"{path}.{key}", str(e)) from None
    return MappingProxyType(out)


def _known(ctx: _Ctx, path: str, raw: object) -> str:
    text = _text(ctx, path, raw).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("must be a host name or URL path, without spaces")
    return text.lower()


_FIELDS: Mapping[str, Parser] = {
    "name": _list_name,
    "operator": _text,
    "delist_url": _http_url,
    "lookup_url": _http_url,
    "known_as": _items(_known),
    "codes": _codes,
    "description": _text,
}


def parse_providers(
    raw: object, list_names: frozenset[str], resource: str
) -> Mapping[str, Provider]:
    """The `providers:` section, by name; ValueError naming the entry and key of a bad edit."""
    if raw is None:
        return MappingProxyType({})
    if not isinstance(raw, list):
        raise ValueError(f"{resource}: providers: expected a sequence")
    out: dict[str, Provider] = {}
    for index, entry in enumerate(raw):
        provider = _parse_provider(index, entry, resource)
        if provider.name in out:
            raise ValueError(f"{resource}: provider {provider.name!r}: name: duplicate")
        if provider.name in list_names:
            raise ValueError(f"{resource}: provider {provider.name!r}: name: a list's name")
        out[provider.name] = provider
    return MappingProxyType(out)


def _parse_provider(index: int, raw: object, resource: str) -> Provider:
    if not isinstance(raw, dict):
        raise ValueError(f"{resource}: providers.{index}: expected a mapping")
    label = repr(raw["name"]) if isinstance(raw.get("name"), str) else f"providers.{index}"
    try:
        fields = _walk(_CATALOGUE, "", raw, _FIELDS)
        for key in _REQUIRED:
            _required(fields, "", key)
        if not fields["known_as"]:
            raise _Invalid("known_as", "name at least one page a bounce may quote")
    except _Invalid as e:
        where = f"{e.path}: " if e.path else ""
        raise ValueError(f"{resource}: provider {label}: {where}{e.problem}") from None
    fields["description"] = " ".join(fields["description"].split())
    fields["operator"] = " ".join(fields["operator"].split())
    return Provider(**fields)


__all__ = ["Provider", "expand_code", "parse_providers"]
