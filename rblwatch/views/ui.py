"""Small pure pieces every console page shares: times with their age, safe delisting links,
IDN names in Unicode, the numeric order of targets and paging.

Nothing here reads a clock: `now` is an argument, so a test can fix it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import idna

from rblwatch.model import TARGET_KINDS
from rblwatch.views.status import age, rfc3339

T = TypeVar("T")

PER_PAGE_DEFAULT = 100
PER_PAGE_MAX = 500  # a bigger page is capped: a page must stay light (issue 11: < 300 KB)


@dataclass(frozen=True, slots=True)
class Stamp:
    """A moment as the console shows it: UTC ISO form, and how long ago (or "in …")."""

    iso: str
    age: str  # "4m 2s ago", "in 3m 0s", "" when no `now` was given


def stamp(at: float | None, now: float | None) -> Stamp | None:
    if at is None:
        return None
    iso = rfc3339(at) or ""
    if now is None:
        return Stamp(iso, "")
    if at > now + 1:
        return Stamp(iso, f"in {age(at - now)}")
    return Stamp(iso, f"{age(now - at)} ago")


def delist_href(url: str | None) -> str | None:
    """A delisting URL fit for a link: only http(s) (a javascript: URL in a custom list's
    config would run on click)."""
    if not url or not url.startswith(("https://", "http://")):
        return None
    return url


def unicode_name(target: str) -> str | None:
    """A domain with A-labels ("xn--bcher-kva.example") in Unicode ("bücher.example"); None
    when there is nothing to show beside the stored form (not an IDN, or not decodable)."""
    if "xn--" not in target.lower() or ":" in target:
        return None
    try:
        shown = idna.decode(target)
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return shown if shown != target else None


_KINDS = tuple(TARGET_KINDS.values())


def target_order(value: str) -> tuple[int, int, str]:
    """A target's place in sorted output: IPv4 by number, IPv6 by number, then domains by
    name (192.0.2.50 before 192.0.2.200), as `model.TARGET_KINDS` orders kinds."""
    for rank, info in enumerate(_KINDS):
        if info.ip_version is not None and info.looks(value):
            try:
                return (rank, *info.sort_key(value))
            except (OSError, ValueError):
                continue  # "looks" is only a hint (a domain has no ":" either)
        elif info.ip_version is None:
            return (rank, *info.sort_key(value))
    return (len(_KINDS), 0, value)


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    """One page of a longer sequence (pages count from 1)."""

    items: Sequence[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first item (0 when there is none)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def prev(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def paginate(items: Sequence[T], page: int, per_page: int) -> Paged[T]:
    """Page `page` of `items`; a page past the end is the last one."""
    per_page = max(1, min(per_page, PER_PAGE_MAX))
    pages = max(1, math.ceil(len(items) / per_page))
    page = max(1, min(page, pages))
    start = (page - 1) * per_page
    return Paged(items[start : start + per_page], page, per_page, len(items))


class BadParameter(ValueError):
    """A query parameter a page cannot use (the message names it)."""


def whole(text: str | None, name: str, default: int, minimum: int = 1) -> int:
    """A whole-number query parameter; BadParameter naming it if it is not one."""
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(f"{name}: not a whole number: {text!r}") from None
    if value < minimum:
        raise BadParameter(f"{name}: must be at least {minimum}, got {value}")
    return value


__all__ = [
    "PER_PAGE_DEFAULT",
    "PER_PAGE_MAX",
    "BadParameter",
    "Paged",
    "Stamp",
    "delist_href",
    "paginate",
    "stamp",
    "target_order",
    "unicode_name",
    "whole",
]
