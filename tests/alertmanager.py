"""A real Alertmanager (Debian's `prometheus-alertmanager`) for the alert tests.

Started on 127.0.0.1 at a free port with clustering off (`--cluster.listen-address=` empty:
no gossip port, no peers) and its storage in a temporary directory. Its one route sends every
notification, resolved ones too, to a webhook the test runs, with waits cut to a second so a
test sees "firing" and "resolved" within moments. Always stopped by its own PID.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.daemon import HOST, free_tcp_port, wait_until
from tests.webhooks import WebhookReceiver

BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name


def binary() -> str | None:
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


def config_text(webhook_url: str) -> str:
    return f"""\
route:
  receiver: hook
  group_by: [alertname, target, list]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""


class Alertmanager:
    def __init__(self, workdir: Path, webhook_url: str) -> None:
        path = binary()
        assert path is not None
        self.binary = path
        self.port = free_tcp_port()
        self.dir = workdir
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(config_text(webhook_url))
        self.log_path = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.notifications: WebhookReceiver | None = None  # where it sends notifications

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Alertmanager:
        storage = self.dir / "data"
        storage.mkdir(exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config}",
                    f"--storage.path={storage}",
                    f"--web.listen-address={HOST}:{self.port}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=log,
            )
        wait_until("Alertmanager to be ready", self._ready, timeout=20)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"alertmanager exited:\n{self.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alerts(self) -> list[dict[str, Any]]:
        """GET /api/v2/alerts: the alerts it holds that have not ended."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as r:
            doc: list[dict[str, Any]] = json.loads(r.read())
            return doc

    def close(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
