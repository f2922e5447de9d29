#!/usr/bin/env python3
"""Benchmark the daemon: a full cycle on the /16 x 4 workload against `rblwatch check` of the
same work in the same run, the daemon's RSS during its cycles, and /metrics with 10,000 current
listings (SPEC §10; the issue's bars: cycle <= 1.5x check, RSS <= 150 MB, scrape < 50 ms).

    bench/run.sh                      # runs this after bench_check.py, rbldnsd already up

Everything talks to 127.0.0.1 only: the loopback rbldnsd of bench/run.sh and the daemon's own
listener. Bounded: every wait has a deadline and the daemon is always stopped.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check import parse_args, read_zones  # the options and zones both benchmarks share

from rblwatch.model import CycleCommit, PairState, PairStatus
from rblwatch.store.sqlite import SqliteStore

BAR_CYCLE_RATIO = 1.5
BAR_RSS_MB = 150.0
BAR_SCRAPE_MS = 50.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_config(path: Path, zones: list[str], dns_port: int, web_port: int, store: Path) -> None:
    lines = [
        "resolver:",
        f'  nameservers: ["127.0.0.1:{dns_port}"]',
        "  timeout: 2s",
        "  max_in_flight: 100",
        "schedule:",
        "  interval: 20s",
        "  jitter: 0",
        "  confirm: 2",
        "  confirm_delay: 3s",
        "  health_interval: 1h",
        f"store: {{url: 'sqlite:///{store}'}}",
        f"web: {{listen_address: '127.0.0.1:{web_port}'}}",
        "lists:",
    ]
    lines += [f"  - {{name: {z.replace('.', '-')}, zone: {z}, kind: ip}}" for z in zones]
    lines += ["targets:", "  - {group: bench, addresses: [10.20.0.0/16]}"]
    path.write_text("\n".join(lines) + "\n")


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return bytes(r.read())


class Daemon:
    def __init__(self, rblwatch: str, cfg: Path) -> None:
        self.log = open(cfg.with_suffix(".log"), "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [rblwatch, "run", "--config.file", str(cfg)], stdout=self.log, stderr=self.log
        )
        self.peak_rss_kb = 0
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while self._sampling and self.proc.poll() is None:
            try:
                with open(f"/proc/{self.proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.01)

    def wait_ready(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"daemon exited {self.proc.returncode}")
            try:
                get(port, "/-/ready")
                return
            except OSError:
                time.sleep(0.05)
        sys.exit("daemon not ready in time")

    def stop(self) -> None:
        self._sampling = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def round_walls(store_path: Path) -> tuple[float, int]:
    """(wall seconds of the latest round of cycles over all lists, lookups) from the store."""
    s = SqliteStore(str(store_path))
    try:
        rows = s.list_statuses()
    finally:
        s.close()
    starts = [r.last_cycle_start for r in rows if r.last_cycle_start is not None]
    ends = [r.last_cycle_end for r in rows if r.last_cycle_end is not None]
    return max(ends) - min(starts), sum(r.last_cycle_lookups for r in rows)


def bench_cycles(a: argparse.Namespace, zones: list[str], tmp: Path) -> tuple[list[float], float]:
    """Two rounds per daemon start (the first inserts the baseline); the second is measured."""
    walls: list[float] = []
    peak = 0.0
    for _ in range(a.rounds):
        store = tmp / f"state-{len(walls)}.db"
        cfg = tmp / "daemon.yaml"
        web_port = free_port()
        daemon_config(cfg, zones, a.port, web_port, store)
        d = Daemon(a.rblwatch, cfg)
        try:
            d.wait_ready(web_port)
            _wait_rounds(web_port, store, 2, timeout=90)
            wall, lookups = round_walls(store)
            walls.append(wall)
            peak = max(peak, d.peak_rss_kb / 1024)
            rss = d.peak_rss_kb / 1024
            print(f"daemon round: {wall:.2f} s for {lookups} lookups, peak RSS {rss:.1f} MB")
        finally:
            d.stop()
    return walls, peak


def _wait_rounds(port: int, store: Path, rounds: int, timeout: float) -> None:
    """Wait until every list finished `rounds` cycles, reading the store file itself (asking
    the daemon over HTTP every few ms would cost it the CPU this benchmark measures)."""
    del port
    seen: dict[str, set[float]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.exists():
            s = SqliteStore(str(store))
            try:
                rows = s.list_statuses()
            finally:
                s.close()
            for r in rows:
                if r.last_cycle_end is not None:
                    seen.setdefault(r.name, set()).add(r.last_cycle_end)
            if rows and len(seen) == len(rows) and all(len(v) >= rounds for v in seen.values()):
                return
        time.sleep(0.5)
    sys.exit("daemon cycles did not complete in time")


def bench_check(a: argparse.Namespace, zones: list[str], tmp: Path) -> list[float]:
    cfg = tmp / "check.yaml"
    lines = [
        "resolver:",
        f'  nameservers: ["127.0.0.1:{a.port}"]',
        "  max_in_flight: 100",
        "lists:",
    ]
    lines += [f"  - {{name: {z.replace('.', '-')}, zone: {z}, kind: ip}}" for z in zones]
    cfg.write_text("\n".join(lines) + "\n")
    walls = []
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        subprocess.run(
            [a.rblwatch, "check", "--config.file", str(cfg), "--format", "json", "10.20.0.0/16"],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        walls.append(time.perf_counter() - t0)
        print(f"check: {walls[-1]:.2f} s")
    return walls


def bench_scrape(a: argparse.Namespace, tmp: Path) -> float:
    """Median /metrics time over HTTP with 10,000 current listings in the daemon's store."""
    store_path = tmp / "scrape.db"
    store = SqliteStore(str(store_path))
    now = time.time()
    pairs = [
        PairState(
            target=f"10.30.{i >> 8}.{i & 255}",
            list="corp-bl",
            group="bench",
            status=PairStatus.LISTED,
            since=now,
            first_seen=now,
            codes=("127.0.0.2",),
            meanings=("listed",),
        )
        for i in range(10_000)
    ]
    store.commit(CycleCommit("corp-bl", upserts=pairs))
    store.close()
    cfg = tmp / "scrape.yaml"
    web_port = free_port()
    # the list's server is a closed port: the list is dead, so no cycle touches the listings
    cfg.write_text(
        "resolver: {nameservers: ['127.0.0.1:9'], timeout: 200ms, attempts: 1}\n"
        "schedule: {interval: 1h, jitter: 0, health_interval: 1h}\n"
        f"store: {{url: 'sqlite:///{store_path}'}}\n"
        f"web: {{listen_address: '127.0.0.1:{web_port}'}}\n"
        "lists: [{name: corp-bl, zone: bl.example, kind: ip}]\n"
        "targets: [{group: bench, addresses: [10.30.0.0/16]}]\n"
    )
    d = Daemon(a.rblwatch, cfg)
    try:
        d.wait_ready(web_port)
        get(web_port, "/metrics")  # warm up
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            body = get(web_port, "/metrics")
            times.append((time.perf_counter() - t0) * 1000)
        n = body.count(b"\nrblwatch_listed{")
        print(f"/metrics: {len(body) / 1024:.0f} KiB, {n} rblwatch_listed samples")
        if n != 10_000:
            sys.exit(f"expected 10000 listed samples, got {n}")
        return statistics.median(times)
    finally:
        d.stop()


def main() -> int:
    a = parse_args(__doc__.split("\n")[0])
    zones = read_zones(a.zonedir)
    with tempfile.TemporaryDirectory(prefix="rblwatch-bench-") as tmpdir:
        tmp = Path(tmpdir)
        checks = bench_check(a, zones, tmp)
        cycles, peak = bench_cycles(a, zones, tmp)
        scrape = bench_scrape(a, tmp)
    ratio = statistics.median(cycles) / statistics.median(checks)
    ok = ratio <= BAR_CYCLE_RATIO and peak <= BAR_RSS_MB and scrape < BAR_SCRAPE_MS
    cycle, check = statistics.median(cycles), statistics.median(checks)
    print(
        f"\nmedian daemon round {cycle:.2f} s vs check {check:.2f} s: ratio {ratio:.2f} "
        f"(bar {BAR_CYCLE_RATIO}); daemon peak RSS {peak:.1f} MB (bar {BAR_RSS_MB:.0f}); "
        f"/metrics with 10,000 listings {scrape:.1f} ms median of 20 "
        f"(bar {BAR_SCRAPE_MS:.0f}) -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
