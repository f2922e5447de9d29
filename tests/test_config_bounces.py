"""The `bounces:` section (issue 13): defaults, what each key becomes, and every refusal as one
line naming its key path, the password never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rblwatch import cli
from rblwatch.config import ConfigError, load_config, parse_config
from rblwatch.config.model import BouncesConfig, BounceSource, ImapConfig

PASSWORD = "Pa55-w0rd-not-to-show"
IMAP = {"host": "mail.example.com", "user": "bounces", "password": PASSWORD}


def bounces_of(section: object, base_dir: Path | None = None, **env: str) -> BouncesConfig:
    cfg = parse_config({"bounces": section}, base_dir=base_dir, env=env)
    assert cfg.bounces is not None
    return cfg.bounces


def imap_of(**imap: Any) -> ImapConfig:
    got = bounces_of({"sources": [{"name": "b", "imap": {**IMAP, **imap}}]}).sources[0].imap
    assert got is not None
    return got


def error_of(section: object, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config({"bounces": section}, env=env)
    text = str(info.value)
    assert "\n" not in text and PASSWORD not in text, text
    return text


def test_without_the_section_no_mailbox_is_read() -> None:
    assert parse_config({}).bounces is None
    assert parse_config({"bounces": None}).bounces is None


def test_the_documented_example(tmp_path: Path) -> None:
    (tmp_path / "imap.pw").write_text(PASSWORD + "\n")
    got = bounces_of(
        {
            "interval": "1m",
            "sources": [
                {"name": "postmaster", "maildir": "/var/mail/bounces"},
                {
                    "name": "imap-bounces",
                    "imap": {
                        "host": "mail.example.com",
                        "port": 993,
                        "tls": "imaps",
                        "user": "bounces",
                        "password_file": "imap.pw",
                        "folder": "INBOX",
                        "cafile": None,
                    },
                },
            ],
        },
        base_dir=tmp_path,
    )
    imap = ImapConfig("mail.example.com", "bounces", PASSWORD, 993, "imaps", "INBOX", None)
    assert got == BouncesConfig(
        60.0,
        (
            BounceSource("postmaster", maildir="/var/mail/bounces"),
            BounceSource("imap-bounces", imap=imap),
        ),
    )


def test_defaults_interval_tls_port_and_folder() -> None:
    got = bounces_of({"sources": [{"name": "b", "imap": IMAP}]})
    assert got.interval == 60.0
    assert got.sources[0].imap == ImapConfig("mail.example.com", "bounces", PASSWORD)
    assert (imap_of(tls="starttls").port, imap_of(tls="starttls", port=1143).port) == (143, 1143)
    assert imap_of(tls="none", host="127.0.0.1").port == 143


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    got = bounces_of(
        {
            "sources": [
                {"name": "a", "maildir": "mail/bounces"},
                {"name": "b", "imap": {**IMAP, "cafile": "ca.pem"}},
            ]
        },
        base_dir=tmp_path,
    )
    assert got.sources[0].maildir == str(tmp_path / "mail/bounces")
    assert got.sources[1].imap is not None
    assert got.sources[1].imap.cafile == str(tmp_path / "ca.pem")


def test_the_password_from_the_environment_and_hosts_in_canonical_form() -> None:
    got = bounces_of(
        {"sources": [{"name": "b", "imap": {**IMAP, "password": "${IMAP_PW}"}}]},
        IMAP_PW=PASSWORD,
    )
    assert got.sources[0].imap is not None and got.sources[0].imap.password == PASSWORD
    assert imap_of(host="MAIL.Example.COM.").host == "mail.example.com"
    assert imap_of(host="[::1]", tls="none").host == "::1"
    assert imap_of(host="2001:DB8::25").host == "2001:db8::25"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_plaintext_is_allowed_to_this_host(host: str) -> None:
    assert imap_of(host=host, tls="none").tls == "none"


def test_the_password_is_never_in_a_repr() -> None:
    cfg = parse_config({"bounces": {"sources": [{"name": "b", "imap": IMAP}]}})
    assert PASSWORD not in repr(cfg) and PASSWORD not in str(cfg)
    assert "mail.example.com" in repr(cfg)


def src(**source: Any) -> dict[str, Any]:
    return {"sources": [{"name": "b", **source}]}


def imap(**keys: Any) -> dict[str, Any]:
    return src(imap={**IMAP, **keys})


def without(key: str) -> dict[str, Any]:
    return src(imap={k: v for k, v in IMAP.items() if k != key})


@pytest.mark.parametrize(
    ("section", "where", "what"),
    [
        ([], "bounces", "must be a mapping"),
        ({}, "bounces.sources", "required"),
        ({"sources": []}, "bounces.sources", "at least one source"),
        ({"sources": {}}, "bounces.sources", "must be a list"),
        ({"sources": [{"maildir": "/m"}]}, "bounces.sources.0.name", "required"),
        (src(), "bounces.sources.0.maildir", "required (or imap)"),
        (src(maildir="/m", imap=IMAP), "bounces.sources.0.imap", "give maildir or imap"),
        (src(mbox="/m"), "bounces.sources.0.mbox", "unknown key"),
        (src(name="post master", maildir="/m"), "bounces.sources.0.name", "invalid name"),
        (
            {"sources": [{"name": "a", "maildir": "/m"}, {"name": "a", "maildir": "/n"}]},
            "bounces.sources.1",
            "duplicate source 'a' (also bounces.sources.0)",
        ),
        ({**src(maildir="/m"), "interval": "5s"}, "bounces.interval", "at least 10s"),
        ({**src(maildir="/m"), "interval": "2d"}, "bounces.interval", "at most 1d"),
        ({**src(maildir="/m"), "interval": "soon"}, "bounces.interval", "invalid duration"),
        (src(maildir=""), "bounces.sources.0.maildir", "must not be empty"),
        (imap(port=0), "bounces.sources.0.imap.port", "between 1 and 65535"),
        (imap(port=65536), "bounces.sources.0.imap.port", "between 1 and 65535"),
        (imap(port="imaps"), "bounces.sources.0.imap.port", "whole number"),
        (imap(tls="ssl"), "bounces.sources.0.imap.tls", "must be one of imaps, starttls, none"),
        (imap(tls="none"), "bounces.sources.0.imap.tls", "unencrypted over the network"),
        (
            imap(tls="none", host="192.0.2.25"),
            "bounces.sources.0.imap.tls",
            "allowed only to 127.0.0.1, ::1 or localhost",
        ),
        (imap(host="not a host!"), "bounces.sources.0.imap.host", "not a host name or an IP"),
        (without("host"), "bounces.sources.0.imap.host", "required"),
        (without("user"), "bounces.sources.0.imap.user", "required"),
        (without("password"), "bounces.sources.0.imap.password", "required (or password_file)"),
        (
            imap(password_file="/x"),
            "bounces.sources.0.imap.password_file",
            "give password or password_file, not both",
        ),
        (imap(password=12345), "bounces.sources.0.imap.password", "must be a string"),
        (imap(password=""), "bounces.sources.0.imap.password", "must not be empty"),
        (imap(password=PASSWORD + "\r\n"), "bounces.sources.0.imap.password", "line breaks"),
        (imap(password="${" + PASSWORD), "bounces.sources.0.imap.password", "not shown"),
        (imap(password="${NOPE}"), "bounces.sources.0.imap.password", "NOPE is not set"),
        (imap(user="a\nb"), "bounces.sources.0.imap.user", "line breaks"),
        (imap(folder=""), "bounces.sources.0.imap.folder", "must not be empty"),
        (imap(folder="Rückläufer"), "bounces.sources.0.imap.folder", "modified UTF-7"),
        (imap(folder="x" * 256), "bounces.sources.0.imap.folder", "at most 255"),
        (imap(pass_file="/x"), "bounces.sources.0.imap.pass_file", "did you mean"),
    ],
)
def test_each_refusal_is_one_line_naming_its_key(section: object, where: str, what: str) -> None:
    text = error_of(section)
    assert f": {where}: " in text and what in text, text


def test_an_unreadable_password_file_names_the_file_not_its_content() -> None:
    text = error_of(imap(password=None, password_file="nope.pw"))
    assert "bounces.sources.0.imap.password_file: cannot read 'nope.pw'" in text, text


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("bounces: {sources: [{name: b}]}\n", "bounces.sources.0.maildir"),
        (
            "bounces:\n  sources:\n    - name: b\n      imap: {host: mail.example.com, tls: none,"
            f" user: u, password: {PASSWORD}}}\n",
            "bounces.sources.0.imap.tls",
        ),
        ("bounces: {interval: 1s, sources: [{name: b, maildir: /m}]}\n", "bounces.interval"),
    ],
)
def test_check_config_refuses_with_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code = cli.main(["check-config", "--config.file", str(path)])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USAGE and out == ""
    assert err.count("\n") == 1 and f": {where}: " in err and PASSWORD not in err, err


def test_check_config_accepts_a_good_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "imap.pw").write_text(PASSWORD)
    path = tmp_path / "c.yaml"
    path.write_text(
        "targets: [{group: g, addresses: [192.0.2.10]}]\n"
        "bounces:\n  sources:\n    - {name: a, maildir: bounces}\n"
        "    - name: b\n      imap: {host: 127.0.0.1, tls: none, user: u, password_file: imap.pw}\n"
    )
    assert cli.main(["check-config", "--config.file", str(path)]) == 0
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    cfg = load_config(path)
    assert cfg.bounces is not None and cfg.bounces.sources[1].imap is not None
    assert cfg.bounces.sources[1].imap.password == PASSWORD
