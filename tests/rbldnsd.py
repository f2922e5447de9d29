"""A real rbldnsd on 127.0.0.1, driven from Python, for tests that need a real DNSBL peer.

Zones are written from Python lists of rbldnsd data lines (see ``man rbldnsd``), the daemon is
started on a free loopback UDP port and always stopped by its own PID.

    srv = Rbldnsd()
    srv.add_zone("bl.test", "ip4set", [":127.0.0.2:Listed: $", "127.0.0.2", "192.0.2.10 :4:spam"])
    srv.start()
    srv.a_records("10.2.0.192.bl.test")          # -> ["127.0.0.4"]
    srv.rewrite_zone("bl.test", ["127.0.0.2"])
    srv.wait_for_a("10.2.0.192.bl.test", [])     # [] = not listed (NXDOMAIN)
    srv.stop()

Multiple A records for one name: repeat the entry on several lines with different values, in an
``ip4set`` or ``dnset`` zone (``192.0.2.10 :127.0.0.4:x`` and ``192.0.2.10 :127.0.0.11:y`` give both
A records, each with its own TXT). ``ip4trie``/``ip6trie`` keep only the first of duplicated entries
(rbldnsd logs "duplicated entry"), so an IPv6 zone cannot give multi-A answers this way.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

RBLDNSD = "rbldnsd"
HOST = "127.0.0.1"
START_TIMEOUT = 5.0
STOP_TIMEOUT = 3.0

# Every daemon still running, so an interpreter exit (e.g. a crashed test session) does not leave
# rbldnsd processes behind; the normal path is the fixture's stop().
_RUNNING: set[Rbldnsd] = set()


def available() -> bool:
    """True when the rbldnsd binary is installed (else the fixtures fail with an install hint)."""
    return shutil.which(RBLDNSD) is not None


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as_user() -> list[str]:
    """rbldnsd refuses to run as root, so as root it must drop to an unprivileged user."""
    if os.geteuid() != 0:
        return []
    for user in ("rbldns", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["-u", user]
    raise RuntimeError("running as root and neither user 'rbldns' nor 'nobody' exists")


class RbldnsdError(RuntimeError):
    """rbldnsd did not start or did not reach the expected state; the message carries its log."""


class Rbldnsd:
    """One rbldnsd process serving zones written from Python data, on 127.0.0.1:``port``."""

    def __init__(self, workdir: str | Path | None = None, *, check_interval: int = 1) -> None:
        """Zone files go to ``workdir`` (default: a fresh temporary directory, removed by close()).

        A given ``workdir`` and all its parents must be traversable by the rbldns user, which is
        why pytest's ``tmp_path`` (under a 0700 directory) does not work.
        """
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="rbldnsd-") if workdir is None else workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)
        self.check_interval = check_interval
        self.port: int | None = None
        self._zones: dict[str, str] = {}  # zone -> dataset type, in command-line order
        self._proc: subprocess.Popen[bytes] | None = None

    # -- zone data ---------------------------------------------------------------------------

    def add_zone(self, zone: str, dataset: str, lines: Iterable[str]) -> None:
        """Serve ``zone`` from a dataset of type ``dataset`` (ip4set, ip6trie, dnset, ...).

        ``lines`` are rbldnsd data lines; the $SOA/$NS/$TTL header is added here. Zones are fixed
        on rbldnsd's command line, so add them all before start().
        """
        zone = zone.rstrip(".").lower()
        if self.running:
            raise RbldnsdError(f"add_zone({zone!r}) after start(): stop() first")
        if zone in self._zones:
            raise RbldnsdError(f"zone {zone!r} already added; use rewrite_zone()")
        self._zones[zone] = dataset
        self._write(zone, lines)

    def rewrite_zone(self, zone: str, lines: Iterable[str]) -> None:
        """Replace the data of ``zone``; a running rbldnsd reloads it at once (SIGHUP).

        The reload is asynchronous: use wait_for_a() before asserting on the new data.
        """
        zone = zone.rstrip(".").lower()
        if zone not in self._zones:
            raise RbldnsdError(f"unknown zone {zone!r}; add_zone() it first")
        self._write(zone, lines)
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGHUP)

    def zone_file(self, zone: str) -> Path:
        """Where the data of ``zone`` lives (read by rbldnsd as the rbldns user)."""
        return self.workdir / f"{zone}.{self._zones[zone]}"

    def _write(self, zone: str, lines: Iterable[str]) -> None:
        header = [
            f"$SOA 0 ns.{zone} hostmaster.{zone} 0 1h 15m 1w 30s",
            f"$NS 0 ns.{zone}",
            "$TTL 30s",
        ]
        path = self.zone_file(zone)
        old_mtime = path.stat().st_mtime if path.exists() else 0.0
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("\n".join([*header, *lines]) + "\n", encoding="utf-8")
        tmp.chmod(0o644)
        # rbldnsd notices changes by whole-second mtime: two writes within one second would look
        # unchanged, so the new file always gets a later second than the old one.
        mtime = max(time.time(), int(old_mtime) + 1.0)
        os.utime(tmp, (mtime, mtime))
        # Atomic replace: rbldnsd must never read a half-written file.
        tmp.replace(path)

    # -- process -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the rbldnsd process started by start() is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """rbldnsd's own PID while running (it runs in the foreground, -n)."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to send queries to."""
        if self.port is None:
            raise RbldnsdError("not started")
        return (HOST, self.port)

    @property
    def log_path(self) -> Path:
        """rbldnsd's stdout and stderr (zone load messages, warnings such as duplicated entries)."""
        return self.workdir / "rbldnsd.log"

    def log(self) -> str:
        """rbldnsd's output so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        """Start rbldnsd and return once it answers queries (at most START_TIMEOUT seconds).

        The first start picks a free port, retrying if another process grabbed it meanwhile;
        a later start (after stop()) reuses the same port so clients need no reconfiguration.
        """
        if self.running:
            raise RbldnsdError("already running")
        if not self._zones:
            raise RbldnsdError("no zones: add_zone() before start()")
        fixed_port = self.port is not None
        for _attempt in range(5):
            port = self.port if self.port is not None else free_udp_port()
            if self._start_on(port):
                self.port = port
                return
            if fixed_port or "in use" not in self.log().lower():
                break
        raise RbldnsdError(f"rbldnsd did not start; its log:\n{self.log()}")

    def _start_on(self, port: int) -> bool:
        """One start attempt; True once it answers, False if it exited (log says why)."""
        cmd = [RBLDNSD, "-n", *_run_as_user(), "-w", str(self.workdir)]
        cmd += ["-b", f"{HOST}/{port}", "-t", "30s", "-c", str(self.check_interval), "-a"]
        cmd += [f"{zone}:{kind}:{zone}.{kind}" for zone, kind in self._zones.items()]
        with self.log_path.open("ab") as log:
            # -n keeps rbldnsd in the foreground, so this PID is rbldnsd's own.
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        _RUNNING.add(self)
        first_zone = next(iter(self._zones))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._reap()
                return False
            try:
                query = dns.message.make_query(first_zone, "SOA")
                dns.query.udp(query, HOST, port=port, timeout=0.1)
                return True
            except (dns.exception.Timeout, OSError):
                time.sleep(0.02)
        self.stop()
        raise RbldnsdError(f"rbldnsd did not answer within {START_TIMEOUT} s; log:\n{self.log()}")

    def stop(self) -> None:
        """Stop rbldnsd (SIGTERM, then SIGKILL after STOP_TIMEOUT); safe to call twice."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        self._reap()

    def _reap(self) -> None:
        self._proc = None
        _RUNNING.discard(self)

    def close(self) -> None:
        """Stop rbldnsd and remove the temporary working directory, if this object made it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Rbldnsd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries -----------------------------------------------------------------------------

    def query(self, name: str, rdtype: str = "A", timeout: float = 1.0) -> dns.message.Message:
        """One plain UDP query to this server (a test oracle, independent of rblwatch's code)."""
        host, port = self.address
        return dns.query.udp(dns.message.make_query(name, rdtype), host, port=port, timeout=timeout)

    def a_records(self, name: str) -> list[str]:
        """The sorted A records for ``name``; [] when not listed (NXDOMAIN or no A)."""
        reply = self.query(name, "A")
        if reply.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise RbldnsdError(f"{name}: unexpected rcode {dns.rcode.to_text(reply.rcode())}")
        return sorted(rr.to_text() for rrset in reply.answer for rr in rrset)

    def txt_records(self, name: str) -> list[str]:
        """The sorted TXT strings for ``name`` (each record's strings joined)."""
        reply = self.query(name, "TXT")
        return sorted(b"".join(rr.strings).decode() for rrset in reply.answer for rr in rrset)

    def wait_for_a(self, name: str, expected: Iterable[str], timeout: float = 5.0) -> None:
        """Wait until ``name`` answers exactly the A records ``expected`` ([] = not listed).

        For after rewrite_zone(): the reload is asynchronous. Raises after ``timeout`` seconds.
        """
        want = sorted(expected)
        deadline = time.monotonic() + timeout
        got: list[str] | str = "no answer"
        while time.monotonic() < deadline:
            try:
                got = self.a_records(name)
            except dns.exception.Timeout:
                got = "timeout"
            if got == want:
                return
            time.sleep(0.05)
        raise RbldnsdError(
            f"{name}: wanted A {want}, still {got} after {timeout} s; log:\n{self.log()}"
        )


@atexit.register
def _stop_leftovers() -> None:
    for srv in list(_RUNNING):
        srv.stop()
