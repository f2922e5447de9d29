"""The `rblwatch explain-bounce` command line, apart from the command: building the parser
loads nothing of the bounce parser, the resolver or the catalogue."""

from __future__ import annotations

import argparse
from typing import Any


def add_bounce_parser(sub: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    b: argparse.ArgumentParser = sub.add_parser(
        "explain-bounce",
        help="explain returned mail: each recipient's status, cause and the blocklist named",
    )
    b.add_argument(
        "files", nargs="+", metavar="FILE", help=".eml, mbox, maildir directory, or - for stdin"
    )
    b.add_argument("--format", choices=["table", "json"], default="table")
    b.add_argument(
        "--recheck",
        action="store_true",
        help="look each sending IP up now on the lists named and on the major lists",
    )
    b.add_argument("--nameserver", metavar="H[:PORT]", help="send every lookup to this resolver")
    return b
