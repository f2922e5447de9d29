"""The pairs view's query (`GET /api/v1/pairs`, `rblwatch status --target/--list/--state`):
user text in, a `PairsQuery` out or one line naming the bad parameter; targets' order keys
(`target_key`: kind, then address order) and the opaque page cursor."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass

from rblwatch.model import KIND_RANK, TARGET_KINDS, TargetKind
from rblwatch.targets import TargetError, canonical_target

STATES = ("listed", "clean", "unknown")
PAIRS_LIMIT_DEFAULT = 100
PAIRS_LIMIT_MAX = 1000

Key = tuple[int, tuple[int, str]]  # a target's place: its kind's rank, then its sort key


def target_key(value: str, kind: TargetKind) -> Key:
    return KIND_RANK[kind], TARGET_KINDS[kind].sort_key(value)


@dataclass(frozen=True, slots=True)
class PairsQuery:
    """Filters and paging; build one from user text with `pairs_query`."""

    target: tuple[Key, Key] | None = None  # inclusive key range (one target, or a network)
    list_name: str | None = None
    state: str | None = None
    limit: int = PAIRS_LIMIT_DEFAULT
    cursor: tuple[str, str] | None = None  # (list, target) the page starts at


# -- parsing the query ---------------------------------------------------------------------


def pairs_query(
    *,
    target: str | None = None,
    list_name: str | None = None,
    state: str | None = None,
    limit: str | int | None = None,
    cursor: str | None = None,
) -> PairsQuery:
    """The query user text asks for; ValueError (one line naming the parameter) if bad."""
    if state is not None and state not in STATES:
        raise ValueError(f"state: must be one of {', '.join(STATES)}, got {state!r}")
    return PairsQuery(
        target=None if target is None else target_range(target),
        list_name=list_name,
        state=state,
        limit=_limit(limit),
        cursor=None if cursor is None else decode_cursor(cursor),
    )


def _limit(text: str | int | None) -> int:
    if text is None:
        return PAIRS_LIMIT_DEFAULT
    try:
        limit = int(text)
    except ValueError:
        raise ValueError(f"limit: not a whole number: {text!r}") from None
    if limit < 1:
        raise ValueError(f"limit: must be at least 1, got {limit}")
    return min(limit, PAIRS_LIMIT_MAX)  # capped, not refused: page with the cursor


def target_range(text: str) -> tuple[Key, Key]:
    """The keys of one target, or of the first and last address of a network (CIDR)."""
    if "/" in text:
        try:
            net = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"target: {text!r} is neither a target nor a network") from None
        kind = TargetKind.IPV4 if net.version == 4 else TargetKind.IPV6
        first, last = int(net.network_address), int(net.broadcast_address)
        return (KIND_RANK[kind], (first, "")), (KIND_RANK[kind], (last, ""))
    try:
        value = canonical_target(text)
    except TargetError as e:
        raise ValueError(f"target: {e}") from None
    key = target_key(value, _kind_of(value))
    return key, key


def _kind_of(value: str) -> TargetKind:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return TargetKind.DOMAIN
    return TargetKind.IPV4 if address.version == 4 else TargetKind.IPV6


def encode_cursor(list_name: str, target: str) -> str:
    raw = f"{list_name}\n{target}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    name, sep, target = raw.partition("\n")
    if not sep or not name:
        raise ValueError(f"cursor: {text!r} is not a cursor this API gave (start without one)")
    return name, target


__all__ = [
    "PAIRS_LIMIT_DEFAULT",
    "PAIRS_LIMIT_MAX",
    "STATES",
    "Key",
    "PairsQuery",
    "decode_cursor",
    "encode_cursor",
    "pairs_query",
    "target_key",
    "target_range",
]
