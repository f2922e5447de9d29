"""`rblwatch store migrate`: move a store's contents to another store (moving up from SQLite).

The copy itself, and every rule of it, is `rblwatch.store.transfer`; this prints what it did.
"""

from __future__ import annotations

import argparse

from rblwatch.cli.common import EXIT_CLEAN

MIGRATE_HELP = "copy state, history and the pending outbox into a new, empty store"
MIGRATE_DESCRIPTION = (
    "Copy the pairs, the history (event ids kept), list health, budgets and the pending outbox"
    " of the --from store into the --to store, which must be empty (a new database). The copy"
    " into the target is one transaction: a failure or a kill half way leaves the target"
    " empty, and running the command again starts over. Stop rblwatch first: what it writes"
    " to the source after the copy began is not copied. Example: rblwatch store migrate"
    " --from sqlite:////var/lib/rblwatch/state.db --to postgresql://rblwatch@db/rblwatch"
)


def cmd_store(args: argparse.Namespace) -> int:
    # the one subcommand so far; argparse has already refused any other
    assert args.store_command == "migrate"
    return cmd_migrate(args)


def cmd_migrate(args: argparse.Namespace) -> int:
    from rblwatch.store import transfer  # here: the store loads only when the command runs

    copied = transfer.migrate(args.from_url, args.to_url)
    counts = ", ".join(f"{table} {n}" for table, n in copied.rows.items())
    print(
        f"rblwatch: copied {counts} rows from {transfer.shown(args.from_url)}"
        f" to {transfer.shown(args.to_url)} in {copied.seconds:.2f} s"
    )
    return EXIT_CLEAN
