"""Messages read from an .eml, an mbox, a maildir or stdin: bounded, named, errors in one line."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rblwatch.mailsources import Mail, MailSourceError, read_mail, too_big

ONE = b"From: a@example.org\nSubject: one\n\nbody one\n"
TWO = b"From: b@example.org\nSubject: two\n\nbody two\n"


def read(*paths: str | Path, stdin: bytes | None = None, limit: int = 10_000) -> list[Mail]:
    stream = io.BytesIO(stdin) if stdin is not None else None
    return list(read_mail([str(p) for p in paths], stream, limit=limit))


def mbox(*messages: bytes, newline: bytes = b"\n") -> bytes:
    out = b""
    for m in messages:
        out += b"From MAILER-DAEMON Thu Jan  1 00:00:00 2026" + newline + m + newline
    return out


class CountingStream(io.BytesIO):
    """A stream that records how many bytes were asked of it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = super().readline(size)
        self.taken += len(data)
        return data


# -- one message -----------------------------------------------------------------------------


def test_an_eml_is_one_message_named_by_its_path(tmp_path: Path) -> None:
    f = tmp_path / "bounce.eml"
    f.write_bytes(ONE)
    assert read(f) == [Mail(str(f), ONE)]


def test_an_empty_file_is_one_empty_message(tmp_path: Path) -> None:
    f = tmp_path / "empty.eml"
    f.write_bytes(b"")
    assert read(f) == [Mail(str(f), b"")]


def test_a_message_over_the_limit_is_reported_not_read(tmp_path: Path) -> None:
    f = tmp_path / "big.eml"
    f.write_bytes(ONE + b"x" * 5000)
    assert read(f, limit=1000) == [Mail(str(f), b"", too_big(1000))]
    assert read(f, limit=len(ONE) + 5000) == [Mail(str(f), ONE + b"x" * 5000)]


def test_a_big_message_on_stdin_is_read_only_to_the_limit() -> None:
    stream = CountingStream(b"x" * 1_000_000)
    (mail,) = read_mail(["-"], stream, limit=1000)
    assert mail.problem == too_big(1000) and mail.source == "-"
    assert stream.taken <= 1001


def test_stdin_is_read_as_one_message_or_an_mbox() -> None:
    assert read("-", stdin=ONE) == [Mail("-", ONE)]
    assert read("-", stdin=mbox(ONE, TWO)) == [Mail("-#1", ONE), Mail("-#2", TWO)]


# -- mbox ------------------------------------------------------------------------------------


def test_an_mbox_yields_each_message_numbered_from_one(tmp_path: Path) -> None:
    f = tmp_path / "returned.mbox"
    f.write_bytes(mbox(ONE, TWO, ONE))
    assert read(f) == [Mail(f"{f}#1", ONE), Mail(f"{f}#2", TWO), Mail(f"{f}#3", ONE)]


def test_an_mbox_with_crlf_lines_splits_the_same(tmp_path: Path) -> None:
    f = tmp_path / "crlf.mbox"
    one, two = ONE.replace(b"\n", b"\r\n"), TWO.replace(b"\n", b"\r\n")
    f.write_bytes(mbox(one, two, newline=b"\r\n"))
    assert read(f) == [Mail(f"{f}#1", one), Mail(f"{f}#2", two)]


def test_escaped_from_lines_are_unescaped_and_a_bare_one_mid_paragraph_does_not_split(
    tmp_path: Path,
) -> None:
    body = b"Subject: x\n\nline\nFrom here on, text\n>From the escaped line\n>>From twice\n"
    f = tmp_path / "escaped.mbox"
    f.write_bytes(mbox(body, TWO))
    first, second = read(f)
    assert first.raw == (
        b"Subject: x\n\nline\nFrom here on, text\nFrom the escaped line\n>From twice\n"
    )
    assert second == Mail(f"{f}#2", TWO)


def test_a_big_message_in_an_mbox_is_reported_and_the_next_one_still_read(tmp_path: Path) -> None:
    big = b"Subject: big\n\n" + (b"y" * 99 + b"\n") * 100
    f = tmp_path / "mixed.mbox"
    f.write_bytes(mbox(ONE, big, TWO))
    assert read(f, limit=5000) == [
        Mail(f"{f}#1", ONE),
        Mail(f"{f}#2", b"", too_big(5000)),
        Mail(f"{f}#3", TWO),
    ]


def test_a_line_longer_than_a_read_is_one_line_not_a_separator(tmp_path: Path) -> None:
    # "From " right where a bounded readline would cut the long line must not start a message
    long_line = b"a" * (64 * 1024 - 1) + b"\n" + b"\n" + b"z" * (64 * 1024) + b"From x\n"
    body = b"Subject: long\n\n" + long_line
    f = tmp_path / "long.mbox"
    f.write_bytes(mbox(body, TWO))
    assert read(f, limit=1_000_000) == [Mail(f"{f}#1", body), Mail(f"{f}#2", TWO)]


# -- maildir ---------------------------------------------------------------------------------


def make_maildir(root: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1700000001.M1.host").write_bytes(TWO)
    (root / "cur" / "1700000000.M1.host:2,S").write_bytes(ONE)
    (root / "cur" / ".hidden").write_bytes(b"not mail")
    (root / "tmp" / "1700000002.M1.host").write_bytes(b"half delivered")
    return root


def test_a_maildir_yields_cur_then_new_named_by_their_paths(tmp_path: Path) -> None:
    md = make_maildir(tmp_path / "Maildir")
    assert read(md) == [
        Mail(str(md / "cur" / "1700000000.M1.host:2,S"), ONE),
        Mail(str(md / "new" / "1700000001.M1.host"), TWO),
    ]


def test_a_maildir_file_starting_with_from_is_still_one_message(tmp_path: Path) -> None:
    md = tmp_path / "md"
    (md / "new").mkdir(parents=True)
    (md / "new" / "m").write_bytes(mbox(ONE, TWO))
    assert read(md) == [Mail(str(md / "new" / "m"), mbox(ONE, TWO))]


def test_a_big_maildir_message_is_reported(tmp_path: Path) -> None:
    md = tmp_path / "md"
    (md / "cur").mkdir(parents=True)
    (md / "cur" / "big").write_bytes(b"z" * 2000)
    assert read(md, limit=1000) == [Mail(str(md / "cur" / "big"), b"", too_big(1000))]


# -- what cannot be read ---------------------------------------------------------------------


def one_line_error(run: Callable[[], object]) -> str:
    with pytest.raises(MailSourceError) as info:
        run()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.eml"
    assert (
        one_line_error(lambda: read(missing))
        == f"{missing}: cannot be read: No such file or directory"
    )


def test_a_missing_file_after_good_ones_fails_before_any_message(tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(ONE)
    it = read_mail([str(good), str(tmp_path / "nope")])
    with pytest.raises(MailSourceError, match="nope: cannot be read"):
        next(it)


def test_a_directory_that_is_not_a_maildir_is_one_line(tmp_path: Path) -> None:
    message = one_line_error(lambda: read(tmp_path))
    assert message == f"{tmp_path}: a directory but not a maildir (it has no cur/ or new/)"


def test_a_file_whose_read_fails_is_one_line_naming_it() -> None:
    # /proc/self/mem opens, then fails to read at offset 0 (unmapped), for root as for anyone
    assert one_line_error(lambda: read("/proc/self/mem")).startswith(
        "/proc/self/mem: cannot be read:"
    )


def test_a_maildir_message_whose_read_fails_is_one_line_naming_it(tmp_path: Path) -> None:
    md = tmp_path / "md"
    (md / "cur").mkdir(parents=True)
    (md / "cur" / "broken").symlink_to("/proc/self/mem")
    message = one_line_error(lambda: read(md))
    assert message.startswith(f"{md / 'cur' / 'broken'}: cannot be read:")


def as_nobody(run: Callable[[], object]) -> str:
    """`run` in a forked child without root's rights (if we have them): the error it raised."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            if os.geteuid() == 0:
                nobody = pwd.getpwnam("nobody")
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
            run()
            os.write(w, b"no error")
        except MailSourceError as exc:
            os.write(w, str(exc).encode())
        except BaseException as exc:  # reported to the parent, whatever it is
            os.write(w, f"unexpected {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        said = f.read().decode()
    os.waitpid(pid, 0)
    return said


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory others may enter (pytest's tmp_path sits in one only its owner may)."""
    path = Path(tempfile.mkdtemp(prefix="rblwatch-mailsources-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for p in [path, *path.rglob("*")]:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        shutil.rmtree(path)


def test_an_unreadable_file_and_maildir_are_one_line_naming_them(open_dir: Path) -> None:
    tmp_path = open_dir
    secret = tmp_path / "secret.eml"
    secret.write_bytes(ONE)
    secret.chmod(0)
    assert as_nobody(lambda: read(secret)) == f"{secret}: cannot be read: Permission denied"
    md = make_maildir(tmp_path / "md")
    (md / "cur").chmod(0)
    assert as_nobody(lambda: read(md)) == f"{md / 'cur'}: cannot be read: Permission denied"
    md.chmod(0)
    assert as_nobody(lambda: read(md)) == f"{md}: cannot be read: Permission denied"
