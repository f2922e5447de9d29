"""The console in a real browser (Debian's headless Chromium through Selenium, tests/browser.py):
the overview, a search through 10,000 listings, a target's history, an outage's banner, the
pages without JavaScript, and a new listing appearing without a reload (a real daemon
against rbldnsd, whose zone file is rewritten under it)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
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
from tests.browser import make_browser
from tests.consolestate import BIG_LISTS, T0, address, big_config, seed_big
from tests.daemon import DaemonProcess, config_text, free_tcp_port, wait_until
from tests.rbldnsd import Rbldnsd

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
    assert counts[1:] == ["not known\nunknown", "not known\nerrors", "not known\nacknowledged"]
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
    body = browser.find_element(By.TAG_NAME, "main").text
    assert "No target is listed" not in body and "is not known" in body


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
