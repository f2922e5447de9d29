"""Shared fixtures: a real rbldnsd and a fault-injecting DNS server, both on 127.0.0.1 only.

``rbldnsd`` (or ``rbldnsd_factory`` for several) gives an rbldnsd to fill with zones and start;
``faultdns`` gives a started :class:`tests.faultdns.FaultDns`. See tests/test_infra.py for use.
``postgres_cluster`` (tests/postgres.py) gives a throwaway PostgreSQL server for the session.
``alertmanager`` gives a started real Alertmanager whose notifications go to a test webhook.
``nsd_server`` gives a real authoritative DNS server (NSD, tests/nsd.py) to start with zones.
``dovecot`` gives a started real IMAP server (Dovecot, tests/dovecot.py) with one test user.
``browser`` gives a headless Chromium driven by Selenium (tests/browser.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import alertmanager as am
from tests import dovecot as dc
from tests import nsd
from tests.browser import browser  # noqa: F401  (the fixture, visible to every test)
from tests.faultdns import FaultDns
from tests.postgres import postgres_cluster  # noqa: F401  (the fixture, visible to every test)
from tests.rbldnsd import Rbldnsd, available
from tests.webhooks import WebhookReceiver


@pytest.fixture
def rbldnsd_factory() -> Iterator[Callable[[], Rbldnsd]]:
    """Make as many (not yet started) rbldnsd servers as a test needs; all stopped afterwards."""
    if not available():
        # never a skip: lookups are only proven against a real DNSBL server
        pytest.fail("rbldnsd is not installed: apt-get install -y rbldnsd (see README, Tests)")
    made: list[Rbldnsd] = []

    def make() -> Rbldnsd:
        srv = Rbldnsd()
        made.append(srv)
        return srv

    try:
        yield make
    finally:
        for srv in made:
            srv.close()


@pytest.fixture
def rbldnsd(rbldnsd_factory: Callable[[], Rbldnsd]) -> Rbldnsd:
    """A fresh rbldnsd, not started: add_zone() then start(). Stopped even if the test fails."""
    return rbldnsd_factory()


@pytest.fixture
def faultdns() -> Iterator[FaultDns]:
    """A started fault-injecting DNS server (default: NXDOMAIN for every name); rule() to taste."""
    srv = FaultDns().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[am.Alertmanager]:
    """A started Alertmanager on 127.0.0.1 (cluster off, storage in tmp_path). Its notifications,
    resolved ones too, arrive at `notifications` (a started WebhookReceiver)."""
    if am.binary() is None:
        # never a skip: Alertmanager integration is only proven against the real thing
        pytest.fail(
            "alertmanager is not installed: apt-get install -y prometheus-alertmanager"
            " (see README, Tests)"
        )
    notifications = WebhookReceiver().start()
    server = am.Alertmanager(tmp_path, notifications.url + "/notify")
    server.notifications = notifications
    try:
        yield server.start()
    finally:
        server.close()
        notifications.close()


@pytest.fixture
def nsd_server(tmp_path: Path) -> Iterator[nsd.NsdServer]:
    """An NSD, not started, its files in tmp_path: start(zones), reload(zones), stop() for an
    outage. Function-scoped (it starts in well under a second); stopped even if the test fails."""
    if not nsd.available():
        # never a skip: the hygiene checks are only proven against a real authoritative server
        pytest.fail("nsd is not installed: apt-get install -y nsd (as .ci/run does)")
    server = nsd.NsdServer(workdir=tmp_path / "nsd")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot() -> Iterator[dc.Dovecot]:
    """A started Dovecot on 127.0.0.1: IMAP on `port`, IMAPS on `ssl_port` (trust `cafile`), one
    user (`user`, `password`) whose maildir is `maildir`. Function-scoped (it starts in a fraction
    of a second); stopped and removed even if the test fails."""
    if not dc.available():
        # never a skip: the bounce mailboxes are only proven against a real IMAP server
        pytest.fail(
            "dovecot is not installed: apt-get install -y --no-install-recommends dovecot-imapd"
            " (as .ci/run does)"
        )
    server = dc.Dovecot()
    try:
        yield server.start()
    finally:
        server.close()
