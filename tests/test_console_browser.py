"""The console in a real browser (Debian's headless Chromium through Selenium, tests/browser.py):
the overview, a search through 10,000 listings, a target's history, an outage's banner, the
pages without JavaScript, a new listing appearing without a reload (a real daemon against
rbldnsd, whose zone file is rewritten under it), acknowledging a listing from the browser
logged in through basic auth over TLS (and the next alert carrying it), and a cross-site
form post refused."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.server
import json
import re
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from rblwatch import web
from rblwatch.metrics import build_registry
from rblwatch.model import ResolverState
from rblwatch.runtime import Runtime
from rblwatch.stats import Stats
from rblwatch.store.sqlite import SqliteStore
from rblwatch.views.status import StatusView
from tests.browser import basic_auth, make_browser
from tests.consolestate import BIG_LISTS, T0, address, big_config, seed_big
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.rbldnsd import Rbldnsd
from tests.tlscerts import bcrypt_hash, make_pki
from tests.webhooks import WebhookReceiver
from tests.webstate import event, listed, make_runtime, put

ZONE = "bl.test"
BASE = [":127.0.0.2:Listed: $", "127.0.0.2"]  # the RFC 5782 test point, always listed


class Served:
    """The listener on 127.0.0.1 in a thread of its own (its own event loop), for a browser."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = self.loop.run_until_complete(
            web.start(self.runtime, build_registry(self.runtime), "127.0.0.1", 0)
        )
        self.port = self.runner.addresses[0][1]
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> Served:
        self._thread.start()
        assert self._ready.wait(10), "the listener did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """10,000 listings among 262,144 pairs, served."""
    store = SqliteStore(str(tmp_path_factory.mktemp("big") / "state.db"))
    seed_big(store, 10_000)
    stats = Stats()
    stats.ensure_lists(BIG_LISTS)
    runtime = Runtime(config=big_config(), store=store, stats=stats, version="test")
    runtime.targets_per_group = {"mail": 65_536}
    try:
        with Served(runtime) as served:
            yield served
    finally:
        store.close()


def rows(driver: webdriver.Chrome, table: str = "listings") -> list[str]:
    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, f"table.{table} tbody tr")]


def test_the_overview_renders_its_counts_lists_and_newest_listings(
    browser: webdriver.Chrome, big: Served
) -> None:
    browser.get(big.url("/"))
    assert browser.title == "Overview · rblwatch"
    counts = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".counts li")]
    assert counts[0] == "10000\nlisted"
    # the seeded cycles are days old: every pair without a listing is unknown (stale), none clean
    assert counts[1:] == ["252144\nunknown", "0\nerrors", "0\nacknowledged"]
    lists = rows(browser, "lists")
    assert [r.split()[0] for r in lists] == list(BIG_LISTS)
    assert all(" healthy 2500 2026-11-27T12:00:00Z" in r for r in lists), lists
    assert len(rows(browser)) == 10
    browser.set_window_size(600, 1000)  # narrow: cells squeeze, yet timestamps never wrap
    for t in browser.find_elements(By.CSS_SELECTOR, "table.lists time"):
        font = float(t.value_of_css_property("font-size").removesuffix("px"))
        assert t.size["height"] < 2 * font, t.text
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # nothing failed to load (every asset is the console's own)


@pytest.mark.parametrize("width", [1400, 1000])
def test_no_page_overflows_sideways_at_1400_or_1000_pixels(
    browser: webdriver.Chrome, big: Served, width: int
) -> None:
    browser.set_window_size(width, 1000)
    for path in ("/", "/listings", f"/target/{address(26)}", "/events", f"/list/{BIG_LISTS[0]}"):
        browser.get(big.url(path))
        wide, room = browser.execute_script(
            "const e = document.documentElement; return [e.scrollWidth, e.clientWidth]"
        )
        assert wide <= room, (path, wide, room)


def test_a_search_narrows_ten_thousand_listings_to_one(
    browser: webdriver.Chrome, big: Served
) -> None:
    browser.get(big.url("/listings"))
    assert browser.find_element(By.CSS_SELECTOR, ".found").text == "1\N{EN DASH}100 of 10000"
    assert len(rows(browser)) == 100
    wanted = address(26 * 1000)  # the 1001st listing of the first list
    box = browser.find_element(By.NAME, "q")
    box.send_keys(wanted)
    box.submit()
    WebDriverWait(browser, 10).until(ec.url_contains("q="))
    [row] = rows(browser)
    assert row.startswith(f"{wanted} {BIG_LISTS[0]} mail 2026-11-26T19:20:00Z")
    assert f"{wanted} listed on {BIG_LISTS[0]}" in row  # its TXT
    link = browser.find_element(By.LINK_TEXT, "delist")
    assert link.get_attribute("href") == f"https://{BIG_LISTS[0]}.example.net/remove"
    assert browser.find_element(By.CSS_SELECTOR, ".found").text == "1\N{EN DASH}1 of 1"


def test_a_target_page_shows_every_list_and_the_history(
    browser: webdriver.Chrome, big: Served
) -> None:
    browser.get(big.url(f"/listings?q={address(26)}"))
    browser.find_element(By.LINK_TEXT, address(26)).click()
    WebDriverWait(browser, 10).until(ec.title_is(f"{address(26)} · rblwatch"))
    states = rows(browser, "states")
    assert states[0].startswith(f"{BIG_LISTS[0]} listed 2026-11-27T11:59:00Z")
    assert [s.split()[:2] for s in states[1:]] == [[n, "clean"] for n in BIG_LISTS[1:]]
    [history] = rows(browser, "events")
    assert history.startswith("2026-11-27T11:59:00Z")
    assert f" listed {address(26)} {BIG_LISTS[0]} mail 127.0.0.2" in history
    assert browser.find_element(By.ID, "acks").is_displayed()


def test_during_a_resolver_outage_the_overview_shows_the_banner_and_unknown(
    browser: webdriver.Chrome, big: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = ResolverState("unreachable", T0, "every list: timeout")
    original = web.read_status

    def read_status(*args: Any) -> StatusView:
        return dataclasses.replace(original(*args), resolver=down)

    app_console = _console_of(big)
    monkeypatch.setattr(app_console, "read_status", read_status)
    browser.get(big.url("/"))
    banner = browser.find_element(By.CSS_SELECTOR, ".banner.bad")
    assert banner.text.startswith("The resolver is unreachable since 2026-11-27T12:00:00Z")
    counts = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".counts li")]
    assert counts[0] == "not known\nlisted"
    assert counts[1] == "252144\nunknown"  # what is not known is counted, never clean
    listed = browser.find_element(By.CSS_SELECTOR, ".counts li.count-listed")
    assert listed.get_attribute("title") == "10000 listed at the last good answers"
    body = browser.find_element(By.TAG_NAME, "main").text
    assert "No target is listed" not in body and "is not known" in body
    colour = banner.value_of_css_property("background-color")
    assert colour != "rgba(0, 0, 0, 0)", colour  # a banner stands out


def _console_of(served: Served) -> Any:
    """The served app's `Console` (whose `read_status` the test replaces)."""
    app = served.runner.app
    resource = next(r for r in app.router.resources() if r.canonical == "/")
    handler = next(iter(resource)).handler
    return handler.__self__  # type: ignore[attr-defined]


def test_the_pages_work_without_javascript(big: Served) -> None:
    with make_browser(javascript=False) as plain:
        plain.get(big.url("/listings?per_page=20"))
        assert len(rows(plain)) == 20
        plain.find_element(By.LINK_TEXT, "next →").click()
        WebDriverWait(plain, 10).until(ec.url_contains("page=2"))
        assert rows(plain)[0].startswith(address(26 * 5))  # the 21st, in address order
        refresh = plain.find_element(By.CSS_SELECTOR, "#live a")
        assert refresh.text == "refresh"  # no script: the header offers a manual refresh


# --- live refresh, against a real daemon ------------------------------------------------------


@pytest.fixture
def dns(rbldnsd: Rbldnsd) -> Rbldnsd:
    rbldnsd.add_zone(ZONE, "ip4set", BASE)  # rbldnsd runs with -c 1: rewrites count in ~1 s
    rbldnsd.start()
    return rbldnsd


@pytest.fixture
def daemon(tmp_path: Path, dns: Rbldnsd) -> Iterator[DaemonProcess]:
    cfg = tmp_path / "rblwatch.yaml"
    web_port = free_tcp_port()
    cfg.write_text(config_text(dns_port=dns.port, web_port=web_port, store=tmp_path / "s.db"))
    d = DaemonProcess(cfg)
    d.start(web_port)
    try:
        yield d
    finally:
        d.close()


def test_a_new_listing_appears_without_a_reload(
    browser: webdriver.Chrome, daemon: DaemonProcess, dns: Rbldnsd
) -> None:
    def cycled() -> bool:
        lists = daemon.json("/api/v1/status")["lists"]
        return bool(lists) and all(x["last_cycle_end"] for x in lists)

    wait_until("a first cycle", cycled)
    browser.get(f"http://127.0.0.1:{daemon.web_port}/listings")
    assert "No target is listed." in browser.find_element(By.TAG_NAME, "main").text
    browser.execute_script("window.stayed = true")  # gone if the page were loaded again
    dns.rewrite_zone(ZONE, [*BASE, "192.0.2.2 :127.0.0.2:spam from $"])
    WebDriverWait(browser, 30).until(lambda d: any("192.0.2.2" in r for r in rows(d)))
    [row] = rows(browser)
    assert row.startswith("192.0.2.2 bl mail 20")  # then its since, in UTC ISO form
    assert "spam from 192.0.2.2" in row
    assert browser.execute_script("return window.stayed") is True
    assert browser.find_element(By.ID, "live").text.startswith("live · ")


# --- working a listing from the browser, logged in over TLS -------------------------------------

IP = "192.0.2.1"
USER, PASSWORD = "alice", "correct horse"


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    try:
        yield receiver
    finally:
        receiver.close()


def https_get(port: int, path: str, ctx: ssl.SSLContext) -> int:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}", headers={"Authorization": f"Basic {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=2, context=ctx) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


@pytest.fixture
def tls_daemon(
    tmp_path: Path, dns: Rbldnsd, hooks: WebhookReceiver
) -> Iterator[tuple[DaemonProcess, ssl.SSLContext]]:
    """`rblwatch run` over TLS with one basic-auth user (`--web.config.file`), alerting to a
    real webhook receiver."""
    pki = make_pki(tmp_path / "pki")
    web_yml = tmp_path / "web.yml"
    web_yml.write_text(
        f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n"
        f"basic_auth_users:\n  {USER}: '{bcrypt_hash(PASSWORD)}'\n"
    )
    extra = f"""\
alerts:
  receivers:
    - name: ops
      url: {hooks.url}/rblwatch
      backoff: {{initial: 100ms, max: 500ms}}
"""
    port = free_tcp_port()
    cfg = tmp_path / "rblwatch.yaml"
    cfg.write_text(
        config_text(dns_port=dns.port, web_port=port, store=tmp_path / "s.db", extra=extra)
    )
    d = DaemonProcess(cfg)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    try:
        d.start(port, wait_ready=False, extra_args=("--web.config.file", str(web_yml)))
        wait_until("the daemon over TLS", lambda: https_get(port, "/-/ready", ctx) == 200, 30)
        yield d, ctx
    finally:
        d.close()


def alerts(hooks: WebhookReceiver, kind: str) -> list[dict[str, Any]]:
    bodies = [json.loads(r.body)["data"] for r in hooks.delivered()]
    return [b for b in bodies if b["kind"] == kind and b.get("target") == IP]


def test_acknowledging_from_the_browser_over_tls_shows_and_rides_the_next_alert(
    tls_daemon: tuple[DaemonProcess, ssl.SSLContext], dns: Rbldnsd, hooks: WebhookReceiver
) -> None:
    daemon, _ = tls_daemon
    dns.rewrite_zone(ZONE, [*BASE, f"{IP} :127.0.0.2:spam from $"])
    wait_until("the listing's alert", lambda: alerts(hooks, "listed"), 30)
    assert alerts(hooks, "listed")[0]["ack"] is None
    with make_browser(extra=("--ignore-certificate-errors",)) as browser:
        basic_auth(browser, USER, PASSWORD)
        browser.get(f"https://127.0.0.1:{daemon.web_port}/target/{IP}")
        assert browser.title == f"{IP} · rblwatch"
        card = browser.find_element(By.ID, "work-bl")
        card.find_element(By.CSS_SELECTOR, "form.ack input[name=note]").send_keys("ticket 7 open")
        card.find_element(By.CSS_SELECTOR, "form.ack button").click()
        WebDriverWait(browser, 10).until(
            lambda d: "Acknowledged by" in d.find_element(By.ID, "work-bl").text
        )
        assert browser.current_url == f"https://127.0.0.1:{daemon.web_port}/target/{IP}#work-bl"
        line = browser.find_element(By.CSS_SELECTOR, "#work-bl .ackline").text
        assert line.startswith(f"Acknowledged by {USER} 20") and line.endswith("ticket 7 open")
        [state] = [r for r in rows(browser, "states") if r.startswith("bl ")]
        assert state.startswith("bl listed") and f"✓ {USER}" in state
        assert [r.split()[:2] for r in rows(browser, "acks")] == [["bl", USER]]
    # the codes change: the next alert says who is on it
    dns.rewrite_zone(ZONE, [*BASE, f"{IP} :127.0.0.4:exploited $"])
    wait_until("the change's alert", lambda: alerts(hooks, "changed"), 30)
    [changed] = alerts(hooks, "changed")
    assert (changed["ack"]["by"], changed["ack"]["note"]) == (USER, "ticket 7 open")


# --- a cross-site post ---------------------------------------------------------------------------

EVIL_PAGE = """<!DOCTYPE html><html><body>
<form id="f" method="post" action="{action}">
<input name="target" value="{target}"><input name="list" value="corp-bl">
<input name="csrf_token" value="{token}"><input name="note" value="evil">
</form><script>document.getElementById("f").submit()</script></body></html>"""


class Elsewhere:
    """A page on another origin (another port of 127.0.0.1) that submits a form at once."""

    def __init__(self, page: str) -> None:
        body = page.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            # the browser opens spare connections that never send a request: without a
            # timeout each would hold the server (and its shutdown) until Chromium drops it
            timeout = 2

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("action", ["/api/v1/acks", "/-/reload"])
def test_a_cross_site_post_is_refused_and_writes_nothing(
    browser: webdriver.Chrome, tmp_path: Path, action: str
) -> None:
    runtime = make_runtime(tmp_path)
    put(runtime, [listed(IP)], [event(IP, T0)])
    with Served(runtime) as served:
        page = urllib.request.urlopen(served.url(f"/target/{IP}"), timeout=5).read().decode()
        # even the right token does not help a page on another origin
        [token] = set(re.findall(r'name="csrf_token" value="([0-9a-f]+)"', page))
        target = served.url(action)
        evil = Elsewhere(EVIL_PAGE.format(action=target, target=IP, token=token))
        try:
            browser.get(evil.url)
            WebDriverWait(browser, 10).until(ec.url_to_be(target))
            text = browser.find_element(By.TAG_NAME, "body").text
            assert text.startswith("refused: a cross-site request"), text
            status = browser.execute_script(
                "return performance.getEntriesByType('navigation')[0].responseStatus"
            )
            assert status == 403
        finally:
            evil.close()
    assert runtime.store.acks() == []
    assert [e.kind.value for e in runtime.store.events()] == ["listed"]  # no ack event either
