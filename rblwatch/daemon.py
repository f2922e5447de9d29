"""The lifecycle of `rblwatch run`: start, reload, stop, and talking to systemd (SPEC §13).

Start order matters to systemd: READY=1 is sent only once the config is valid, the store is
open and the HTTP listener is bound, so `systemctl start` fails fast on any of them. SIGHUP
(`systemctl reload`) and POST /-/reload share one path: validate the new file, swap it only if
valid, keep the old one otherwise, and export the result. SIGTERM stops within seconds: running
cycles are abandoned (a cycle commits only when finished, so nothing half-done is written), and
so are alert deliveries in flight (their outbox rows stay and are sent again after a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time

from aiohttp.web import AppRunner

from rblwatch import __version__, config, metrics, web, webconfig
from rblwatch.alerts.sender import Alerts
from rblwatch.bouncewatch import BounceWatcher
from rblwatch.engine import Engine
from rblwatch.peers import Peers, new_instance
from rblwatch.reminders import Reminders
from rblwatch.runtime import ReloadResult, Runtime
from rblwatch.scheduler import Scheduler
from rblwatch.store import open_store

log = logging.getLogger("rblwatch")

STOP_TIMEOUT = 5.0  # seconds the web listener and running cycles get to wind down


class Notifier:
    """sd_notify(3) spoken directly: datagrams to $NOTIFY_SOCKET (a no-op outside systemd)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ) if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.addr = "\0" + path[1:] if path.startswith("@") else path  # '@' = abstract socket
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog = int(usec) / 1e6 if usec.isdigit() and mine else None

    def send(self, *lines: str) -> None:
        if not self.addr:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto("\n".join(lines).encode(), self.addr)
        except OSError as exc:  # systemd gone or socket unreachable: never fatal
            log.debug("sd_notify failed: %s", exc)


# The GIL's switch interval in the daemon (Python's default is 5 ms). The event loop's thread
# gives the GIL up at every socket call it makes; while a worker thread decides or commits a
# big cycle, or builds /metrics' families, each give-up costs the loop up to one interval, and
# a readiness callback that reads and sends a few hundred datagrams then holds the loop for a
# second (`bench/bench_loop.py --prefix 14 --lists 4`). Shorter intervals cost hand-overs only
# while threads compete for the GIL, which in the daemon is during those moments alone.
SWITCH_INTERVAL_S = 0.0005


class Daemon:
    def __init__(
        self,
        config_path: str,
        *,
        listen_address: str | None = None,
        loaded: config.Config | None = None,
        web_security: webconfig.WebConfigWatch | None = None,
    ) -> None:
        """`loaded`, if given, is `config_path` as the caller already read and checked it
        (then it is not read again at start); reloads always read the file. `web_security`:
        the web config file (TLS, users), read again on every reload too."""
        self.path = config_path
        self.web_security = web_security
        self.initial = loaded
        self.listen_override = listen_address
        self.notify = Notifier()
        self.stop_event = asyncio.Event()
        self.runtime: Runtime | None = None
        self.scheduler: Scheduler | None = None
        self._tasks: set[asyncio.Task[ReloadResult]] = set()
        self.alerts: Alerts | None = None
        self.peers: Peers | None = None

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; the config has been validated by the caller already."""
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        cfg = self.initial or config.load_config(self.path, require_targets=True)
        self.initial = None
        store = await asyncio.to_thread(open_store, cfg.store.url)
        rt = Runtime(cfg, store, version=__version__)
        rt.stats.started_at = time.time()
        rt.stats.reload_success_at = rt.stats.started_at
        rt.reload = self.reload
        self.runtime = rt
        engine = Engine(rt)
        self.scheduler = Scheduler(rt, engine)
        self.alerts = Alerts(rt)
        rt.on_events = self.alerts.wake
        self.peers = Peers(rt, new_instance(__version__), self.scheduler.takeover)
        self.peers.on_outbox = self.alerts.wake
        host, port = self._listen(cfg)
        try:
            view = await self.peers.join()  # the shards to cycle, before the first cycle
            registry = metrics.build_registry(rt, warm=True)
            runner = await web.start(rt, registry, host, port, security=self.web_security)
        except BaseException:
            await asyncio.to_thread(store.close)
            raise
        try:
            self._signals()
            await self.alerts.apply(cfg)  # deliveries left by the last run go out first
            self.scheduler.start()
            self.peers.listen(asyncio.get_running_loop())
            rt.ready = True
            self.notify.send("READY=1", f"STATUS=started: {len(cfg.lists)} lists")
            log.info(
                "rblwatch %s (instance %s) listening on %s:%d (%s), %d lists, %d instance(s) alive",
                __version__,
                view.owner,
                host,
                port,
                webconfig.describe(self.web_security),
                len(cfg.lists),
                view.live,
            )
            background = [
                asyncio.create_task(self._tick()),
                asyncio.create_task(self.peers.run()),
                asyncio.create_task(BounceWatcher(rt, engine).run()),
                # an acknowledged listing is not reminded of (the store's active acks)
                asyncio.create_task(Reminders(rt).run()),
            ]
            await self.stop_event.wait()
            for task in background:
                task.cancel()
        finally:
            await self._stop(runner)
        return 0

    def _listen(self, cfg: config.Config) -> tuple[str, int]:
        host, port = config.split_listen_address(self.listen_override or cfg.web.listen_address)
        return host or "127.0.0.1", port

    def _signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop_event.set)
        loop.add_signal_handler(signal.SIGINT, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_in_background)

    def _reload_in_background(self) -> None:
        """SIGHUP: reload in a task that is kept (not garbage-collected mid-way) and whose
        unexpected failure is logged rather than lost."""
        task = asyncio.ensure_future(self.reload())
        self._tasks.add(task)

        def done(t: asyncio.Task[ReloadResult]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("reload failed: %s", t.exception())

        task.add_done_callback(done)

    async def _stop(self, runner: AppRunner) -> None:
        rt = self.runtime
        assert rt is not None
        rt.stopping = True
        rt.ready = False
        self.notify.send("STOPPING=1")
        log.info("stopping")
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.alerts is not None:
            await self.alerts.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(runner.cleanup(), STOP_TIMEOUT)
        await self._cancel_tasks()  # running cycles and probes: abandoned, never half-written
        if self.peers is not None:
            await self.peers.leave()  # after the cycles: none of them may commit after this
        await rt.db.close()

    @staticmethod
    async def _cancel_tasks() -> None:
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me]
        for t in others:
            t.cancel()
        if others:
            await asyncio.wait(others, timeout=STOP_TIMEOUT)

    async def _tick(self) -> None:
        """WATCHDOG=1 from the event loop (a stuck loop stops it) and a STATUS= line."""
        period = (self.notify.watchdog or 60.0) / 2
        period = min(period, 30.0)
        while True:
            rt = self.runtime
            assert rt is not None
            if self.notify.watchdog:
                self.notify.send("WATCHDOG=1")
            with contextlib.suppress(Exception):
                listed = await rt.db.listed_count()
                self.notify.send(f"STATUS={listed} listed pairs, {len(rt.config.lists)} lists")
            await asyncio.sleep(period)

    async def reload(self) -> ReloadResult:
        """Validate the config file again and swap it in only if it is valid."""
        rt = self.runtime
        assert rt is not None and self.scheduler is not None
        self.notify.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = await asyncio.to_thread(config.load_config, self.path, require_targets=True)
            problem = _unreloadable(rt.config, new)
            if not problem and self.web_security is not None:
                problem = self.web_security.reload()  # on the loop, like its per-second look
        except config.ConfigError as exc:
            problem = str(exc)
        if problem:
            rt.stats.reload_ok = False
            log.error("reload refused, keeping the running configuration: %s", problem)
            self.notify.send("READY=1")
            return ReloadResult(False, problem)
        rt.config = new
        self.scheduler.schedule_all()
        if self.alerts is not None:
            await self.alerts.apply(new)
        rt.stats.reload_ok = True
        rt.stats.reload_success_at = time.time()
        log.info(
            "configuration reloaded: %d lists, %d target groups", len(new.lists), len(new.targets)
        )
        self.notify.send("READY=1")
        return ReloadResult(
            True, f"reloaded: {len(new.lists)} lists, {len(new.targets)} target groups"
        )


def _unreloadable(old: config.Config, new: config.Config) -> str:
    """What a reload cannot change without a restart (the store and the listener are open)."""
    if new.store.url != old.store.url:
        return f"{new.source}: store.url: cannot change on reload (restart rblwatch)"
    if new.web.listen_address != old.web.listen_address:
        return f"{new.source}: web.listen_address: cannot change on reload (restart rblwatch)"
    if new.web.config_file != old.web.config_file:
        return f"{new.source}: web.config_file: cannot change on reload (restart rblwatch)"
    return ""
