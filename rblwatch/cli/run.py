"""`rblwatch run`, `check-config` and `plan` (SPEC §9): the daemon and its configuration.

Only `run` loads the daemon (aiohttp, APScheduler); the other two read the config alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from rblwatch import config, plan
from rblwatch.cli.common import EXIT_CLEAN, UsageError, load, warn_public_resolvers
from rblwatch.views.tables import plan_table


def cmd_run(args: argparse.Namespace) -> int:
    # the daemon's imports (aiohttp, APScheduler) only when needed
    from rblwatch import daemon, web
    from rblwatch.logs import setup_logging

    cfg = config.load_config(args.config_file or config.DEFAULT_CONFIG_PATH, require_targets=True)
    if args.listen_address is not None:
        try:
            config.split_listen_address(args.listen_address)
        except ValueError as exc:
            raise UsageError(f"--web.listen-address: {exc}") from None
    setup_logging(args.log_level, args.log_format)
    for line in plan.warnings(cfg):
        logging.getLogger("rblwatch").warning(line)
    per_list = [s for lst in cfg.lists for s in lst.nameservers]
    warn_public_resolvers([*cfg.resolver.nameservers, *per_list], sys.stderr)
    try:
        d = daemon.Daemon(cfg.source, listen_address=args.listen_address, loaded=cfg)
        code: int = asyncio.run(d.run())
    except web.WebError as exc:  # the listen address is taken or not ours: one line, exit 2
        raise UsageError(str(exc)) from None
    return code


def cmd_check_config(args: argparse.Namespace) -> int:
    # exactly what `run` accepts: the same call
    cfg = config.load_config(args.config_file or config.DEFAULT_CONFIG_PATH, require_targets=True)
    n_groups = len(cfg.targets)
    print(f"{cfg.source}: OK ({len(cfg.lists)} lists, {n_groups} target groups)")
    return EXIT_CLEAN


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    sys.stdout.write(plan_table(plan.plan(cfg)))
    return EXIT_CLEAN
