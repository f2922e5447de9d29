"""The command line (SPEC §9): argument parsing and wiring. Nothing imports this package.

Every user error ends as one line on stderr and exit code 2 (`UsageError`); a traceback
is a bug. Each command lives in a module of this package that is imported only when that
command runs, so `rblwatch status` loads neither the resolver nor the listener (aiohttp):
only `run` does.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from rblwatch import __version__, config, targets
from rblwatch.cli.acks_args import ACK_COMMANDS, add_ack_parsers
from rblwatch.cli.common import (
    EXIT_CLEAN,
    EXIT_ERRORS,
    EXIT_LISTED,
    EXIT_USAGE,
    PUBLIC_RESOLVERS,
    UsageError,
)
from rblwatch.model import TargetKind
from rblwatch.store import StoreError

# command → (module of this package, function): imported when the command runs
_COMMANDS = {
    "check": ("check", "cmd_check"),
    "lists": ("check", "cmd_lists"),
    "check-config": ("run", "cmd_check_config"),
    "run": ("run", "cmd_run"),
    "status": ("state", "cmd_status"),
    "history": ("state", "cmd_history"),
    "plan": ("run", "cmd_plan"),
    "store": ("store", "cmd_store"),
    "hygiene": ("hygiene", "cmd_hygiene"),
    "explain-bounce": ("bounce", "cmd_explain_bounce"),
    **{name: ("acks", function) for name, function in ACK_COMMANDS.items()},
}
# Commands that own nothing once they have printed: no store, no sockets, no threads.
_NOTHING_TO_CLOSE = frozenset(
    {"check", "lists", "check-config", "plan", "hygiene", "explain-bounce"}
)


class _ArgumentError(UsageError):
    """A command line argparse refused; the message already starts with the command."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # prog is "rblwatch" or "rblwatch check": the message names the command once
        raise _ArgumentError(f"{self.prog}: {message} (see --help)")


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
    c.add_argument(
        "--force", action="store_true", help="send queries past a list's daily limit anyway"
    )
    c.add_argument("targets", nargs="+", metavar="TARGET", help="address, CIDR, domain or @FILE")

    ls = with_config(sub.add_parser("lists", help="print the lists (catalogue or config)"))
    ls.add_argument("--test", action="store_true", help="probe each list's test points now")
    ls.add_argument("--format", choices=["table", "json"], default="table")
    ls.add_argument("--nameserver", metavar="H[:PORT]", help="send every probe to this resolver")

    def with_web_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "--web.config.file",
            dest="web_config_file",
            metavar="P",
            help="exporter-toolkit web config: TLS and basic-auth users (default web.config_file)",
        )
        return sp

    cc = sub.add_parser("check-config", help="validate the configuration and exit")
    with_web_config(with_config(cc))

    r = with_web_config(with_config(sub.add_parser("run", help="run the monitoring daemon")))
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
    st.add_argument("--target", metavar="T", help="pairs of one target, or of a network (CIDR)")
    st.add_argument("--list", dest="list_name", metavar="L", help="pairs of one list")
    st.add_argument("--state", choices=["listed", "clean", "unknown"], help="pairs in one state")
    st.add_argument("--limit", metavar="N", help="pairs per page (100, at most 1000)")
    st.add_argument("--cursor", metavar="C", help="the page a previous one's next_cursor names")

    h = with_config(sub.add_parser("history", help="events from the store"))
    h.add_argument("--target", metavar="T")
    h.add_argument("--list", dest="list_name", metavar="L")
    h.add_argument("--since", default="7d", metavar="DURATION", help="how far back (default 7d)")
    h.add_argument("--limit", type=int, default=1000, metavar="N", help="the newest N (1000)")
    h.add_argument("--format", choices=["table", "json"], default="table")

    with_config(sub.add_parser("plan", help="queries per day per list against its limits"))

    from rblwatch.cli.hygiene_args import add_hygiene_parser  # argparse only: nothing loads

    with_config(add_hygiene_parser(sub))

    from rblwatch.cli.bounce_args import add_bounce_parser  # argparse only: nothing loads

    with_config(add_bounce_parser(sub))

    add_ack_parsers(sub, with_config)  # argparse only: nothing loads

    from rblwatch.cli.store import MIGRATE_DESCRIPTION, MIGRATE_HELP  # text only: nothing loads

    s = sub.add_parser("store", help="work on a store itself (migrate)")
    store_sub = s.add_subparsers(
        dest="store_command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    m = store_sub.add_parser("migrate", help=MIGRATE_HELP, description=MIGRATE_DESCRIPTION)
    m.add_argument("--from", dest="from_url", required=True, metavar="URL", help="source store")
    m.add_argument("--to", dest="to_url", required=True, metavar="URL", help="empty target store")
    return p


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The function that runs command `name`, its module imported now."""
    module, function = _COMMANDS[name]
    run: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"{__name__}.{module}"), function
    )
    return run


def console() -> int:
    """The `rblwatch` command and `python -m rblwatch`: `main` for a process of its own."""
    return main(quick_exit=True)


def main(argv: Sequence[str] | None = None, *, quick_exit: bool = False) -> int:
    """Run one command; `quick_exit` (a process of its own) may end the process directly."""
    try:
        args = build_parser().parse_args(argv)
        code = command(args.command)(args)
        if quick_exit and args.command in _NOTHING_TO_CLOSE:
            _exit_now(code)
        return code
    except _ArgumentError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
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


def __getattr__(name: str) -> object:
    # `Progress` lives with `check`, which loads the resolver: fetched on first use only
    if name == "Progress":
        from rblwatch.cli.check import Progress

        return Progress
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EXIT_CLEAN",
    "EXIT_ERRORS",
    "EXIT_LISTED",
    "EXIT_USAGE",
    "PUBLIC_RESOLVERS",
    "TargetKind",
    "UsageError",
    "build_parser",
    "console",
    "main",
]
