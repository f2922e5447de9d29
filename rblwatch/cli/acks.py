"""`rblwatch ack`, `unack`, `delisting-requested`, `note` and `notes` (issue 11 part 2).

An operator's work on a listing, written to the daemon's store (`store.acks`) with its history
event, so `status`, `history`, the API and later alerts all see it. Every user error (an
unknown list, a target that is not an address or domain, a pair that is not listed, a bad
`--until`) is one line and exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from rblwatch import config, targets
from rblwatch.cli.common import EXIT_CLEAN, UsageError, load
from rblwatch.cli.state import open_existing_store
from rblwatch.model import Ack, Event, Note
from rblwatch.store import Store
from rblwatch.views.acks import expiry, notes_json
from rblwatch.views.status import rfc3339, unknown_list
from rblwatch.views.tables import table

T = TypeVar("T")


def cmd_ack(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    target, list_name = _pair(args, cfg)
    now = time.time()
    until = None if args.until is None else _until(args.until, now)
    ack = Ack(target, list_name, _by(args), now, note=args.note, until=until)
    event = _with_store(cfg, lambda s: s.set_ack(ack))
    _said(event, f"acknowledged {target} on {list_name}", ack.by)
    return EXIT_CLEAN


def cmd_unack(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    target, list_name = _pair(args, cfg)
    by, now = _by(args), time.time()
    event = _with_store(cfg, lambda s: s.clear_ack(target, list_name, by, now))
    if event is None:
        print(f"{target} on {list_name} was not acknowledged")
    else:
        _said(event, f"removed the ack of {target} on {list_name}", by)
    return EXIT_CLEAN


def cmd_delisting_requested(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    target, list_name = _pair(args, cfg)
    by, now = _by(args), time.time()
    event = _with_store(cfg, lambda s: s.request_delisting(target, list_name, by, args.note, now))
    _said(event, f"marked {target} on {list_name}: delisting requested", by)
    return EXIT_CLEAN


def cmd_note(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    text = " ".join(args.text).strip()
    if not text:
        raise UsageError("note: TEXT is empty (say what the note is)")
    note = Note(_target(args.target), _by(args), time.time(), text)
    stored = _with_store(cfg, lambda s: s.add_note(note))
    print(f"noted on {stored.target} (note {stored.id})")
    return EXIT_CLEAN


def cmd_notes(args: argparse.Namespace) -> int:
    cfg = load(args, require_file=True)
    target = _target(args.target)
    notes = _with_store(cfg, lambda s: s.notes(target))
    if args.format == "json":
        json.dump(notes_json(notes), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        rows = [[rfc3339(n.at) or "", n.by, n.text] for n in notes]
        sys.stdout.write(table(["AT", "BY", "NOTE"], rows))
    return EXIT_CLEAN


# -- the pieces ---------------------------------------------------------------------------------


def _with_store(cfg: config.Config, run: Callable[[Store], T]) -> T:
    store = open_existing_store(cfg)
    try:
        return run(store)
    finally:
        store.close()


def _said(event: Event, what: str, by: str) -> None:
    print(f"{what} (by {by}; event {event.id})")


def _pair(args: argparse.Namespace, cfg: config.Config) -> tuple[str, str]:
    """The canonical target and a list (or hygiene check) of the config; UsageError if not."""
    known = [lst.name for lst in cfg.subjects] + [h.name for h in cfg.hygiene]
    problem = unknown_list(args.list_name, known)
    if problem is not None:
        raise UsageError(f"{args.command}: {problem}")
    return _target(args.target), args.list_name


def _target(text: str) -> str:
    try:
        return targets.canonical_target(text)
    except targets.TargetError as exc:
        raise UsageError(f"TARGET {text}: {exc}") from None


def _by(args: argparse.Namespace) -> str:
    if args.by is not None:
        by = args.by.strip()
        if not by:
            raise UsageError("--by: empty (give a name, or leave --by out for your login name)")
        return str(by)
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a bare container)
        raise UsageError("--by: cannot tell your login name; give --by NAME") from None


def _until(text: str, now: float) -> float:
    """`--until`: see `views.acks.expiry`."""
    try:
        return expiry(text, now, config.parse_duration)
    except ValueError as exc:
        raise UsageError(f"--until {text}: {exc}") from None
