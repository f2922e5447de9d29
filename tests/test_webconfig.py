"""`--web.config.file` (exporter-toolkit's format): parsing, certificates, watching the file,
and the command line's handling of it (`run`, `check-config`)."""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rblwatch.cli import main
from rblwatch.config import ConfigError
from rblwatch.webconfig import (
    CHECK_INTERVAL,
    WebConfigWatch,
    load_web_config,
    parse_web_config,
    tls_context,
)
from tests.daemon import config_text, free_tcp_port
from tests.tlscerts import Pki, bcrypt_hash, make_pki

ALICE = bcrypt_hash("wonderland")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def write(tmp_path: Path, text: str, name: str = "web.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_web_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


def test_node_exporter_s_web_config_is_read_unchanged(tmp_path: Path, pki: Pki) -> None:
    path = write(
        tmp_path,
        f"""\
tls_server_config:
  cert_file: {pki.cert}
  key_file: {pki.key}
  min_version: TLS12
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: true
http_server_config:
  http2: true
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
    Content-Security-Policy: "default-src 'self'"
basic_auth_users:
  alice: {ALICE}
""",
    )
    security = load_web_config(path)
    assert security.tls is not None and security.tls.cert_file == str(pki.cert)
    assert dict(security.users) == {"alice": ALICE}
    assert security.http.headers["X-Frame-Options"] == "deny"
    assert isinstance(tls_context(security), ssl.SSLContext)


def test_relative_certificate_paths_are_relative_to_the_web_config_file(
    tmp_path: Path, pki: Pki
) -> None:
    path = write(
        pki.cert.parent,
        "tls_server_config: {cert_file: server.crt, key_file: server.key}\n",
        "relative.yml",
    )
    security = load_web_config(path)
    assert security.tls is not None and security.tls.cert_file == str(pki.cert)


def test_inline_certificate_and_key_load_too(tmp_path: Path, pki: Pki) -> None:
    cert = pki.cert.read_text().replace("\n", "\n    ")
    key = pki.key.read_text().replace("\n", "\n    ")
    path = write(tmp_path, f"tls_server_config:\n  cert: |\n    {cert}\n  key: |\n    {key}\n")
    security = load_web_config(path)
    assert security.tls is not None and security.tls.cert_file is None
    assert "BEGIN" not in repr(security)  # the key is a secret
    assert list(tmp_path.glob("*.pem")) == []


def test_an_empty_file_or_an_empty_tls_section_is_plain_http(tmp_path: Path) -> None:
    assert load_web_config(write(tmp_path, "")).tls is None
    assert load_web_config(write(tmp_path, "tls_server_config: {}\n")).tls is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tls_server_config: {certfile: a}\n",
            "tls_server_config.certfile: unknown key 'certfile' (did you mean 'cert_file'?)",
        ),
        (
            "basic_auth: {}\n",
            "basic_auth: unknown key 'basic_auth' (did you mean 'basic_auth_users'?)",
        ),
        (
            "basic_auth_users: {alice: wonderland}\n",
            "basic_auth_users.alice: not a bcrypt hash (make one with"
            " `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
        ),
        (
            "http_server_config: {headers: {Server: x}}\n",
            "http_server_config.headers.Server: HTTP header 'Server' can not be configured",
        ),
        (
            "http_server_config: {headers: {X-Frame-Options: allow}}\n",
            "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin,"
            " not 'allow'",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}\n",
            "tls_server_config.min_version: unknown TLS version 'TLS14' (use one of TLS10,"
            " TLS11, TLS12, TLS13)",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b, min_version: TLS13,"
            " max_version: TLS12}\n",
            "tls_server_config.min_version: is above max_version TLS12",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b, cipher_suites: [TLS_FAKE]}\n",
            "tls_server_config.cipher_suites.0: unknown cipher 'TLS_FAKE'",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b,"
            " client_auth_type: RequireAnyClientCert}\n",
            "tls_server_config.client_auth_type: RequireAnyClientCert is not supported: Python's"
            " ssl cannot take a client certificate without verifying it (use"
            " VerifyClientCertIfGiven or RequireAndVerifyClientCert)",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b, client_ca_file: c}\n",
            "tls_server_config.client_auth_type: a client CA is configured but no client"
            " certificate is asked for (use RequireAndVerifyClientCert)",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b,"
            " client_auth_type: RequireAndVerifyClientCert}\n",
            "tls_server_config.client_ca_file: required with RequireAndVerifyClientCert",
        ),
        (
            "tls_server_config: {key_file: b}\n",
            "tls_server_config.cert_file: required (or cert) to serve TLS",
        ),
        (
            "tls_server_config: {cert_file: a, cert: b, key_file: c}\n",
            "tls_server_config.cert_file: give cert or cert_file, not both",
        ),
        (
            "rate_limit: {interval: 1s}\n",
            "rate_limit.burst: must be at least 1 (0 would refuse every request)",
        ),
        ("[1, 2]\n", "the top level must be a mapping of settings, not a list"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_file_and_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert error_of(tmp_path, text).startswith(expected)


def test_a_password_written_in_clear_is_never_echoed(tmp_path: Path) -> None:
    assert "hunter2" not in error_of(tmp_path, "basic_auth_users: {alice: hunter2}\n")


def test_a_missing_certificate_names_the_key_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.crt"
    message = error_of(tmp_path, f"tls_server_config: {{cert_file: {missing}, key_file: k}}\n")
    assert message.startswith("tls_server_config.cert_file: cannot read ")
    assert str(missing) in message


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path, pki: Pki) -> None:
    text = f"tls_server_config: {{cert_file: {pki.cert}, key_file: {pki.client_key}}}\n"
    assert error_of(tmp_path, text).startswith("tls_server_config.cert_file: cannot load: ")


def test_what_python_s_ssl_cannot_apply_is_named_as_ignored(tmp_path: Path, pki: Pki) -> None:
    path = write(
        tmp_path,
        f"tls_server_config: {{cert_file: {pki.cert}, key_file: {pki.key},"
        " curve_preferences: [X25519, CurveP256]}\nhttp_server_config: {http2: false}\n",
    )
    notes = load_web_config(path).ignored()
    assert [n.split(": ", 1)[1].split(" ")[0] for n in notes] == [
        "tls_server_config.curve_preferences",
        "http_server_config.http2",
    ]


def test_the_tls_settings_are_applied_to_the_context(tmp_path: Path, pki: Pki) -> None:
    path = write(
        tmp_path,
        f"tls_server_config: {{cert_file: {pki.cert}, key_file: {pki.key}, min_version: TLS13,"
        f" client_auth_type: RequireAndVerifyClientCert, client_ca_file: {pki.ca},"
        " prefer_server_cipher_suites: false}\n",
    )
    ctx = tls_context(load_web_config(path))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_3
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert not ctx.options & ssl.OP_CIPHER_SERVER_PREFERENCE


# --- watching the file -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_changed_file_is_read_again_at_most_once_a_second(tmp_path: Path) -> None:
    path = write(tmp_path, f"basic_auth_users: {{alice: '{ALICE}'}}\n")
    clock = Clock()
    watch = WebConfigWatch(str(path), clock=clock)
    bob = bcrypt_hash("builder")
    write(tmp_path, f"basic_auth_users: {{bob: '{bob}'}}\n")
    clock.now += CHECK_INTERVAL / 2
    assert list(watch.current().users) == ["alice"]  # not looked at yet
    clock.now += CHECK_INTERVAL
    assert list(watch.current().users) == ["bob"]


def test_a_bad_change_keeps_the_running_settings_and_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, f"basic_auth_users: {{alice: '{ALICE}'}}\n")
    clock = Clock()
    watch = WebConfigWatch(str(path), clock=clock)
    write(tmp_path, "basic_auth_users: {alice: plain}\n")
    with caplog.at_level(logging.ERROR, "rblwatch.web"):
        for _ in range(3):
            clock.now += CHECK_INTERVAL
            assert list(watch.current().users) == ["alice"]
    errors = [r.getMessage() for r in caplog.records]
    assert errors == [
        f"web config not reloaded, keeping the running one: {path}: basic_auth_users.alice:"
        " not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
    ]


def test_a_renewed_certificate_gives_a_new_context(tmp_path: Path, pki: Pki) -> None:
    cert, key = tmp_path / "s.crt", tmp_path / "s.key"
    cert.write_bytes(pki.cert.read_bytes())
    key.write_bytes(pki.key.read_bytes())
    path = write(tmp_path, "tls_server_config: {cert_file: s.crt, key_file: s.key}\n")
    clock = Clock()
    watch = WebConfigWatch(str(path), clock=clock)
    before = watch.tls_context()
    clock.now += CHECK_INTERVAL
    assert watch.tls_context() is before  # nothing changed: nothing read
    renewed = make_pki(tmp_path / "renewed")
    cert.write_bytes(renewed.cert.read_bytes())
    key.write_bytes(renewed.key.read_bytes())
    clock.now += CHECK_INTERVAL
    assert watch.tls_context() is not before


def test_tls_cannot_be_switched_off_on_reload(tmp_path: Path, pki: Pki) -> None:
    path = write(tmp_path, f"tls_server_config: {{cert_file: {pki.cert}, key_file: {pki.key}}}\n")
    watch = WebConfigWatch(str(path))
    write(tmp_path, "")
    assert watch.reload() == (
        f"{path}: tls_server_config: cannot be added or removed on reload (restart rblwatch)"
    )
    assert watch.tls


def test_parse_web_config_takes_loaded_yaml() -> None:
    assert parse_web_config({"basic_auth_users": {"a": ALICE}}, "<test>").users == {"a": ALICE}


# --- the command line --------------------------------------------------------------------------


def daemon_config(tmp_path: Path, extra_web: str = "") -> Path:
    text = config_text(dns_port=free_tcp_port(), web_port=free_tcp_port(), store=tmp_path / "s.db")
    if extra_web:
        text = text.replace("web:\n", f"web:\n  {extra_web}\n")
    return write(tmp_path, text, "rblwatch.yml")


def test_check_config_validates_the_web_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = daemon_config(tmp_path)
    good = write(tmp_path, f"basic_auth_users: {{alice: '{ALICE}'}}\n", "good.yml")
    assert main(["check-config", "--config.file", str(cfg), "--web.config.file", str(good)]) == 0
    assert f"{good}: OK (plain HTTP, 1 basic-auth user(s))" in capsys.readouterr().out
    bad = write(tmp_path, "basic_auth_users: {alice: x}\n", "bad.yml")
    assert main(["check-config", "--config.file", str(cfg), "--web.config.file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rblwatch: {bad}: basic_auth_users.alice: not a bcrypt hash")
    assert err.count("\n") == 1


def test_the_config_s_web_config_file_is_used_and_the_flag_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "basic_auth_users: {alice: x}\n", "bad.yml")
    cfg = daemon_config(tmp_path, "config_file: bad.yml")  # relative to the config file
    assert main(["check-config", "--config.file", str(cfg)]) == 2
    assert "bad.yml: basic_auth_users.alice: not a bcrypt hash" in capsys.readouterr().err
    good = write(tmp_path, "", "good.yml")
    assert main(["check-config", "--config.file", str(cfg), "--web.config.file", str(good)]) == 0


def test_run_with_a_bad_web_config_file_exits_2_with_one_line(tmp_path: Path) -> None:
    cfg = daemon_config(tmp_path)
    bad = write(tmp_path, "tls_server_config: {cert_file: nowhere.crt, key_file: k}\n", "w.yml")
    proc = subprocess.run(
        [sys.executable, "-m", "rblwatch", "run", "--config.file", str(cfg),
         "--web.config.file", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"rblwatch: {bad}: tls_server_config.cert_file: cannot read ")
    assert proc.stderr.count("\n") == 1


def test_the_readme_s_example_web_config_is_valid() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exposing the listener", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    security = parse_web_config(yaml.safe_load(example), "README.md")
    assert security.tls is not None and list(security.users) == ["prometheus", "alice"]
