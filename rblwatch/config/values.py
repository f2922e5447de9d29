"""Leaf values of a config: text with ${VAR}s, numbers, durations, names, addresses, URLs, files.

Each parser raises ValueError with a message that never echoes more than a short excerpt of the
bad value (`_show`); the walker names the key. Every number a user gives has an upper bound
here, documented in config.example.yaml and the README.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from pathlib import Path

from rblwatch.config.walker import Parser, _call, _Ctx, _Invalid, _join, _kind_of, _mapping, _show
from rblwatch.model import Nameserver, a_label, frozen_map

MIN_INTERVAL = 1.0  # SPEC §1a: intervals down to 1s (tests, local mirrors); politeness is budgets
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0
MAX_SECRET_FILE_BYTES = 64 * 1024  # a *_file holds a URL, a key or a zone: small
MAX_LABEL_NAME = 64
MAX_LABEL_VALUE = 1024
MAX_LABELS = 32  # per target group: each is a metric label and an alert field
# The `store.url` schemes a store exists for: the store package's SCHEMES, which config cannot
# import (config imports nothing of rblwatch but the model); a test holds the two together.
STORE_SCHEMES: tuple[str, ...] = ("sqlite", "postgresql", "postgres")
_STORE_FORMS = "sqlite:///PATH or postgresql://USER@HOST/DB"  # for messages
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,31}")  # RFC 3986, short: a scheme is echoed in messages


# --- text and numbers -------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand(env: Mapping[str, str], text: str) -> tuple[str, str | None]:
    """`text` with ${VAR}s expanded, and a display form with them masked (None: nothing secret)."""
    if "$" not in text:
        return text, None

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if not _VAR_NAME.fullmatch(name):
            raise ValueError(
                f"invalid variable reference ${{{_show(name)[1:-1]}}} (write ${{NAME}})"
            )
        if name not in env:
            raise ValueError(f"environment variable {name} is not set")
        return env[name]

    expanded = _VAR.sub(value, text)
    masked = _VAR.sub("***", text)
    if "${" in masked:
        raise ValueError("unterminated '${' (write ${NAME})")
    return expanded, (masked if masked != text else None)


def _text(ctx: _Ctx, path: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"must be a string, not {_kind_of(raw)}")
    return _expand(ctx.env, raw)[0] if ctx.expand else raw


def _bool(ctx: _Ctx, path: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"must be true or false, not {_show(raw)}")
    return raw


def _int(low: int, high: int, *, between: bool = False) -> Parser:
    """A whole number in [low, high]; `between` for a natural range, else high is a safety bound."""

    def parse(ctx: _Ctx, path: str, raw: object) -> int:
        if isinstance(raw, str):
            raw = _text(ctx, path, raw)
            raw = int(raw) if raw.strip().isdigit() and len(raw) < 20 else raw
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ValueError(f"must be a whole number, not {_show(raw)}")
        if not low <= raw <= high:
            span = f"between {low} and {high}" if between else None
            span = span or (f"at least {low}" if raw < low else f"at most {high:,}")
            raise ValueError(f"must be {span}, not {_show(raw)}")
        return raw

    return parse


def _number(high: float) -> Parser:
    """A number > 0 and ≤ high (max_qps)."""

    def parse(ctx: _Ctx, path: str, raw: object) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"must be a number, not {_show(raw)}")
        if not math.isfinite(raw) or raw <= 0:
            raise ValueError(f"must be greater than 0, not {_show(raw)}")
        if raw > high:
            raise ValueError(f"must be at most {high:,g}, not {_show(raw)}")
        return float(raw)

    return parse


def _choice(*allowed: str) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        value = _text(ctx, path, raw)
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {_show(value)}")
        return value

    return parse


# --- durations ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d{1,15}(?:\.\d{1,15})?")
_DURATION = re.compile(r"(?:\d{1,15}(?:\.\d{1,15})?(?:ms|s|m|h|d)){1,5}")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")  # "ms" before "m" matters
_UNIT = {"ms": 0.001, "s": 1.0, "m": MINUTE, "h": HOUR, "d": DAY}


def _seconds(raw: object) -> float:
    """A duration ≥ 0 in seconds, or ValueError."""
    seconds = math.nan
    text = raw.strip() if isinstance(raw, str) else ""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw) if not isinstance(raw, int) or raw.bit_length() < 64 else math.inf
    elif _NUMBER.fullmatch(text):
        seconds = float(text)
    elif _DURATION.fullmatch(text):
        seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {_show(raw)} (use e.g. 30s, 10m, 1h)")
    return seconds


def parse_duration(text: object) -> float:
    """Seconds from `500ms`, `10s`, `30m`, `1h`, `7d`, `1h30m` or a plain number; must be > 0."""
    seconds = _seconds(text)
    if seconds <= 0:
        raise ValueError(f"duration must be greater than 0, not {_show(text)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest of `7d`, `1h`, `30m`, `10s`, `500ms` that is exact, else plain seconds."""
    for unit in ("d", "h", "m", "s", "ms"):
        count = seconds / _UNIT[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds:.15g}"  # not :g, which keeps 6 digits: 13929.451 would show as 13929.5


def _duration(maximum: float, minimum: float = 0.0, *, zero_ok: bool = False) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> float:
        value = _expand(ctx.env, raw)[0] if isinstance(raw, str) else raw
        if zero_ok and _seconds(value) == 0:
            return 0.0
        seconds = parse_duration(value)
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum:g}s, not {_show(raw)}")
        if seconds > maximum:
            raise ValueError(f"must be at most {format_duration(maximum)}, not {_show(raw)}")
        return seconds

    return parse


# --- files -------------------------------------------------------------------------------------


def _file_name(ctx: _Ctx, path: str, raw: object) -> str:
    """A file's name, relative to the config file's directory (read later, by its user)."""
    name = _text(ctx, path, raw)
    if not name:
        raise ValueError("must not be empty")
    file = Path(name)
    if not file.is_absolute() and ctx.base_dir is not None:
        file = ctx.base_dir / file
    return str(file)


def _read_file(ctx: _Ctx, path: str, raw: object) -> str:
    """The stripped contents of a `*_file`; relative paths are relative to the config file."""
    name = _text(ctx, path, raw)
    file = Path(name)
    if not file.is_absolute() and ctx.base_dir is not None:
        file = ctx.base_dir / file
    try:
        with file.open("rb") as f:
            data = f.read(MAX_SECRET_FILE_BYTES + 1)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the name
        raise ValueError(
            f"cannot read {_show(name)}: {getattr(e, 'strerror', None) or e}"
        ) from None
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise ValueError(f"{_show(name)} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB")
    try:
        content = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"cannot read {_show(name)}: not UTF-8 text") from None
    if not content:
        raise ValueError(f"{_show(name)} is empty")
    return content


# --- names -------------------------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_LOOKS_NUMERIC = re.compile(r"[0-9.]+")
_LIST_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_NAME = 63  # list, group and receiver names: metric label values, file-friendly
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _dns_name(text: str, shown: str | None = None) -> str:
    """A DNS name in A-label form, lower case, no trailing dot; `shown` is used in messages."""
    name = text.strip().lower().removesuffix(".")
    bad = ValueError(f"{_show(shown or text)} is not a valid DNS name")
    if len(name) > 1000:  # the IDNA codec is slow on long text; no name is this long
        raise bad
    try:
        # IDNA 2008, as for every other name rblwatch asks about (model.a_label)
        labels = [a_label(label) for label in name.split(".")]
    except ValueError:
        raise bad from None
    ascii_name = ".".join(labels)
    if len(ascii_name) > 253 or not all(len(x) <= 63 and _LABEL.fullmatch(x) for x in labels):
        raise bad
    return ascii_name


def _host_name(ctx: _Ctx, path: str, raw: object) -> str:
    """A domain or host name target; something that looks like an address goes elsewhere."""
    text = _text(ctx, path, raw)
    if ":" in text or "/" in text or _LOOKS_NUMERIC.fullmatch(text.strip()):
        raise ValueError(f"{_show(text)} is an address, not a name; put it under addresses")
    name = _dns_name(text)
    if "." not in name:
        raise ValueError(f"{_show(text)} is not a fully qualified name")
    return name


def _name(pattern: re.Pattern[str], rule: str) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        value = _text(ctx, path, raw)
        if not pattern.fullmatch(value):
            raise ValueError(f"invalid name {_show(value)} ({rule})")
        if len(value) > MAX_NAME:
            raise ValueError(f"invalid name {_show(value)} (at most {MAX_NAME} characters)")
        return value

    return parse


_list_name = _name(_LIST_NAME, "lowercase letters, digits and '-'")
_group_name = _name(_GROUP_NAME, "letters, digits, '_', '.' and '-'")


def _labels(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for key, value in _mapping(path, raw).items():
        where = _join(path, key)
        if not _LABEL_NAME.fullmatch(key) or len(key) > MAX_LABEL_NAME:
            raise _Invalid(where, "label names are letters, digits and '_'" + _at_most(key))
        out[key] = _call(_text, ctx, where, value)
        if len(out[key]) > MAX_LABEL_VALUE:
            raise _Invalid(where, f"label values are at most {MAX_LABEL_VALUE} characters")
        if len(out) > MAX_LABELS:
            raise _Invalid(where, f"at most {MAX_LABELS} labels per group")
    return frozen_map(out)


def _at_most(key: str) -> str:
    return f", at most {MAX_LABEL_NAME}" if len(key) > MAX_LABEL_NAME else ""


# --- addresses ---------------------------------------------------------------------------------


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port in {_show(whole)} (1 to 65535)")
    return int(text)


def parse_nameserver(text: str) -> Nameserver:
    """(address, port) from `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[::1]:5353`."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid nameserver {_show(text)} (write IPv6 as [::1] or [::1]:53)")
        port = rest[1:] or port
    elif text.count(":") == 1:  # more than one colon: a bare IPv6 address
        host, _, port = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"invalid nameserver {_show(text)} (use an IP address, optionally with :port)"
        ) from None
    return Nameserver(str(address), _port(port, text))


def format_nameserver(host: str, port: int) -> str:
    """`host:port`, with IPv6 in brackets: how a nameserver is shown."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _nameserver(ctx: _Ctx, path: str, raw: object) -> Nameserver:
    return parse_nameserver(_text(ctx, path, raw))


def _ip_network(text: str, kind: str = "address or network") -> str:
    """The canonical form of an address or CIDR; a CIDR with host bits set is an error."""
    if "%" in text:
        raise ValueError(f"{_show(text)}: scoped IPv6 addresses cannot be looked up")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError(f"{_show(text)} is not an IP {kind}") from None
    if "/" not in text:
        return str(iface.ip)
    if iface.ip != iface.network.network_address:
        raise ValueError(f"{_show(text)} has host bits set (did you mean {iface.network}?)")
    return str(iface.network)


def split_listen_address(text: str) -> tuple[str, int]:
    """(host, port) of `web.listen_address` or `--web.listen-address` (ValueError if invalid)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(
            f"invalid listen address {_show(text)} (use host:port, e.g. 127.0.0.1:9798)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = str(ipaddress.IPv6Address(host[1:-1]))
    elif host and not _LOOKS_NUMERIC.fullmatch(host):
        host = _dns_name(host)
    elif host:
        host = str(ipaddress.IPv4Address(host))
    return host, _port(port, text)


def _listen_address(ctx: _Ctx, path: str, raw: object) -> str:
    text = _text(ctx, path, raw)
    try:
        split_listen_address(text)
    except ValueError:
        raise ValueError(
            f"invalid listen address {_show(text)} (use host:port, e.g. 127.0.0.1:9798 or"
            " [::1]:9798)"
        ) from None
    return text


# --- URLs --------------------------------------------------------------------------------------


def _http_url(ctx: _Ctx, path: str, raw: object) -> str:
    return _check_http_url(_text(ctx, path, raw))


def _check_http_url(url: str) -> str:
    # never echo the URL: webhook URLs are credentials
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.netloc) and len(url) <= 4096
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("must be an http:// or https:// URL")
    return url


def _store_url(ctx: _Ctx, path: str, raw: object) -> str:
    # never echo the URL: it may carry a password; its scheme is a short word, safe to name
    url = _text(ctx, path, raw)
    scheme, sep, _ = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme.lower()):
        raise ValueError(f"unsupported store URL (use {_STORE_FORMS})")
    if scheme not in STORE_SCHEMES:
        raise ValueError(f"{scheme} stores are not available in this rblwatch (use {_STORE_FORMS})")
    if scheme == "sqlite":
        return _sqlite_url(ctx, url)
    if url == f"{scheme}://":
        raise ValueError(f"unsupported store URL (use {_STORE_FORMS})")
    return url  # a libpq conninfo URL: libpq alone knows all of its forms


def _sqlite_url(ctx: _Ctx, url: str) -> str:
    if not url.startswith("sqlite:///"):
        raise ValueError(f"unsupported store URL (use {_STORE_FORMS})")
    file = url.removeprefix("sqlite:///")
    if not file:
        raise ValueError("sqlite URL needs a path (sqlite:///state.db, sqlite:////abs/path)")
    if file != ":memory:" and not file.startswith("/") and ctx.base_dir is not None:
        # relative like every other path in the file: to the config file's directory
        url = f"sqlite:///{ctx.base_dir / file}"
    return url
