"""`rblwatch run` as a real subprocess, for end-to-end tests.

The daemon is started with a config the test writes, talks to an rbldnsd on 127.0.0.1, listens
on a free loopback port and is always stopped (SIGTERM, then SIGKILL) by its own PID. Waits are
bounded; every helper that waits says what it was waiting for when it gives up.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    what: str, check: Callable[[], Any], timeout: float = 15.0, step: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def config_text(
    *,
    dns_port: int,
    web_port: int,
    store: Path,
    zone: str = "bl.test",
    addresses: tuple[str, ...] = ("192.0.2.0/30", "192.0.2.10"),
    extra: str = "",
    own_nameservers: bool = False,
) -> str:
    # own_nameservers: the list asks the DNS server itself rather than through the resolver,
    # so stopping the server kills the list, not the resolver (issue 11's resolver outage)
    own = f'\n    nameservers: ["127.0.0.1:{dns_port}"]' if own_nameservers else ""
    return f"""\
resolver:
  nameservers: ["127.0.0.1:{dns_port}"]
  timeout: 300ms
  attempts: 2
schedule:
  interval: 1s
  jitter: 0
  confirm: 2
  confirm_delay: 300ms
  health_interval: 1s
store:
  url: sqlite:///{store}
web:
  listen_address: 127.0.0.1:{web_port}
lists:
  - name: bl
    zone: {zone}
    kind: ip
    codes: {{127.0.0.2: spam source, 127.0.0.4: exploited host}}
    delist_url: https://bl.example/remove{own}
targets:
  - group: mail
    addresses: [{", ".join(addresses)}]
{extra}"""


class DaemonProcess:
    """One `python -m rblwatch run` with its own log file."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.log_path = config.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.web_port = 0

    def start(
        self, web_port: int, *, wait_ready: bool = True, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.web_port = web_port
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed with it
        argv = [sys.executable, "-m", "rblwatch", "run", "--config.file", str(self.config)]
        self.proc = subprocess.Popen(
            [*argv, *extra_args],
            stdout=log,
            stderr=log,
            env=self.env,
        )
        log.close()
        if wait_ready:
            wait_until(
                "the daemon to be ready", lambda: self.get("/-/ready")[0] == 200 or self._died()
            )

    def _died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"rblwatch run exited {self.proc.returncode}:\n{self.log()}")
        return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.web_port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            return 0, b""

    def post(self, path: str) -> tuple[int, bytes]:
        req = urllib.request.Request(
            f"http://{HOST}:{self.web_port}{path}", method="POST", data=b""
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, f"GET {path}: {status} {body[:200]!r}"
        return json.loads(body)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        evs: list[dict[str, Any]] = self.json("/api/v1/events?limit=1000")["events"]
        return [e for e in evs if kind is None or e["kind"] == kind]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"rblwatch did not stop within {timeout}s:\n{self.log()}"
            ) from None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
