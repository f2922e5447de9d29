"""The command line (SPEC §9): argument parsing and wiring. Nothing imports this module.

Every user error ends as one line on stderr and exit code 2 (`UsageError`); a traceback
is a bug.
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
from typing import IO, NoReturn

from rblwatch import __version__, catalogue, config, output, targets
from rblwatch.model import DnsList, Status, TargetKind
from rblwatch.parallel import scan_split, worker_count
from rblwatch.resolver import Resolver, normalize_server, system_nameservers
from rblwatch.scan import Report, count_lookups, plans_for, probe_health

EXIT_CLEAN = 0
EXIT_LISTED = 1
EXIT_USAGE = 2
EXIT_ERRORS = 3

# Most lists refuse or mis-answer queries that arrive through big public resolvers (SPEC §8).
PUBLIC_RESOLVERS = {
    "8.8.8.8": "Google Public DNS",
    "8.8.4.4": "Google Public DNS",
    "1.1.1.1": "Cloudflare",
    "1.0.0.1": "Cloudflare",
    "9.9.9.9": "Quad9",
    "149.112.112.112": "Quad9",
    "208.67.222.222": "OpenDNS",
    "208.67.220.220": "OpenDNS",
    "2001:4860:4860::8888": "Google Public DNS",
    "2001:4860:4860::8844": "Google Public DNS",
    "2606:4700:4700::1111": "Cloudflare",
    "2620:fe::fe": "Quad9",
}


class UsageError(Exception):
    """A mistake of the user's: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rblwatch", description="DNS blocklist monitor")
    p.add_argument("--version", action="version", version=f"rblwatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "--config.file",
            dest="config_file",
            metavar="P",
            help=f"configuration file (default {config.DEFAULT_CONFIG_PATH})",
        )
        return sp

    c = with_config(sub.add_parser("check", help="look targets up now and print the outcomes"))
    c.add_argument("--list", dest="lists", action="append", default=[], metavar="NAME")
    c.add_argument("--nameserver", metavar="H[:PORT]", help="send every lookup to this resolver")
    c.add_argument("--format", choices=["table", "json"], default="table")
    c.add_argument("--txt", action="store_true", help="fetch TXT records of listings")
    c.add_argument("--all", action="store_true", help="also show clean results")
    c.add_argument("targets", nargs="+", metavar="TARGET", help="address, CIDR, domain or @FILE")

    ls = with_config(sub.add_parser("lists", help="print the lists (catalogue or config)"))
    ls.add_argument("--test", action="store_true", help="probe each list's test points now")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.add_argument("--nameserver", metavar="H[:PORT]", help="send every probe to this resolver")

    with_config(sub.add_parser("check-config", help="validate the configuration and exit"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = {"check": cmd_check, "lists": cmd_lists, "check-config": cmd_check_config}
        return handler[args.command](args)
    except (UsageError, config.ConfigError, targets.TargetError) as exc:
        print(f"rblwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


# -- configuration -------------------------------------------------------------------------


def load(args: argparse.Namespace, *, require_file: bool = False) -> config.Config:
    """The config named on the command line, the default file if present, or built-in defaults."""
    path = args.config_file
    if path is None:
        if not require_file and not os.path.exists(config.DEFAULT_CONFIG_PATH):
            return config.default_config()
        path = config.DEFAULT_CONFIG_PATH
    return config.load_config(path)


def select_lists(cfg: config.Config, names: Sequence[str]) -> list[DnsList]:
    """The config's lists, or those named with --list (from the config, else the catalogue)."""
    if not names:
        return list(cfg.lists)
    by_name = {lst.name: lst for lst in cfg.lists}
    chosen: dict[str, DnsList] = {}  # a list named twice is still looked up once
    for name in names:
        lst = by_name.get(name)
        if lst is None:
            try:
                lst = from_catalogue(name)
            except config.ConfigError as exc:
                raise UsageError(f"--list {name}: {exc.problem}") from None
        chosen.setdefault(name, lst)
    return list(chosen.values())


def from_catalogue(name: str) -> DnsList:
    """A catalogue list as a config naming it gets it, or ConfigError.

    Not `catalogue.get`: that entry's keyed zone is still the template
    (`${SPAMHAUS_DQS_KEY}.zen.dq.spamhaus.net`), which must be expanded from the environment
    (and masked for display) or refused, never sent to a resolver as it stands.
    """
    (lst,) = config.parse_config({"lists": [name]}, source="the catalogue").lists
    return lst


Servers = tuple[tuple[str, int], ...]


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


def warn_public_resolvers(servers: Iterable[tuple[str, int]], err: IO[str]) -> None:
    for host, _ in sorted(set(servers)):
        if host in PUBLIC_RESOLVERS:
            print(
                f"rblwatch: warning: nameserver {host} is {PUBLIC_RESOLVERS[host]}, a public"
                " resolver; most blocklists refuse or mis-answer it — use your own recursive"
                " resolver",
                file=err,
            )


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
    # what exists now lives until exit: spare the collector re-walking 65,536 targets of a /16
    # every time the scan's short-lived objects trigger a full collection
    gc.freeze()
    defaults, override = servers_of(cfg, args.nameserver)
    plans = plans_for(lists, defaults, override)
    warn_public_resolvers({s for p in plans for s in p.template.servers}, sys.stderr)
    progress = Progress(sys.stderr)
    resolver = make_resolver(cfg)
    asyncio.run(probe_health(resolver, plans))
    report = scan_split(
        lambda workers: make_resolver(cfg, workers),
        tgts,
        plans,
        workers=worker_count(count_lookups(tgts, plans)),
        keep_clean=args.all,
        fetch_txt=args.txt,
        progress=progress.update,
    )
    progress.finish()
    if args.format == "json":
        output.write_check_json(report, sys.stdout)
    else:
        sys.stdout.write(output.check_table(report))
    return exit_code(report)


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


# -- lists, check-config -------------------------------------------------------------------


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
        json.dump(catalogue.lists_json(lists, health), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(catalogue.lists_table(lists, health))
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


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    n_groups = len(cfg.targets)
    print(f"{cfg.source}: OK ({len(cfg.lists)} lists, {n_groups} target groups)")
    return EXIT_CLEAN


__all__ = ["TargetKind", "main"]
