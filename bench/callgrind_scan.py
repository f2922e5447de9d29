#!/usr/bin/env python3
"""User-space instructions per lookup of a fixed scan, for comparing hot-path changes.

    PYTHONPATH=$PWD python bench/callgrind_scan.py            # runs itself under callgrind twice
    CALLGRIND_CLEAN=1 PYTHONPATH=$PWD python bench/callgrind_scan.py   # nothing listed

Serves four ip4set zones (1 in 32 addresses listed, some with two codes) with rbldnsd on a random
port, then scans 10.0.0.0/20 and 10.0.0.0/19 on the four lists in-process (one resolver, as one
`check` worker does), each under valgrind --tool=callgrind. The difference of the two totals over
the difference in lookups is the cost of one lookup, start-up and imports cancelled out.
Wall time under valgrind means nothing; the instruction count is repeatable to well under 1 %.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import subprocess
import sys
import tempfile

ZONES = ["a.bench", "b.bench", "c.bench", "d.bench"]


def listed_lines(net: ipaddress.IPv4Network) -> list[str]:
    lines = [":127.0.0.2:listed", "127.0.0.2"]  # the RFC 5782 test point, for health
    if os.environ.get("CALLGRIND_CLEAN"):  # nothing listed: the plain NXDOMAIN path alone
        return lines
    for i, ip in enumerate(net):
        if i % 32 == 5:
            lines.append(f"{ip}")
        elif i % 64 == 9:
            lines += [f"{ip} :127.0.0.4:spam", f"{ip} :127.0.0.10:policy"]
    return lines


def scan_once(port: int, prefix: str) -> int:
    from rblwatch.model import DnsList
    from rblwatch.resolver import Resolver
    from rblwatch.scan import plans_for, probe_health, scan
    from rblwatch.targets import parse_target

    lists = [DnsList(name=z.replace(".", "-"), zone=z) for z in ZONES]
    plans = plans_for(lists, (("127.0.0.1", port),))
    targets = parse_target(prefix)
    res = Resolver(timeout=2.0, attempts=3, max_in_flight=100)

    async def go() -> int:
        await probe_health(res, plans)
        report = await scan(res, targets, plans)
        return report.summary.lookups

    return asyncio.run(go())


def instructions(port: int, prefix: str) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                str(port),
                prefix,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        lookups = int(run.stdout.split()[-1])
        total = re.search(r"Collected : (\d+)", run.stderr)
        assert total is not None, run.stderr[-2000:]
        return int(total.group(1)), lookups


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(scan_once(int(sys.argv[2]), sys.argv[3]))
        return
    sys.path.insert(0, os.getcwd())
    from tests.rbldnsd import Rbldnsd

    with Rbldnsd() as srv:
        for z in ZONES:
            srv.add_zone(z, "ip4set", listed_lines(ipaddress.IPv4Network("10.0.0.0/19")))
        srv.start()
        port = srv.address[1]
        small = instructions(port, "10.0.0.0/20")
        big = instructions(port, "10.0.0.0/19")
    per = (big[0] - small[0]) / (big[1] - small[1])
    print(f"small: {small[0]:,} instructions, {small[1]:,} lookups")
    print(f"big:   {big[0]:,} instructions, {big[1]:,} lookups")
    print(f"per lookup: {per:,.0f} instructions")


if __name__ == "__main__":
    main()
