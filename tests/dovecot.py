"""A real IMAP server (Debian's Dovecot, ``dovecot-imapd``) on 127.0.0.1, for the tests of
rblwatch's bounce mailboxes: IMAP on one free port, IMAPS on another (a self-signed certificate
for ``localhost`` and ``127.0.0.1``, its own CA file), one test user with a password, and the
user's maildir on disk so the same messages can be read over IMAP and from the files.

    srv = Dovecot().start()                      # returns once a LOGIN succeeds
    uid = srv.append("INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
    imaplib.IMAP4_SSL("127.0.0.1", srv.ssl_port, ssl_context=ssl.create_default_context(
        cafile=str(srv.cafile)))
    srv.stop()                                   # an outage: both ports stop answering
    srv.start()                                  # same ports, same mail
    srv.close()                                  # stop and remove the temporary directory

In tests, use the ``dovecot`` fixture (tests/conftest.py): a started Dovecot, stopped afterwards.

Everything Dovecot writes (base_dir with its sockets, state_dir, the log, the mail) is in the
working directory, a fresh short path under /tmp: unix socket paths are limited to 108 bytes,
which pytest's tmp_path can exceed. To run as root (CI) and as anyone else alike:

- as root, Dovecot refuses to run login processes as root ("This process must not be run as
  root") and mail processes as uid 0 ("userdb returned 0 as uid", whatever first_valid_uid
  says), so logins run as the package's ``dovenull`` user and the mail processes as ``nobody``,
  who owns the mail directory (the work dir is 0711 so nobody can reach it); the auth process
  (default_internal_user) stays root and reads the 0600 passwd-file;
- as another user it cannot change user at all, so all of those are that user;
- either way no service chroots (a chroot needs root and buys a test server nothing).
"""

from __future__ import annotations

import atexit
import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.daemon import free_tcp_port

HOST = "127.0.0.1"
USER = "bounces"
PASSWORD = "test-password-0f3a"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
IMAP_TIMEOUT = 5.0

_RUNNING: set[Dovecot] = set()  # stopped at interpreter exit if a test session crashed


def binary() -> str | None:
    """The path of the dovecot program; /usr/sbin is often not on a non-root user's PATH."""
    found = shutil.which("dovecot")
    if found is None and os.access("/usr/sbin/dovecot", os.X_OK):
        found = "/usr/sbin/dovecot"
    return found


def available() -> bool:
    """True when Dovecot with its IMAP server is installed (else the fixture fails with a hint)."""
    return binary() is not None and Path("/usr/lib/dovecot/imap").exists()


class DovecotError(RuntimeError):
    """Dovecot did not start or did not answer; the message carries its log."""


class Dovecot:
    """One Dovecot (IMAP only) serving one user on 127.0.0.1:``port`` and IMAPS on ``ssl_port``."""

    def __init__(self, user: str = USER, password: str = PASSWORD) -> None:
        self.user = user
        self.password = password
        self.workdir = Path(tempfile.mkdtemp(prefix="dovecot-"))
        # traversable by the mail user, whose maildir is inside
        self.workdir.chmod(0o711)
        self.port: int | None = None
        self.ssl_port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._mail_uid, self._mail_gid = _mail_ids()
        self._write_files()

    # -- files -------------------------------------------------------------------------------

    @property
    def cafile(self) -> Path:
        """The self-signed certificate, which is its own CA: trust it to verify IMAPS."""
        return self.workdir / "cert.pem"

    @property
    def maildir(self) -> Path:
        """The test user's maildir (INBOX; other folders are ``.Name`` inside it)."""
        return self.workdir / "mail" / self.user / "Maildir"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dovecot.log"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _write_files(self) -> None:
        w = self.workdir
        _copy_certificate(w / "key.pem", self.cafile)
        mail = w / "mail"
        mail.mkdir()
        os.chown(mail, self._mail_uid, self._mail_gid)
        home = mail / self.user
        passwd = f"{self.user}:{{PLAIN}}{self.password}:{self._mail_uid}:{self._mail_gid}::{home}::"
        (w / "passwd").write_text(passwd + "\n", encoding="utf-8")
        (w / "passwd").chmod(0o600)

    def _config(self, port: int, ssl_port: int) -> Path:
        w = self.workdir
        login_user, internal_user, internal_group = _service_users()
        lines = [
            "protocols = imap",
            f"listen = {HOST}",
            f"base_dir = {w}/run",
            f"state_dir = {w}/state",
            f"instance_name = {w.name}",
            f"log_path = {self.log_path}",
            f"default_login_user = {login_user}",
            f"default_internal_user = {internal_user}",
            f"default_internal_group = {internal_group}",
            f"first_valid_uid = {min(self._mail_uid, os.getuid()) or 1}",
            f"first_valid_gid = {min(self._mail_gid, os.getgid()) or 1}",
            f"mail_uid = {self._mail_uid}",
            f"mail_gid = {self._mail_gid}",
            "mail_location = maildir:~/Maildir",
            "auth_mechanisms = plain login",
            "disable_plaintext_auth = no",  # the plain port is part of what is tested
            "auth_failure_delay = 0",  # 2 s by default: a wrong-password test need not wait
            "ssl = yes",
            f"ssl_cert = <{self.cafile}",
            f"ssl_key = <{w / 'key.pem'}",
            f"passdb {{\n  driver = passwd-file\n  args = {w / 'passwd'}\n}}",
            f"userdb {{\n  driver = passwd-file\n  args = {w / 'passwd'}\n}}",
            "service imap-login {",
            "  chroot =",  # a chroot needs root; not needed for a test server
            f"  inet_listener imap {{\n    port = {port}\n  }}",
            f"  inet_listener imaps {{\n    port = {ssl_port}\n    ssl = yes\n  }}",
            "}",
            "service anvil {\n  chroot =\n}",
        ]
        path = w / "dovecot.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    # -- process -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Dovecot:
        """Start Dovecot and return once the test user can log in on the plain port.

        The first start picks free ports, retrying if another process took one meanwhile; a
        later start (after stop()) reuses them, so clients need no reconfiguration.
        """
        if self.running:
            raise DovecotError("already running")
        fixed = self.port is not None
        for _attempt in range(5):
            port = self.port if self.port is not None else free_tcp_port()
            ssl_port = self.ssl_port if self.ssl_port is not None else free_tcp_port()
            if port != ssl_port and self._start_on(port, ssl_port):
                self.port, self.ssl_port = port, ssl_port
                return self
            if fixed or "in use" not in self.log().lower():
                break
        raise DovecotError(f"dovecot did not start; its log:\n{self.log()}")

    def _start_on(self, port: int, ssl_port: int) -> bool:
        """One start attempt; True once a LOGIN succeeds, False if Dovecot exited."""
        conf = self._config(port, ssl_port)
        with self.log_path.open("ab") as log:
            # -F: in the foreground, so this PID is the master's; its own session, so stop()
            # can end the processes it forks too (by this process group, nothing else)
            self._proc = subprocess.Popen(
                [binary() or "dovecot", "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        _RUNNING.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if not self.running:
                self._forget()
                return False
            try:
                with self._login(port):
                    pass
                with socket.create_connection((HOST, ssl_port), timeout=1.0):
                    return True
            except (OSError, imaplib.IMAP4.error) as e:
                last = str(e)
            time.sleep(0.02)
        self.stop()
        raise DovecotError(
            f"dovecot did not accept a login within {START_TIMEOUT} s ({last}); its log:\n"
            f"{self.log()}"
        )

    def stop(self) -> None:
        """An outage: Dovecot ends and both ports stop answering. Safe to call twice.

        SIGKILL to the whole process group, as a crash would: a SIGTERM'd master waits a second
        for its children, and Dovecot recovers from a kill (stale pid file, indexes) on start.
        """
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
        for p in (self.port, self.ssl_port):
            if p is not None:
                _wait_port_free(p, STOP_TIMEOUT)
        self._forget()

    def _forget(self) -> None:
        self._proc = None
        _RUNNING.discard(self)

    def close(self) -> None:
        """Stop Dovecot and remove its working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- mail --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _login(self, port: int | None = None) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4(HOST, port or self.port or 0, timeout=IMAP_TIMEOUT)
        try:
            conn.login(self.user, self.password)
            yield conn
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                conn.logout()

    def imap(self) -> contextlib.AbstractContextManager[imaplib.IMAP4]:
        """A logged-in IMAP connection on the plain port (logged out on leaving the block)."""
        if self.port is None:
            raise DovecotError("not started")
        return self._login()

    def append(self, folder: str, raw: bytes) -> int:
        """Deliver ``raw`` into ``folder`` (created if missing) over IMAP; returns its UID."""
        with self.imap() as conn:
            if folder.upper() != "INBOX":
                conn.create(_quote(folder))  # NO if it exists: fine
            typ, data = conn.append(_quote(folder), None, None, raw)
            if typ != "OK":
                raise DovecotError(f"APPEND to {folder} failed: {data!r}")
            m = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            if m is None:
                raise DovecotError(f"APPEND to {folder}: no APPENDUID in {data!r}")
            return int(m.group(1))

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.imap() as conn:
            typ, data = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                raise DovecotError(f"SELECT {folder} failed: {data!r}")
            value = conn.response("UIDVALIDITY")[1][0]
            assert isinstance(value, bytes)
            return int(value)


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


_CERT_CACHE: list[tuple[bytes, bytes]] = []  # (key, certificate): an RSA key takes ~0.3 s


def _copy_certificate(key: Path, cert: Path) -> None:
    """One self-signed certificate per test session, copied into each server's directory."""
    if not _CERT_CACHE:
        with tempfile.TemporaryDirectory(prefix="dovecot-cert-") as tmp:
            _self_signed(Path(tmp) / "key.pem", Path(tmp) / "cert.pem")
            _CERT_CACHE.append(
                ((Path(tmp) / "key.pem").read_bytes(), (Path(tmp) / "cert.pem").read_bytes())
            )
    key_pem, cert_pem = _CERT_CACHE[0]
    key.write_bytes(key_pem)
    # Dovecot's config process reads the key while still root; as another user it is ours
    key.chmod(0o600)
    cert.write_bytes(cert_pem)


def _self_signed(key: Path, cert: Path) -> None:
    cmd = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-days", "1", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise DovecotError(f"openssl could not make a certificate: {done.stderr.strip()}")


def _mail_ids() -> tuple[int, int]:
    """(uid, gid) the mail processes run as: ours, or nobody's when we are root."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    for name in ("nobody", "dovenull"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise DovecotError("running as root and neither user 'nobody' nor 'dovenull' exists")


def _service_users() -> tuple[str, str, str]:
    """(login user, internal user, internal group): see the module docstring."""
    me = pwd.getpwuid(os.getuid()).pw_name
    if os.geteuid() != 0:
        import grp

        return me, me, grp.getgrgid(os.getgid()).gr_name
    login = "dovenull"
    try:
        pwd.getpwnam(login)
    except KeyError:
        login = "nobody"
    return login, "root", "root"


def _wait_port_free(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
                return True
            except OSError:
                pass
        time.sleep(0.01)
    return False


def ssl_context(cafile: Path | str) -> ssl.SSLContext:
    """A client context that trusts only ``cafile``."""
    return ssl.create_default_context(cafile=str(cafile))


@atexit.register
def _stop_leftovers() -> None:
    for srv in list(_RUNNING):
        srv.stop()
