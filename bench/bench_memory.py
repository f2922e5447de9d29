#!/usr/bin/env python3
"""Memory at scale: `rblwatch check` of a /16 and a /14, and the daemon across cycles.

    PYTHONPATH=$PWD python bench/bench_memory.py                 # /16 and /14 checks, 20 cycles
    PYTHONPATH=$PWD python bench/bench_memory.py --cycles 1,5 --daemon-prefix 16

Serves four ip4set zones over 10.0.0.0/14 (1 address in 1,024 listed) with a real rbldnsd on a
random loopback port, then:
  * runs `rblwatch check 10.0.0.0/PREFIX` on the four lists as a whole process, sampling the
    resident set summed over it and its scan workers every 5 ms (each forked worker has a
    resident set of its own), and reads the parent's ru_maxrss;
  * starts `rblwatch run` on the same lists with a /PREFIX group and reads its VmRSS after the
    1st, 5th and 20th cycle of a list, so growth across cycles shows. The interval (--interval,
    by default long enough for a whole cycle of the prefix) matters: a cycle cut at its deadline
    keeps a NOT_CHECKED outcome per unsent lookup, which is not the steady state to measure;
    each row says whether its cycle was cut.
Prints one table. Everything talks to 127.0.0.1 only and every process is stopped by its PID.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_check import process_tree, rss_kb

from rblwatch.store.sqlite import SqliteStore
from tests.rbldnsd import Rbldnsd

ZONES = ["a.mem", "b.mem", "c.mem", "d.mem"]
NETWORK = ipaddress.IPv4Network("10.0.0.0/14")
BAR_CHECK_MB = 80.0  # issue 14: `check` of a /14, summed over its processes
BAR_DAEMON_MB = 120.0  # issue 14: the daemon at a /14 x 4 lists


def zone_lines() -> list[str]:
    lines = [":127.0.0.2:listed", "127.0.0.2"]  # the RFC 5782 test point, for health
    first = int(NETWORK.network_address)
    lines += [str(ipaddress.IPv4Address(first + i)) for i in range(5, NETWORK.num_addresses, 1024)]
    return lines


def lists_yaml(port: int, prefix: int, in_flight: int = 100) -> list[str]:
    lines = [
        "resolver:",
        f'  nameservers: ["127.0.0.1:{port}"]',
        "  timeout: 2s",
        f"  max_in_flight: {in_flight}",
        f"limits: {{ipv4_min_prefix: {prefix}}}",
        "lists:",
    ]
    return lines + [f"  - {{name: {z.replace('.', '-')}, zone: {z}, kind: ip}}" for z in ZONES]


def check_rss(rblwatch: str, tmp: Path, port: int, prefix: int) -> tuple[float, float, int]:
    """(peak RSS MB summed over the check's processes, the parent's ru_maxrss MB, lookups)."""
    cfg = tmp / f"check{prefix}.yaml"
    cfg.write_text("\n".join(lists_yaml(port, prefix)) + "\n")
    out = tmp / "out.json"
    with open(out, "w") as f:
        proc = subprocess.Popen(
            [
                rblwatch,
                "check",
                "--config.file",
                str(cfg),
                "--format",
                "json",
                f"10.0.0.0/{prefix}",
            ],
            stdout=f,
        )
        peak_sum = 0
        while True:
            pid, _status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_sum = max(peak_sum, sum(rss_kb(p) for p in process_tree(proc.pid)))
            time.sleep(0.005)
    import json

    doc = json.loads(out.read_text())
    return peak_sum / 1024, ru.ru_maxrss / 1024, int(doc["summary"]["lookups"])


def default_interval(prefix: int) -> float:
    """Seconds enough for a whole cycle of a /prefix x 4 on a busy 2-core machine."""
    return max(1.0, 12.0 * 2 ** (16 - prefix))


def daemon_rss(
    rblwatch: str,
    tmp: Path,
    port: int,
    prefix: int,
    marks: list[int],
    interval: float,
    in_flight: int,
) -> list[tuple[int, float, str]]:
    """(cycle, VmRSS MB, how the cycle ended) at each of `marks` cycles of the daemon (each
    list's cycles counted by its last_cycle_end changing in the store)."""
    store = tmp / f"state{prefix}.db"
    cfg = tmp / f"daemon{prefix}.yaml"
    lines = [
        *lists_yaml(port, prefix, in_flight),
        f"schedule: {{interval: {interval:g}s, jitter: 0, confirm: 1, health_interval: 1h}}",
        f"store: {{url: 'sqlite:///{store}'}}",
        f"web: {{listen_address: '127.0.0.1:{_free_port()}'}}",  # not another daemon's 9798
        "targets:",
        f"  - {{group: mem, addresses: [10.0.0.0/{prefix}]}}",
    ]
    cfg.write_text("\n".join(lines) + "\n")
    log = open(tmp / f"daemon{prefix}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([rblwatch, "run", "--config.file", str(cfg)], stdout=log, stderr=log)
    out: list[tuple[int, float, str]] = []
    try:
        last_end: float | None = None
        cycles = 0
        deadline = time.monotonic() + 60 + max(marks) * (interval + 10)
        while marks[len(out) :] and time.monotonic() < deadline and proc.poll() is None:
            end, skipped = _first_list_end(store)
            if end is not None and end != last_end:
                last_end, cycles = end, cycles + 1
                if cycles in marks:
                    how = f"cut ({skipped})" if skipped else "whole"
                    out.append((cycles, rss_kb(proc.pid) / 1024, how))
                    print(f"  cycle {cycles}: {out[-1][1]:.1f} MB, {how}", file=sys.stderr)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_list_end(store: Path) -> tuple[float | None, str | None]:
    """The first list's last cycle end, and why that cycle was cut (None: it was whole)."""
    if not store.exists():
        return None, None
    try:
        s = SqliteStore(str(store))
    except Exception:  # not created or migrated yet
        return None, None
    try:
        rows = {r.name: r for r in s.list_statuses()}
    except Exception:
        return None, None
    finally:
        s.close()
    row = rows.get(ZONES[0].replace(".", "-"))
    return (None, None) if row is None else (row.last_cycle_end, row.last_cycle_skipped)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rblwatch", default=os.path.join(os.path.dirname(sys.executable), "rblwatch"))
    ap.add_argument("--check-prefixes", default="16,14")
    ap.add_argument("--daemon-prefix", type=int, default=16)
    ap.add_argument("--cycles", default="1,5,20")
    ap.add_argument("--interval", type=float, help="the daemon's interval, seconds")
    ap.add_argument("--in-flight", type=int, default=100, help="resolver.max_in_flight")
    a = ap.parse_args()
    marks = [int(c) for c in a.cycles.split(",") if c]
    rows: list[str] = []
    ok = True
    with Rbldnsd() as srv, tempfile.TemporaryDirectory(prefix="rblwatch-mem-") as t:
        tmp = Path(t)
        for z in ZONES:
            srv.add_zone(z, "ip4set", zone_lines())
        srv.start()
        port = srv.address[1]
        for prefix in (int(p) for p in a.check_prefixes.split(",") if p):
            summed, parent, lookups = check_rss(a.rblwatch, tmp, port, prefix)
            n = 2 ** (32 - prefix)
            rows.append(
                f"check /{prefix} ({n:,} targets, {lookups:,} lookups): peak {summed:.1f} MB "
                f"summed over processes, parent ru_maxrss {parent:.1f} MB, "
                f"{summed * 2**20 / n:.0f} B per target"
            )
            if prefix == 14:
                ok &= summed <= BAR_CHECK_MB
        if marks:
            interval = a.interval or default_interval(a.daemon_prefix)
            got = daemon_rss(a.rblwatch, tmp, port, a.daemon_prefix, marks, interval, a.in_flight)
            for cycle, mb, how in got:
                rows.append(
                    f"daemon /{a.daemon_prefix} x 4 ({interval:g}s interval) after cycle "
                    f"{cycle} ({how}): VmRSS {mb:.1f} MB"
                )
            if len(got) < len(marks):
                rows.append(f"daemon: only {len(got)} of {len(marks)} marks reached in time")
                ok = False
            if a.daemon_prefix == 14:
                ok &= all(mb <= BAR_DAEMON_MB for _, mb, _ in got)
    print("\n".join(rows))
    print(
        f"bars: check /14 <= {BAR_CHECK_MB:.0f} MB, daemon /14 <= {BAR_DAEMON_MB:.0f} MB -> "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
