"""What every command shares: exit codes, user errors, the config and its lists, resolvers."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from typing import IO

from rblwatch import config
from rblwatch.model import DnsList

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

Servers = tuple[tuple[str, int], ...]


class UsageError(Exception):
    """A mistake of the user's: reported as one line, exit code 2."""


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


def warn_public_resolvers(servers: Iterable[tuple[str, int]], err: IO[str]) -> None:
    for host, _ in sorted(set(servers)):
        if host in PUBLIC_RESOLVERS:
            print(
                f"rblwatch: warning: nameserver {host} is {PUBLIC_RESOLVERS[host]}, a public"
                " resolver; most blocklists refuse or mis-answer it — use your own recursive"
                " resolver",
                file=err,
            )
