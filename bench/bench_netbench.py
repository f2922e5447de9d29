#!/usr/bin/env python3
"""Benchmark rblwatch on a slow, lossy network: the cells of issue 14 against dnsperf.

    bench/netbench.sh [--quick] [--rounds N] [--cells 6,7]   # the one command (root: netns)

netbench.sh builds bench/relay.c, makes a network namespace of its own (nothing touches the
host's loopback), starts rbldnsd in it and runs this script there. Each cell puts the relay
between the client and rbldnsd (one-way delay = RTT / 2, independent loss each way, a seed per
round) and runs, in the same round, dnsperf and `rblwatch check` of the same query names at the
same concurrency: every address of the /16 (--quick: a /20) on one list (zen.test). rblwatch is
verified against the zones' truth (listed pairs found, missing, extra, wrong codes, errors) and
the relay counts what went over the wire (repeated questions = retransmissions, datagrams the
server never answered). Then the loopback /16 x 4 lists against dnsperf, as bench_check.py does.
Prints a markdown table with every bar checked and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_check import read_truth, read_zones, verify, write_config
from netbench_report import bars, markdown

ZONE = "zen.test"
HOST = "127.0.0.1"
QUICK_TARGETS = 4096  # a /20: the first 4,096 addresses of the workload's /16
LONG_CELL_S = 10.0  # cells whose ideal time is longer run once, whatever --rounds says


@dataclasses.dataclass(frozen=True)
class Cell:
    rtt_ms: float
    loss: float  # each way
    in_flight: int

    @property
    def name(self) -> str:
        loss = f" + {self.loss:.0%} loss" if self.loss else ""
        return f"{self.rtt_ms:g} ms{loss} / {self.in_flight}"

    def ideal(self) -> float | None:
        """in_flight / RTT in lookups/s (the loopback's own ~0.1 ms left out); None at 0 ms."""
        return self.in_flight / (self.rtt_ms / 1000) if self.rtt_ms else None


CELLS = (
    Cell(0, 0, 64),
    Cell(0, 0, 4096),
    Cell(50, 0, 64),
    Cell(50, 0, 1024),
    Cell(50, 0, 4096),
    Cell(50, 0.01, 256),
)


@dataclasses.dataclass(frozen=True)
class Workload:
    targets: str  # the file given to `rblwatch check @…`
    dnsperf: str  # the same names for dnsperf
    names: dict[str, str]  # rblwatch list name -> zone
    truth: dict[tuple[str, str], str]
    lookups: int


def make_workload(zonedir: str, work: str, zones: list[str], n_targets: int | None) -> Workload:
    with open(os.path.join(zonedir, "targets.txt")) as f:
        ips = [ln.strip() for ln in f if ln.strip()][:n_targets]
    tag = "-".join(z.split(".")[0] for z in zones)
    targets = os.path.join(work, f"targets-{len(ips)}.txt")
    dnsperf = os.path.join(work, f"dnsperf-{len(ips)}-{tag}.txt")
    with open(targets, "w") as f:
        f.writelines(ip + "\n" for ip in ips)
    with open(dnsperf, "w") as f:
        for z in zones:
            f.writelines(f"{ipaddress.ip_address(ip).reverse_pointer[:-13]}.{z} A\n" for ip in ips)
    wanted = set(ips)
    truth = {
        k: v
        for k, v in read_truth(os.path.join(zonedir, "truth.tsv")).items()
        if k[1] in zones and k[0] in wanted
    }
    names = {z.replace(".", "-"): z for z in zones}
    return Workload(targets, dnsperf, names, truth, len(ips) * len(zones))


def write_cell_config(path: str, port: int, in_flight: int) -> None:
    lines = [
        "resolver:",
        f'  nameservers: ["{HOST}:{port}"]',
        "  timeout: 2s",
        "  attempts: 3",
        f"  max_in_flight: {in_flight}",
        "lists:",
        f"  - name: {ZONE.replace('.', '-')}",
        f"    zone: {ZONE}",
        "    kind: ip",
    ]
    Path(path).write_text("\n".join(lines) + "\n")


class Relay:
    """bench/relay.c between a client and rbldnsd, for the length of a `with` block."""

    def __init__(self, binary: str, upstream: int, cell: Cell, seed: int, stats: str) -> None:
        self.stats_path = stats
        self.cmd = [
            binary, "-l", f"{HOST}:0", "-u", f"{HOST}:{upstream}", "-d", f"{cell.rtt_ms / 2:g}",
            "-p", f"{cell.loss:g}", "-s", str(seed), "-o", stats, "-t", "900",
        ]  # fmt: skip
        self.port = 0
        self.stats: dict[str, Any] = {}

    def __enter__(self) -> Relay:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "ready":
            self.proc.kill()
            sys.exit(f"relay did not start: {self.cmd}")
        self.port = int(line[1])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            self.stats = json.loads(Path(self.stats_path).read_text())
        except (OSError, ValueError):
            self.stats = {}


_DNSPERF = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "run_s": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "latency_ms": r"Average Latency \(s\):\s+([\d.]+)",
}


def run_dnsperf(data: str, port: int, in_flight: int, timeout: float) -> dict[str, float]:
    # -b: 4 MiB socket buffers, so that at 4,096 in flight dnsperf is not limited by its own
    cmd = [
        "dnsperf", "-s", HOST, "-p", str(port), "-d", data, "-n", "1", "-c", "2", "-T", "2",
        "-q", str(in_flight), "-t", "2", "-b", "4096",
    ]  # fmt: skip
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False
        ).stdout
    except subprocess.TimeoutExpired:
        return {}  # no rate: the cell shows 0 q/s for dnsperf
    got = {k: re.search(rx, out) for k, rx in _DNSPERF.items()}
    res = {k: float(m.group(1)) for k, m in got.items() if m}
    if "latency_ms" in res:
        res["latency_ms"] *= 1000
    return res


def run_check(rblwatch: str, cfg: str, targets: str, out: str, timeout: float) -> dict[str, Any]:
    """One `rblwatch check` as a whole process; wall time includes its start-up.

    Its stderr (warnings) is kept, not shown: the last line goes into the result.
    """
    cmd = [rblwatch, "check", "--config.file", cfg, "--format", "json", "@" + targets]
    with open(out, "w") as f, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=err)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return {"wall": time.perf_counter() - t0, "failed": f"timed out after {timeout:.0f} s"}
        wall = time.perf_counter() - t0
        err.seek(0)
        lines = err.read().splitlines()
    return {"wall": wall, "rc": rc, "stderr": lines[-1] if lines else ""}


def verified(res: dict[str, Any], out: str, w: Workload) -> dict[str, Any]:
    """The run's result with its verification, or marked failed when it wrote no report."""
    if res.get("failed"):
        return res
    try:
        res.update(verify(out, w.names, w.truth))
    except (OSError, ValueError, KeyError) as e:
        why = f": {res['stderr']}" if res["stderr"] else f" ({type(e).__name__})"
        res["failed"] = f"exit code {res['rc']} and no JSON report{why}"
        return res
    res["rate"] = res["lookups"] / res["wall"]
    return res


def check_round(a: argparse.Namespace, w: Workload, cell: Cell, seed: int, work: str) -> dict:
    """dnsperf, then rblwatch, each through a fresh relay with the same seed."""
    ideal_s = w.lookups / cell.ideal() if cell.ideal() else 1.0
    timeout = 60 + 4 * ideal_s
    stats = os.path.join(work, "relay.json")
    with Relay(a.relay, a.port, cell, seed, stats) as r:
        dp = run_dnsperf(w.dnsperf, r.port, cell.in_flight, timeout)
    dp["relay"] = r.stats  # type: ignore[assignment]
    cfg, out = os.path.join(work, "cell.yaml"), os.path.join(work, "out.json")
    with Relay(a.relay, a.port, cell, seed, stats) as r:
        write_cell_config(cfg, r.port, cell.in_flight)
        rw = run_check(a.rblwatch, cfg, w.targets, out, timeout)
    rw["relay"] = r.stats
    return {"dnsperf": dp, "rblwatch": verified(rw, out, w)}


def loopback_round(a: argparse.Namespace, w: Workload, work: str) -> dict:
    """The /16 x 4 lists straight to rbldnsd, as bench_check.py runs it (100 in flight)."""
    cfg, out = os.path.join(work, "loopback.yaml"), os.path.join(work, "out.json")
    write_config(cfg, list(w.names.values()), a.port)
    dp = run_dnsperf(w.dnsperf, a.port, 100, 120)
    rw = run_check(a.rblwatch, cfg, w.targets, out, 120)
    return {"dnsperf": dp, "rblwatch": verified(rw, out, w)}


def summarize(name: str, cell: Cell | None, w: Workload, rounds: list[dict]) -> dict:
    """Medians of the rates and times, the worst of every count, over the rounds."""
    rws = [r["rblwatch"] for r in rounds]
    dps = [r["dnsperf"] for r in rounds]
    done = [x for x in rws if not x.get("failed")]

    def worst(key: str) -> int:
        return max((int(x.get(key, 0)) for x in done), default=0)

    def relay_max(side: list[dict], key: str) -> int:
        return max((int(x.get("relay", {}).get(key, 0)) for x in side), default=0)

    def server_drops(side: list[dict]) -> int:
        st = [x.get("relay", {}) for x in side]
        return max((s.get("tx_upstream", 0) - s.get("rx_upstream", 0) for s in st), default=0)

    rate = statistics.median(x["rate"] for x in done) if done else 0.0
    dq = [x["qps"] for x in dps if "qps" in x]
    dnsperf_qps = statistics.median(dq) if dq else 0.0
    ideal = cell.ideal() if cell else None
    return {
        "cell": name,
        "rtt_ms": cell.rtt_ms if cell else 0,
        "loss_each_way": cell.loss if cell else 0,
        "in_flight": cell.in_flight if cell else 100,
        "lookups": w.lookups,
        "expected_listed": len(w.truth),
        "rounds": len(rounds),
        "failed": [x["failed"] for x in rws if x.get("failed")],
        "wall_s": statistics.median(x["wall"] for x in done) if done else None,
        "rate": rate,
        "dnsperf_qps": dnsperf_qps,
        "dnsperf_lost": max((int(x.get("lost", 0)) for x in dps), default=0),
        "dnsperf_latency_ms": statistics.median(x.get("latency_ms", 0) for x in dps),
        "ratio_dnsperf": rate / dnsperf_qps if dnsperf_qps else None,
        "ideal": ideal,
        "ratio_ideal": rate / ideal if ideal else None,
        "errors": worst("errors"),
        "listed": min((int(x.get("listed", 0)) for x in done), default=0),
        "missing": worst("missing"),
        "extra": worst("extra"),
        "wrong_codes": worst("wrong_codes"),
        "retransmissions": relay_max(rws, "repeats") if cell else None,
        "server_drops": server_drops(rws) if cell else None,
        "dnsperf_server_drops": server_drops(dps) if cell else None,
        "raw": rounds,
    }


def relay_rate(a: argparse.Namespace, w: Workload, work: str) -> dict[str, float]:
    """The relay's sustained rate at 0 ms: udpblast through it, and straight to rbldnsd."""

    def blast(port: int) -> float:
        cmd = [a.udpblast, "-s", HOST, "-p", str(port), "-d", w.dnsperf, "-q", "64", "-l", "3"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        m = re.search(r"^qps (\d+)", done.stdout, re.M)
        return float(m.group(1)) if m else 0.0

    direct = blast(a.port)
    with Relay(a.relay, a.port, Cell(0, 0, 64), 1, os.path.join(work, "rate.json")) as r:
        through = blast(r.port)
    st = r.stats
    secs = st.get("secs") or 1.0
    # every query and every answer forwarded once, per second of the relay's life
    moved = st.get("tx_upstream", 0) + st.get("tx_client", 0)
    return {"direct_qps": direct, "relay_qps": through, "relay_forwarded_per_s": moved / secs}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--zonedir", default="/tmp/rblbench/zones")
    ap.add_argument("--port", type=int, default=5300, help="rbldnsd's port (in the namespace)")
    ap.add_argument("--relay", required=True, help="the built bench/relay.c")
    ap.add_argument("--udpblast", help="the built udpblast.c, for the relay's own rate")
    ap.add_argument("--rblwatch", default=os.path.join(os.path.dirname(sys.executable), "rblwatch"))
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the short cells (median)")
    ap.add_argument("--quick", action="store_true", help="a /20 instead of the /16")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", help="write the results there")
    ap.add_argument(
        "--cells",
        help="only these cells, comma-separated: 1-6 in the table's order, 7 the loopback x 4 "
        "(a partial run judges only the bars its cells allow)",
    )
    a = ap.parse_args()
    try:
        a.cells = {int(c) for c in a.cells.split(",")} if a.cells else set(range(1, 8))
    except ValueError:
        ap.error(f"--cells: not a comma-separated list of numbers: {a.cells!r}")
    return a


def main() -> int:
    a = parse_args()
    work = tempfile.mkdtemp(prefix="netbench-")
    n = QUICK_TARGETS if a.quick else None
    one = make_workload(a.zonedir, work, [ZONE], n)
    four = make_workload(a.zonedir, work, read_zones(a.zonedir), n)
    doc: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": a.quick}
    if a.udpblast:
        doc["relay_rate"] = rr = relay_rate(a, one, work)
        print(
            f"relay at 0 ms: {rr['relay_qps']:,.0f} queries/s through it "
            f"({rr['relay_forwarded_per_s']:,.0f} datagrams/s forwarded), "
            f"{rr['direct_qps']:,.0f} straight to rbldnsd (udpblast, 64 in flight)",
            flush=True,
        )
    cells = []
    for number, cell in enumerate(CELLS, 1):
        if number not in a.cells:
            continue
        long = one.lookups / cell.ideal() > LONG_CELL_S if cell.ideal() else False
        rounds = []
        for i in range(1 if long else a.rounds):
            rounds.append(check_round(a, one, cell, a.seed + i, work))
            progress(cell.name, rounds[-1])
        cells.append(summarize(cell.name, cell, one, rounds))
    if 7 in a.cells:
        rounds = []
        for _ in range(a.rounds):
            rounds.append(loopback_round(a, four, work))
            progress("loopback x 4", rounds[-1])
        name = f"loopback {'/20' if a.quick else '/16'} x 4 lists"
        cells.append(summarize(name, None, four, rounds))
    doc["cells"] = cells
    doc["bars"] = checked = bars(cells)
    print()
    print(markdown(cells, checked))
    if a.json:
        Path(a.json).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"\nresults: {a.json}")
    return 0 if all(b["pass"] for b in checked) else 1


def progress(name: str, r: dict) -> None:
    rw, dp = r["rblwatch"], r["dnsperf"]
    if rw.get("failed"):
        print(f"{name}: rblwatch FAILED: {rw['failed']}", flush=True)
        return
    print(
        f"{name}: rblwatch {rw['wall']:.2f} s ({rw['rate']:,.0f}/s, errors {rw['errors']}, "
        f"missing {rw['missing']}, repeats {rw.get('relay', {}).get('repeats', '-')}) | "
        f"dnsperf {dp.get('qps', 0):,.0f} q/s, lost {dp.get('lost', 0):.0f}",
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
