"""Messages read from what `explain-bounce` is given: an `.eml`, an mbox, a maildir, or `-`.

An adapter (files only). Each message is read up to `MAX_MESSAGE_BYTES`; a larger one is
yielded with a `problem` and no bytes, its rest skipped unread (an mbox's by lines of at most
`_CHUNK` bytes), so a 50 MB attachment or a file of binary junk costs bounded memory. A path
that cannot be read raises `MailSourceError`: one line naming the path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from typing import BinaryIO, NamedTuple

from rblwatch.bounces.explain import MAX_MESSAGE_BYTES

STDIN = "-"
_CHUNK = 64 * 1024  # an mbox is read in lines of at most this: a line without end stays bounded
_FROM = b"From "


class MailSourceError(Exception):
    """A FILE that cannot be read (missing, unreadable, not a maildir): one line naming it."""


class Mail(NamedTuple):
    """One message: where it came from (`path`, `path#3`, `maildir/cur/NAME`) and its bytes.

    `problem` is set (and `raw` empty) when the message could not be read whole."""

    source: str
    raw: bytes
    problem: str | None = None


def read_mail(
    paths: Sequence[str], stdin: BinaryIO | None = None, limit: int | None = None
) -> Iterator[Mail]:
    """Every message of every path, in order; `-` reads `stdin` (an mbox or one message).

    Every path is looked at before the first message is yielded: a FILE missing at the end
    fails the run before work is spent on the others."""
    limit = MAX_MESSAGE_BYTES if limit is None else limit
    for path in paths:
        if path != STDIN:
            _readable(path)
    for path in paths:
        if path == STDIN:
            if stdin is None:
                raise MailSourceError("-: no standard input to read")
            yield from _stream(stdin, STDIN, limit)
        else:
            yield from _path(path, limit)


def too_big(limit: int) -> str:
    return f"larger than {limit:,} bytes: not read"


def _readable(path: str) -> int:
    """The path's mode, if it exists and may be read; else MailSourceError."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise MailSourceError(f"{path}: cannot be read: {e.strerror}") from None
    if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)):
        raise MailSourceError(f"{path}: cannot be read: Permission denied")
    return mode


def _path(path: str, limit: int) -> Iterator[Mail]:
    if stat.S_ISDIR(_readable(path)):
        yield from _maildir(path, limit)
        return
    yield from _file(path, path, limit)


def _file(path: str, source: str, limit: int) -> Iterator[Mail]:
    try:
        with open(path, "rb") as f:
            yield from _stream(f, source, limit)
    except OSError as e:
        raise MailSourceError(f"{path}: cannot be read: {e.strerror}") from None


def _maildir(path: str, limit: int) -> Iterator[Mail]:
    """Maildir (cur/ and new/; tmp/ holds messages still being delivered): each file a message."""
    subdirs = [d for d in ("cur", "new") if os.path.isdir(os.path.join(path, d))]
    if not subdirs:
        raise MailSourceError(f"{path}: a directory but not a maildir (it has no cur/ or new/)")
    for sub in subdirs:
        where = os.path.join(path, sub)
        try:
            names = sorted(n for n in os.listdir(where) if not n.startswith("."))
        except OSError as e:
            raise MailSourceError(f"{where}: cannot be read: {e.strerror}") from None
        for name in names:
            file = os.path.join(where, name)
            if os.path.isfile(file):
                yield from _one(file, limit)


def _one(path: str, limit: int) -> Iterator[Mail]:
    """A maildir file: one message, even if its first line happens to start with "From "."""
    try:
        with open(path, "rb") as f:
            yield _bounded(f.read(limit + 1), path, limit)
    except OSError as e:
        raise MailSourceError(f"{path}: cannot be read: {e.strerror}") from None


def _bounded(raw: bytes, source: str, limit: int) -> Mail:
    return Mail(source, b"", too_big(limit)) if len(raw) > limit else Mail(source, raw)


def _stream(f: BinaryIO, source: str, limit: int) -> Iterator[Mail]:
    """A file or stdin: an mbox when its first line starts with "From ", else one message."""
    head = f.read(len(_FROM))
    if head != _FROM:
        yield _bounded(head + f.read(limit + 1 - len(head)), source, limit)
        return
    yield from _mbox(f, head, source, limit)


def _mbox(f: BinaryIO, head: bytes, source: str, limit: int) -> Iterator[Mail]:
    """Messages split at "From " lines that follow an empty line (or start the file).

    Python's `mailbox` splits at every "From " line; an MTA that did not escape one in a
    returned original's body would cut the message in two, so the empty line before a
    separator is required here. ">From " lines are unescaped (mboxrd: one '>' removed).
    """
    number = 0
    parts: list[bytes] | None = None  # None: this message is over the limit, skipped
    size = 0
    previous_empty = True
    at_line_start = True
    line = head + f.readline(_CHUNK)  # the first separator line
    while line:
        separator = at_line_start and previous_empty and line.startswith(_FROM)
        if separator:
            if number:
                yield _finished(parts, source, number, limit)
            number, parts, size = number + 1, [], 0
        elif parts is not None:
            if at_line_start and line.startswith(b">") and line.lstrip(b">").startswith(_FROM):
                line = line[1:]
            size += len(line)
            parts = parts if size <= limit else None
            if parts is not None:
                parts.append(line)
        ended = line.endswith(b"\n")
        previous_empty = at_line_start and line in (b"\n", b"\r\n")
        at_line_start = ended
        line = f.readline(_CHUNK)
    if number:
        yield _finished(parts, source, number, limit)


def _finished(parts: list[bytes] | None, source: str, number: int, limit: int) -> Mail:
    where = f"{source}#{number}"
    if parts is None:
        return Mail(where, b"", too_big(limit))
    # the empty line before the next separator belongs to the mbox, not to the message
    if parts and parts[-1] in (b"\n", b"\r\n"):
        parts.pop()
    return Mail(where, b"".join(parts))


__all__ = ["STDIN", "Mail", "MailSourceError", "read_mail", "too_big"]
