"""End to end: `rblwatch run` delivering alerts to real receivers on 127.0.0.1 (SPEC §12).

The daemon finds listings in a real rbldnsd (as in test_daemon.py) and delivers them to a
webhook receiver this test runs, or to a real Alertmanager. Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.alertmanager import Alertmanager
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.rbldnsd import Rbldnsd
from tests.test_daemon import BASE, LISTED, ZONE, cycled, listed, metric
from tests.webhooks import Received, WebhookReceiver

SECRET = "whsec_" + base64.b64encode(b"e2e-secret-e2e-secret-e2e-secret").decode()


@pytest.fixture
def dns(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)
    rbldnsd.start()
    return rbldnsd


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()  # not started: the test decides when it is up
    try:
        yield receiver
    finally:
        receiver.close()


def daemon_with(
    tmp_path: Path, dns: Rbldnsd, receivers: str, *, own_nameservers: bool = False
) -> DaemonProcess:
    web_port = free_tcp_port()
    cfg = tmp_path / "rblwatch.yaml"
    extra = "alerts:\n  receivers:\n" + receivers
    cfg.write_text(
        config_text(
            dns_port=dns.port,
            web_port=web_port,
            store=tmp_path / "state.db",
            extra=extra,
            own_nameservers=own_nameservers,
        )
    )
    d = DaemonProcess(cfg)
    d.web_port = web_port
    return d


def by_id(got: list[Received]) -> dict[str, set[bytes]]:
    out: dict[str, set[bytes]] = {}
    for r in got:
        out.setdefault(r.id, set()).add(r.body)
    return out


def test_kill_9_with_deliveries_pending_then_a_restart_delivers_each_event_under_one_id(
    tmp_path: Path, dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    d = daemon_with(
        tmp_path,
        dns,
        f"""\
    - name: ops
      url: {hooks.url}/rblwatch
      secret: {SECRET}
      backoff: {{initial: 100ms, max: 500ms}}
""",
    )
    try:
        listed(dns, LISTED, "192.0.2.2 :127.0.0.4:exploited")
        d.start(d.web_port)
        wait_until("both listed events", lambda: len(d.events("listed")) == 2)
        events = d.events()
        wait_until(
            "two deliveries waiting",
            lambda: metric(d, "rblwatch_alert_queue", receiver="ops") == 2.0,
        )
        assert "Connection refused" in d.log()
        d.kill9()

        hooks.start()
        d.start(d.web_port)
        want = {f"evt_{e['id']}" for e in events}
        wait_until("every event delivered", lambda: set(by_id(hooks.delivered())) >= want)
        wait_until(
            "an empty queue", lambda: metric(d, "rblwatch_alert_queue", receiver="ops") == 0.0
        )
        got = by_id(hooks.received)
        assert set(got) == want
        assert all(len(bodies) == 1 for bodies in got.values())  # one id, one body, ever
        for r in hooks.received:
            assert r.path == "/rblwatch"
            doc = Webhook(SECRET).verify(r.body, r.headers)
            assert doc["type"] == "listing.created"
            assert doc["data"]["initial"] is True
            assert doc["data"]["delist_url"] == "https://bl.example/remove"
        assert metric(d, "rblwatch_alert_deliveries_total", receiver="ops") == 2.0
        assert metric(d, "rblwatch_alert_delivery_failures_total", receiver="ops") == 0.0

        listed(dns)  # both delisted: delivered by the restarted daemon as they happen
        wait_until(
            "the removals",
            lambda: (
                sum(json.loads(r.body)["type"] == "listing.removed" for r in hooks.delivered()) == 2
            ),
        )
        assert SECRET.removeprefix("whsec_") not in d.log() and hooks.url not in d.log()
        assert d.stop() == 0
    finally:
        d.close()


def test_a_real_alertmanager_shows_the_listing_active_then_resolved(
    tmp_path: Path, dns: Rbldnsd, alertmanager: Alertmanager
) -> None:
    d = daemon_with(
        tmp_path,
        dns,
        f"""\
    - name: am
      url: {alertmanager.url}
      format: alertmanager
""",
    )
    notifications = alertmanager.notifications
    assert notifications is not None

    def ours() -> list[dict[str, object]]:
        return [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "RblwatchListed"]

    def notified(status: str) -> bool:
        docs = [json.loads(r.body) for r in notifications.received]
        return any(doc["status"] == status for doc in docs)

    try:
        d.start(d.web_port)
        listed(dns, LISTED)
        [alert] = wait_until(
            "the alert in Alertmanager",
            lambda: [a for a in ours() if a["status"]["state"] == "active"],  # type: ignore[index]
        )
        assert alert["labels"] == {
            "alertname": "RblwatchListed",
            "target": "192.0.2.1",
            "list": "bl",
            "group": "mail",
        }
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["delist_url"] == "https://bl.example/remove"
        assert "192.0.2.1 is listed on bl" in annotations["summary"]
        wait_until("a firing notification", lambda: notified("firing"))

        listed(dns)
        wait_until("the alert to end", lambda: ours() == [])
        wait_until("a resolved notification", lambda: notified("resolved"))
        assert d.stop() == 0
    finally:
        d.close()


def seconds(rfc3339: object) -> float:
    assert isinstance(rfc3339, str)
    return datetime.fromisoformat(rfc3339).timestamp()


def test_a_real_alertmanager_resolves_a_recovered_list_from_when_it_became_unhealthy(
    tmp_path: Path, dns: Rbldnsd, alertmanager: Alertmanager
) -> None:
    # issue 9: the resolve had startsAt = endsAt and the description "test points: -."
    d = daemon_with(
        tmp_path,
        dns,
        f"""\
    - name: am
      url: {alertmanager.url}
      format: alertmanager
""",
        own_nameservers=True,  # the list's server dies, not the resolver
    )
    notifications = alertmanager.notifications
    assert notifications is not None

    def unhealthy(status: str) -> list[dict[str, Any]]:
        docs = [json.loads(r.body) for r in notifications.received]
        return [
            alert
            for doc in docs
            for alert in doc["alerts"]
            if alert["labels"]["alertname"] == "RblwatchListUnhealthy" and alert["status"] == status
        ]

    try:
        d.start(d.web_port)
        wait_until("a healthy first cycle", lambda: cycled(d))
        dns.stop()
        [firing] = wait_until("a firing notification", lambda: unhealthy("firing"))
        [down] = d.events("list_unhealthy")
        dns.start()
        [resolved] = wait_until("a resolved notification", lambda: unhealthy("resolved"))
        [up] = d.events("list_recovered")
        assert (
            resolved["labels"]
            == firing["labels"]
            == {
                "alertname": "RblwatchListUnhealthy",
                "list": "bl",
            }
        )
        assert resolved["startsAt"] == firing["startsAt"]
        assert abs(seconds(resolved["startsAt"]) - seconds(down["at"])) < 1
        assert abs(seconds(resolved["endsAt"]) - seconds(up["at"])) < 1
        description = resolved["annotations"]["description"]
        assert description.startswith("List bl passes its RFC 5782 test points again")
        assert "test points: -" not in description
        assert d.stop() == 0
    finally:
        d.close()


def test_an_alert_about_an_address_of_a_hostname_names_the_hostname(
    tmp_path: Path, dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    # rbldnsd answers the name 2.0.0.127.bl.test with A 127.0.0.2 (the test point it lists):
    # the hostname's address, which is then listed on bl itself
    hooks.start()
    web_port = free_tcp_port()
    cfg = tmp_path / "rblwatch.yaml"
    extra = (
        "    hostnames: [2.0.0.127.bl.test]\n"
        f"alerts:\n  receivers:\n    - name: ops\n      url: {hooks.url}/rblwatch\n"
    )
    cfg.write_text(
        config_text(dns_port=dns.port, web_port=web_port, store=tmp_path / "state.db", extra=extra)
    )
    d = DaemonProcess(cfg)
    try:
        d.start(web_port)

        def about_the_host() -> list[dict[str, Any]]:
            docs = [json.loads(r.body)["data"] for r in hooks.delivered()]
            return [doc for doc in docs if doc.get("target") == "127.0.0.2"]

        [data] = wait_until("the alert about the hostname's address", about_the_host)
        assert data["hostname"] == "2.0.0.127.bl.test"
        assert data["kind"] == "listed" and data["initial"] is True
    finally:
        d.stop()
