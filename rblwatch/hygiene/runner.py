"""What to check for a configured group, and running it: the pairs of a hygiene pass.

A pass is a list of `Item`s (check, target, IP, selector, group), made from the target
groups' `hygiene:` sections and the sending IPs known now (`items_of`), and evaluated on one
`Dns` by a few worker threads (`run_items`): the checks are synchronous (pyspf is), and
DNS waits are what a pass spends its time on. One `CachingDns` per pass asks each record once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TypeVar, cast

from rblwatch.hygiene.dkim import check_dkim
from rblwatch.hygiene.dmarc import check_dmarc
from rblwatch.hygiene.dns import Dns
from rblwatch.hygiene.fcrdns import check_fcrdns
from rblwatch.hygiene.policy import check_mta_sts, check_tls_rpt
from rblwatch.hygiene.result import CHECKS, CheckResult, errored
from rblwatch.hygiene.spf import check_spf
from rblwatch.model import hygiene_key

WORKERS = 8  # lookups waited for at once in a pass
R = TypeVar("R")


class Item(NamedTuple):
    """One (target, check) pair to evaluate."""

    check: str
    target: str  # a domain, or the IP for fcrdns
    ip: str | None = None
    selector: str | None = None
    group: str = ""
    helo: str | None = None

    @property
    def key(self) -> str:
        return hygiene_key(self.check, self.target, self.ip, self.selector)


def items_for(
    checks: Sequence[str],
    domains: Sequence[str],
    ips: Sequence[str],
    selectors: Callable[[str], Sequence[str]],
    *,
    group: str = "",
    helo: str | None = None,
) -> list[Item]:
    """Every pair one group asks for, in CHECKS order: per IP (fcrdns), per domain and IP
    (spf), per domain and selector (dkim), per domain (dmarc, mta-sts, tls-rpt)."""
    out: list[Item] = []
    for check in (c for c in CHECKS if c in checks):
        if check == "fcrdns":
            out += [Item(check, ip, ip, group=group, helo=helo) for ip in ips]
        elif check == "spf":
            out += [Item(check, d, ip, group=group, helo=helo) for d in domains for ip in ips]
        elif check == "dkim":
            out += [Item(check, d, None, s, group) for d in domains for s in selectors(d)]
        else:
            out += [Item(check, d, group=group) for d in domains]
    return out


def evaluate(dns: Dns, item: Item) -> CheckResult:
    """One pair's check. An exception of a check is a defect, reported as this pair's
    `error` (never a fail: it changes nothing) rather than ending the pass."""
    try:
        return _EVALUATORS[item.check](dns, item)
    except Exception as exc:  # a check's own defect must not end the other pairs' pass
        return errored(
            item.check,
            item.target,
            f"internal error: {type(exc).__name__}: {exc}"[:300],
            ip=item.ip,
            selector=item.selector,
        )


def run_items(dns: Dns, items: Iterable[Item], workers: int = WORKERS) -> list[CheckResult]:
    """Every item's result, in the items' order."""
    return run_kept(dns, items, _whole, workers)


def run_kept(
    dns: Dns, items: Iterable[Item], keep: Callable[[CheckResult], R], workers: int = WORKERS
) -> list[R]:
    """What `keep` makes of every item's result, in the items' order.

    `keep` runs in the worker as each result is made, so a pass of tens of thousands of
    pairs (1,024 sending IPs x the domains) holds what its caller needs — the daemon, the
    outcome — rather than every result's detail and SPF trace at once. The workers take the
    items one by one, so no future is made per item either."""
    todo = list(items)
    out: list[R | None] = [None] * len(todo)
    lock = threading.Lock()
    order = iter(range(len(todo)))

    def work() -> None:
        while True:
            with lock:
                i = next(order, None)
            if i is None:
                return
            out[i] = keep(evaluate(dns, todo[i]))

    n = min(workers, len(todo))
    if n <= 1:
        work()
    else:
        with ThreadPoolExecutor(max_workers=n) as pool:
            for f in [pool.submit(work) for _ in range(n)]:
                f.result()
    return cast("list[R]", out)


def _whole(result: CheckResult) -> CheckResult:
    return result


_EVALUATORS: Mapping[str, Callable[[Dns, Item], CheckResult]] = {
    "fcrdns": lambda dns, i: check_fcrdns(dns, i.target, helo=i.helo),
    "spf": lambda dns, i: check_spf(dns, i.target, i.ip or "", helo=i.helo),
    "dkim": lambda dns, i: check_dkim(dns, i.target, i.selector or ""),
    "dmarc": lambda dns, i: check_dmarc(dns, i.target),
    "mta-sts": lambda dns, i: check_mta_sts(dns, i.target),
    "tls-rpt": lambda dns, i: check_tls_rpt(dns, i.target),
}


__all__ = ["WORKERS", "Item", "evaluate", "items_for", "run_items", "run_kept"]
