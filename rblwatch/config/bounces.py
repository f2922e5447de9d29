"""The `bounces:` section: the mailboxes the daemon reads returned mail from (issue 13).

Each source is a maildir directory or an IMAP folder. An IMAP password comes from `password`
(with ${VAR}s) or `password_file` and is never echoed, in a message or a repr; a plaintext login
(`tls: none`) is refused unless the server is this host. No file but `password_file` is touched
here: whether a maildir or a cafile can be read is the mailbox adapter's to say, at run time and
as the daemon's user.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from rblwatch.config.model import BOUNCE_TLS, IMAP_PORTS, BouncesConfig, BounceSource, ImapConfig
from rblwatch.config.values import (
    DAY,
    _choice,
    _dns_name,
    _duration,
    _group_name,
    _int,
    _read_file,
    _text,
)
from rblwatch.config.walker import (
    Parser,
    _Ctx,
    _exclusive,
    _Invalid,
    _items,
    _join,
    _kind_of,
    _one_of,
    _required,
    _show,
    _unique,
    _walk,
)

MIN_BOUNCE_INTERVAL = 10.0
MAX_BOUNCE_INTERVAL = DAY
MAX_FOLDER = 255
LOCAL_HOSTS = ("localhost",)  # and every loopback address


def _no_controls(value: str, what: str) -> str:
    # imaplib sends these as given: a line break would end the command and start another
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{what} must not contain line breaks or other control characters")
    if not value:
        raise ValueError(f"{what} must not be empty")
    return value


def _host(ctx: _Ctx, path: str, raw: object) -> str:
    text = _text(ctx, path, raw).strip()
    try:
        return str(ipaddress.ip_address(text.removeprefix("[").removesuffix("]")))
    except ValueError:
        pass
    try:
        return _dns_name(text)
    except ValueError:
        raise ValueError(f"{_show(text)} is not a host name or an IP address") from None


def _user(ctx: _Ctx, path: str, raw: object) -> str:
    return _no_controls(_text(ctx, path, raw), "the user name")


def _password(ctx: _Ctx, path: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"must be a string, not {_kind_of(raw)}")
    try:
        value = _text(ctx, path, raw)
    except ValueError as e:
        if str(e).startswith("environment variable"):  # names the variable, not the value
            raise
        raise ValueError("invalid ${...} in the password (write ${NAME}); not shown") from None
    return _no_controls(value, "the password")


def _password_file(ctx: _Ctx, path: str, raw: object) -> str:
    return _no_controls(_read_file(ctx, path, raw), "the password")


def _folder(ctx: _Ctx, path: str, raw: object) -> str:
    value = _no_controls(_text(ctx, path, raw), "the folder name")
    if not value.isascii():
        raise ValueError(
            f"{_show(value)} is not ASCII: write the name in IMAP's modified UTF-7"
            " (RFC 3501 §5.1.3), as the server lists it"
        )
    if len(value) > MAX_FOLDER:
        raise ValueError(f"at most {MAX_FOLDER} characters")
    return value


def _path(ctx: _Ctx, path: str, raw: object) -> str:
    """A file or directory; relative paths are relative to the config file, as for *_file."""
    value = _no_controls(_text(ctx, path, raw), "the path")
    if not value.startswith("/") and ctx.base_dir is not None:
        value = str(ctx.base_dir / value)
    return value


_IMAP_FIELDS: Mapping[str, Parser] = {
    "host": _host,
    "port": _int(1, 65535, between=True),
    "tls": _choice(*BOUNCE_TLS),
    "user": _user,
    "password": _password,
    "password_file": _password_file,
    "folder": _folder,
    "cafile": _path,
}


def _is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in LOCAL_HOSTS


def _imap(ctx: _Ctx, path: str, raw: object) -> ImapConfig:
    _exclusive(path, raw, ("password", "password_file"))
    fields = _walk(ctx, path, raw, _IMAP_FIELDS)
    _required(fields, path, "host")
    _required(fields, path, "user")
    password = _one_of(fields, "password", "password_file")
    if password is None:
        raise _Invalid(_join(path, "password"), "required (or password_file)")
    fields["password"] = password[1]
    tls = fields.get("tls", "imaps")
    if tls == "none" and not _is_local(fields["host"]):
        raise _Invalid(
            _join(path, "tls"),
            "none would send the password unencrypted over the network; it is allowed only to"
            " 127.0.0.1, ::1 or localhost (use imaps or starttls)",
        )
    fields.setdefault("port", IMAP_PORTS[tls])
    return ImapConfig(**fields)


_SOURCE_FIELDS: Mapping[str, Parser] = {"name": _group_name, "maildir": _path, "imap": _imap}


def _source(ctx: _Ctx, path: str, raw: object) -> BounceSource:
    _exclusive(path, raw, ("maildir", "imap"))
    fields = _walk(ctx, path, raw, _SOURCE_FIELDS)
    _required(fields, path, "name")
    if "maildir" not in fields and "imap" not in fields:
        raise _Invalid(_join(path, "maildir"), "required (or imap)")
    return BounceSource(**fields)


_FIELDS: Mapping[str, Parser] = {
    "interval": _duration(MAX_BOUNCE_INTERVAL, MIN_BOUNCE_INTERVAL),
    "sources": _items(_source),
}


def parse_bounces(ctx: _Ctx, path: str, raw: object) -> BouncesConfig:
    fields = _walk(ctx, path, raw, _FIELDS)
    sources = _required(fields, path, "sources")
    if not sources:
        raise _Invalid(_join(path, "sources"), "at least one source is required")
    _unique(_join(path, "sources"), [s.name for s in sources], "source")
    return BouncesConfig(**fields)
