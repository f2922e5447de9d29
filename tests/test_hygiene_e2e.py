"""Sender hygiene end to end: `rblwatch run` against a real authoritative server (NSD).

The daemon checks a group's PTR, SPF, DKIM and DMARC in NSD's zones (its DNSBL list stays on
rbldnsd). A zone changed and reloaded raises `check_failed` once (after confirmation) and
`check_passed` once after the fix, each delivered to a real webhook receiver; an NSD outage
ends every check in `error` and changes nothing; the API, the metrics and the status page
show what fails and why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import DaemonProcess, free_tcp_port, wait_until
from tests.dkimkeys import rsa_key_record
from tests.nsd import NsdServer, txt
from tests.rbldnsd import Rbldnsd
from tests.test_daemon import BASE, ZONE, metric
from tests.webhooks import WebhookReceiver

SPF_OK = '@ TXT "v=spf1 ip4:192.0.2.10 include:_spf.example.net ~all"'
SPF_BROKEN = '@ TXT "v=spf1 include:_spf.example.net ~all"'  # 192.0.2.10 dropped


def zones(spf: str = SPF_OK) -> dict[str, list[str]]:
    return {
        "example.com": [
            spf,
            "mx1 A 192.0.2.10",
            f"s1._domainkey TXT {txt(rsa_key_record(2048))}",
            '_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"',
        ],
        "example.net": ['_spf TXT "v=spf1 ip4:198.51.100.0/24 -all"'],
        # example.org publishes no DMARC record at all: failing from the first pass
        "example.org": ['@ TXT "v=spf1 ip4:192.0.2.10 -all"'],
        "2.0.192.in-addr.arpa": ["10 PTR mx1.example.com."],
    }


@pytest.fixture
def servers(rbldnsd: Rbldnsd, nsd_server: NsdServer) -> tuple[Rbldnsd, NsdServer]:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    nsd_server.start(zones())
    return rbldnsd, nsd_server


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.close()


def daemon(tmp_path: Path, rbl: Rbldnsd, ns: NsdServer, hooks: WebhookReceiver) -> DaemonProcess:
    web = free_tcp_port()
    cfg = tmp_path / "rblwatch.yaml"
    cfg.write_text(f"""\
resolver:
  nameservers: ["127.0.0.1:{ns.port}"]
  timeout: 300ms
  attempts: 2
schedule:
  interval: 1s
  jitter: 0
  confirm: 2
  confirm_delay: 300ms
  health_interval: 1s
  hygiene_interval: 1s
store:
  url: sqlite:///{tmp_path / "state.db"}
web:
  listen_address: 127.0.0.1:{web}
lists:
  - name: bl
    zone: {ZONE}
    kind: ip
    nameservers: ["127.0.0.1:{rbl.port}"]
targets:
  - group: mail
    addresses: [192.0.2.10]
    domains: [example.com, example.org]
    hygiene:
      helo: mx1.example.com
      dkim_selectors: {{example.com: [s1]}}
alerts:
  receivers:
    - name: hook
      url: {hooks.url}/hook
      format: json
""")
    d = DaemonProcess(cfg)
    d.start(web)
    return d


def failing(d: DaemonProcess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = d.json("/api/v1/status")["hygiene"]["failing"]
    return out


def checks_ran(d: DaemonProcess, n: int = 1) -> bool:
    checks = d.json("/api/v1/status")["hygiene"]["checks"]
    return len(checks) == 4 and all(c["last_cycle_end"] for c in checks)


def delivered(hooks: WebhookReceiver, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(r.body) for r in hooks.delivered()]
    return [b for b in bodies if b["type"] == kind]


def test_a_broken_spf_record_fails_once_and_passes_once_after_the_fix(
    tmp_path: Path, servers: tuple[Rbldnsd, NsdServer], hooks: WebhookReceiver
) -> None:
    rbl, ns = servers
    d = daemon(tmp_path, rbl, ns, hooks)
    try:
        wait_until("every check's first pass", lambda: checks_ran(d), timeout=20)
        # the one failure from the start: example.org has no DMARC record
        first = wait_until("the missing DMARC record", lambda: failing(d), timeout=20)
        assert [(f["check"], f["target"], f["result"]) for f in first] == [
            ("dmarc", "example.org", "missing")
        ]
        assert "v=DMARC1" in first[0]["reason"]  # what to publish
        initial = d.events("check_failed")
        assert [(e["list"], e["target"], e["initial"]) for e in initial] == [
            ("dmarc", "example.org", True)
        ]

        ns.reload(zones(SPF_BROKEN))
        wait_until(
            "check_failed for spf",
            lambda: [e for e in d.events("check_failed") if e["list"] == "spf"],
            timeout=20,
        )
        spf = [f for f in failing(d) if f["check"] == "spf"]
        assert [(f["target"], f["ip"], f["result"]) for f in spf] == [
            ("example.com", "192.0.2.10", "softfail")
        ]
        assert "~all" in spf[0]["reason"] and "_spf.example.net" in spf[0]["reason"]
        target = "example.com 192.0.2.10"
        assert metric(d, "rblwatch_check_ok", check="spf", target=target, group="mail") == 0.0
        assert metric(d, "rblwatch_checks_failing", check="spf", group="mail") == 1.0
        _, page = d.get("/")
        assert b"Sender hygiene" in page and b"softfail" in page

        ns.reload(zones(SPF_OK))
        wait_until(
            "check_passed for spf",
            lambda: [e for e in d.events("check_passed") if e["list"] == "spf"],
            timeout=20,
        )
        wait_until("a few more passes", lambda: checks_ran(d), timeout=5)
        got = [(e["kind"], e["list"]) for e in d.events() if e["list"] == "spf"]
        assert got == [("check_failed", "spf"), ("check_passed", "spf")]
        assert metric(d, "rblwatch_check_ok", check="spf", target=target, group="mail") is None
        wait_until("both deliveries", lambda: len(delivered(hooks, "check.passed")) == 1)
        (failed,) = [b for b in delivered(hooks, "check.failed") if b["data"]["check"] == "spf"]
        assert failed["data"]["result"] == "softfail"
        assert failed["data"]["target"] == target
        assert "~all" in failed["data"]["reason"]
    finally:
        d.stop()
        d.close()


def test_a_dns_outage_is_an_error_and_changes_nothing(
    tmp_path: Path, servers: tuple[Rbldnsd, NsdServer], hooks: WebhookReceiver
) -> None:
    rbl, ns = servers
    d = daemon(tmp_path, rbl, ns, hooks)
    try:
        wait_until("the missing DMARC record", lambda: failing(d), timeout=20)
        before = d.events()
        ns.stop()
        # several passes of every check while the server is down
        wait_until(
            "errors counted",
            lambda: (
                (metric(d, "rblwatch_query_errors_total", list="spf", reason="timeout") or 0) >= 3
            ),
            timeout=20,
        )
        assert d.events() == before  # no transition: an error changes nothing
        assert [f["check"] for f in failing(d)] == ["dmarc"]  # what we believed stays
        ns.start()
        wait_until("passes again", lambda: checks_ran(d), timeout=10)
        assert d.events() == before
    finally:
        d.stop()
        d.close()
