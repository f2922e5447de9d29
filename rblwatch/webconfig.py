"""`--web.config.file`: the listener's TLS and basic-auth users, in the format of Prometheus'
exporter-toolkit (docs/web-configuration.md), so the file an operator already gives
node_exporter works here unchanged.

The file is parsed like rblwatch's own config (bounded YAML, duplicate keys refused, unknown
keys refused — exporter-toolkit uses strict YAML too — and every error one line naming the file
and the key). What Python's `ssl` cannot do is either refused (client certificates requested
without verification) or accepted and ignored with a note (`curve_preferences`, `http2`): a
setting that would loosen security is never ignored silently.

exporter-toolkit reads the file on every request and the certificate on every handshake.
`WebConfigWatch` does the cheap equivalent: at most once a second (and on every reload), a
`stat` of the file and of the certificate, key and CA files it names; only when one of them
changed is anything read again. A change that does not parse is logged and the running
settings are kept, as a bad reload of the main config is (SPEC §13).
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rblwatch.config import ConfigError
from rblwatch.config.loader import _load_yaml, read_config_text
from rblwatch.config.values import MINUTE, _bool, _duration, _int
from rblwatch.config.walker import (
    _Ctx,
    _exclusive,
    _Invalid,
    _items,
    _join,
    _kind_of,
    _mapping,
    _section,
    _show,
    _walk,
)
from rblwatch.model import frozen_map

log = logging.getLogger("rblwatch.web")

CHECK_INTERVAL = 1.0  # seconds between two looks at the files' mtimes
MAX_USERS = 1000  # basic auth is for a few users (exporter-toolkit's advice too)

# exporter-toolkit's extraHTTPHeaders: the headers a file may set, and their allowed values
HEADERS: Mapping[str, tuple[str, ...]] = {
    "Strict-Transport-Security": (),
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": (),
    "Content-Security-Policy": (),
}
TLS_VERSIONS: Mapping[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# Go's tls.CipherSuites() names → OpenSSL's. The TLS 1.3 suites are not configurable (in Go
# either): accepted, and always on.
TLS13_SUITES = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)
CIPHERS: Mapping[str, str] = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")
CLIENT_AUTH: Mapping[str, ssl.VerifyMode] = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# Go asks for a certificate and takes it unverified; OpenSSL (so Python) cannot: refused, since
# verifying instead would lock clients out and not asking would let them all in
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert")
# bcrypt's modular crypt format: $2a$, $2b$ or $2y$, a two-digit cost, 53 characters of salt+hash
# (not the ancient "$2$", which Python's bcrypt cannot check: it would fail every login)
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


@dataclass(frozen=True, slots=True)
class TLSServerConfig:
    cert_file: str | None = None
    key_file: str | None = None
    cert: str | None = field(default=None, repr=False)  # inline PEM, instead of cert_file
    key: str | None = field(default=None, repr=False)  # a secret
    client_ca_file: str | None = None
    client_ca: str | None = field(default=None, repr=False)
    client_auth_type: str = "NoClientCert"
    client_allowed_sans: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()

    def files(self) -> tuple[str, ...]:
        """The files the context is built from (their changes reload it)."""
        named = (self.cert_file, self.key_file, self.client_ca_file)
        return tuple(f for f in named if f is not None)


@dataclass(frozen=True, slots=True)
class HTTPServerConfig:
    http2: bool | None = None  # accepted and ignored: aiohttp serves HTTP/1.1
    headers: Mapping[str, str] = field(default_factory=lambda: frozen_map({}))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """exporter-toolkit's token bucket: one request per `interval`, `burst` at once."""

    interval: float = 0.0  # 0: no limit
    burst: int = 0


@dataclass(frozen=True, slots=True)
class WebSecurity:
    """A parsed web config file (`source`); the empty one (no file) changes nothing."""

    source: str = ""
    tls: TLSServerConfig | None = None
    http: HTTPServerConfig = field(default_factory=HTTPServerConfig)
    users: Mapping[str, str] = field(default_factory=lambda: frozen_map({}), repr=False)
    rate_limit: RateLimit = field(default_factory=RateLimit)

    def ignored(self) -> list[str]:
        """One line per setting that is accepted but has no effect here."""
        notes = []
        if self.tls is not None and self.tls.curve_preferences:
            notes.append(
                "tls_server_config.curve_preferences is ignored: Python's ssl cannot set a"
                " preference list (OpenSSL's default groups apply)"
            )
        if self.tls is not None and TLS13_SUITES & set(self.tls.cipher_suites):
            notes.append(
                "tls_server_config.cipher_suites: TLS 1.3 suites are always on (not configurable)"
            )
        if self.http.http2 is not None:
            notes.append("http_server_config.http2 is ignored: rblwatch serves HTTP/1.1")
        return [f"{self.source}: {n}" for n in notes]


# --- parsing -----------------------------------------------------------------------------------


def _string(ctx: _Ctx, path: str, raw: object) -> str:
    # no ${VAR} expansion: exporter-toolkit has none, and a bcrypt hash is full of '$'
    if not isinstance(raw, str):
        raise ValueError(f"must be a string, not {_kind_of(raw)}")
    return raw


def _file(ctx: _Ctx, path: str, raw: object) -> str:
    """A file name; relative to the web config file's directory, as exporter-toolkit does."""
    name = _string(ctx, path, raw)
    if ctx.base_dir is not None and not os.path.isabs(name):
        return str(ctx.base_dir / name)
    return name


def _one(allowed: Mapping[str, object] | tuple[str, ...], what: str) -> Any:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        value = _string(ctx, path, raw)
        if value not in allowed:
            raise ValueError(f"unknown {what} {_show(value)} (use one of {', '.join(allowed)})")
        return value

    return parse


def _client_auth(ctx: _Ctx, path: str, raw: object) -> str:
    value = _string(ctx, path, raw)
    if value in _UNVERIFIED_CLIENT_AUTH:
        raise ValueError(
            f"{value} is not supported: Python's ssl cannot take a client certificate without"
            " verifying it (use VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
        )
    return (
        "NoClientCert" if value == "" else _one(CLIENT_AUTH, "client_auth_type")(ctx, path, value)
    )


def _cipher(ctx: _Ctx, path: str, raw: object) -> str:
    return _one((*TLS13_SUITES, *CIPHERS), "cipher")(ctx, path, raw)  # type: ignore[no-any-return]


def _headers(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    out = {}
    for name, value in _mapping(path, raw).items():
        at = _join(path, name)
        if name not in HEADERS:
            raise _Invalid(at, f"HTTP header {_show(name)} can not be configured")
        text = _string(ctx, at, value) if value is not None else ""
        allowed = HEADERS[name]
        if allowed and text not in allowed:
            raise _Invalid(at, f"must be one of {', '.join(allowed)}, not {_show(text)}")
        if text:  # "Unset if blank"
            out[name] = text
    return frozen_map(out)


def _users(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    users = _mapping(path, raw)
    if len(users) > MAX_USERS:
        raise _Invalid(path, f"more than {MAX_USERS} users (use a proxy for many users)")
    out = {}
    for name, hashed in users.items():
        at = _join(path, name)
        text = _string(ctx, at, hashed) if hashed is not None else ""
        if not _BCRYPT.fullmatch(text):
            # never echo it: it may be a password written in clear by mistake
            raise _Invalid(
                at,
                "not a bcrypt hash (make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
            )
        out[name] = text
    return frozen_map(out)


_TLS_FIELDS = {
    "cert_file": _file,
    "key_file": _file,
    "cert": _string,
    "key": _string,
    "client_ca_file": _file,
    "client_ca": _string,
    "client_auth_type": _client_auth,
    "client_allowed_sans": _items(_string),
    "min_version": _one(TLS_VERSIONS, "TLS version"),
    "max_version": _one(TLS_VERSIONS, "TLS version"),
    "cipher_suites": _items(_cipher),
    "prefer_server_cipher_suites": _bool,
    "curve_preferences": _items(_one(CURVES, "curve")),
}
_ENABLING = (
    "cert_file",
    "cert",
    "key_file",
    "key",
    "client_ca_file",
    "client_ca",
    "client_auth_type",
)


def _tls(ctx: _Ctx, path: str, raw: object) -> TLSServerConfig | None:
    _exclusive(
        path, raw, ("cert", "cert_file"), ("key", "key_file"), ("client_ca", "client_ca_file")
    )
    fields = _walk(ctx, path, raw, _TLS_FIELDS)
    if not any(fields.get(k) for k in _ENABLING):  # exporter-toolkit's IsEnabled: plain HTTP
        return None
    tls = TLSServerConfig(**fields)
    if not (tls.cert or tls.cert_file):
        raise _Invalid(_join(path, "cert_file"), "required (or cert) to serve TLS")
    if not (tls.key or tls.key_file):
        raise _Invalid(_join(path, "key_file"), "required (or key) to serve TLS")
    has_ca = bool(tls.client_ca or tls.client_ca_file)
    if has_ca and tls.client_auth_type == "NoClientCert":
        raise _Invalid(
            _join(path, "client_auth_type"),
            "a client CA is configured but no client certificate is asked for"
            " (use RequireAndVerifyClientCert)",
        )
    if not has_ca and tls.client_auth_type != "NoClientCert":
        raise _Invalid(_join(path, "client_ca_file"), f"required with {tls.client_auth_type}")
    if tls.client_allowed_sans and tls.client_auth_type != "RequireAndVerifyClientCert":
        raise _Invalid(
            _join(path, "client_allowed_sans"), "needs client_auth_type RequireAndVerifyClientCert"
        )
    if TLS_VERSIONS[tls.min_version] > TLS_VERSIONS[tls.max_version]:
        raise _Invalid(_join(path, "min_version"), f"is above max_version {tls.max_version}")
    return tls


def _rate_limit(ctx: _Ctx, path: str, raw: object) -> RateLimit:
    limit: RateLimit = _section(
        RateLimit, {"interval": _duration(MINUTE * 60, zero_ok=True), "burst": _int(0, 1_000_000)}
    )(ctx, path, raw)
    if limit.interval and limit.burst < 1:
        raise _Invalid(_join(path, "burst"), "must be at least 1 (0 would refuse every request)")
    return limit


_TOP: Mapping[str, Callable[[_Ctx, str, object], Any]] = {
    "tls_server_config": _tls,
    "http_server_config": _section(HTTPServerConfig, {"http2": _bool, "headers": _headers}),
    "basic_auth_users": _users,
    "rate_limit": _rate_limit,
}


def parse_web_config(data: object, source: str, base_dir: Path | None = None) -> WebSecurity:
    """Validate loaded YAML; ConfigError naming `source` and the key on the first problem."""
    ctx = _Ctx({}, base_dir, expand=False)
    if data is not None and not isinstance(data, Mapping):
        problem = f"the top level must be a mapping of settings, not {_kind_of(data)}"
        raise ConfigError(source, "", problem)
    try:
        parsed = _walk(ctx, "", {} if data is None else data, _TOP)
    except _Invalid as e:
        raise ConfigError(source, e.path, e.problem) from None
    names = {"tls_server_config": "tls", "http_server_config": "http", "basic_auth_users": "users"}
    return WebSecurity(source=source, **{names.get(k, k): v for k, v in parsed.items()})


def load_web_config(path: str | os.PathLike[str]) -> WebSecurity:
    """Read and validate a web config file, its certificates included; ConfigError if bad."""
    source = os.fspath(path)
    data = _load_yaml(source, read_config_text(source))
    security = parse_web_config(data, source, Path(source).absolute().parent)
    if security.tls is not None:
        tls_context(security)  # a certificate that does not load is this file's error
    return security


# --- the TLS context ---------------------------------------------------------------------------


def tls_context(security: WebSecurity) -> ssl.SSLContext:
    """The server context of `security.tls`; ConfigError naming the key whose file is bad."""
    tls = security.tls
    assert tls is not None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = TLS_VERSIONS[tls.min_version]
    ctx.maximum_version = TLS_VERSIONS[tls.max_version]
    if tls.prefer_server_cipher_suites:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    suites = [CIPHERS[c] for c in tls.cipher_suites if c in CIPHERS]
    for key in ("cert_file", "key_file", "client_ca_file"):
        _readable(security.source, key, getattr(tls, key))
    where = "tls_server_config"
    try:
        if suites:
            where = "tls_server_config.cipher_suites"
            ctx.set_ciphers(":".join(suites))
        where = "tls_server_config.cert_file"
        _load_chain(ctx, tls)
        ctx.verify_mode = CLIENT_AUTH[tls.client_auth_type]
        if tls.client_ca_file is not None:
            where = "tls_server_config.client_ca_file"
            ctx.load_verify_locations(cafile=tls.client_ca_file)
        elif tls.client_ca is not None:
            where = "tls_server_config.client_ca"
            ctx.load_verify_locations(cadata=tls.client_ca)
    except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
        raise ConfigError(security.source, where, f"cannot load: {_ssl_reason(e)}") from None
    return ctx


def _readable(source: str, key: str, name: str | None) -> None:
    """A file the context needs exists and is ours to read: else its key says so."""
    if name is None:
        return
    try:
        with open(name, "rb"):
            pass
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or e
        raise ConfigError(
            source, f"tls_server_config.{key}", f"cannot read {name}: {why}"
        ) from None


def _load_chain(ctx: ssl.SSLContext, tls: TLSServerConfig) -> None:
    if tls.cert is None and tls.key is None:
        assert tls.cert_file is not None
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        return
    # OpenSSL loads a chain from files only: inline PEM goes through a private temporary file,
    # removed at once
    with tempfile.TemporaryDirectory(prefix="rblwatch-tls-") as tmp:
        cert = tls.cert_file or _write(Path(tmp, "cert.pem"), tls.cert or "")
        key = tls.key_file or _write(Path(tmp, "key.pem"), tls.key or "")
        ctx.load_cert_chain(cert, key)


def _write(path: Path, text: str) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return str(path)


def _ssl_reason(e: Exception) -> str:
    if isinstance(e, ssl.SSLError):
        return (e.reason or str(e)).replace("_", " ").lower()
    return str(e).split("\n")[0]


# --- watching the file -------------------------------------------------------------------------

_Signature = tuple[tuple[int, int, int] | None, ...]


def _signature(paths: tuple[str, ...]) -> _Signature:
    def one(path: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    return tuple(one(p) for p in paths)


class WebConfigWatch:
    """The current web config and TLS context of a file, re-read when it (or a file it names)
    changes. Constructing it reads the file: ConfigError if it is bad."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.clock = clock
        self.security, self.context = self._load()
        self._signature = self._look()
        self._checked = clock()
        for line in self.security.ignored():
            log.info("%s", line)

    @property
    def tls(self) -> bool:
        return self.context is not None

    def _paths(self) -> tuple[str, ...]:
        tls = self.security.tls
        return (self.path, *(tls.files() if tls is not None else ()))

    def _look(self) -> _Signature:
        return _signature(self._paths())

    def _load(self) -> tuple[WebSecurity, ssl.SSLContext | None]:
        security = load_web_config(self.path)
        return security, (tls_context(security) if security.tls is not None else None)

    def current(self) -> WebSecurity:
        """The settings now: the files are looked at if the last look is CHECK_INTERVAL old."""
        now = self.clock()
        if now - self._checked >= CHECK_INTERVAL:
            self._checked = now
            if self._look() != self._signature:
                problem = self.reload()
                if problem:
                    log.error("web config not reloaded, keeping the running one: %s", problem)
        return self.security

    def tls_context(self) -> ssl.SSLContext | None:
        """The context for a new connection (the certificate as it is now)."""
        self.current()
        return self.context

    def reload(self) -> str:
        """Read the files again; "" if the new settings are in force, else why not."""
        signature = self._look()
        try:
            security, context = self._load()
        except ConfigError as e:
            self._signature = signature  # the same bad file is reported once, not every second
            return str(e)
        if (security.tls is None) != (self.security.tls is None):
            self._signature = signature
            return (
                f"{self.path}: tls_server_config: cannot be added or removed on reload"
                " (restart rblwatch)"
            )
        changed = security != self.security or signature != self._signature
        self.security, self.context = security, context
        self._signature = self._look()
        if changed:
            for line in security.ignored():
                log.info("%s", line)
        return ""


def describe(watch: WebConfigWatch | None) -> str:
    """A short phrase for the start-up log line."""
    if watch is None:
        return "plain HTTP, no authentication"
    users = len(watch.security.users)
    auth = f"{users} basic-auth user(s)" if users else "no authentication"
    return ("TLS" if watch.tls else "plain HTTP") + f", {auth}"


__all__ = [
    "CHECK_INTERVAL",
    "HTTPServerConfig",
    "RateLimit",
    "TLSServerConfig",
    "WebConfigWatch",
    "WebSecurity",
    "describe",
    "load_web_config",
    "parse_web_config",
    "tls_context",
]
