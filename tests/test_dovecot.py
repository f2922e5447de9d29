"""The test IMAP server itself (tests/dovecot.py): what the mailbox tests rely on."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl

import pytest

from tests.dovecot import HOST, Dovecot, ssl_context

RAW = b"From: a@example.com\r\nSubject: hello\r\n\r\nbody\r\n"


def test_the_test_user_logs_in_on_the_plain_port(dovecot: Dovecot) -> None:
    conn = imaplib.IMAP4(HOST, dovecot.port or 0, timeout=5)
    assert conn.login(dovecot.user, dovecot.password)[0] == "OK"
    conn.logout()


def test_a_wrong_password_is_refused(dovecot: Dovecot) -> None:
    conn = imaplib.IMAP4(HOST, dovecot.port or 0, timeout=5)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        conn.login(dovecot.user, "not-the-password")
    conn.shutdown()


def test_an_appended_message_is_fetched_back_whole(dovecot: Dovecot) -> None:
    uid = dovecot.append("INBOX", RAW)
    with dovecot.imap() as conn:
        conn.select("INBOX", readonly=True)
        typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    assert typ == "OK"
    assert isinstance(data[0], tuple) and data[0][1] == RAW


def test_uids_grow_and_other_folders_are_created(dovecot: Dovecot) -> None:
    assert [dovecot.append("INBOX", RAW) for _ in range(3)] == [1, 2, 3]
    assert dovecot.append("Bounces", RAW) == 1
    assert dovecot.uidvalidity("Bounces") > 0
    assert (dovecot.maildir / ".Bounces").is_dir()


def test_an_appended_message_is_a_file_in_the_maildir(dovecot: Dovecot) -> None:
    dovecot.append("INBOX", RAW)
    files = [p for sub in ("new", "cur") for p in (dovecot.maildir / sub).iterdir()]
    # Dovecot stores lines with LF and gives them back over IMAP with CRLF
    assert [p.read_bytes() for p in files] == [RAW.replace(b"\r\n", b"\n")]


def test_imaps_verifies_with_the_cafile_by_name_and_by_address(dovecot: Dovecot) -> None:
    for host in ("localhost", HOST):
        conn = imaplib.IMAP4_SSL(
            host, dovecot.ssl_port or 0, ssl_context=ssl_context(dovecot.cafile), timeout=5
        )
        assert conn.login(dovecot.user, dovecot.password)[0] == "OK"
        conn.logout()


def test_starttls_is_offered_on_the_plain_port(dovecot: Dovecot) -> None:
    conn = imaplib.IMAP4(HOST, dovecot.port or 0, timeout=5)
    assert "STARTTLS" in conn.capabilities
    conn.starttls(ssl_context=ssl_context(dovecot.cafile))
    assert conn.login(dovecot.user, dovecot.password)[0] == "OK"
    conn.logout()


def test_imaps_with_only_the_system_cas_fails_verification(dovecot: Dovecot) -> None:
    # (imaplib's own default context verifies nothing: always hand it one)
    sock = socket.create_connection((HOST, dovecot.ssl_port or 0), timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
    sock.close()


def test_stop_is_an_outage_and_start_brings_back_the_same_ports_and_mail(
    dovecot: Dovecot,
) -> None:
    dovecot.append("INBOX", RAW)
    ports, validity = (dovecot.port, dovecot.ssl_port), dovecot.uidvalidity()
    dovecot.stop()
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port or 0), timeout=1).close()
    dovecot.start()
    assert (dovecot.port, dovecot.ssl_port) == ports
    assert dovecot.uidvalidity() == validity
    assert dovecot.append("INBOX", RAW) == 2


def test_everything_lives_in_the_work_dir_and_is_removed_by_close() -> None:
    srv = Dovecot().start()
    conf = (srv.workdir / "dovecot.conf").read_text()
    paths = re.findall(r"^\w+ = <?(/\S+)", conf, flags=re.M)
    assert paths and all(p.startswith(str(srv.workdir)) for p in paths), paths
    assert "listen = 127.0.0.1" in conf
    srv.close()
    assert not srv.workdir.exists()
