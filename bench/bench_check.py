#!/usr/bin/env python3
"""Benchmark `rblwatch check` against dnsperf on the shared /16 x 4 zones workload.

    bench/run.sh                      # the one command: zones, rbldnsd, this script, cleanup

Runs, interleaved and ROUNDS times each, in the same session:
  * dnsperf over all 262,144 queries once (`-n 1`), the physical limit on this machine;
  * `rblwatch check --format json @targets.txt` as a whole process, with a config that names
    the four zones as lists served by the loopback rbldnsd.
Every rblwatch run is verified against truth.tsv (missing, extra and wrong-code pairs) and
measured for wall time and peak RSS (wait4 rusage). Prints the medians and the ratio.
Nothing is sent anywhere but the loopback rbldnsd.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

BAR_RATIO = 0.75
BAR_RSS_MB = 100.0


def write_config(path: str, zones: list[str], port: int) -> dict[str, str]:
    names = {}
    lines = [
        "resolver:",
        f'  nameservers: ["127.0.0.1:{port}"]',
        "  timeout: 2s",
        "  attempts: 3",
        # dnsperf keeps -q 100 queries outstanding; rblwatch gets the same allowance
        "  max_in_flight: 100",
        "lists:",
    ]
    for z in zones:
        name = z.replace(".", "-")
        names[name] = z
        lines += [f"  - name: {name}", f"    zone: {z}", "    kind: ip"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return names


def read_truth(path: str) -> dict[tuple[str, str], str]:
    truth = {}
    with open(path) as f:
        for ln in f:
            ip, zone, codes = ln.rstrip("\n").split("\t")
            truth[(ip, zone)] = codes
    return truth


def run_dnsperf(data: str, port: int) -> float:
    out = subprocess.run(
        [
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            data,
            "-n",
            "1",
            "-c",
            "2",
            "-T",
            "2",
            "-q",
            "100",
            "-t",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    ).stdout
    m = re.search(r"Queries per second:\s+([\d.]+)", out)
    if not m:
        sys.exit("dnsperf printed no rate:\n" + out)
    return float(m.group(1))


def rss_kb(pid: int) -> int:
    """A process's resident set now (VmRSS), kB; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a scan's forked workers have resident sets of their own)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            for child in f.read().split():
                pids.extend(process_tree(int(child)))
    except OSError:
        pass
    return pids


def run_rblwatch(
    rblwatch: list[str], cfg: str, targets: str, out_path: str
) -> tuple[float, float, float, int]:
    """(wall s, peak RSS MB of any one process, peak summed RSS MB of all, exit code).

    The summed figure is sampled every 5 ms over rblwatch and its scan workers: the honest
    number for a tool that forks, since each worker has a resident set of its own.
    """
    with open(out_path, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*rblwatch, "check", "--config.file", cfg, "--format", "json", "@" + targets],
            stdout=out,
        )
        peak_sum = 0
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_sum = max(peak_sum, sum(rss_kb(p) for p in process_tree(proc.pid)))
            time.sleep(0.005)
        wall = time.perf_counter() - t0
    return wall, ru.ru_maxrss / 1024, peak_sum / 1024, os.waitstatus_to_exitcode(status)


def verify(
    out_path: str, names: dict[str, str], truth: dict[tuple[str, str], str]
) -> dict[str, int]:
    with open(out_path) as f:
        doc = json.load(f)
    found: dict[tuple[str, str], str] = {}
    other = 0
    for r in doc["results"]:
        if r["outcome"] != "listed":
            other += 1
            continue
        found[(r["target"], names[r["list"]])] = ",".join(r["codes"])
    wrong = sum(1 for k, c in found.items() if k in truth and c != truth[k])
    return {
        "lookups": doc["summary"]["lookups"],
        "listed": len(found),
        "missing": len(truth.keys() - found.keys()),
        "extra": len(found.keys() - truth.keys()),
        "wrong_codes": wrong,
        "errors": other,
    }


def parse_args(description: str) -> argparse.Namespace:
    """The options both benchmarks take (bench/run.sh passes them)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--zonedir", default="/tmp/rblbench/zones")
    ap.add_argument("--port", type=int, default=5300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rblwatch", default=os.path.join(os.path.dirname(sys.executable), "rblwatch"))
    return ap.parse_args()


def read_zones(zonedir: str) -> list[str]:
    """The workload's ip4set zones, as make_zones.py lists them."""
    with open(os.path.join(zonedir, "zones.txt")) as f:
        return [z.strip() for z in f if z.strip()]


def main() -> int:
    a = parse_args(__doc__.split("\n")[1])
    zones = read_zones(a.zonedir)
    truth = read_truth(os.path.join(a.zonedir, "truth.tsv"))
    targets = os.path.join(a.zonedir, "targets.txt")
    tmp = tempfile.mkdtemp(prefix="rblwatch-bench-")
    cfg = os.path.join(tmp, "bench.yaml")
    names = write_config(cfg, zones, a.port)
    out_path = os.path.join(tmp, "out.json")

    dnsperf_qps: list[float] = []
    rates: list[float] = []
    rss: list[float] = []
    bad = 0
    for i in range(a.rounds):
        dnsperf_qps.append(run_dnsperf(os.path.join(a.zonedir, "dnsperf_all.txt"), a.port))
        wall, peak, peak_sum, rc = run_rblwatch([a.rblwatch], cfg, targets, out_path)
        v = verify(out_path, names, truth)
        rate = v["lookups"] / wall
        rates.append(rate)
        rss.append(max(peak, peak_sum))
        wrong = v["missing"] + v["extra"] + v["wrong_codes"] + v["errors"]
        bad += wrong
        print(
            f"round {i + 1}: dnsperf {dnsperf_qps[-1]:,.0f} q/s | rblwatch {rate:,.0f} lookups/s "
            f"({wall:.2f} s, rc {rc}), peak RSS {peak:.1f} MB per process, "
            f"{peak_sum:.1f} MB summed over workers, {v}"
        )
    med_dp, med_rate, max_rss = statistics.median(dnsperf_qps), statistics.median(rates), max(rss)
    ratio = med_rate / med_dp
    ok = ratio >= BAR_RATIO and max_rss <= BAR_RSS_MB and bad == 0
    print(
        f"\nmedian dnsperf {med_dp:,.0f} q/s; median rblwatch check {med_rate:,.0f} lookups/s; "
        f"ratio {ratio:.2f} (bar {BAR_RATIO}); peak RSS (all processes) {max_rss:.1f} MB "
        f"(bar {BAR_RSS_MB:.0f}); "
        f"wrong results {bad} -> {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
