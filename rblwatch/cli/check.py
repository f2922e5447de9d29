"""`rblwatch check` and `rblwatch lists` (SPEC §9): lookups and probes made now, printed.

The only commands besides `run` that send DNS queries, so the only ones that load the
resolver and the scanner.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import IO

from rblwatch import catalogue, config, etiquette, health, targets
from rblwatch.cli.common import (
    EXIT_CLEAN,
    EXIT_ERRORS,
    EXIT_LISTED,
    Servers,
    UsageError,
    from_catalogue,
    load,
    select_lists,
    warn_public_resolvers,
)
from rblwatch.model import DnsList, Health, Kind, Status, Target, TargetKind
from rblwatch.parallel import scan_split, worker_count
from rblwatch.resolver import Resolver, normalize_server, system_nameservers
from rblwatch.scan import (
    Plan,
    Report,
    combine,
    count_lookups,
    lookups_per_list,
    plans_for,
    probe_health,
    scan,
)
from rblwatch.targetlist import TargetList
from rblwatch.views.check import check_table, write_check_json
from rblwatch.views.lists import lists_json, lists_table


def servers_of(cfg: config.Config, nameserver: str | None) -> tuple[Servers, Servers | None]:
    """(default servers, override servers) with hostnames resolved to addresses."""
    override: Servers | None = None
    if nameserver is not None:
        try:
            override = (_numeric(*config.parse_nameserver(nameserver)),)
        except ValueError as exc:
            raise UsageError(f"--nameserver {nameserver}: {exc}") from None
    configured = cfg.resolver.nameservers or system_nameservers()
    return tuple(_numeric(h, p) for h, p in configured), override


def _numeric(host: str, port: int) -> tuple[str, int]:
    try:
        return normalize_server(host, port)
    except OSError as exc:
        raise UsageError(f"nameserver {host}: cannot be resolved ({exc})") from None


def make_resolver(cfg: config.Config, workers: int = 1) -> Resolver:
    """A resolver with its share of max_in_flight when `workers` processes scan together."""
    r = cfg.resolver
    return Resolver(
        timeout=r.timeout, attempts=r.attempts, max_in_flight=max(1, r.max_in_flight // workers)
    )


# -- check ---------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    cfg = load(args)
    lists = select_lists(cfg, args.lists)
    tgts = targets.parse_cli_targets(args.targets, ipv4_min_prefix=cfg.limits.ipv4_min_prefix)
    tgts, unresolved = _with_addresses(cfg, lists, tgts, args.nameserver)
    # what exists now lives until the check ends, and the scan makes no reference cycles
    # worth a collector: spare it re-walking 65,536 targets of a /16 and the scan's
    # short-lived bookkeeping (forked workers inherit this)
    gc.freeze()
    gc.disable()
    try:
        report = _check(cfg, lists, tgts, args)
    finally:
        gc.enable()
        gc.unfreeze()
    if args.format == "json":
        write_check_json(report, sys.stdout)
    else:
        sys.stdout.write(check_table(report))
    code = exit_code(report)
    return EXIT_ERRORS if code == EXIT_CLEAN and unresolved else code


def _with_addresses(
    cfg: config.Config, lists: list[DnsList], tgts: TargetList, nameserver: str | None
) -> tuple[TargetList, bool]:
    """The targets plus the addresses of the names among them; whether a name's lookup failed.

    A name given to `check` is a domain (for domain lists) and a host whose addresses are
    what IP lists list: `check mx1.example.net` looks both up, as a web blacklist check does.
    A name with no address records is only a domain; one whose lookup failed is said so on
    stderr, and the check cannot end "all clean" (exit 3).
    """
    names = [t.value for t in tgts if t.kind is TargetKind.DOMAIN]
    if not names or not any(lst.kind is Kind.IP for lst in lists):
        return tgts, False
    # dnspython's resolver (~14 MB with what it imports) only for a check that names hosts:
    # a check of addresses, forked into workers, must not carry it in every process
    from rblwatch import hostnames

    defaults, override = servers_of(cfg, nameserver)
    found, failed = asyncio.run(
        hostnames.resolve_hostnames(
            names, nameservers=override or defaults, timeout=cfg.resolver.timeout
        )
    )
    unresolved = False
    for name, why in failed:
        if why not in hostnames.NO_ADDRESSES:
            print(f"rblwatch: warning: {name}: addresses not looked up: {why}", file=sys.stderr)
            unresolved = True
    have = {t.value for t in tgts}
    return tgts + [t for t in found if t.value not in have], unresolved


def _check(
    cfg: config.Config, lists: list[DnsList], tgts: Sequence[Target], args: argparse.Namespace
) -> Report:
    defaults, override = servers_of(cfg, args.nameserver)
    plans = plans_for(lists, defaults, override)
    warn_public_resolvers({s for p in plans for s in p.template.servers}, sys.stderr)
    _mind_the_limits(plans, tgts, force=args.force)
    progress = Progress(sys.stderr)
    asyncio.run(probe_health(make_resolver(cfg), plans))
    # lists with a max_qps are asked at their pace, each in a run of its own; the rest at once
    paced = [p for p in plans if p.lst.max_qps]
    at_once = [p for p in plans if not p.lst.max_qps]
    report = scan_split(
        lambda workers: make_resolver(cfg, workers),
        tgts,
        at_once,
        workers=worker_count(count_lookups(tgts, at_once)),
        keep_clean=args.all,
        fetch_txt=args.txt,
        progress=progress.update,
    )
    if paced:
        report = combine(plans, [report, asyncio.run(_paced(cfg, tgts, paced, args))])
    progress.finish()
    return report


def _mind_the_limits(plans: list[Plan], tgts: Sequence[Target], *, force: bool) -> None:
    """Refuse a check over a list's daily limit (unless forced); warn at a tenth of it."""
    lookups = lookups_per_list(tgts, plans)  # a /16's targets counted once, not once a list
    queries = {p.lst.name: lookups[p.lst.name] + len(health.test_points(p.lst)) for p in plans}
    verdict = etiquette.judge([p.lst for p in plans], queries, force=force)
    for line in verdict.warnings:
        print(f"rblwatch: warning: {line}", file=sys.stderr)
    if verdict.refused:
        more = len(verdict.refused) - 1
        raise UsageError(verdict.refused[0] + (f" (and {more} more lists)" if more else ""))


async def _paced(
    cfg: config.Config, tgts: Sequence[Target], plans: list[Plan], args: argparse.Namespace
) -> Report:
    resolver = make_resolver(cfg)
    runs = [
        scan(resolver, tgts, [p], keep_clean=args.all, fetch_txt=args.txt, max_qps=p.lst.max_qps)
        for p in plans
    ]
    return combine(plans, list(await asyncio.gather(*runs)))


def exit_code(report: Report) -> int:
    s = report.summary
    if s.listed:
        return EXIT_LISTED
    if s.error:
        return EXIT_ERRORS
    return EXIT_CLEAN


class Progress:
    """A one-line progress bar on a terminal, shown only once a run takes more than a moment."""

    DELAY = 1.0

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.start < self.DELAY or now - self.last < 0.1:
            return
        self.last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        rate = done / (now - self.start)
        self.stream.write(f"\r[{bar:<30}] {frac:4.0%} {done}/{total} lookups {rate:,.0f}/s ")
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()


# -- lists ---------------------------------------------------------------------------------


def cmd_lists(args: argparse.Namespace) -> int:
    from_config = args.config_file is not None or os.path.exists(config.DEFAULT_CONFIG_PATH)
    cfg = load(args) if from_config else config.default_config()
    lists = list(cfg.lists) if from_config else list(catalogue.catalogue().values())
    health: dict[str, str] | None = None
    if args.test:
        live = [lst for lst in lists if lst.status is not Status.DEFUNCT]
        if not from_config:
            live = testable(live, sys.stderr)
        defaults, override = servers_of(cfg, args.nameserver)
        plans = plans_for(live, defaults, override)
        warn_public_resolvers({s for p in plans for s in p.template.servers}, sys.stderr)
        asyncio.run(probe_health(make_resolver(cfg), plans))
        health = {p.lst.name: p.verdict.health.value for p in plans}
    if args.format == "json":
        json.dump(lists_json(lists, health), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(lists_table(lists, health))
    if health is not None and any(h != Health.HEALTHY.value for h in health.values()):
        return EXIT_ERRORS  # as `check`'s errors: a script checking its resolver setup sees it
    return EXIT_CLEAN


def testable(lists: Iterable[DnsList], err: IO[str]) -> list[DnsList]:
    """Catalogue lists ready to probe; a keyed one whose key is not set is left out, said why."""
    out = []
    for lst in lists:
        try:
            out.append(from_catalogue(lst.name))
        except config.ConfigError as exc:
            print(f"rblwatch: {lst.name} not tested: {exc.problem}", file=err)
    return out
