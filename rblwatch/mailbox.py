"""Reading bounce mailboxes: a maildir directory or an IMAP folder, each message once.

An adapter (files and sockets) for the daemon's `bounces:` sources. Both sources have one method,
``fetch_new(seen)``: every message whose key ``seen(key)`` does not know, as a `Message` of its key
and raw bytes. The key is stable across runs and unique within a source, so the daemon reads each
message once by remembering keys in its store:

- IMAP: ``imap:{host}:{folder}:{UIDVALIDITY}:{UID}`` (RFC 3501 §2.3.1.1: a UID names one message
  for as long as the folder's UIDVALIDITY stays; a new UIDVALIDITY makes every key new);
- maildir: the file's unique name, without the ``:2,FLAGS`` info a mail client appends when it
  moves the file from ``new/`` to ``cur/`` (the maildir specification's "unique name").

Nothing is changed in the mailbox: IMAP folders are opened read-only (EXAMINE) and bodies fetched
with BODY.PEEK, so no \\Seen flag is set; maildir files are only read. A message larger than
`MAX_MESSAGE_BYTES` is never read whole (its size is asked first, and the read is cut there): it
comes back with ``raw=None`` so the daemon can remember it as skipped.

Every failure is one `MailboxError` whose text is one line naming the source (host and port, or
the path) and what failed; a password never appears in a message or a repr.
"""

from __future__ import annotations

import contextlib
import errno
import imaplib
import logging
import os
import re
import socket
import ssl
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple, TypeVar

from rblwatch.bounces.explain import MAX_MESSAGE_BYTES
from rblwatch.config.model import BounceSource

log = logging.getLogger("rblwatch.bounces")
Tls = Literal["imaps", "starttls", "none"]
Seen = Callable[[str], bool]
DEFAULT_TIMEOUT = 30.0
FETCH_BATCH = 200  # UIDs per size query: bounded command lines on big folders
MAX_REASON = 200  # characters of a server's or the OS's own words in a MailboxError

_T = TypeVar("_T")


class Message(NamedTuple):
    key: str
    raw: bytes | None  # None: larger than MAX_MESSAGE_BYTES, not read (skipped)
    size: int  # bytes (for a skipped message, as the mailbox reports it)

    @property
    def skipped(self) -> bool:
        return self.raw is None


class MailboxError(Exception):
    """A mailbox that cannot be read now. str() is one line: the source, what failed, why."""


def _one_line(text: str, secret: str | None = None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return " ".join(text.split())


def _cut(reason: str) -> str:
    """A server's (or the OS's) own words, bounded: a hostile server chooses them."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


def source_of(config: BounceSource, timeout: float = DEFAULT_TIMEOUT) -> MaildirSource | ImapSource:
    """The source a validated `bounces.sources` entry names."""
    if config.imap is None:
        assert config.maildir is not None  # the config allows exactly one of the two
        return MaildirSource(config.maildir)
    i = config.imap
    return ImapSource(i.host, i.port, i.user, i.password, i.folder, i.tls, i.cafile, timeout)


# --- maildir -------------------------------------------------------------------------------------


class MaildirSource:
    """The messages of one maildir directory: its ``new/`` and ``cur/`` (not its subfolders)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"MaildirSource({str(self.path)!r})"

    def fetch_new(self, seen: Seen) -> Iterator[Message]:
        """Every message not ``seen``, in key order (not quite arrival order: names are not
        zero-padded). A file that vanishes between the listing and the read (moved to ``cur/``,
        deleted) is left for the next call; symbolic links and other non-files are not read."""
        for key, file in self._list():
            if seen(key):
                continue
            message = self._read(key, file)
            if message is not None:
                yield message

    def _error(self, what: str, e: OSError | None = None) -> MailboxError:
        why = f": {e.strerror or e}" if e is not None else ""
        return MailboxError(_one_line(f"maildir {self.path}: {what}{why}"))

    def _list(self) -> list[tuple[str, Path]]:
        if not self._is_dir(self.path, missing_ok=False):
            raise self._error("not a directory")
        subdirs = [self.path / sub for sub in ("new", "cur") if self._is_dir(self.path / sub)]
        if not subdirs:
            raise self._error("not a maildir (no new/ or cur/ directory)")
        found: dict[str, Path] = {}
        for sub in subdirs:
            try:
                with os.scandir(sub) as entries:
                    names = [e.name for e in entries if not e.name.startswith(".")]
            except OSError as e:
                raise self._error(f"cannot read {sub.name}/", e) from None
            for name in names:
                # the same message in both (a move in progress) is one key
                found.setdefault(name.split(":", 1)[0], sub / name)
        return sorted(found.items())

    def _is_dir(self, path: Path, *, missing_ok: bool = True) -> bool:
        """Whether ``path`` is a directory; a missing one is an error unless ``missing_ok``.
        (Path.is_dir would answer False for a directory it may not look at.)"""
        try:
            return stat.S_ISDIR(os.stat(path).st_mode)
        except FileNotFoundError:
            if missing_ok:
                return False
            raise self._error("no such directory") from None
        except OSError as e:
            where = f"{path.name}/" if path != self.path else ""
            raise self._error(f"cannot read {where}".rstrip(), e) from None

    def _read(self, key: str, file: Path) -> Message | None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # no FIFO waits
        try:
            fd = os.open(file, flags)
        except FileNotFoundError:
            return None
        except OSError as e:
            if e.errno == errno.ELOOP:  # a symbolic link (O_NOFOLLOW)
                return None
            # one file the daemon may not read must not stop every later message: it is left
            # (not remembered, so it is read once it can be) and said in the log
            log.warning("%s", self._error(f"cannot read {file.parent.name}/{file.name}", e))
            return None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None  # not a message: a maildir holds only files
            if info.st_size > MAX_MESSAGE_BYTES:
                return Message(key, None, info.st_size)
            try:
                raw = f.read(MAX_MESSAGE_BYTES + 1)
            except OSError as e:
                raise self._error(f"cannot read {file.parent.name}/{file.name}", e) from None
        if len(raw) > MAX_MESSAGE_BYTES:  # grew since the stat
            return Message(key, None, len(raw))
        return Message(key, raw, len(raw))


# --- IMAP ----------------------------------------------------------------------------------------

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class _ImapsConnection(imaplib.IMAP4_SSL):
    """IMAP4_SSL that closes its socket when the TLS handshake fails (the stdlib's leaks it)."""

    def _create_socket(self, timeout: float | None) -> ssl.SSLSocket:
        sock = socket.create_connection((self.host, self.port), timeout)
        try:
            wrapped: ssl.SSLSocket = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
            return wrapped
        except BaseException:
            sock.close()
            raise


@dataclass(frozen=True, slots=True)
class ImapSource:
    """One IMAP folder. ``tls``: imaps (TLS from the start), starttls, or none (plaintext; the
    config allows it only to the local host). ``cafile``: the CAs to trust (None: the system's).
    ``timeout`` bounds every network step (connect, each read)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    tls: Tls = "imaps"
    cafile: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __str__(self) -> str:
        return f"imap {self.user}@{self.host}:{self.port}/{self.folder}"

    def key(self, uidvalidity: int, uid: int) -> str:
        return f"imap:{self.host}:{self.folder}:{uidvalidity}:{uid}"

    def fetch_new(self, seen: Seen) -> Iterator[Message]:
        """Every message not ``seen``, in UID order, over one connection (closed at the end, also
        when the caller stops early)."""
        conn = self._connect()
        try:
            validity = self._select(conn)
            new = [(uid, self.key(validity, uid)) for uid in self._uids(conn)]
            new = [(uid, key) for uid, key in new if not seen(key)]
            for start in range(0, len(new), FETCH_BATCH):
                batch = new[start : start + FETCH_BATCH]
                sizes = self._sizes(conn, [uid for uid, _ in batch])
                for uid, key in batch:
                    message = self._message(conn, uid, key, sizes)
                    if message is not None:
                        yield message
        finally:
            with contextlib.suppress(OSError, imaplib.IMAP4.error, ValueError):
                conn.logout()
            with contextlib.suppress(OSError):
                conn.shutdown()

    # -- steps ---------------------------------------------------------------------------------

    def _step(self, what: str, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except (OSError, imaplib.IMAP4.error, ValueError, EOFError) as e:
            raise self._error(what, _reason(e, self.timeout)) from None

    def _error(self, what: str, why: str) -> MailboxError:
        why = _cut(_one_line(why, self.password))  # the secret out before the cut
        text = f"imap {self.host}:{self.port}: {what} failed: {why}"
        return MailboxError(_one_line(text, self.password))

    def _ok(self, what: str, reply: tuple[str, Sequence[object]]) -> Sequence[object]:
        typ, data = reply
        if typ != "OK":
            raise self._error(what, _server_text(data) or typ)
        return data

    def _context(self) -> ssl.SSLContext:
        what = f"loading cafile {self.cafile}" if self.cafile else "loading the system's CAs"
        return self._step(what, lambda: ssl.create_default_context(cafile=self.cafile))

    def _connect(self) -> imaplib.IMAP4:
        if self.tls == "imaps":
            context = self._context()
            conn: imaplib.IMAP4 = self._step(
                "connect (TLS)",
                lambda: _ImapsConnection(
                    self.host, self.port, ssl_context=context, timeout=self.timeout
                ),
            )
        else:
            conn = self._step(
                "connect", lambda: imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            )
        try:
            if self.tls == "starttls":
                context = self._context()
                self._ok("STARTTLS", self._step("STARTTLS", lambda: conn.starttls(context)))
            self._ok("login", self._step("login", lambda: conn.login(self.user, self.password)))
        except MailboxError:
            with contextlib.suppress(OSError):
                conn.shutdown()
            raise
        return conn

    def _select(self, conn: imaplib.IMAP4) -> int:
        what = f"opening folder {self.folder!r}"
        self._ok(what, self._step(what, lambda: conn.select(_quote(self.folder), readonly=True)))
        values = conn.response("UIDVALIDITY")[1]
        if not values or not isinstance(values[0], bytes) or not values[0].isdigit():
            raise self._error(what, "the server gave no UIDVALIDITY")
        return int(values[0])

    def _uids(self, conn: imaplib.IMAP4) -> list[int]:
        data = self._ok("UID SEARCH", self._step("UID SEARCH", lambda: conn.uid("SEARCH", "ALL")))
        words = b" ".join(d for d in data if isinstance(d, bytes)).split()
        return sorted(int(w) for w in words if w.isdigit())

    def _sizes(self, conn: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
        what = "UID FETCH RFC822.SIZE"
        wanted = ",".join(map(str, uids))
        data = self._ok(what, self._step(what, lambda: conn.uid("FETCH", wanted, "(RFC822.SIZE)")))
        sizes: dict[int, int] = {}
        for item in data:
            line = item[0] if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            uid, size = _UID.search(line), _SIZE.search(line)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes  # an expunged UID is missing: nothing to read

    def _message(
        self, conn: imaplib.IMAP4, uid: int, key: str, sizes: dict[int, int]
    ) -> Message | None:
        size = sizes.get(uid)
        if size is None:
            return None
        if size > MAX_MESSAGE_BYTES:
            return Message(key, None, size)
        # a partial fetch: a server that lied about the size still sends at most one byte more
        what = f"UID FETCH {uid}"
        part = f"(BODY.PEEK[]<0.{MAX_MESSAGE_BYTES + 1}>)"
        data = self._ok(what, self._step(what, lambda: conn.uid("FETCH", str(uid), part)))
        raw = next((d[1] for d in data if isinstance(d, tuple) and len(d) == 2), None)
        if not isinstance(raw, bytes):
            return None  # expunged since the size query
        if len(raw) > MAX_MESSAGE_BYTES:
            return Message(key, None, size)
        return Message(key, raw, len(raw))


def _quote(folder: str) -> str:
    """An IMAP quoted string (RFC 3501 §4.3): imaplib sends arguments as given."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _server_text(data: Sequence[object]) -> str:
    parts = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data]
    return " ".join(p for p in parts if p and p != "None")


def _reason(e: BaseException, timeout: float) -> str:
    """The cause of a failed step in a few words, without a class name or a traceback."""
    if isinstance(e, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return f"no answer within {timeout:g}s"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host: {e.strerror}"
    if isinstance(e, imaplib.IMAP4.error) and e.args and isinstance(e.args[0], bytes):
        return e.args[0].decode("utf-8", "replace")  # the server's own words
    if isinstance(e, OSError):
        return str(e.strerror or e)
    if isinstance(e, EOFError):
        return "the server closed the connection"
    return str(e) or type(e).__name__
