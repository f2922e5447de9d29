"""The daemon's bounce reader end to end: a real Dovecot (IMAP) holding the bounces, a real
rbldnsd holding the list, a real webhook receiver.

A bounce that blames a target (its sending IP) and names a configured list raises one `bounce`
event on it, delivered, counted in `rblwatch_bounces_total{cause,group}`, and re-checks the
target on that list at once — long before the list's own next cycle — so the new listing is
found (and confirmed) within seconds. Each message is read once, across a restart and a
`kill -9`; a bounce for an address that is not a target is counted, not alerted; an auto-reply
is no bounce.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon import DaemonProcess, free_tcp_port, wait_until
from tests.dovecot import Dovecot
from tests.rbldnsd import Rbldnsd
from tests.test_daemon import BASE, FIRST_CYCLE_S, ZONE, metric
from tests.webhooks import WebhookReceiver

SENDER = "192.0.2.22"


def dsn(ip: str, rcpt: str, n: int) -> bytes:
    """An RFC 3464 DSN from a receiver that refused `ip` because the test list has it."""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: sender@example.com\r\n"
        f"Message-ID: <dsn{n}@mx.example.net>\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        "Action: failed\r\n"
        "Status: 5.7.1\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        f"Diagnostic-Code: smtp; 554 5.7.1 Service unavailable; Client host [{ip}] blocked"
        f" using {ZONE}\r\n"
        "\r\n--B--\r\n"
    ).encode()


AUTO_REPLY = (
    b"From: someone@example.net\r\nTo: sender@example.com\r\nSubject: Out of Office\r\n"
    b"Auto-Submitted: auto-replied\r\nMessage-ID: <ooo@example.net>\r\n\r\n"
    b"I am away until Monday.\r\n"
)


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.close()


def config(tmp_path: Path, rbl: Rbldnsd, imap: Dovecot, hooks: WebhookReceiver, web: int) -> Path:
    cfg = tmp_path / "rblwatch.yaml"
    cfg.write_text(f"""\
resolver:
  nameservers: ["127.0.0.1:{rbl.port}"]
  timeout: 300ms
  attempts: 2
schedule:
  interval: 1h        # the list's own next cycle is far away: only the re-check can find it
  jitter: 0
  confirm: 2
  confirm_delay: 300ms
  health_interval: 1h
store:
  url: sqlite:///{tmp_path / "state.db"}
web:
  listen_address: 127.0.0.1:{web}
lists:
  - name: bl
    zone: {ZONE}
    kind: ip
targets:
  - group: mail
    addresses: [{SENDER}, 192.0.2.23]
bounces:
  interval: 10s
  sources:
    - name: inbox
      imap: {{host: 127.0.0.1, port: {imap.port}, tls: none, user: {imap.user},
              password: {imap.password}, folder: INBOX}}
alerts:
  receivers:
    - name: hook
      url: {hooks.url}/hook
      format: json
""")
    return cfg


def bodies(hooks: WebhookReceiver, kind: str) -> list[dict[str, Any]]:
    docs = [json.loads(r.body) for r in hooks.delivered()]
    return [d for d in docs if d["type"] == kind]


def test_a_bounce_naming_the_list_raises_one_event_and_rechecks_the_target_at_once(
    tmp_path: Path, rbldnsd: Rbldnsd, dovecot: Dovecot, hooks: WebhookReceiver
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    web = free_tcp_port()
    d = DaemonProcess(config(tmp_path, rbldnsd, dovecot, hooks, web))
    d.start(web)
    try:
        wait_until(
            "the first cycle",
            lambda: d.json("/api/v1/status")["lists"][0]["last_cycle_end"],
            timeout=FIRST_CYCLE_S,  # near the top of the hour: the grid's own
        )
        # listed only now: the list's next cycle is an hour away
        rbldnsd.rewrite_zone(ZONE, [*BASE, f"{SENDER} :127.0.0.2:spam from $"])
        time.sleep(1.5)  # rbldnsd re-reads its zones every second
        dovecot.append("INBOX", dsn(SENDER, "user@example.org", 1))
        dovecot.append("INBOX", dsn("203.0.113.5", "user@example.org", 2))  # not a target
        dovecot.append("INBOX", AUTO_REPLY)
        bounce = wait_until("the bounce event", lambda: d.events("bounce"), timeout=30)
        assert [(e["target"], e["list"], e["codes"]) for e in bounce] == [(SENDER, "bl", ["5.7.1"])]
        # the re-check found the listing, and its confirmation round confirmed it
        listed = wait_until("the listing", lambda: d.events("listed"), timeout=15)
        assert [e["target"] for e in listed] == [SENDER]
        assert metric(d, "rblwatch_bounces_total", cause="blocklisted", group="mail") == 1.0
        assert metric(d, "rblwatch_bounces_total", cause="blocklisted", group="") == 1.0
        (hook,) = wait_until("the delivery", lambda: bodies(hooks, "bounce.received"))
        assert (hook["data"]["target"], hook["data"]["cause"], hook["data"]["list"]) == (
            SENDER,
            "blocklisted",
            "bl",
        )
        assert "example.org" in hook["data"]["diagnostic"]

        # read once: a kill -9 and a restart read nothing again; a new bounce is read
        d.kill9()
        d.start(web)
        dovecot.append("INBOX", dsn(SENDER, "other@example.org", 3))
        wait_until("the second bounce", lambda: len(d.events("bounce")) == 2, timeout=30)
        time.sleep(11)  # one more round of the source
        assert len(d.events("bounce")) == 2
    finally:
        d.stop()
        d.close()


def test_a_mailbox_that_cannot_be_read_is_counted_and_the_daemon_goes_on(
    tmp_path: Path, rbldnsd: Rbldnsd, dovecot: Dovecot, hooks: WebhookReceiver
) -> None:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    web = free_tcp_port()
    d = DaemonProcess(config(tmp_path, rbldnsd, dovecot, hooks, web))
    dovecot.stop()
    d.start(web)
    try:
        wait_until(
            "a source error counted",
            lambda: (metric(d, "rblwatch_bounce_source_errors_total", source="inbox") or 0) >= 1,
            timeout=20,
        )
        assert d.get("/-/ready")[0] == 200
        assert "bounces: imap 127.0.0.1" in d.log() and "Traceback" not in d.log()
    finally:
        d.stop()
        d.close()
