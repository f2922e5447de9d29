"""End to end: working a listing while `rblwatch run` watches it (issue 11 part 2).

A real daemon against rbldnsd (zone reloads as in test_daemon.py) delivering to a real webhook
receiver; the operator acknowledges the listing with the `rblwatch ack` command on the
daemon's store and notes it through the daemon's API. The next alert about the pair carries
the ack, the delisting carries it too and removes it, and the pair listed again starts fresh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.rbldnsd import Rbldnsd
from tests.test_daemon import BASE, LISTED, ZONE, listed
from tests.webhooks import WebhookReceiver

ROOT = Path(__file__).resolve().parent.parent
IP = "192.0.2.1"


@pytest.fixture
def dns(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    return rbldnsd


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def daemon(tmp_path: Path, dns: Rbldnsd, hooks: WebhookReceiver) -> Iterator[DaemonProcess]:
    web_port = free_tcp_port()
    extra = f"""\
alerts:
  receivers:
    - name: ops
      url: {hooks.url}/rblwatch
      backoff: {{initial: 100ms, max: 500ms}}
"""
    cfg = tmp_path / "rblwatch.yaml"
    cfg.write_text(
        config_text(dns_port=dns.port, web_port=web_port, store=tmp_path / "state.db", extra=extra)
    )
    d = DaemonProcess(cfg)
    try:
        d.start(web_port)
        yield d
    finally:
        d.close()


def alerts(hooks: WebhookReceiver, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(r.body)["data"] for r in hooks.delivered()]
    return [b for b in bodies if b["kind"] == kind and b.get("target") == IP]


def cli(d: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOGNAME": "alice", "USER": "alice"}
    argv = [sys.executable, "-m", "rblwatch", args[0], "--config.file", str(d.config), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def post_json(d: DaemonProcess, path: str, body: dict[str, str]) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{d.web_port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def status_ack(d: DaemonProcess) -> Any:
    [listing] = d.json("/api/v1/status")["listings"]
    return listing["ack"]


def test_an_acknowledged_listing_s_alerts_carry_the_ack_and_a_relisting_starts_fresh(
    daemon: DaemonProcess, dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    listed(dns, LISTED)
    wait_until("the listing's alert", lambda: alerts(hooks, "listed"))
    assert alerts(hooks, "listed")[0]["ack"] is None

    ran = cli(daemon, "ack", IP, "bl", "--note", "asked on ticket 123")
    assert ran.returncode == 0, ran.stderr
    noted = post_json(daemon, "/api/v1/notes", {"target": IP, "text": "customer test box"})
    assert noted["note"]["by"] == "api"
    assert status_ack(daemon)["by"] == "alice"

    # the codes change: the alert of the pair somebody is on says who
    listed(dns, f"{IP} :127.0.0.4:exploited $")
    wait_until("the change's alert", lambda: alerts(hooks, "changed"))
    [changed] = alerts(hooks, "changed")
    assert (changed["ack"]["by"], changed["ack"]["note"]) == ("alice", "asked on ticket 123")

    asked = post_json(daemon, "/api/v1/delisting", {"target": IP, "list": "bl", "note": "form"})
    assert asked["ack"]["by"] == "alice" and asked["ack"]["delisting_note"] == "form"

    # the delisting carries the ack and ends it
    listed(dns)
    wait_until("the delisting's alert", lambda: alerts(hooks, "delisted"))
    [delisted] = alerts(hooks, "delisted")
    assert delisted["ack"]["delisting_note"] == "form"
    assert daemon.json("/api/v1/acks") == {"acks": []}

    # listed again: a new listing, nobody on it yet
    listed(dns, LISTED)
    wait_until("the new listing's alert", lambda: len(alerts(hooks, "listed")) == 2)
    assert alerts(hooks, "listed")[1]["ack"] is None
    assert status_ack(daemon) is None

    history = cli(daemon, "history", "--target", IP).stdout
    for kind in ("acknowledged", "note", "delisting_requested"):
        assert f" {kind} " in history, history
    assert "by alice: asked on ticket 123" in history and "by api: customer test box" in history
    # the operator's own actions never went to the receiver
    kinds = {json.loads(r.body)["data"]["kind"] for r in hooks.delivered()}
    assert kinds == {"listed", "changed", "delisted"}
    assert daemon.stop() == 0
