"""The `rblwatch hygiene` command line, apart from the command: building the parser loads
nothing of the checks (pyspf, the Public Suffix List)."""

from __future__ import annotations

import argparse
from typing import Any

from rblwatch.model import HYGIENE_CHECKS


def add_hygiene_parser(
    sub: argparse._SubParsersAction[Any],
) -> argparse.ArgumentParser:
    h: argparse.ArgumentParser = sub.add_parser(
        "hygiene", help="check PTR, SPF, DKIM and DMARC of domains and IPs now"
    )
    h.add_argument("domains", nargs="*", metavar="DOMAIN", help="domains (none: the config's)")
    h.add_argument("--ip", dest="ips", action="append", default=[], metavar="IP")
    h.add_argument("--selector", dest="selectors", action="append", default=[], metavar="S")
    h.add_argument("--helo", metavar="NAME", help="the HELO name fcrdns should match")
    h.add_argument("--check", dest="checks", action="append", default=[], choices=HYGIENE_CHECKS)
    h.add_argument("--nameserver", metavar="H[:PORT]", help="send every lookup to this resolver")
    h.add_argument("--format", choices=["table", "json"], default="table")
    h.add_argument("--trace", action="store_true", help="print SPF's evaluation steps")
    return h
