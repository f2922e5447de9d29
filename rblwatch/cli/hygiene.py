"""`rblwatch hygiene`: a sender's DNS health test, now — of named domains and IPs, or of
every target group with a `hygiene:` section in the config.

Each check prints pass / fail / error with the reason (what to fix, the record to publish),
SPF's evaluation trace with `--trace`. Exit codes as `check`: 0 every check passes, 1 one
fails, 2 usage, 3 none fails but some could not be checked (DNS errors).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import time
from collections.abc import Sequence

from rblwatch import config, hostnames
from rblwatch.checks.hygiene import items_of
from rblwatch.cli.common import EXIT_CLEAN, EXIT_ERRORS, EXIT_LISTED, UsageError, load
from rblwatch.config import Config
from rblwatch.hygiene.dns import CachingDns
from rblwatch.hygiene.result import CheckResult
from rblwatch.hygiene.runner import Item, items_for, run_items
from rblwatch.inventory import Inventory
from rblwatch.targets import TargetError, normalize_domain
from rblwatch.views.tables import table


def cmd_hygiene(args: argparse.Namespace) -> int:
    cfg = load(args)
    items = _named_items(args) if args.domains or args.ips else _config_items(cfg)
    if not items:
        raise UsageError(
            "nothing to check: name a DOMAIN (or --ip), or give target groups a"
            " hygiene: section in the config"
        )
    servers = _servers(cfg, args.nameserver)
    dns = CachingDns(servers, cfg.resolver.timeout, cfg.resolver.attempts)
    start = time.monotonic()
    results = run_items(dns, items)
    took = time.monotonic() - start
    if args.format == "json":
        json.dump(report_json(results), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report_table(results, trace=args.trace))
    print(f"rblwatch: {len(results)} checks, {dns.queries} queries in {took:.2f}s", file=sys.stderr)
    outcomes = {r.outcome for r in results}
    if "fail" in outcomes:
        return EXIT_LISTED
    return EXIT_ERRORS if "error" in outcomes else EXIT_CLEAN


def _named_items(args: argparse.Namespace) -> list[Item]:
    try:
        domains = [normalize_domain(d) for d in args.domains]
    except TargetError as exc:
        raise UsageError(f"DOMAIN: {exc}") from None
    ips = []
    for text in args.ips:
        try:
            ips.append(str(ipaddress.ip_address(text.strip())))
        except ValueError:
            raise UsageError(f"--ip {text}: not an IP address") from None
    selectors = []
    for text in args.selectors:
        try:
            selectors.append(config.check_selector(text))
        except ValueError as exc:
            raise UsageError(f"--selector: {exc}") from None
    checks = list(args.checks) or _default_checks(domains, ips, selectors)
    if "dkim" in checks and not selectors:
        raise UsageError("--check dkim needs --selector")
    for check in ("fcrdns", "spf"):
        if check in checks and not ips:  # else the check asked for would just not run
            raise UsageError(f"--check {check} needs --ip (the sending IPs to check)")
    if {"spf", "dkim", "dmarc", "mta-sts", "tls-rpt"} & set(checks) and not domains:
        raise UsageError("the domain checks need a DOMAIN")
    helo = None if args.helo is None else args.helo.strip().lower().rstrip(".")
    return items_for(checks, domains, ips, lambda _d: selectors, helo=helo)


def _default_checks(domains: Sequence[str], ips: Sequence[str], sel: Sequence[str]) -> list[str]:
    checks = ["fcrdns"] if ips else []
    if domains:
        checks += (["spf"] if ips else []) + ["dmarc"] + (["dkim"] if sel else [])
    return checks


def _config_items(cfg: Config) -> list[Item]:
    r = cfg.resolver

    async def resolve(names: Sequence[str], group: str):  # type: ignore[no-untyped-def]
        return await hostnames.resolve_hostnames(
            names, nameservers=r.nameservers, timeout=r.timeout, group=group
        )

    found = asyncio.run(Inventory(resolve).current(cfg))
    return [i for h in cfg.hygiene for i in items_of(cfg, h.name, found)]


def _servers(cfg: Config, nameserver: str | None) -> tuple[tuple[str, int], ...]:
    if nameserver is None:
        return tuple(cfg.resolver.nameservers)
    try:
        return (tuple(config.parse_nameserver(nameserver)),)  # type: ignore[return-value]
    except ValueError as exc:
        raise UsageError(f"--nameserver {nameserver}: {exc}") from None


def result_json(r: CheckResult) -> dict[str, object]:
    """One check in the documented JSON shape (README: "rblwatch hygiene")."""
    out: dict[str, object] = {"check": r.check, "target": r.target, "ip": r.ip}
    if r.check == "dkim":
        out["selector"] = r.selector
    out.update(
        outcome=r.outcome,
        result=r.result,
        reason=r.reason or None,
        detail=dict(r.detail),
        trace=list(r.trace),
    )
    return out


def report_json(results: Sequence[CheckResult]) -> dict[str, object]:
    summary = {"pass": 0, "fail": 0, "error": 0}
    for r in results:
        summary[r.outcome] += 1
    return {"checks": [result_json(r) for r in results], "summary": summary}


def report_table(results: Sequence[CheckResult], *, trace: bool = False) -> str:
    rows = []
    for r in results:
        what = r.ip if r.check == "spf" else r.selector if r.check == "dkim" else ""
        rows.append([r.check, r.target, what or "", r.outcome.upper(), r.result, r.reason])
        if trace and r.trace:
            rows += [["", "", "", "", "", f"  {step}"] for step in r.trace]
    counts = report_json(results)["summary"]
    assert isinstance(counts, dict)
    line = f"\n{counts['pass']} pass, {counts['fail']} fail, {counts['error']} error\n"
    return table(["CHECK", "TARGET", "IP/SELECTOR", "OUTCOME", "RESULT", "REASON"], rows) + line
