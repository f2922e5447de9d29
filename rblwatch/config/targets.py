"""Target groups (SPEC §6): addresses, networks, hostnames and domains, validated, not expanded."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from rblwatch.config.model import TargetGroup
from rblwatch.config.values import _group_name, _host_name, _ip_network, _labels, _text
from rblwatch.config.walker import (
    Parser,
    _Ctx,
    _Invalid,
    _items,
    _required,
    _show,
    _unique,
    _walk,
)

IPV6_MIN_PREFIX = 120  # SPEC §6: a /120 is 256 addresses; larger is almost surely a mistake


def _target_address(ctx: _Ctx, path: str, raw: object) -> str:
    text = _text(ctx, path, raw).strip()
    value = _ip_network(text)
    net = ipaddress.ip_network(value)
    limit = ctx.limits.ipv4_min_prefix if net.version == 4 else IPV6_MIN_PREFIX
    if net.prefixlen < limit:
        hint = f" (set limits.ipv4_min_prefix: {net.prefixlen} to allow it)"
        raise ValueError(
            f"{_show(text)}: IPv{net.version} networks larger than /{limit} are refused"
            + (hint if net.version == 4 else "")
        )
    return value


def _exclude_address(ctx: _Ctx, path: str, raw: object) -> str:
    # no size limit: excluding a /8 from a /24 is harmless
    return _ip_network(_text(ctx, path, raw).strip())


_TARGET_FIELDS: Mapping[str, Parser] = {
    "group": _group_name,
    "addresses": _items(_target_address),
    "exclude": _items(_exclude_address),
    "hostnames": _items(_host_name),
    "domains": _items(_host_name),
    "labels": _labels,
}


def _target_group(ctx: _Ctx, path: str, raw: object) -> TargetGroup:
    fields = _walk(ctx, path, raw, _TARGET_FIELDS)
    _required(fields, path, "group", "(the group's name: a metric label and alert field)")
    if not any(fields.get(key) for key in ("addresses", "hostnames", "domains")):
        raise _Invalid(path, "a target group needs addresses, hostnames or domains")
    return TargetGroup(**fields)


def parse_targets(ctx: _Ctx, path: str, raw: object) -> tuple[TargetGroup, ...]:
    groups: tuple[TargetGroup, ...] = _items(_target_group)(ctx, path, raw)
    _unique(path, [g.group for g in groups], "group")
    return groups
