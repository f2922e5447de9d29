"""A real browser for the console's tests: Debian's headless Chromium driven by Selenium.

The `browser` fixture gives a selenium Chrome webdriver on /usr/bin/chromium and
/usr/bin/chromedriver (the `chromium` and `chromium-driver` packages), headless, 1400x1000.
The driver's path is handed to Selenium, so Selenium Manager never downloads anything. A
missing browser fails the test with the packages to install: never a skip, as the console is
only proven in a real browser. Import the fixture into a test module to use it.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _options(javascript: bool = True, extra: tuple[str, ...] = ()) -> Options:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # nothing may reach the internet
        "--disable-component-update",
        *extra,
    ):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return options


@contextlib.contextmanager
def make_browser(
    *, javascript: bool = True, extra: tuple[str, ...] = ()
) -> Iterator[webdriver.Chrome]:
    """A headless Chromium (1400x1000; `javascript=False`: with scripts off; `extra`: more
    command-line flags, such as `--ignore-certificate-errors`), quit afterwards."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: apt-get install -y chromium chromium-driver "
            "(the console's browser tests need them)"
        )
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=_options(javascript, extra), service=service)
    driver.set_window_size(1400, 1000)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """A headless Chromium (1400x1000), quit afterwards."""
    with make_browser() as driver:
        yield driver


def basic_auth(driver: webdriver.Chrome, user: str, password: str) -> None:
    """Send HTTP basic auth with every request the browser makes from now on (pages, forms,
    scripts' fetches): Chromium's DevTools protocol, as no login dialog can be answered."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.enable", {})
    headers = {"Authorization": f"Basic {token}"}
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})


__all__ = ["basic_auth", "browser", "make_browser"]
