"""The command lines of working a listing (`ack`, `unack`, `delisting-requested`, `note`,
`notes`), apart from the commands: building the parser loads nothing of the store."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# the commands and the functions of `rblwatch.cli.acks` that run them
ACK_COMMANDS = {
    "ack": "cmd_ack",
    "unack": "cmd_unack",
    "delisting-requested": "cmd_delisting_requested",
    "note": "cmd_note",
    "notes": "cmd_notes",
}

_BY = "who is acting (default: your login name)"


def add_ack_parsers(
    sub: argparse._SubParsersAction[Any],
    with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    a = with_config(sub.add_parser("ack", help="acknowledge a listing (who is on it, and why)"))
    _pair(a)
    a.add_argument("--note", default="", metavar="TEXT", help="what is being done about it")
    a.add_argument(
        "--until", metavar="WHEN", help="expiry: a duration (7d, 12h) or an RFC 3339 time"
    )
    a.add_argument("--by", metavar="NAME", help=_BY)

    u = with_config(sub.add_parser("unack", help="remove a listing's acknowledgement"))
    _pair(u)
    u.add_argument("--by", metavar="NAME", help=_BY)

    d = with_config(
        sub.add_parser("delisting-requested", help="mark a listing: removal has been requested")
    )
    _pair(d)
    d.add_argument("--note", default="", metavar="TEXT", help="how and where it was requested")
    d.add_argument("--by", metavar="NAME", help=_BY)

    n = with_config(sub.add_parser("note", help="add a free-text note to a target"))
    n.add_argument("target", metavar="TARGET", help="address or domain")
    n.add_argument("text", nargs="+", metavar="TEXT", help="the note (words are joined)")
    n.add_argument("--by", metavar="NAME", help=_BY)

    ns = with_config(sub.add_parser("notes", help="a target's notes, oldest first"))
    ns.add_argument("target", metavar="TARGET", help="address or domain")
    ns.add_argument("--format", choices=["table", "json"], default="table")


def _pair(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="the listed address or domain")
    p.add_argument("list_name", metavar="LIST", help="the list (or hygiene check) it is on")
