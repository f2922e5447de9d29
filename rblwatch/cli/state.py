"""`rblwatch status` and `rblwatch history` (SPEC §9): the daemon's store, read and printed.

They print the very objects the HTTP API serves (`rblwatch.views.status`) and load neither
the listener nor the resolver: a status query is a store read and a format.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

from rblwatch import config, plan, targets
from rblwatch.cli.common import EXIT_CLEAN, UsageError, load
from rblwatch.store import Store, open_store
from rblwatch.views.status import (
    events_json,
    parse_rfc3339,
    status_json,
    status_view,
    unknown_list,
)
from rblwatch.views.tables import history_table, status_table


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
    cfg = load(args, require_file=True)
    store = open_existing_store(cfg)
    try:
        pairs, statuses, instances = store.pairs(), store.list_statuses(), store.instances()
        acks = store.acks()
    finally:
        store.close()
    # no daemon: count the config's targets (a hostname as one) instead of the resolved ones
    counted = sum(plan.target_counts(cfg).values())
    checks = [h.name for h in cfg.hygiene]
    view = status_view(pairs, statuses, cfg.subjects, counted, instances, checks, acks)
    now = time.time()
    _print(args.format, lambda: status_json(view), lambda: status_table(view, now))
    return EXIT_CLEAN


def cmd_history(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    since = _since(args.since)
    target = None if args.target is None else _target(args.target)
    store = open_existing_store(cfg)
    try:
        if args.list_name is not None:
            _known_list(args.list_name, cfg, store)
        # the newest --limit events (shown oldest first): a busy week must not hide today
        newest = store.events(
            since=since,
            limit=max(1, args.limit),
            target=target,
            list_name=args.list_name,
            newest_first=True,
        )
        events = list(reversed(newest))
    finally:
        store.close()
    _print(args.format, lambda: events_json(events), lambda: history_table(events))
    return EXIT_CLEAN


def _print(fmt: str, doc: Callable[[], object], table: Callable[[], str]) -> None:
    """The JSON object (the API's, indented) or the table, on stdout."""
    if fmt == "json":
        json.dump(doc(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table())


def _since(text: str) -> float:
    """`--since`: a duration back from now (7d, 12h) or an RFC 3339 time."""
    try:
        return time.time() - config.parse_duration(text)
    except (ValueError, config.ConfigError):
        pass
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise UsageError(f"--since {text}: use a duration (7d, 12h) or an RFC 3339 time") from None


def _target(text: str) -> str:
    try:
        return targets.canonical_target(text)
    except targets.TargetError as exc:
        raise UsageError(f"--target: {exc}") from None


def _known_list(name: str, cfg: config.Config, store: Store) -> None:
    """A list of the config, or one the store still has history of; otherwise say so (a typo
    must not read as "no events")."""
    known = [lst.name for lst in cfg.subjects] + [h.name for h in cfg.hygiene]
    known += [s.name for s in store.list_statuses()]
    problem = unknown_list(name, known)
    if problem is not None:
        raise UsageError(f"--list: {problem}")
