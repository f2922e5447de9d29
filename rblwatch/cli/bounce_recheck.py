"""`explain-bounce --recheck`: each bounced recipient's sending IP looked up now, by the
machinery of `rblwatch check` (list health probed first, the config's resolver or
`--nameserver`), on the lists the bounce named and on the major lists besides.

The major lists are the config's (`lists:`), or without a config the catalogue's defaults:
block lists that take an IP. A named list is asked as the config defines it, else as the
catalogue does; one that cannot be asked (defunct, or keyed with its key unset) is an `error`
with reason `not_queried` and a warning saying why — never `clean`. A list the bounce named
that takes only domains, and a provider's own list, get no recheck (null).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Iterable, Sequence
from typing import IO

from rblwatch import config
from rblwatch.bounces.model import Explained, NamedList, OtherList, Recheck, Recipient
from rblwatch.cli.bounce import bounced
from rblwatch.cli.check import make_resolver, servers_of
from rblwatch.cli.common import from_catalogue, warn_public_resolvers
from rblwatch.model import DnsList, Outcome, OutcomeKind, Purpose, Target, TargetKind
from rblwatch.scan import plans_for, probe_health, scan

NOT_QUERIED = "not_queried"
_Found = dict[tuple[str, str], Outcome]  # (ip, list name) → outcome


def recheck(
    cfg: config.Config, messages: Sequence[Explained], nameserver: str | None, err: IO[str]
) -> list[Explained]:
    """The messages with every bounced recipient's lists rechecked."""
    ips = sorted({ip for m in messages for ip in _ips(m)})
    if not ips:
        return list(messages)
    named, refused = _named_lists(cfg, messages, err)
    others = [lst for lst in cfg.lists if _major(lst) and lst.name not in named]
    found = _look_up(cfg, ips, [*named.values(), *others], nameserver, err)
    fill = _Filler(found, named, refused, others)
    return [_filled(m, fill) for m in messages]


def _filled(m: Explained, fill: _Filler) -> Explained:
    todo = {id(r) for r in bounced(m)}
    recipients = tuple(fill(r) if id(r) in todo else r for r in m.recipients)
    return dataclasses.replace(m, recipients=recipients)


def _ips(m: Explained) -> Iterable[str]:
    for r in bounced(m):
        ip = canonical_ip(r.sending_ip)
        if ip is not None:
            yield ip


def canonical_ip(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def _major(lst: DnsList) -> bool:
    return lst.purpose is Purpose.BLOCK and lst.checks(TargetKind.IPV4)


def _named_lists(
    cfg: config.Config, messages: Sequence[Explained], err: IO[str]
) -> tuple[dict[str, DnsList], set[str]]:
    """The named lists to ask, by name, and the names that cannot be asked (warned about)."""
    mine = {lst.name: lst for lst in cfg.lists}
    asked: dict[str, DnsList] = {}
    refused: set[str] = set()
    for m in messages:
        for r in m.recipients:
            for n in r.lists:
                name = n.name
                if name is None or not n.queryable or name in asked or name in refused:
                    continue
                lst = mine.get(name)
                if lst is None:
                    try:
                        lst = from_catalogue(name)
                    except config.ConfigError as exc:
                        print(f"rblwatch: {name} not rechecked: {exc.problem}", file=err)
                        refused.add(name)
                        continue
                if lst.checks(TargetKind.IPV4) or lst.checks(TargetKind.IPV6):
                    asked[name] = lst
    return asked, refused


def _look_up(
    cfg: config.Config, ips: list[str], lists: list[DnsList], nameserver: str | None, err: IO[str]
) -> _Found:
    if not lists:
        return {}
    defaults, override = servers_of(cfg, nameserver)
    plans = plans_for(lists, defaults, override)
    warn_public_resolvers({s for p in plans for s in p.template.servers}, err)
    targets = [Target(ip, _kind(ip)) for ip in ips]

    async def run() -> _Found:
        resolver = make_resolver(cfg)
        await probe_health(resolver, plans)
        report = await scan(resolver, targets, plans, keep_clean=True)
        return {(r.target.value, r.lst.name): r.outcome for r in report.results}

    return asyncio.run(run())


def _kind(ip: str) -> TargetKind:
    return TargetKind.IPV6 if ":" in ip else TargetKind.IPV4


def as_recheck(outcome: Outcome | None) -> Recheck:
    """A lookup's outcome as a recheck; a lookup that was not made is an error, not clean."""
    if outcome is None:
        return Recheck("error", reason=NOT_QUERIED)
    if outcome.kind is OutcomeKind.LISTED:
        return Recheck("listed", outcome.codes)
    if outcome.kind is OutcomeKind.ERROR:
        return Recheck("error", reason=outcome.reason.value if outcome.reason else None)
    return Recheck("clean")


@dataclasses.dataclass(frozen=True, slots=True)
class _Filler:
    """Turns a recipient into the same with its rechecks filled in."""

    found: _Found
    named: dict[str, DnsList]
    refused: set[str]
    others: list[DnsList]

    def __call__(self, r: Recipient) -> Recipient:
        ip = canonical_ip(r.sending_ip)
        if ip is None:
            return r
        lists = tuple(self._named(ip, n) for n in r.lists)
        others = tuple(
            OtherList(lst.name, as_recheck(self.found.get((ip, lst.name))), lst.delist_url)
            for lst in self.others
            if lst.checks(_kind(ip))
        )
        return dataclasses.replace(r, lists=lists, other_lists=others)

    def _named(self, ip: str, n: NamedList) -> NamedList:
        if n.name in self.refused:
            return dataclasses.replace(n, recheck=as_recheck(None))
        lst = self.named.get(n.name or "")
        if lst is None or not lst.checks(_kind(ip)):
            return n  # not asked: a provider's own list, or a list of domains
        return dataclasses.replace(n, recheck=as_recheck(self.found.get((ip, lst.name))))


__all__ = ["NOT_QUERIED", "as_recheck", "canonical_ip", "recheck"]
