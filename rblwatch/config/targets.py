"""Target groups (SPEC §6): addresses, networks, hostnames and domains, validated, not expanded."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from rblwatch.config.model import (
    DEFAULT_HYGIENE_CHECKS,
    MAX_SENDING_IPS,
    HygieneConfig,
    TargetGroup,
)
from rblwatch.config.values import (
    _choice,
    _group_name,
    _host_name,
    _ip_network,
    _labels,
    _text,
)
from rblwatch.config.walker import (
    Parser,
    _Ctx,
    _Invalid,
    _items,
    _join,
    _mapping,
    _required,
    _show,
    _unique,
    _walk,
)
from rblwatch.model import HYGIENE_CHECKS

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


# one DNS label (RFC 6376 allows dotted sub-selectors; rblwatch takes one label per selector)
# (RFC 6376 §3.1: a selector's labels are RFC 5321 sub-domains: letters, digits and '-')
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _sending_ip(ctx: _Ctx, path: str, raw: object) -> str:
    text = _text(ctx, path, raw).strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{_show(text)} is not an IP address (one sending IP each)") from None


def _selector(ctx: _Ctx, path: str, raw: object) -> str:
    return check_selector(_text(ctx, path, raw))


def check_selector(text: str) -> str:
    """A DKIM selector in lower case, or ValueError naming what is wrong with it."""
    text = text.strip()
    if "." in text:
        raise ValueError(
            f"selector {_show(text)} has a dot: give the selector alone (s1 for"
            " s1._domainkey.example.com), one DNS label"
        )
    if not _SELECTOR.fullmatch(text):
        raise ValueError(f"selector {_show(text)} is not a DNS label (letters, digits and '-')")
    return text.lower()


def _selectors(ctx: _Ctx, path: str, raw: object) -> Mapping[str, tuple[str, ...]]:
    """A list of selectors for every domain of the group, or a mapping domain -> list."""
    if isinstance(raw, list):
        return {"": _items(_selector)(ctx, path, raw)}
    out: dict[str, tuple[str, ...]] = {}
    for key, value in _mapping(path, raw).items():
        domain = _host_name(ctx, _join(path, key), key)
        out[domain] = _items(_selector)(ctx, _join(path, key), value)
    return out


_HYGIENE_FIELDS: Mapping[str, Parser] = {
    "checks": _items(_choice(*HYGIENE_CHECKS)),
    "sending_ips": _items(_sending_ip),
    "helo": _host_name,
    "dkim_selectors": _selectors,
}


def _hygiene(ctx: _Ctx, path: str, raw: object) -> HygieneConfig:
    fields = _walk(ctx, path, {} if raw is None else raw, _HYGIENE_FIELDS)
    selectors = fields.pop("dkim_selectors", {})
    checks = fields.get("checks")
    if checks is None:
        checks = DEFAULT_HYGIENE_CHECKS + (("dkim",) if selectors else ())
    elif "dkim" in checks and not selectors:
        raise _Invalid(_join(path, "checks"), "dkim needs dkim_selectors (the selectors to check)")
    _unique(_join(path, "checks"), list(checks), "check")
    ips = fields.get("sending_ips")
    if ips is not None and len(ips) > MAX_SENDING_IPS:
        raise _Invalid(_join(path, "sending_ips"), f"at most {MAX_SENDING_IPS} sending IPs")
    return HygieneConfig(
        checks=tuple(checks), sending_ips=ips, helo=fields.get("helo"), selectors=selectors
    )


_TARGET_FIELDS: Mapping[str, Parser] = {
    "group": _group_name,
    "addresses": _items(_target_address),
    "exclude": _items(_exclude_address),
    "hostnames": _items(_host_name),
    "domains": _items(_host_name),
    "labels": _labels,
    "hygiene": _hygiene,
}


def _target_group(ctx: _Ctx, path: str, raw: object) -> TargetGroup:
    fields = _walk(ctx, path, raw, _TARGET_FIELDS)
    _required(fields, path, "group", "(the group's name: a metric label and alert field)")
    if not any(fields.get(key) for key in ("addresses", "hostnames", "domains")):
        raise _Invalid(path, "a target group needs addresses, hostnames or domains")
    group = TargetGroup(**fields)
    if group.hygiene is not None:
        _check_hygiene_of(path, group)
    return group


def _check_hygiene_of(path: str, group: TargetGroup) -> None:
    """What a group's hygiene section asks must exist in the group: domains for the domain
    checks, sending IPs (or addresses and hostnames to take them from) for fcrdns and spf,
    and a selector's domain among the group's domains."""
    h = group.hygiene
    assert h is not None
    where = _join(path, "hygiene")
    needs_domains = {"spf", "dkim", "dmarc", "mta-sts", "tls-rpt"} & set(h.checks)
    if needs_domains and not group.domains:
        raise _Invalid(where, f"{', '.join(sorted(needs_domains))} need the group's domains")
    if h.sending_ips is None:
        if {"fcrdns", "spf"} & set(h.checks) and not (group.addresses or group.hostnames):
            raise _Invalid(where, "fcrdns and spf need sending_ips, addresses or hostnames")
        many = sum(ipaddress.ip_network(a).num_addresses for a in group.addresses)
        if many > MAX_SENDING_IPS:
            raise _Invalid(
                where,
                f"the group's addresses are {many} IPs, more than {MAX_SENDING_IPS} to check"
                " as senders: list the ones that send mail under sending_ips",
            )
    for domain in h.selectors:
        if domain and domain not in group.domains:
            raise _Invalid(
                _join(_join(where, "dkim_selectors"), domain), "not one of the group's domains"
            )


def parse_targets(ctx: _Ctx, path: str, raw: object) -> tuple[TargetGroup, ...]:
    groups: tuple[TargetGroup, ...] = _items(_target_group)(ctx, path, raw)
    _unique(path, [g.group for g in groups], "group")
    return groups
