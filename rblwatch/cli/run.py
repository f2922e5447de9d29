"""`rblwatch run`, `check-config` and `plan` (SPEC §9): the daemon and its configuration.

Only `run` loads the daemon (aiohttp, APScheduler); the other two read the config alone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

from rblwatch import config, plan
from rblwatch.cli.common import EXIT_CLEAN, UsageError, load, warn_public_resolvers
from rblwatch.views.tables import plan_table

if TYPE_CHECKING:
    from rblwatch.webconfig import WebConfigWatch


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
    security = web_security(args, cfg)
    try:
        d = daemon.Daemon(
            cfg.source, listen_address=args.listen_address, loaded=cfg, web_security=security
        )
        code: int = asyncio.run(d.run())
    except web.WebError as exc:  # the listen address is taken or not ours: one line, exit 2
        raise UsageError(str(exc)) from None
    return code


def web_security(args: argparse.Namespace, cfg: config.Config) -> WebConfigWatch | None:
    """The web config file `run` serves with: --web.config.file, else web.config_file; its
    problems are ConfigErrors (one line, exit 2) like the config's own."""
    from rblwatch.webconfig import WebConfigWatch

    path = args.web_config_file or cfg.web.config_file
    return WebConfigWatch(path) if path else None


def cmd_check_config(args: argparse.Namespace) -> int:
    # exactly what `run` accepts: the same calls
    cfg = config.load_config(args.config_file or config.DEFAULT_CONFIG_PATH, require_targets=True)
    security = web_security(args, cfg)
    n_groups = len(cfg.targets)
    print(f"{cfg.source}: OK ({len(cfg.lists)} lists, {n_groups} target groups)")
    if security is not None:
        from rblwatch.webconfig import describe

        print(f"{security.path}: OK ({describe(security)})")
    return EXIT_CLEAN


def cmd_plan(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    sys.stdout.write(plan_table(plan.plan(cfg)))
    for line in plan.cycle_warnings(cfg):
        print(f"rblwatch: warning: {line}", file=sys.stderr)
    return EXIT_CLEAN
