#!/usr/bin/env python3
"""The README's screenshots of the console, taken in headless Chromium from a seeded store.

    .venv/bin/python bench/screenshots.py [--out docs] [--width 1400] [--height 1000]

Seeds a SQLite store in a temporary directory through the store API (six lists, a /26 and
three domains, a handful of listings with their history, an acknowledgement, a delisting
request and notes), serves the real listener on 127.0.0.1 and saves, with Debian's
`chromium` and `chromium-driver` (tests/browser.py):

- `console-overview.png`: the overview with its listings;
- `console-target.png`: a target page with its history and an ack;
- `console-outage.png`: the overview while the resolver is unreachable (its banner).

Nothing reaches the network; re-run it after changing a template or the stylesheet.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rblwatch import web
from rblwatch.cluster import Instance
from rblwatch.config import Config, parse_config
from rblwatch.metrics import build_registry
from rblwatch.model import (
    Ack,
    CycleCommit,
    Event,
    EventKind,
    Health,
    ListStatus,
    Note,
    PairState,
    PairStatus,
    ResolverState,
)
from rblwatch.runtime import Runtime
from rblwatch.stats import Stats
from rblwatch.store import Store
from rblwatch.store.sqlite import SqliteStore
from tests.browser import make_browser

LISTS = ("spamhaus-zen", "barracuda", "spamcop", "psbl", "mailspike-bl", "corp-dbl")
NETWORK = "198.51.100.0/26"
DOMAINS = ("example.com", "shop.example.net", "xn--bcher-kva.example")
ALICE_TXT = "Listed by CSS, see https://check.example.net/query/ip/198.51.100.23"
# (target, list, codes, meanings, TXT, minutes ago)
LISTINGS = [
    ("198.51.100.23", "spamhaus-zen", ("127.0.0.3",), ("CSS: snowshoe spam",), ALICE_TXT, 95),
    ("198.51.100.23", "barracuda", ("127.0.0.2",), ("listed",), "Client host blocked", 80),
    ("198.51.100.7", "spamcop", ("127.0.0.2",), ("spam source",), "Blocked - see spamcop", 260),
    ("198.51.100.41", "psbl", ("127.0.0.2",), ("spam trap hit",), None, 30),
    ("198.51.100.58", "mailspike-bl", ("127.0.0.12",), ("poor reputation",), None, 1400),
    ("shop.example.net", "corp-dbl", ("127.0.1.2",), ("spam domain",), "spam in mail", 12),
]
TARGET = "198.51.100.23"


def config() -> Config:
    lists: list[dict[str, object]] = [
        {
            "name": name,
            "zone": f"{name}.example.net",
            "kind": "ip",
            "delist_url": f"https://{name}.example.net/delist",
        }
        for name in LISTS[:-1]
    ]
    lists.append({"name": LISTS[-1], "zone": "dbl.example.net", "kind": "domain"})
    return parse_config(
        {
            "lists": lists,
            "targets": [
                {"group": "mail", "addresses": [NETWORK]},
                {"group": "web", "domains": list(DOMAINS)},
            ],
        }
    )


def _pair(
    target: str,
    name: str,
    codes: tuple[str, ...],
    meanings: tuple[str, ...],
    txt: str | None,
    since: float,
) -> PairState:
    group = "web" if not target[0].isdigit() else "mail"
    return PairState(target, name, group, PairStatus.LISTED, since, since, codes, meanings, txt)


def seed(store: Store, now: float) -> None:
    addresses = [f"198.51.100.{i}" for i in range(64)]
    for name in LISTS:
        targets = list(DOMAINS) if name == "corp-dbl" else addresses
        upserts, events = [], []
        for target, lst, codes, meanings, txt, ago in LISTINGS:
            if lst != name:
                continue
            since = now - 60 * ago
            upserts.append(_pair(target, lst, codes, meanings, txt, since))
            group = "web" if not target[0].isdigit() else "mail"
            events.append(
                Event(
                    EventKind.LISTED,
                    lst,
                    since,
                    target=target,
                    group=group,
                    codes=codes,
                    meanings=meanings,
                    txt=txt,
                )
            )
        status = ListStatus(
            name=name,
            health=Health.HEALTHY,
            health_since=now - 86_400 * 9,
            last_cycle_start=now - 95,
            last_cycle_end=now - 60,
            last_cycle_success=now - 60,
            last_cycle_duration=35.0,
            last_cycle_lookups=len(targets),
            targets=len(targets),
        )
        store.commit(
            CycleCommit(
                name,
                upserts,
                seen=targets,
                events=events,
                status=status,
                budget_day=time.strftime("%Y-%m-%d", time.gmtime(now)),
                budget_queries=len(targets) * 24,
            )
        )
        store.record_health(name, Health.HEALTHY, "", now - 86_400 * 9, None)
    # the target's history: an earlier listing that ended, and the operator's work
    old = now - 86_400 * 6
    store.commit(
        CycleCommit(
            "spamcop",
            events=[
                Event(
                    EventKind.LISTED,
                    "spamcop",
                    old,
                    target=TARGET,
                    group="mail",
                    codes=("127.0.0.2",),
                    meanings=("spam source",),
                ),
                Event(EventKind.DELISTED, "spamcop", old + 7200, target=TARGET, group="mail"),
            ],
        )
    )
    store.set_ack(
        Ack(
            TARGET,
            "spamhaus-zen",
            "alice",
            now - 3000,
            "ticket OPS-4121: customer's compromised webmail, password reset",
            now + 86_400 * 7,
        )
    )
    store.request_delisting(TARGET, "spamhaus-zen", "alice", "removal form sent", now - 1200)
    store.add_note(Note(TARGET, "bob", now - 2400, "Outbound port 25 blocked for this host."))
    store.add_note(Note(TARGET, "alice", now - 900, "Customer confirmed the reset; waiting."))


class Serving:
    """The listener in a thread of its own, on a free port of 127.0.0.1."""

    def __init__(self, runtime: Runtime) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime = runtime
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            registry = build_registry(runtime)
            self.runner = self.loop.run_until_complete(web.start(runtime, registry, "127.0.0.1", 0))
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(20):
            raise SystemExit("the listener did not start")
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def shoot(base: str, out: Path, width: int, height: int, store: Store, now: float) -> None:
    with make_browser() as browser:
        # the page's own viewport, exactly (a window's size includes what headless keeps)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        browser.get(base + "/")
        browser.save_screenshot(str(out / "console-overview.png"))
        # the target page down to its history: the whole page, as tall as it is
        browser.get(f"{base}/target/{TARGET}")
        tall = int(browser.execute_script("return document.documentElement.scrollHeight"))
        clip = {"x": 0, "y": 0, "width": width, "height": min(tall, 2 * height), "scale": 1}
        shot = browser.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        (out / "console-target.png").write_bytes(base64.b64decode(shot["data"]))
        down = ResolverState("unreachable", now - 420, "every list: timeout (127.0.0.53:53)")
        store.record_resolver(
            down, Event(EventKind.RESOLVER_UNREACHABLE, "", now - 420, detail=down.detail)
        )
        time.sleep(0.2)
        browser.get(base + "/")
        browser.save_screenshot(str(out / "console-outage.png"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(str(Path(tmp) / "state.db"))
        seed(store, now)
        stats = Stats()
        stats.ensure_lists(LISTS)
        runtime = Runtime(config=config(), store=store, stats=stats, version="1.4.0")
        runtime.me = Instance("mx-watch-1", "watch1.example.net", 2817, "1.4.0", now - 86_400, now)
        runtime.view = store.tick(runtime.me, list(LISTS), 30.0)
        runtime.targets_per_group = {"mail": 64, "web": len(DOMAINS)}
        serving = Serving(runtime)
        try:
            shoot(serving.base, args.out, args.width, args.height, store, now)
        finally:
            serving.close()
            store.close()
    for name in ("console-overview.png", "console-target.png", "console-outage.png"):
        path = args.out / name
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
