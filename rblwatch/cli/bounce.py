"""`rblwatch explain-bounce`: returned mail explained — per recipient the status and what it
means, the cause, the sending IP, the blocklist the receiver named with its delist page and,
with `--recheck`, whether the IP is on it (and on the major lists) now.

Exit codes (README, "rblwatch explain-bounce"): 0 no recipient bounced, 1 at least one
recipient failed or was delayed, 2 usage or a FILE that cannot be read, 3 nothing bounced but
the all-clear is not sure: a message could not be read (too big, or not mail at all).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence

from rblwatch import bouncelists, config
from rblwatch.bounces import explain as explaining
from rblwatch.bounces.model import Explained, NamedList, Recheck, Recipient, report_json
from rblwatch.cli.common import EXIT_CLEAN, EXIT_ERRORS, EXIT_LISTED, UsageError, load
from rblwatch.mailsources import STDIN, MailSourceError, read_mail

# a recipient reported with one of these did not bounce (RFC 3464 §2.3.3)
_NOT_BOUNCED = frozenset({"delivered", "relayed", "expanded"})


def cmd_explain_bounce(args: argparse.Namespace) -> int:
    if args.files.count(STDIN) > 1:
        raise UsageError("explain-bounce: standard input (-) can be read only once")
    from_config = args.config_file is not None or os.path.exists(config.DEFAULT_CONFIG_PATH)
    cfg = load(args)
    messages = explain_all(args.files, bouncelists.list_facts(cfg if from_config else None))
    if args.recheck:
        from rblwatch.cli.bounce_recheck import recheck  # the resolver: only when asked

        messages = recheck(cfg, messages, args.nameserver, sys.stderr)
    if args.format == "json":
        json.dump(report_json(messages), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(bounce_table(messages))
    return exit_code(messages)


def explain_all(paths: Sequence[str], facts: Sequence[explaining.ListFacts]) -> list[Explained]:
    """Every message of every FILE explained, in order; a FILE that cannot be read is a
    UsageError (before anything is printed: the report is all or nothing)."""
    out = []
    # stdin only when named: a process started with it closed has no sys.stdin at all
    stdin = sys.stdin.buffer if STDIN in paths and sys.stdin is not None else None
    try:
        for mail in read_mail(paths, stdin):
            if mail.problem is not None:
                out.append(Explained(mail.source, "other", problem=mail.problem))
            else:
                out.append(explaining.explain(mail.raw, mail.source, facts))
    except MailSourceError as exc:
        raise UsageError(str(exc)) from None
    return out


def bounced(m: Explained) -> Iterable[Recipient]:
    """The recipients of a bounce that failed or were delayed."""
    if m.kind != "bounce":
        return ()
    return (r for r in m.recipients if r.action not in _NOT_BOUNCED)


def exit_code(messages: Sequence[Explained]) -> int:
    if any(True for m in messages for _ in bounced(m)):
        return EXIT_LISTED
    # a message that could not be read may have been a bounce: no all-clear
    return EXIT_ERRORS if any(m.problem is not None for m in messages) else EXIT_CLEAN


# -- the table -----------------------------------------------------------------------------


def bounce_table(messages: Sequence[Explained]) -> str:
    """A block per message, one per recipient in it, and a count line."""
    lines: list[str] = []
    for m in messages:
        lines.extend(_message_lines(m))
    failed = sum(1 for m in messages for _ in bounced(m))
    lines.append(f"{len(messages)} messages, {failed} recipients bounced")
    return "\n".join(lines) + "\n"


def _message_lines(m: Explained) -> list[str]:
    head = f"{m.source}: {m.kind.replace('_', ' ')}"
    if m.reporting_mta:
        head += f" from {m.reporting_mta}"
    if m.message_id:
        head += f" ({m.message_id})"
    if m.problem:
        head += f" — {m.problem}"
    lines = [head]
    for r in m.recipients:
        lines.extend(_recipient_lines(r))
    return [*lines, ""]


def _recipient_lines(r: Recipient) -> list[str]:
    state = r.action or "unknown action"
    if r.permanent is not None:
        state += ", permanent" if r.permanent else ", temporary"
    rows = [
        ("status", _coded(r.status, r.status_meaning)),
        ("reply code", _coded(r.reply_code, r.reply_meaning)),
        ("cause", r.cause),
        ("diagnostic", r.diagnostic),
        ("remote MTA", r.remote_mta),
        ("sending IP", r.sending_ip),
    ]
    rows += [("list", _named(n)) for n in r.lists]
    if r.other_lists is not None:
        rows.append(("other lists", _others(r) or "none asked"))
    lines = [f"  {r.address or '(no address)'}: {state}"]
    lines += [f"    {label:<11} {value}" for label, value in rows if value]
    return lines


def _coded(code: str | None, meaning: str | None) -> str | None:
    if code is None:
        return None
    return f"{code} {meaning}" if meaning else code


def _named(n: NamedList) -> str:
    text = n.name or "(not in the catalogue)"
    if n.named_as != n.name:
        text += f" (named as {n.named_as})"
    if n.delist_url:
        text += f", delist at {n.delist_url}"
    if not n.queryable:
        text += ", run by a provider: not queryable"
    if n.recheck is not None:
        text += f"; now {_recheck(n.recheck)}"
    return text


def _others(r: Recipient) -> str:
    return ", ".join(f"{o.name} {_recheck(o.recheck)}" for o in r.other_lists or ())


def _recheck(c: Recheck) -> str:
    if c.outcome == "listed":
        return f"listed ({', '.join(c.codes)})" if c.codes else "listed"
    if c.outcome == "error":
        return f"error ({c.reason})" if c.reason else "error"
    return c.outcome


__all__ = ["bounce_table", "bounced", "cmd_explain_bounce", "exit_code", "explain_all"]
