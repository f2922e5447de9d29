"""A real authoritative DNS server (NLnet Labs' NSD) on 127.0.0.1, for end-to-end tests of the
hygiene checks (PTR, SPF, DKIM, DMARC) against real answers: TXT split in several strings,
CNAMEs, reverse zones, NXDOMAIN versus an empty answer.

Zones are a mapping of zone name to zone-file lines relative to the origin; the wrapper adds
$ORIGIN, $TTL, the SOA (with a serial bumped on every write) and an NS record, checks each zone
with nsd-checkzone (so a typo fails with NSD's own message, not a timeout) and serves it on a
free loopback port, UDP and TCP. Every path NSD writes is in the working directory and NSD never
changes user (``username: ""``), so it runs as root (CI) and as anyone else alike.

    srv = NsdServer({
        "example.com": [
            '@ TXT "v=spf1 ip4:192.0.2.10 -all"',
            "mail A 192.0.2.10",
            f"sel._domainkey TXT {txt('v=DKIM1; k=rsa; p=' + 'A' * 400)}",  # > 255 bytes
            "www CNAME mail",
        ],
        "2.0.192.in-addr.arpa": ["10 PTR mail.example.com."],
    })
    srv.start()                                   # returns once every zone answers
    dns = CachingDns([srv.address], timeout=0.5)
    srv.reload({"example.com": ["mail A 192.0.2.11"], "2.0.192.in-addr.arpa": []})
    srv.stop()                                    # an outage: the port no longer answers
    srv.start()                                   # same port, same (latest) zones
    srv.close()                                   # stop and remove the temporary directory

In tests, use the ``nsd_server`` fixture (tests/conftest.py): an NsdServer not yet started,
working in the test's tmp_path and always stopped afterwards; call ``start(zones)``.

Every zone has ``@ NS localhost.`` (out of zone, so no glue and no name of yours is taken) and
``@ SOA localhost. hostmaster.<zone>. ...``; do not add another SOA.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.rbldnsd import free_udp_port

HOST = "127.0.0.1"
TTL = 30
START_TIMEOUT = 5.0
RELOAD_TIMEOUT = 5.0
STOP_TIMEOUT = 3.0
TXT_CHUNK = 255  # RFC 1035 §3.3: a character-string is at most 255 bytes

Zones = Mapping[str, Iterable[str]]

# Every server still running, so an interpreter exit (e.g. a crashed test session) leaves no NSD
# behind; the normal path is the fixture's stop().
_RUNNING: set[NsdServer] = set()


def binary(name: str = "nsd") -> str | None:
    """The path of an NSD program; /usr/sbin is often not on a non-root user's PATH."""
    found = shutil.which(name)
    if found is None and os.access(f"/usr/sbin/{name}", os.X_OK):
        found = f"/usr/sbin/{name}"
    return found


def available() -> bool:
    """True when nsd and nsd-checkzone are installed (else the fixture fails with a hint)."""
    return binary("nsd") is not None and binary("nsd-checkzone") is not None


def txt(text: str | bytes) -> str:
    """TXT rdata in zone-file syntax: ``text`` (UTF-8) in quoted strings of at most 255 bytes.

    ``txt("a" * 600)`` gives three strings; joined (`rblwatch.hygiene.dns.txt_strings`) they are
    ``text`` again. Quotes, backslashes and every byte outside printable ASCII are escaped.
    """
    data = text.encode() if isinstance(text, str) else text
    chunks = [data[i : i + TXT_CHUNK] for i in range(0, len(data), TXT_CHUNK)] or [b""]
    return " ".join(f'"{_escape(chunk)}"' for chunk in chunks)


def _escape(chunk: bytes) -> str:
    out = []
    for byte in chunk:
        if byte in b'"\\':
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


class NsdError(RuntimeError):
    """NSD refused a zone, did not start, or did not serve new data; the message says why."""


class NsdServer:
    """One NSD process serving ``zones`` on 127.0.0.1:``port`` (UDP and TCP).

    A class of ~200 lines: zone files, the process and the readiness queries belong together.
    """

    def __init__(self, zones: Zones | None = None, workdir: str | Path | None = None) -> None:
        """Files go to ``workdir`` (default: a fresh temporary directory, removed by close())."""
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="nsd-") if workdir is None else workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port: int | None = None
        self.serial = 0  # every zone carries the serial of the latest write
        self._zones: dict[str, list[str]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        if zones is not None:
            self._write(zones)

    # -- zone files --------------------------------------------------------------------------

    def zone_file(self, zone: str) -> Path:
        return self.workdir / f"{zone.rstrip('.').lower()}.zone"

    def _write(self, zones: Zones) -> None:
        """Check every zone with nsd-checkzone, then replace the files (all or none)."""
        new = {_zone_name(z): list(lines) for z, lines in zones.items()}
        if not new:
            raise NsdError("no zones")
        serial = self.serial + 1
        staged = []
        try:
            for zone, lines in new.items():
                tmp = self.zone_file(zone).with_suffix(".zone.new")
                staged.append((tmp, self.zone_file(zone)))
                tmp.write_text(_zone_text(zone, lines, serial), encoding="utf-8")
                _checkzone(zone, tmp)
        except NsdError:
            for tmp, _path in staged:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, path in staged:
            old = path.stat().st_mtime if path.exists() else 0.0
            # NSD reloads a file on SIGHUP only if its mtime changed; a filesystem with coarse
            # timestamps could give two quick writes the same one, so force a later second.
            mtime = max(time.time(), int(old) + 1.0)
            os.utime(tmp, (mtime, mtime))
            tmp.replace(path)  # atomic: NSD never reads a half-written file
        self._zones, self.serial = new, serial

    def _config(self, port: int) -> Path:
        w = self.workdir
        lines = [
            "server:",
            f"  ip-address: {HOST}@{port}",
            "  do-ip6: no",
            '  username: ""',  # never setuid: works as root and as an unprivileged user
            '  chroot: ""',
            '  database: ""',
            f'  zonesdir: "{w}"',
            f'  zonelistfile: "{w}/zone.list"',
            f'  xfrdfile: "{w}/xfrd.state"',
            f'  xfrdir: "{w}"',
            f'  pidfile: "{w}/nsd.pid"',
            f'  logfile: "{self.log_path}"',
            "  log-only-syslog: no",
            "  server-count: 1",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for zone in self._zones:
            lines += ["zone:", f'  name: "{zone}"', f'  zonefile: "{self.zone_file(zone).name}"']
        path = w / "nsd.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    # -- process -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to send queries to, e.g. ``CachingDns([srv.address])``."""
        if self.port is None:
            raise NsdError("not started")
        return (HOST, self.port)

    @property
    def log_path(self) -> Path:
        """NSD's log and stderr (zone load errors, bind errors)."""
        return self.workdir / "nsd.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, zones: Zones | None = None) -> NsdServer:
        """Start NSD (with ``zones``, else the latest ones) and return once every zone answers.

        The first start picks a free port, retrying if another process took it meanwhile; a
        later start (after stop()) reuses it, so clients need no reconfiguration.
        """
        if self.running:
            raise NsdError("already running; reload() to change zones")
        if zones is not None:
            self._write(zones)
        if not self._zones:
            raise NsdError("no zones: start(zones) or NsdServer(zones)")
        fixed_port = self.port is not None
        for _attempt in range(5):
            port = self.port if self.port is not None else free_udp_port()
            if self._start_on(port):
                self.port = port
                return self
            if fixed_port or "in use" not in self.log().lower():
                break
        raise NsdError(f"nsd did not start; its log:\n{self.log()}")

    def _start_on(self, port: int) -> bool:
        """One start attempt; True once every zone answers, False if NSD exited."""
        conf = self._config(port)
        with self.log_path.open("ab") as log:
            # -d: in the foreground, so this PID is NSD's; its own session, so stop() can end
            # the helper processes it forks too (by this process group, nothing else).
            self._proc = subprocess.Popen(
                [binary("nsd") or "nsd", "-d", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _RUNNING.add(self)
        try:
            self._wait_serving(port, START_TIMEOUT)
        except NsdError:
            if not self.running:  # it exited (the log says why): nothing holds the port
                self._forget()
                return False
            self.stop()
            raise
        return True

    def reload(self, zones: Zones) -> None:
        """Serve ``zones`` instead of the current ones; returns once NSD answers the new data.

        The same zone names: the files are rewritten and NSD reloads them (SIGHUP), with no
        outage. Other zone names: NSD is restarted on the same port. While stopped, only the
        files are written (the next start() serves them).
        """
        old = set(self._zones)
        self._write(zones)
        if not self.running:
            return
        if set(self._zones) != old:
            self.stop()
            self.start()
            return
        assert self._proc is not None and self.port is not None
        self._proc.send_signal(signal.SIGHUP)
        self._wait_serving(self.port, RELOAD_TIMEOUT)

    def _wait_serving(self, port: int, timeout: float) -> None:
        """Until every zone's SOA has the latest serial (NSD loads zones after binding)."""
        deadline = time.monotonic() + timeout
        pending = list(self._zones)
        while pending:
            if not self.running:
                raise NsdError(f"nsd exited; its log:\n{self.log()}")
            if self._soa_serial(port, pending[0]) == self.serial:
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise NsdError(
                    f"zone {pending[0]} not serving serial {self.serial} after {timeout} s;"
                    f" nsd's log:\n{self.log()}"
                )
            time.sleep(0.01)

    def _soa_serial(self, port: int, zone: str) -> int | None:
        # A query sent before NSD has bound is silently lost (no ICMP error on an unconnected
        # socket), so a short timeout: loopback answers take well under a millisecond.
        try:
            reply = dns.query.udp(
                dns.message.make_query(zone, "SOA"), HOST, port=port, timeout=0.05
            )
        except (dns.exception.DNSException, OSError):
            return None
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def stop(self) -> None:
        """An outage: NSD ends and the port stops answering (UDP and TCP). Safe to call twice."""
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
        # The PID we started exits first; the server processes it forked follow shortly after.
        # Returning before they have closed the port would make the "outage" race the test.
        if self.port is not None and not _wait_port_free(self.port, STOP_TIMEOUT):
            _kill_group(proc.pid)
            _wait_port_free(self.port, STOP_TIMEOUT)
        self._forget()

    def _forget(self) -> None:
        self._proc = None
        _RUNNING.discard(self)

    def close(self) -> None:
        """Stop NSD and remove the temporary directory, if this object made it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NsdServer:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _zone_name(zone: str) -> str:
    name = zone.rstrip(".").lower()
    if not name or "/" in name or name.startswith("."):
        raise NsdError(f"bad zone name {zone!r}")
    return name


def _zone_text(zone: str, lines: list[str], serial: int) -> str:
    header = [
        f"$ORIGIN {zone}.",
        f"$TTL {TTL}",
        f"@ SOA localhost. hostmaster.{zone}. {serial} 3600 900 604800 {TTL}",
        "@ NS localhost.",
    ]
    return "\n".join([*header, *lines]) + "\n"


def _checkzone(zone: str, path: Path) -> None:
    """nsd-checkzone's verdict, so a bad line fails here with NSD's message and line number."""
    cmd = [binary("nsd-checkzone") or "nsd-checkzone", zone, str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
    if done.returncode != 0:
        numbered = "\n".join(
            f"{n:4} {line}" for n, line in enumerate(path.read_text().splitlines(), 1)
        )
        raise NsdError(
            f"nsd-checkzone refused zone {zone}:\n{done.stdout}{done.stderr}"
            f"the zone file as written:\n{numbered}"
        )


def _wait_port_free(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _port_free(port):
            return True
        time.sleep(0.01)
    return False


def _port_free(port: int) -> bool:
    """True when neither a UDP nor a listening TCP socket holds 127.0.0.1:port."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                # past connections in TIME_WAIT do not count, only a listener does
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError:
                return False
    return True


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of the NSD we started (its own session: nothing else is in it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@atexit.register
def _stop_leftovers() -> None:
    for srv in list(_RUNNING):
        srv.stop()
