"""The command line (SPEC §9): argument parsing and wiring. Nothing imports this module.

Every user error ends as one line on stderr and exit code 2 (`UsageError`); a traceback
is a bug.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import IO, NoReturn

from rblwatch import __version__, config, output, targets
from rblwatch import plan as plan_mod
from rblwatch.model import DnsList, Status, Target, TargetKind
from rblwatch.parallel import scan_split, worker_count
from rblwatch.resolver import Resolver, normalize_server, system_nameservers
from rblwatch.scan import Report, count_lookups, plans_for, probe_health
from rblwatch.store import Store, StoreError, open_store

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

    r = with_config(sub.add_parser("run", help="run the monitoring daemon"))
    r.add_argument("--web.listen-address", dest="listen_address", metavar="A")
    r.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=["debug", "info", "warning", "error"],
    )
    r.add_argument("--log.format", dest="log_format", default="text", choices=["text", "json"])

    st = with_config(sub.add_parser("status", help="current listings and list health (store)"))
    st.add_argument("--format", choices=["table", "json"], default="table")

    h = with_config(sub.add_parser("history", help="events from the store"))
    h.add_argument("--target", metavar="T")
    h.add_argument("--list", dest="list_name", metavar="L")
    h.add_argument("--since", default="7d", metavar="DURATION", help="how far back (default 7d)")
    h.add_argument("--limit", type=int, default=1000, metavar="N", help="the newest N (1000)")
    h.add_argument("--format", choices=["table", "json"], default="table")

    with_config(sub.add_parser("plan", help="queries per day per list against its limits"))
    return p


# Commands that own nothing once they have printed: no store, no sockets, no threads.
_NOTHING_TO_CLOSE = frozenset({"check", "lists", "check-config", "plan"})


def console() -> int:
    """The `rblwatch` command and `python -m rblwatch`: `main` for a process of its own."""
    return main(quick_exit=True)


def main(argv: Sequence[str] | None = None, *, quick_exit: bool = False) -> int:
    """Run one command; `quick_exit` (a process of its own) may end the process directly."""
    try:
        args = build_parser().parse_args(argv)
        handler = {
            "check": cmd_check,
            "lists": cmd_lists,
            "check-config": cmd_check_config,
            "run": cmd_run,
            "status": cmd_status,
            "history": cmd_history,
            "plan": cmd_plan,
        }
        code = handler[args.command](args)
        if quick_exit and args.command in _NOTHING_TO_CLOSE:
            _exit_now(code)
        return code
    except (UsageError, config.ConfigError, targets.TargetError, StoreError) as exc:
        print(f"rblwatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_CLEAN


def _exit_now(code: int) -> NoReturn:
    """Flush what was printed and end the process without tearing down its objects.

    After a big check that teardown (a /16's targets and results, freed one by one) is tens
    of milliseconds that nobody waits for. A failing flush (a closed pipe) raises here.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
        output.write_check_json(report, sys.stdout)
    else:
        sys.stdout.write(output.check_table(report))
    return exit_code(report)


def _check(
    cfg: config.Config, lists: list[DnsList], tgts: list[Target], args: argparse.Namespace
) -> Report:
    defaults, override = servers_of(cfg, args.nameserver)
    plans = plans_for(lists, defaults, override)
    warn_public_resolvers({s for p in plans for s in p.template.servers}, sys.stderr)
    progress = Progress(sys.stderr)
    asyncio.run(probe_health(make_resolver(cfg), plans))
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
    return report


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
    from rblwatch import catalogue

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
    # exactly what `run` accepts: the same call
    cfg = config.load_config(args.config_file or config.DEFAULT_CONFIG_PATH, require_targets=True)
    n_groups = len(cfg.targets)
    print(f"{cfg.source}: OK ({len(cfg.lists)} lists, {n_groups} target groups)")
    return EXIT_CLEAN


__all__ = ["TargetKind", "main"]


# -- the daemon and its store ----------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    # the daemon's imports (aiohttp, APScheduler) only when needed
    from rblwatch import daemon, web

    cfg = config.load_config(args.config_file or config.DEFAULT_CONFIG_PATH, require_targets=True)
    if args.listen_address is not None:
        try:
            config.split_listen_address(args.listen_address)
        except ValueError as exc:
            raise UsageError(f"--web.listen-address: {exc}") from None
    daemon.setup_logging(args.log_level, args.log_format)
    for line in plan_mod.warnings(cfg):
        logging.getLogger("rblwatch").warning(line)
    per_list = [s for lst in cfg.lists for s in lst.nameservers]
    warn_public_resolvers([*cfg.resolver.nameservers, *per_list], sys.stderr)
    try:
        d = daemon.Daemon(cfg.source, listen_address=args.listen_address, loaded=cfg)
        code: int = asyncio.run(d.run())
    except web.WebError as exc:  # the listen address is taken or not ours: one line, exit 2
        raise UsageError(str(exc)) from None
    return code


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    rows = [
        [
            r.list,
            f"{r.targets:,}",
            f"{r.interval:g}s",
            f"{r.queries_per_day:,}",
            f"{r.limit:,}" if r.limit else "-",
            "OVER LIMIT" if r.over else "ok",
        ]
        for r in plan_mod.plan(cfg)
    ]
    header = ["LIST", "TARGETS", "INTERVAL", "QUERIES/DAY", "LIMIT/DAY", ""]
    sys.stdout.write(output.table(header, rows))
    return EXIT_CLEAN


def open_existing_store(cfg: config.Config) -> Store:
    """The daemon's store, for reading; a missing SQLite file is an error, not a new store."""
    url = cfg.store.url
    if url.startswith("sqlite:///") and not os.path.exists(url.removeprefix("sqlite:///")):
        raise UsageError(
            f"{cfg.source}: store.url: {url.removeprefix('sqlite:///')} does not exist"
            " (has 'rblwatch run' run with this config?)"
        )
    return open_store(url)


def cmd_status(args: argparse.Namespace) -> int:
    from rblwatch import web

    cfg = load(args, require_file=True)
    store = open_existing_store(cfg)
    try:
        view = web.read_status(store, cfg)
    finally:
        store.close()
    if args.format == "json":
        json.dump(web.view_json(view), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_CLEAN
    listings = [
        [
            p.target,
            p.list,
            p.group,
            web.rfc3339(p.since) or "",
            ",".join(p.codes),
            "; ".join(p.meanings),
        ]
        for p in view.listings
    ]
    sys.stdout.write(
        output.table(["TARGET", "LIST", "GROUP", "SINCE", "CODES", "MEANINGS"], listings)
    )
    sys.stdout.write("\n")
    lists = [
        [r.name, r.health.value, web.rfc3339(r.last_cycle_end) or "never", r.health_detail]
        for r in view.lists
    ]
    sys.stdout.write(output.table(["LIST", "HEALTH", "LAST CYCLE", "DETAIL"], lists))
    sys.stdout.write(f"\n{len(view.listings)} listed pairs, {view.targets} targets\n")
    return EXIT_CLEAN


def cmd_history(args: argparse.Namespace) -> int:
    from rblwatch import web

    cfg = load(args, require_file=True)
    since = _since(args.since)
    store = open_existing_store(cfg)
    try:
        # the newest --limit events (shown oldest first): a busy week must not hide today
        newest = store.events(
            since=since,
            limit=max(1, args.limit),
            target=args.target,
            list_name=args.list_name,
            newest_first=True,
        )
        events = list(reversed(newest))
    finally:
        store.close()
    if args.format == "json":
        json.dump(web.events_json(events), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return EXIT_CLEAN
    rows = [
        [
            web.rfc3339(e.at) or "",
            e.kind.value,
            e.target or "-",
            e.list,
            e.group or "-",
            ",".join(e.codes),
            "initial" if e.initial else e.detail,
        ]
        for e in events
    ]
    sys.stdout.write(output.table(["AT", "KIND", "TARGET", "LIST", "GROUP", "CODES", ""], rows))
    return EXIT_CLEAN


def _since(text: str) -> float:
    """`--since`: a duration back from now (7d, 12h) or an RFC 3339 time."""
    from rblwatch import web

    try:
        return time.time() - config.parse_duration(text)
    except (ValueError, config.ConfigError):
        pass
    try:
        return web.parse_rfc3339(text)
    except ValueError:
        raise UsageError(f"--since {text}: use a duration (7d, 12h) or an RFC 3339 time") from None
