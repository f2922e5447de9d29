"""What a one-off `rblwatch check` may send: each list's daily limit and query rate (SPEC §5).

The daemon keeps a budget per list per day in its store. A one-off check has no store, but a
/16 on the default lists is over half a million queries sent in seconds, a fifth of a
Spamhaus free-use day in one go. So before a check sends anything, its queries per list
(lookups plus test points) are held against each list's `daily_query_limit`:

- more than the whole day's limit is refused (exit 2) unless the user passes `--force`: the
  list would rightly block the resolver, and every other check and the daemon on this host
  with it;
- a tenth of it or more is sent with a warning that says how much;
- a list with `max_qps` is scanned at that rate (in its own run), with a note when that makes
  the check take more than a minute.

Pure: the caller hands in the counts, this decides and words the lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rblwatch.model import DnsList

WARN_SHARE = 0.10  # of a list's daily limit, in one check


@dataclass(frozen=True, slots=True)
class Verdict:
    refused: tuple[str, ...]  # one line per list over its limit (without --force: exit 2)
    warnings: tuple[str, ...]


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


def judge(lists: Sequence[DnsList], queries: Mapping[str, int], *, force: bool) -> Verdict:
    """Hold each list's planned `queries` (by list name) against its limits."""
    refused: list[str] = []
    warnings: list[str] = []
    for lst in lists:
        n = queries.get(lst.name, 0)
        limit = lst.daily_query_limit
        if limit and n > limit:
            line = (
                f"{n:,} queries to {lst.name} exceed its daily limit of {limit:,}"
                " (the list's free-use terms)"
            )
            if force:
                warnings.append(line + "; sent anyway (--force)")
            else:
                refused.append(line + "; check fewer targets, or pass --force to send them")
        elif limit and n >= WARN_SHARE * limit:
            warnings.append(
                f"this check sends {n:,} queries to {lst.name}, {n / limit:.0%} of its"
                f" daily limit of {limit:,}"
            )
        if lst.max_qps and n / lst.max_qps > 60:
            warnings.append(
                f"{lst.name} is asked at most {lst.max_qps:g} queries/s (max_qps): its"
                f" {n:,} queries take about {_duration(n / lst.max_qps)}"
            )
    return Verdict(tuple(refused), tuple(warnings))
