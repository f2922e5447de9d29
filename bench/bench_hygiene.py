#!/usr/bin/env python3
"""Benchmark a sender hygiene pass: 10 domains x 20 sending IPs against a local NSD.

The workload: ten domains, each with an SPF record that includes a provider's record, which
includes two netblock records (three lookups per evaluation, one of them a `mx`), a DKIM key
and a DMARC record; twenty sending IPs with forward-confirmed PTRs. One pass is 20 fcrdns,
200 SPF (each domain x each IP), 10 dkim and 10 dmarc checks.

Measured in the same run:
  * `rblwatch hygiene --config.file` end to end (a process, as an operator runs it): the
    median wall time of --rounds, and the queries it sent;
  * the pass alone in process (`run_items` on a fresh CachingDns): median of --rounds;
  * the reference: dnsperf sending exactly the pass's distinct queries to the same server
    with as many outstanding as the pass has worker threads: the time those queries take at
    dnsperf's rate is the floor for the pass on this machine (the pass also evaluates, and
    an SPF evaluation's lookups follow one another).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rblwatch.config import load_config  # noqa: E402
from rblwatch.hygiene.dns import CachingDns  # noqa: E402
from rblwatch.hygiene.runner import WORKERS, items_for, run_items  # noqa: E402
from tests.dkimkeys import rsa_key_record  # noqa: E402
from tests.nsd import NsdServer, txt  # noqa: E402

DOMAINS = [f"d{i}.example" for i in range(10)]
IPS = [f"192.0.2.{i}" for i in range(1, 21)]


def zones() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for d in DOMAINS:
        out[d] = [
            '@ TXT "v=spf1 mx include:_spf.provider.example -all"',
            "@ MX 10 mx.provider.example.",
            f"s1._domainkey TXT {txt(rsa_key_record(2048))}",
            f'_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@{d}"',
        ]
    out["provider.example"] = [
        '_spf TXT "v=spf1 include:_nb1.provider.example include:_nb2.provider.example ~all"',
        '_nb1 TXT "v=spf1 ip4:192.0.2.0/28 -all"',
        '_nb2 TXT "v=spf1 ip4:192.0.2.16/28 -all"',
        "mx A 198.51.100.25",
        *(f"mx{i} A 192.0.2.{i}" for i in range(1, 21)),
    ]
    out["2.0.192.in-addr.arpa"] = [f"{i} PTR mx{i}.provider.example." for i in range(1, 21)]
    return out


def config_text(port: int) -> str:
    return f"""\
resolver:
  nameservers: ["127.0.0.1:{port}"]
  timeout: 1s
targets:
  - group: mail
    addresses: [{", ".join(IPS)}]
    domains: [{", ".join(DOMAINS)}]
    hygiene:
      dkim_selectors: [s1]
"""


def run_cli(rblwatch: str, cfg: Path) -> tuple[float, int, dict[str, int]]:
    start = time.monotonic()
    p = subprocess.run(
        [rblwatch, "hygiene", "--config.file", str(cfg), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - start
    if p.returncode not in (0, 1):
        sys.exit(f"rblwatch hygiene exited {p.returncode}: {p.stderr}")
    summary = json.loads(p.stdout)["summary"]
    m = re.search(r"(\d+) queries in", p.stderr)
    return took, int(m.group(1)) if m else -1, summary


def run_pass(port: int) -> tuple[float, CachingDns, int]:
    items = items_for(
        ("fcrdns", "spf", "dkim", "dmarc"), DOMAINS, IPS, lambda _d: ("s1",), group="mail"
    )
    dns = CachingDns([("127.0.0.1", port)], timeout=1.0)
    start = time.monotonic()
    results = run_items(dns, items)
    took = time.monotonic() - start
    bad = [r for r in results if r.outcome != "pass"]
    if bad:
        sys.exit(f"the workload should pass every check; {len(bad)} did not: {bad[0]}")
    return took, dns, len(results)


def run_dnsperf(port: int, queries: list[tuple[str, str]], workdir: Path) -> tuple[float, float]:
    """dnsperf over the pass's distinct queries, `WORKERS` outstanding as the pass's threads:
    (its average latency per query, its queries per second), both in seconds."""
    data = workdir / "queries.txt"
    data.write_text("".join(f"{name} {rdtype}\n" for name, rdtype in queries))
    p = subprocess.run(
        [
            *("dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(data)),
            *("-n", "20", "-q", str(WORKERS), "-t", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", p.stdout)
    rate = re.search(r"Queries per second:\s+([\d.]+)", p.stdout)
    lost = re.search(r"Queries lost:\s+(\d+)", p.stdout)
    if p.returncode != 0 or not latency or not rate or (lost and int(lost.group(1))):
        sys.exit("dnsperf failed:\n" + p.stdout + p.stderr)
    return float(latency.group(1)), float(rate.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rblwatch", default=str(ROOT / ".venv/bin/rblwatch"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, NsdServer(zones(), Path(tmp) / "nsd") as ns:
        cfg = Path(tmp) / "rblwatch.yaml"
        cfg.write_text(config_text(ns.port))
        load_config(cfg)  # the bench's own config must be valid before anything is timed
        passes = [run_pass(ns.port) for _ in range(args.rounds)]
        checks = passes[0][2]
        queries = sorted(passes[0][1]._cache)  # the distinct (name, type) the pass asked
        sent = passes[0][1].queries
        clis = [run_cli(args.rblwatch, cfg) for _ in range(args.rounds)]
        refs = [run_dnsperf(ns.port, queries, Path(tmp)) for _ in range(args.rounds)]
    pass_s = statistics.median(p[0] for p in passes)
    cli_s = statistics.median(c[0] for c in clis)
    latency = statistics.median(r[0] for r in refs)
    rate = statistics.median(r[1] for r in refs)
    floor = len(queries) / rate  # the pass's distinct queries at dnsperf's rate
    print(f"workload: {len(DOMAINS)} domains x {len(IPS)} IPs = {checks} checks per pass")
    print(f"queries per pass: {sent} ({len(queries)} distinct; CLI reported {clis[0][1]})")
    print(f"summary: {clis[0][2]}")
    print(f"pass in process:  median {pass_s * 1000:.1f} ms of {args.rounds}")
    print(f"rblwatch hygiene: median {cli_s * 1000:.1f} ms of {args.rounds} (process start incl.)")
    print(
        f"dnsperf, the same queries with {WORKERS} outstanding: {rate:,.0f} queries/s, latency"
        f" {latency * 1e6:.0f} µs; {len(queries)} queries take {floor * 1000:.1f} ms at its rate"
    )
    print(f"pass / dnsperf floor: {pass_s / floor:.1f}x")


if __name__ == "__main__":
    main()
