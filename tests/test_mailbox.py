"""Reading bounce mailboxes (rblwatch.mailbox) against a real Dovecot and real maildirs."""

from __future__ import annotations

import mailbox
import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

import rblwatch.mailbox as mb
from rblwatch.mailbox import ImapSource, MailboxError, MaildirSource, Message
from tests.dovecot import HOST, Dovecot, _self_signed


def raw(n: int, body: bytes = b"") -> bytes:
    return b"From: mailer-daemon@example.net\r\nSubject: bounce %d\r\n\r\nbody %d\r\n%s" % (
        n,
        n,
        body,
    )


def source(srv: Dovecot, **kw: object) -> ImapSource:
    args: dict[str, object] = {
        "host": HOST,
        "port": srv.port,
        "user": srv.user,
        "password": srv.password,
        "tls": "none",
        "timeout": 5.0,
    }
    args.update(kw)
    return ImapSource(**args)  # type: ignore[arg-type]


def fetch(src: ImapSource | MaildirSource, seen: set[str] | None = None) -> list[Message]:
    known = set() if seen is None else seen
    return list(src.fetch_new(lambda key: key in known))


def error_of(src: ImapSource | MaildirSource) -> str:
    with pytest.raises(MailboxError) as info:
        fetch(src)
    text = str(info.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# --- IMAP ----------------------------------------------------------------------------------------


def test_every_message_is_fetched_whole_under_a_key_with_uidvalidity_and_uid(
    dovecot: Dovecot,
) -> None:
    uids = [dovecot.append("INBOX", raw(n)) for n in range(3)]
    validity = dovecot.uidvalidity()
    got = fetch(source(dovecot))
    assert [m.key for m in got] == [f"imap:{HOST}:INBOX:{validity}:{uid}" for uid in uids]
    assert [m.raw for m in got] == [raw(n) for n in range(3)]
    assert [m.size for m in got] == [len(raw(n)) for n in range(3)]
    assert not any(m.skipped for m in got)


def test_seen_keys_are_not_fetched_again_only_the_new_message_is(dovecot: Dovecot) -> None:
    for n in range(3):
        dovecot.append("INBOX", raw(n))
    src = source(dovecot)
    seen = {m.key for m in fetch(src)}
    assert len(seen) == 3
    assert fetch(src, seen) == []
    dovecot.append("INBOX", raw(3))
    (new,) = fetch(src, seen)
    assert new.raw == raw(3) and new.key not in seen


def test_reading_changes_nothing_in_the_folder(dovecot: Dovecot) -> None:
    uid = dovecot.append("INBOX", raw(0))
    fetch(source(dovecot))
    with dovecot.imap() as conn:
        conn.select("INBOX", readonly=True)
        _typ, data = conn.uid("FETCH", str(uid), "(FLAGS)")
    assert b"\\Seen" not in (data[0] or b"")


def test_a_new_uidvalidity_makes_every_key_new(dovecot: Dovecot) -> None:
    dovecot.append("Bounces", raw(0))
    src = source(dovecot, folder="Bounces")
    seen = {m.key for m in fetch(src)}
    with dovecot.imap() as conn:  # a folder deleted and made again: same UIDs, new validity
        conn.delete("Bounces")
    time.sleep(1.1)  # Dovecot's UIDVALIDITY is a clock in seconds
    dovecot.append("Bounces", raw(1))
    (again,) = fetch(src, seen)
    assert again.key.endswith(":1") and again.key not in seen and again.raw == raw(1)


def test_another_folder_with_a_space_in_its_name(dovecot: Dovecot) -> None:
    dovecot.append("Returned mail", raw(0))
    (got,) = fetch(source(dovecot, folder="Returned mail"))
    assert got.key.startswith(f"imap:{HOST}:Returned mail:") and got.raw == raw(0)


def test_a_folder_that_does_not_exist_is_one_line(dovecot: Dovecot) -> None:
    text = error_of(source(dovecot, folder="Nope"))
    assert text.startswith(f"imap {HOST}:{dovecot.port}: opening folder 'Nope' failed:"), text


def test_an_oversized_message_is_skipped_with_its_key_and_size(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mb, "MAX_MESSAGE_BYTES", 1000)
    dovecot.append("INBOX", raw(0))
    dovecot.append("INBOX", raw(1, b"x" * 2000))
    small, big = fetch(source(dovecot))
    assert small.raw == raw(0)
    assert big.skipped and big.raw is None and big.size == len(raw(1, b"x" * 2000))
    assert big.key.endswith(":2")


def test_a_message_over_the_real_limit_is_skipped_unread(dovecot: Dovecot) -> None:
    huge = raw(0, b"y" * (mb.MAX_MESSAGE_BYTES + 10))
    dovecot.append("INBOX", huge)
    (got,) = fetch(source(dovecot))
    assert got.skipped and got.size == len(huge)


def test_imaps_with_the_cafile(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", raw(0))
    for host in (HOST, "localhost"):
        src = source(
            dovecot, host=host, port=dovecot.ssl_port, tls="imaps", cafile=str(dovecot.cafile)
        )
        assert [m.raw for m in fetch(src)] == [raw(0)]


def test_starttls_with_the_cafile(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", raw(0))
    src = source(dovecot, tls="starttls", cafile=str(dovecot.cafile))
    assert [m.raw for m in fetch(src)] == [raw(0)]


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_a_certificate_the_cafile_does_not_vouch_for_is_one_line(
    dovecot: Dovecot, tmp_path: Path, tls: str
) -> None:
    other = tmp_path / "other.pem"
    _self_signed(tmp_path / "other.key", other)
    port = dovecot.ssl_port if tls == "imaps" else dovecot.port
    text = error_of(source(dovecot, port=port, tls=tls, cafile=str(other)))
    assert f"imap {HOST}:{port}:" in text and "certificate not trusted" in text, text


def test_the_system_cas_do_not_vouch_for_a_self_signed_server(dovecot: Dovecot) -> None:
    text = error_of(source(dovecot, port=dovecot.ssl_port, tls="imaps"))
    assert "connect (TLS) failed: certificate not trusted" in text, text


def test_a_missing_cafile_is_named(dovecot: Dovecot, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    text = error_of(source(dovecot, port=dovecot.ssl_port, tls="imaps", cafile=str(missing)))
    assert f"loading cafile {missing} failed" in text, text


def test_a_wrong_password_is_one_line_and_never_shown(dovecot: Dovecot) -> None:
    src = source(dovecot, password="Wr0ng-Secret")
    text = error_of(src)
    assert text.startswith(f"imap {HOST}:{dovecot.port}: login failed:"), text
    assert "AUTHENTICATIONFAILED" in text
    assert "Wr0ng-Secret" not in text + repr(src) + str(src)


def test_a_stopped_server_is_one_line(dovecot: Dovecot) -> None:
    src = source(dovecot)
    dovecot.stop()
    started = time.monotonic()
    text = error_of(src)
    assert time.monotonic() - started < src.timeout
    assert text == f"imap {HOST}:{dovecot.port}: connect failed: Connection refused", text


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    with socket.socket() as silent:  # connections are queued, never greeted
        silent.bind((HOST, 0))
        silent.listen(8)
        src = ImapSource(HOST, silent.getsockname()[1], "u", "pw", tls="none", timeout=0.5)
        started = time.monotonic()
        text = error_of(src)
    assert time.monotonic() - started < 3.0
    assert text.endswith("connect failed: no answer within 0.5s"), text


def test_a_long_reply_is_cut_and_an_echoed_password_masked() -> None:
    import threading

    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"* OK ready\r\n")
                tag = conn.recv(4096).split(b" ")[0]  # CAPABILITY
                conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
                tag = conn.recv(4096).split(b" ")[0]  # LOGIN
                # a hostile server: a huge, multi-line-looking reply quoting the password
                conn.sendall(tag + b" NO pw=s3cret-pw " + b"x" * 5000 + b"\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        src = ImapSource(HOST, listener.getsockname()[1], "u", "s3cret-pw", tls="none", timeout=5)
        text = error_of(src)
        thread.join(5)
    assert text.startswith(f"imap {HOST}:") and "login failed: pw=*** xxx" in text, text
    assert "s3cret" not in text and len(text) < 300


def test_a_server_stopped_between_two_reads(dovecot: Dovecot) -> None:
    for n in range(3):
        dovecot.append("INBOX", raw(n))
    messages = source(dovecot).fetch_new(lambda key: False)
    assert next(messages).raw == raw(0)
    dovecot.stop()
    with pytest.raises(MailboxError, match=r"UID FETCH 2 failed"):
        list(messages)


def test_a_caller_that_stops_early_closes_the_connection(dovecot: Dovecot) -> None:
    for n in range(2):
        dovecot.append("INBOX", raw(n))
    messages = source(dovecot).fetch_new(lambda key: False)
    next(messages)
    messages.close()  # (pytest turns an unclosed socket's ResourceWarning into an error)


def test_a_configured_source_reads_the_dovecot(dovecot: Dovecot) -> None:
    from rblwatch.config import parse_config

    dovecot.append("INBOX", raw(0))
    cfg = parse_config(
        {
            "bounces": {
                "sources": [
                    {"name": "files", "maildir": str(dovecot.maildir)},
                    {
                        "name": "imap",
                        "imap": {
                            "host": "localhost",
                            "port": dovecot.ssl_port,
                            "user": dovecot.user,
                            "password": dovecot.password,
                            "cafile": str(dovecot.cafile),
                        },
                    },
                ]
            }
        }
    )
    assert cfg.bounces is not None
    files, imap = (mb.source_of(s, timeout=5.0) for s in cfg.bounces.sources)
    assert isinstance(files, MaildirSource) and isinstance(imap, ImapSource)
    assert imap.timeout == 5.0 and imap.tls == "imaps"
    assert [m.raw for m in fetch(imap)] == [raw(0)]
    assert [m.raw for m in fetch(files)] == [raw(0).replace(b"\r\n", b"\n")]


def test_the_password_is_not_in_the_repr() -> None:
    src = ImapSource("mail.example.com", 993, "bounces", "s3cret-pw")
    assert "s3cret-pw" not in repr(src) and "s3cret-pw" not in str(src)
    assert str(src) == "imap bounces@mail.example.com:993/INBOX"


# --- maildir -------------------------------------------------------------------------------------


def test_the_dovecot_maildir_holds_the_same_messages(dovecot: Dovecot) -> None:
    for n in range(3):
        dovecot.append("INBOX", raw(n))
    got = fetch(MaildirSource(dovecot.maildir))
    # in key order, which is not always arrival order
    assert sorted(m.raw or b"" for m in got) == [raw(n).replace(b"\r\n", b"\n") for n in range(3)]
    keys = [m.key for m in got]
    assert all(":" not in k for k in keys) and len(set(keys)) == 3


def test_a_message_moved_to_cur_with_flags_keeps_its_key(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", raw(0))
    src = MaildirSource(dovecot.maildir)
    seen = {m.key for m in fetch(src)}
    with dovecot.imap() as conn:  # a read-write SELECT moves new/ to cur/; \Seen adds a flag
        conn.select("INBOX")
        conn.store("1", "+FLAGS", "\\Seen")
    assert os.listdir(dovecot.maildir / "new") == []
    (name,) = os.listdir(dovecot.maildir / "cur")
    assert name.endswith(":2,S") and name.split(":")[0] in seen
    assert fetch(src, seen) == []


def test_a_tmp_maildir_in_key_order_with_the_stdlibs_keys(tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "box", create=True)
    keys = [box.add(raw(n)) for n in range(3)]
    msg = box.get_message(keys[1])
    msg.set_subdir("cur")
    msg.set_flags("RS")
    box[keys[1]] = msg
    (tmp_path / "box" / "tmp" / "half-written").write_bytes(b"x")  # tmp/ is never read
    (tmp_path / "box" / "new" / ".hidden").write_bytes(b"x")
    got = fetch(MaildirSource(tmp_path / "box"))
    assert sorted(keys) == [m.key for m in got]
    assert {m.key: m.raw for m in got} == {k: box.get_bytes(k) for k in keys}
    (only,) = fetch(MaildirSource(tmp_path / "box"), {keys[0], keys[2]})
    assert only.key == keys[1]


def test_an_oversized_maildir_file_is_skipped_unread(tmp_path: Path) -> None:
    box = tmp_path / "box"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    with (box / "new" / "1.big.host").open("wb") as f:
        f.truncate(mb.MAX_MESSAGE_BYTES + 1)  # sparse: nothing to write, nothing read
    (box / "new" / "2.small.host").write_bytes(raw(0))
    big, small = fetch(MaildirSource(box))
    assert big == Message("1.big.host", None, mb.MAX_MESSAGE_BYTES + 1) and big.skipped
    assert small.raw == raw(0)


def test_a_fifo_or_a_symlink_in_a_maildir_is_not_read(tmp_path: Path) -> None:
    box = tmp_path / "box"
    for sub in ("new", "cur"):
        (box / sub).mkdir(parents=True)
    os.mkfifo(box / "new" / "1.fifo.host")
    (box / "new" / "2.link.host").symlink_to("/etc/passwd")
    assert fetch(MaildirSource(box)) == []


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda p: None, "no such directory"),
        (lambda p: p.write_text("x"), "not a directory"),
        (lambda p: p.mkdir(), "not a maildir (no new/ or cur/ directory)"),
    ],
)
def test_a_path_that_is_no_maildir_is_one_line_naming_it(
    tmp_path: Path, make: object, why: str
) -> None:
    path = tmp_path / "bounces"
    make(path)  # type: ignore[operator]
    assert error_of(MaildirSource(path)) == f"maildir {path}: {why}"


def test_an_unreadable_maildir_is_one_line_naming_it() -> None:
    # not in tmp_path: pytest's base directory is 0700, and as root the read is done as nobody
    with tempfile.TemporaryDirectory(prefix="rblwatch-maildir-") as tmp:
        box = Path(tmp) / "box"
        mailbox.Maildir(box, create=True).add(raw(0))
        os.chmod(tmp, 0o755)
        os.chmod(box, 0o755)
        (box / "new").chmod(0)
        try:
            text = error_of(MaildirSource(box)) if os.geteuid() != 0 else _read_as_nobody(box)
        finally:
            (box / "new").chmod(0o700)
    assert text == f"maildir {box}: cannot read new/: Permission denied", text


def test_a_maildir_behind_a_directory_it_may_not_enter_is_not_called_missing() -> None:
    with tempfile.TemporaryDirectory(prefix="rblwatch-maildir-") as tmp:
        box = Path(tmp) / "locked" / "box"
        box.parent.mkdir()
        mailbox.Maildir(box, create=True)
        os.chmod(tmp, 0o755)
        (Path(tmp) / "locked").chmod(0)
        try:
            text = error_of(MaildirSource(box)) if os.geteuid() != 0 else _read_as_nobody(box)
        finally:
            (Path(tmp) / "locked").chmod(0o700)
    assert text == f"maildir {box}: cannot read: Permission denied", text


def _read_as_nobody(box: Path) -> str:
    """fetch_new in a forked child that has become nobody (no exec: the test's interpreter may
    live where nobody cannot reach it); returns the MailboxError's text."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never back into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                list(MaildirSource(box).fetch_new(lambda key: False))
                text = "no error"
            except MailboxError as e:
                text = str(e)
            os.write(write_end, text.encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        text = f.read().decode()
    _pid, status = os.waitpid(pid, 0)
    assert status == 0, text
    return text


def test_one_unreadable_message_file_is_left_and_the_others_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    box = tmp_path / "box"
    md = mailbox.Maildir(box, create=True)
    first, second = md.add(raw(0)), md.add(raw(1))
    locked = sorted([first, second])[0]
    real_open = os.open

    def refusing(path: object, *args: object, **kw: object) -> int:
        if locked in str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr("rblwatch.mailbox.os.open", refusing)
    got = fetch(MaildirSource(box))
    assert [m.key for m in got] == sorted([first, second])[1:]
    assert f"cannot read new/{locked}: Permission denied" in caplog.text
    monkeypatch.setattr("rblwatch.mailbox.os.open", real_open)
    assert [m.key for m in fetch(MaildirSource(box))] == sorted([first, second])  # read later
