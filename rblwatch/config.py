"""Configuration: one YAML file → frozen, validated objects (SPEC §1a, §5 to §8, §12).

Validation happens once, here, strictly, and the same code serves `check-config`, startup and
reload. Unknown keys are errors, and every error is one line naming the file and the key path
(`lists.2.zone: …`, indexes counted from 0). Defaults live in the dataclasses below and nowhere
else. No network; the only I/O is reading the config file and the files its `*_file` keys name.

The parser is a small table-driven walker: each section is a table of key → parser, and a parser
either returns the value or raises ValueError, which the walker turns into an error at that key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import difflib
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from rblwatch.model import DnsList, Kind, Purpose, Reason, Status, frozen_map

DEFAULT_CONFIG_PATH = "/etc/rblwatch/config.yaml"
EVENT_KINDS = ("listed", "delisted", "changed", "list_unhealthy", "list_recovered")
IPV6_MIN_PREFIX = 120  # SPEC §6: a /120 is 256 addresses; larger is almost surely a mistake
MIN_INTERVAL = 1.0  # SPEC §1a: intervals down to 1s (tests, local mirrors); politeness is budgets

PerTarget = Literal["listed", "all", "none"]
ReceiverFormat = Literal["json", "slack", "alertmanager"]


# --- the configuration objects (the one place defaults live) ----------------------------------


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    nameservers: tuple[tuple[str, int], ...] = ()  # () = the system's resolv.conf
    timeout: float = 2.0  # per attempt
    attempts: int = 3
    max_in_flight: int = 64


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    interval: float = 1800.0
    jitter: float = 60.0
    confirm: int = 2
    confirm_delay: float = 30.0
    health_interval: float = 600.0


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = "sqlite:////var/lib/rblwatch/state.db"

    @property
    def display_url(self) -> str:
        """The URL with any password replaced by ***, for logs and messages."""
        return _mask_password(self.url)

    def __repr__(self) -> str:  # a postgresql:// URL may carry a password
        return f"StoreConfig(url={self.display_url!r})"


@dataclass(frozen=True, slots=True)
class WebConfig:
    listen_address: str = "127.0.0.1:9798"

    @property
    def host(self) -> str:
        """The host to bind ("" = every interface), IPv6 without brackets."""
        return split_listen_address(self.listen_address)[0]

    @property
    def port(self) -> int:
        return split_listen_address(self.listen_address)[1]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    per_target: PerTarget = "listed"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    ipv4_min_prefix: int = 16  # the largest IPv4 network a CIDR target may expand


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """One `targets` entry, validated but not expanded (addresses and CIDRs in canonical form)."""

    group: str
    addresses: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()  # A-labels (IDNA), lower case
    labels: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    url: str = field(repr=False)  # webhook URLs are credentials
    format: ReceiverFormat = "json"
    events: tuple[str, ...] = EVENT_KINDS
    groups: tuple[str, ...] = ()  # () = every group
    secret: str | None = field(default=None, repr=False)  # whsec_… (json only)
    timeout: float = 10.0
    max_age: float = 86400.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    receivers: tuple[Receiver, ...] = ()


@dataclass(frozen=True, slots=True)
class Config:
    resolver: ResolverConfig = field(default_factory=ResolverConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    web: WebConfig = field(default_factory=WebConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    # not in repr: DnsList's own repr shows `zone`, which may hold a key (use shown_zone)
    lists: tuple[DnsList, ...] = field(default=(), repr=False)
    targets: tuple[TargetGroup, ...] = ()
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    source: str = "<config>"


class ConfigError(Exception):
    """A config the user must fix. str() is one line: `<file>: <key.path>: <problem>`."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path  # a key path, a YAML position, or "" for the file as a whole
        self.problem = problem
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__((where + problem).replace("\n", " "))


class _Invalid(Exception):
    """A problem at a key path; parse_config adds the source to make it a ConfigError."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


# --- public entry points -----------------------------------------------------------------------


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    require_targets: bool = False,
) -> Config:
    """Read, parse and validate a config file, or raise ConfigError."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(source, "", f"cannot read config file: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(source, "", "cannot read config file: not UTF-8 text") from None
    data = _load_yaml(source, text)
    return parse_config(
        data,
        source=source,
        base_dir=Path(source).absolute().parent,
        env=env,
        require_targets=require_targets,
    )


def parse_config(
    data: object,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    require_targets: bool = False,
) -> Config:
    """Validate already-loaded YAML data. Relative `*_file` paths are relative to `base_dir`."""
    ctx = _Ctx(os.environ if env is None else env, base_dir)
    try:
        return _parse_top(ctx, {} if data is None else data, source, require_targets)
    except _Invalid as e:
        raise ConfigError(source, e.path, e.problem) from None


def default_config() -> Config:
    """The configuration without a file: catalogue default lists, the system resolver."""
    return parse_config({}, source="<defaults>")


def parse_duration(text: object) -> float:
    """Seconds from `500ms`, `10s`, `30m`, `1h`, `7d`, `1h30m` or a plain number; must be > 0."""
    seconds = _seconds(text)
    if seconds <= 0:
        raise ValueError(f"duration must be greater than 0, not {_show(text)}")
    return seconds


def parse_nameserver(text: str) -> tuple[str, int]:
    """(address, port) from `192.0.2.53`, `192.0.2.53:5353`, `2001:db8::53` or `[::1]:5353`."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"invalid nameserver {text!r} (write IPv6 as [::1] or [::1]:53)")
        port = rest[1:] or port
    elif text.count(":") == 1:  # more than one colon: a bare IPv6 address
        host, _, port = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"invalid nameserver {text!r} (use an IP address, optionally with :port)"
        ) from None
    return str(address), _port(port, text)


def format_nameserver(host: str, port: int) -> str:
    """`host:port`, with IPv6 in brackets: the form DnsList.nameservers holds."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- YAML --------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain YAML silently keeps the last one)."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<:` merges may legitimately be overridden
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(source: str, text: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(source, where, f"invalid YAML: {problem}") from None


# --- the walker --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ctx:
    env: Mapping[str, str]
    base_dir: Path | None
    limits: LimitsConfig = field(default_factory=LimitsConfig)


Parser = Callable[[_Ctx, str, object], Any]  # (ctx, key path, raw value) -> value or ValueError


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _call(parser: Parser, ctx: _Ctx, path: str, raw: object) -> Any:
    try:
        return parser(ctx, path, raw)
    except ValueError as e:  # a leaf's problem belongs to this key
        raise _Invalid(path, str(e)) from None


def _mapping(path: str, raw: object) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        raise _Invalid(path, f"must be a mapping, not {_kind_of(raw)}")
    for key in raw:
        if not isinstance(key, str):
            raise _Invalid(_join(path, key), "keys must be strings")
    return raw


def _walk(ctx: _Ctx, path: str, raw: object, fields: Mapping[str, Parser]) -> dict[str, Any]:
    """Parse a mapping by its table; keys with a null value count as absent."""
    out: dict[str, Any] = {}
    for key, value in _mapping(path, raw).items():
        parser = fields.get(key)
        if parser is None:
            raise _Invalid(_join(path, key), _unknown_key(key, fields))
        if value is not None:
            out[key] = _call(parser, ctx, _join(path, key), value)
    return out


def _unknown_key(key: str, fields: Mapping[str, Parser]) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _section(cls: Callable[..., Any], fields: Mapping[str, Parser]) -> Parser:
    return lambda ctx, path, raw: cls(**_walk(ctx, path, raw, fields))


def _items(item: Parser) -> Parser:
    """A YAML sequence, each element parsed by `item` at `path.N`."""

    def parse(ctx: _Ctx, path: str, raw: object) -> tuple[Any, ...]:
        if not isinstance(raw, list):
            raise ValueError(f"must be a list, not {_kind_of(raw)}")
        return tuple(_call(item, ctx, _join(path, i), value) for i, value in enumerate(raw))

    return parse


def _unique(path: str, names: list[str], what: str) -> None:
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in first:
            raise _Invalid(
                _join(path, i), f"duplicate {what} {name!r} (also {_join(path, first[name])})"
            )
        first[name] = i


def _required(fields: Mapping[str, Any], path: str, key: str, why: str = "") -> Any:
    if key not in fields:
        raise _Invalid(_join(path, key), "required" + (f" {why}" if why else ""))
    return fields[key]


def _exclusive(path: str, raw: object, *pairs: tuple[str, str]) -> None:
    """Alternative keys (`url` / `url_file`): both given is an error, before any file is read."""
    for a, b in pairs:
        if isinstance(raw, Mapping) and raw.get(a) is not None and raw.get(b) is not None:
            raise _Invalid(_join(path, b), f"give {a} or {b}, not both")


def _one_of(fields: dict[str, Any], a: str, b: str) -> tuple[str, Any] | None:
    """Pop whichever of two alternative keys is given: (key, value), or None."""
    key = a if a in fields else b
    return (key, fields.pop(key)) if key in fields else None


# --- leaf parsers (raise ValueError; the walker names the key) ---------------------------------


def _kind_of(raw: object) -> str:
    if raw is None:
        return "empty"
    if isinstance(raw, bool):
        return "true/false"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    return "a list" if isinstance(raw, list) else "a mapping" if isinstance(raw, Mapping) else "?"


def _show(raw: object) -> str:
    return repr(raw) if isinstance(raw, str) else str(raw)


_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand(env: Mapping[str, str], text: str) -> tuple[str, str | None]:
    """`text` with ${VAR}s expanded, and a display form with them masked (None: nothing secret)."""
    if "$" not in text:
        return text, None

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if not _VAR_NAME.fullmatch(name):
            raise ValueError(f"invalid variable reference ${{{name}}} (write ${{NAME}})")
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
    return _expand(ctx.env, raw)[0]


def _bool(ctx: _Ctx, path: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise ValueError(f"must be true or false, not {_show(raw)}")
    return raw


def _int(low: int, high: int | None = None) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> int:
        if isinstance(raw, str):
            raw = _text(ctx, path, raw)
            raw = int(raw) if raw.strip().isdigit() else raw
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise ValueError(f"must be a whole number, not {_show(raw)}")
        if raw < low or (high is not None and raw > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {span}, not {raw}")
        return raw

    return parse


def _positive_number(ctx: _Ctx, path: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"must be a number, not {_show(raw)}")
    if not math.isfinite(raw) or raw <= 0:
        raise ValueError(f"must be greater than 0, not {raw}")
    return float(raw)


def _choice(*allowed: str) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        value = _text(ctx, path, raw)
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {value!r}")
        return value

    return parse


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")  # "ms" before "m" matters
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _seconds(raw: object) -> float:
    """A duration ≥ 0 in seconds, or ValueError."""
    seconds = math.nan
    text = raw.strip() if isinstance(raw, str) else ""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = float(raw)
    elif _NUMBER.fullmatch(text):
        seconds = float(text)
    elif _DURATION.fullmatch(text):
        seconds = sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {_show(raw)} (use e.g. 30s, 10m, 1h)")
    return seconds


def _duration(minimum: float = 0.0, *, zero_ok: bool = False) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> float:
        value = _expand(ctx.env, raw)[0] if isinstance(raw, str) else raw
        if zero_ok and _seconds(value) == 0:
            return 0.0
        seconds = parse_duration(value)
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum:g}s, not {_show(raw)}")
        return seconds

    return parse


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"invalid port in {whole!r} (1 to 65535)")
    return int(text)


def _read_file(ctx: _Ctx, path: str, raw: object) -> str:
    """The stripped contents of a `*_file`; relative paths are relative to the config file."""
    name = _text(ctx, path, raw)
    file = Path(name)
    if not file.is_absolute() and ctx.base_dir is not None:
        file = ctx.base_dir / file
    try:
        content = file.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ValueError(f"cannot read {name!r}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ValueError(f"cannot read {name!r}: not UTF-8 text") from None
    if not content:
        raise ValueError(f"{name!r} is empty")
    return content


# --- names, addresses, URLs ----------------------------------------------------------------------

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_LOOKS_NUMERIC = re.compile(r"[0-9.]+")
_LIST_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _dns_name(text: str, shown: str | None = None) -> str:
    """A DNS name in A-label form, lower case, no trailing dot; `shown` is used in messages."""
    name = text.strip().lower().removesuffix(".")
    bad = ValueError(f"{shown or text!r} is not a valid DNS name")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise bad from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(len(x) <= 63 and _LABEL.fullmatch(x) for x in labels):
        raise bad
    return ascii_name


def _host_name(ctx: _Ctx, path: str, raw: object) -> str:
    """A domain or host name target; something that looks like an address goes elsewhere."""
    text = _text(ctx, path, raw)
    if ":" in text or "/" in text or _LOOKS_NUMERIC.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is an address, not a name; put it under addresses")
    name = _dns_name(text)
    if "." not in name:
        raise ValueError(f"{text!r} is not a fully qualified name")
    return name


def _name(pattern: re.Pattern[str], rule: str) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        value = _text(ctx, path, raw)
        if not pattern.fullmatch(value):
            raise ValueError(f"invalid name {value!r} ({rule})")
        return value

    return parse


_list_name = _name(_LIST_NAME, "lowercase letters, digits and '-'")
_group_name = _name(_GROUP_NAME, "letters, digits, '_', '.' and '-'")


def _ip_network(text: str, kind: str = "address or network") -> str:
    """The canonical form of an address or CIDR; a CIDR with host bits set is an error."""
    if "%" in text:
        raise ValueError(f"{text!r}: scoped IPv6 addresses cannot be looked up")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP {kind}") from None
    if "/" not in text:
        return str(iface.ip)
    if iface.ip != iface.network.network_address:
        raise ValueError(f"{text!r} has host bits set (did you mean {iface.network}?)")
    return str(iface.network)


def _target_address(ctx: _Ctx, path: str, raw: object) -> str:
    text = _text(ctx, path, raw).strip()
    value = _ip_network(text)
    net = ipaddress.ip_network(value)
    limit = ctx.limits.ipv4_min_prefix if net.version == 4 else IPV6_MIN_PREFIX
    if net.prefixlen < limit:
        hint = f" (set limits.ipv4_min_prefix: {net.prefixlen} to allow it)"
        raise ValueError(
            f"{text!r}: IPv{net.version} networks larger than /{limit} are refused"
            + (hint if net.version == 4 else "")
        )
    return value


def _exclude_address(ctx: _Ctx, path: str, raw: object) -> str:
    # no size limit: excluding a /8 from a /24 is harmless
    return _ip_network(_text(ctx, path, raw).strip())


def _http_url(ctx: _Ctx, path: str, raw: object) -> str:
    return _check_http_url(_text(ctx, path, raw))


def _check_http_url(url: str) -> str:
    # never echo the URL: webhook URLs are credentials
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return url


def _mask_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def split_listen_address(text: str) -> tuple[str, int]:
    """(host, port) of `web.listen_address` or `--web.listen-address` (ValueError if invalid)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"invalid listen address {text!r} (use host:port, e.g. 127.0.0.1:9798)")
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
            f"invalid listen address {text!r} (use host:port, e.g. 127.0.0.1:9798 or [::1]:9798)"
        ) from None
    return text


def _store_url(ctx: _Ctx, path: str, raw: object) -> str:
    url = _text(ctx, path, raw)
    if url.startswith("sqlite:///"):
        file = url.removeprefix("sqlite:///")
        if not file:
            raise ValueError("sqlite URL needs a path (sqlite:///state.db, sqlite:////abs/path)")
        if file != ":memory:" and not file.startswith("/") and ctx.base_dir is not None:
            # relative like every other path in the file: to the config file's directory
            url = f"sqlite:///{ctx.base_dir / file}"
        return url
    if url.startswith("postgresql://") and len(url) > len("postgresql://"):
        return url
    # never echo the URL: it may carry a password
    raise ValueError("unsupported store URL (use sqlite:///PATH or postgresql://USER@HOST/DB)")


def _nameserver(ctx: _Ctx, path: str, raw: object) -> tuple[str, int]:
    return parse_nameserver(_text(ctx, path, raw))


def _nameserver_text(ctx: _Ctx, path: str, raw: object) -> str:
    return format_nameserver(*_nameserver(ctx, path, raw))


def _labels(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for key, value in _mapping(path, raw).items():
        if not _LABEL_NAME.fullmatch(key):
            raise _Invalid(_join(path, key), "label names are letters, digits and '_'")
        out[key] = _call(_text, ctx, _join(path, key), value)
    return frozen_map(out)


# --- lists (SPEC §7) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Zone:
    value: str
    display: str | None  # None: nothing secret in it


def _zone(ctx: _Ctx, path: str, raw: object) -> _Zone:
    if not isinstance(raw, str):
        raise ValueError(f"must be a string, not {_kind_of(raw)}")
    value, display = _expand(ctx.env, raw)
    return _Zone(_dns_name(value, display), display and display.strip().lower().removesuffix("."))


def _zone_file(ctx: _Ctx, path: str, raw: object) -> _Zone:
    return _Zone(_dns_name(_read_file(ctx, path, raw), "***"), "***")


def _answer(text: object) -> str:
    """A listing or error answer: an IPv4 address in 127.0.0.0/8."""
    try:
        address = ipaddress.IPv4Address(str(text).strip())
    except ValueError:
        raise ValueError(f"{_show(text)} is not an IPv4 address") from None
    if not address.is_loopback:
        raise ValueError(f"{address} is outside 127.0.0.0/8 (list answers are 127.x.x.x)")
    return str(address)


def _bit(key: object) -> int:
    if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key <= 255:
        raise ValueError(f"bit values are numbers from 1 to 255, not {_show(key)}")
    return key


def _keyed(ctx: _Ctx, path: str, raw: object, key: Callable[[object], Any], value: Parser) -> Any:
    if not isinstance(raw, Mapping):
        raise ValueError(f"must be a mapping, not {_kind_of(raw)}")
    out: dict[Any, Any] = {}
    for k, v in raw.items():
        sub = _join(path, k)
        out[_call(lambda _c, _p, r: key(r), ctx, sub, k)] = _call(value, ctx, sub, v)
    return MappingProxyType(out)


def _reason(ctx: _Ctx, path: str, raw: object) -> Reason:
    return Reason(_choice(Reason.BLOCKED.value, Reason.RATE_LIMITED.value)(ctx, path, raw))


def _codes(ctx: _Ctx, path: str, raw: object) -> Mapping[str, str]:
    return frozen_map(_keyed(ctx, path, raw, _answer, _text))


def _bits(ctx: _Ctx, path: str, raw: object) -> Mapping[int, str]:
    result: Mapping[int, str] = _keyed(ctx, path, raw, _bit, _text)
    return result


def _error_map(key: Callable[[object], Any]) -> Parser:
    """A list of answers (each `blocked`) or a mapping answer → blocked | rate_limited."""

    def parse(ctx: _Ctx, path: str, raw: object) -> Mapping[Any, Reason]:
        if isinstance(raw, list):
            keys = _items(lambda _c, _p, r: key(r))(ctx, path, raw)
            return MappingProxyType(dict.fromkeys(keys, Reason.BLOCKED))
        result: Mapping[Any, Reason] = _keyed(ctx, path, raw, key, _reason)
        return result

    return parse


def _strings(ctx: _Ctx, path: str, raw: object) -> tuple[str, ...]:
    """One string or a list of them (test points); validated once the list's kind is known."""
    if isinstance(raw, str):
        return (_call(_text, ctx, _join(path, 0), raw),)
    result: tuple[str, ...] = _items(_text)(ctx, path, raw)
    return result


_LIST_FIELDS: Mapping[str, Parser] = {
    "name": _list_name,
    "use": _text,
    "zone": _zone,
    "zone_file": _zone_file,
    "kind": lambda ctx, path, raw: Kind(_choice(*Kind)(ctx, path, raw)),
    "ipv6": _bool,
    "purpose": lambda ctx, path, raw: Purpose(_choice(*Purpose)(ctx, path, raw)),
    "codes": _codes,
    "bits": _bits,
    "errors": _error_map(_answer),
    "error_bits": _error_map(_bit),
    "description": _text,
    "delist_url": _http_url,
    "test_listed": _strings,
    "test_clean": _strings,
    "health_check": _bool,
    "nameservers": _items(_nameserver_text),
    "interval": _duration(MIN_INTERVAL),
    "jitter": _duration(zero_ok=True),
    "max_qps": _positive_number,
    "daily_query_limit": _int(1),
}


def _catalogue_list(path: str, name: str, where: str) -> DnsList:
    """A catalogue entry by name; unknown names are reported at `where`, defunct ones at `path`."""
    from rblwatch import catalogue  # only when a config names catalogue lists

    try:
        found = catalogue.get(name)
    except KeyError:
        raise _Invalid(where, f"unknown list {name!r} (see 'rblwatch lists')") from None
    if found.status is Status.DEFUNCT:
        raise _Invalid(path, catalogue.defunct_message(found))
    return found


def _test_point(kind: Kind) -> Parser:
    def parse(ctx: _Ctx, path: str, raw: object) -> str:
        text = str(raw).strip()
        if kind is Kind.DOMAIN:
            return _dns_name(text)
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address (test points of an ip list)") from None

    return parse


def _keyed_zone(ctx: _Ctx, path: str, lst: DnsList) -> DnsList:
    """A catalogue entry whose zone holds a key (`${SPAMHAUS_DQS_KEY}.zen…`), expanded."""
    if "$" not in lst.zone:
        return lst
    try:
        zone = _zone(ctx, path, lst.zone)
    except ValueError as e:
        raise _Invalid(path, f"{e} (the zone of {lst.name!r} is {lst.zone!r})") from None
    return dataclasses.replace(lst, zone=zone.value, display_zone=zone.display)


def _list_entry(ctx: _Ctx, path: str, raw: object) -> DnsList:
    if isinstance(raw, str):
        return _keyed_zone(ctx, path, _catalogue_list(path, _text(ctx, path, raw), path))
    if not isinstance(raw, Mapping):
        raise ValueError(f"must be a list name or a mapping, not {_kind_of(raw)}")
    _exclusive(path, raw, ("zone", "zone_file"))
    fields = _walk(ctx, path, raw, _LIST_FIELDS)
    zone = _one_of(fields, "zone", "zone_file")
    if zone is not None:
        fields["zone"], fields["display_zone"] = zone[1].value, zone[1].display
    use = fields.pop("use", None)
    base = None if use is None else _catalogue_list(path, use, _join(path, "use"))
    if base is None:
        _required(fields, path, "name")
        _required(fields, path, "zone", "for a custom list (or 'use: NAME' to start from one)")
        _required(fields, path, "kind", "for a custom list: ip or domain")
    else:
        _required(fields, path, "name", "with 'use' (the name the list is shown and exported as)")
        base = base if zone else _keyed_zone(ctx, path, base)
    kind = fields.get("kind", base.kind if base else Kind.IP)
    for key in ("test_listed", "test_clean"):
        if key in fields:
            fields[key] = _items(_test_point(kind))(ctx, _join(path, key), list(fields[key]))
    result = DnsList(**fields) if base is None else dataclasses.replace(base, **fields)
    _check_answers(path, result)
    return result


def _check_answers(path: str, lst: DnsList) -> None:
    """An answer is a listing or an error, never both (the catalogue's rule, after overrides)."""
    if lst.codes and lst.bits:
        raise _Invalid(path, "codes and bits: use one or the other (override the other with {})")
    both = [str(a) for a in lst.errors if a in lst.codes]
    both += [str(b) for b in lst.error_bits if b in lst.bits]
    if both:
        raise _Invalid(path, f"{both[0]} is both a listing and an error answer")


def _lists(ctx: _Ctx, path: str, raw: object) -> tuple[DnsList, ...]:
    lists: tuple[DnsList, ...] = _items(_list_entry)(ctx, path, raw)
    if not lists:
        raise ValueError("empty; remove the key to use the default lists")
    _unique(path, [x.name for x in lists], "list name")
    return lists


# --- targets (SPEC §6) ---------------------------------------------------------------------------

_TARGET_FIELDS: Mapping[str, Parser] = {
    "group": _group_name,
    "addresses": _items(_target_address),
    "exclude": _items(_exclude_address),
    "hostnames": _items(_host_name),
    "domains": _items(_host_name),
    "labels": _labels,
}


def _target_group(ctx: _Ctx, path: str, raw: object) -> TargetGroup:
    fields = _walk(ctx, path, raw, _TARGET_FIELDS)
    _required(fields, path, "group", "(the group's name: a metric label and alert field)")
    if not any(fields.get(key) for key in ("addresses", "hostnames", "domains")):
        raise _Invalid(path, "a target group needs addresses, hostnames or domains")
    return TargetGroup(**fields)


def _targets(ctx: _Ctx, path: str, raw: object) -> tuple[TargetGroup, ...]:
    groups: tuple[TargetGroup, ...] = _items(_target_group)(ctx, path, raw)
    _unique(path, [g.group for g in groups], "group")
    return groups


# --- alerts (SPEC §12) ---------------------------------------------------------------------------

_BACKOFF_FIELDS: Mapping[str, Parser] = {"initial": _duration(), "max": _duration()}

_RECEIVER_FIELDS: Mapping[str, Parser] = {
    "name": _group_name,
    "url": _http_url,
    "url_file": lambda ctx, path, raw: _check_http_url(_read_file(ctx, path, raw)),
    "format": _choice("json", "slack", "alertmanager"),
    "events": _items(_choice(*EVENT_KINDS)),
    "groups": _items(_group_name),
    "secret": _text,
    "secret_file": _read_file,
    "timeout": _duration(),
    "max_age": _duration(),
    "backoff": lambda ctx, path, raw: _walk(ctx, path, raw, _BACKOFF_FIELDS),
}


def _check_secret(path: str, fmt: str, secret: tuple[str, str] | None) -> str | None:
    """The whsec_ secret of a json receiver. Never echoes it."""
    if secret is None:
        return None
    key, value = secret
    where = _join(path, key)
    if fmt != "json":
        raise _Invalid(where, f"only json deliveries are signed; remove it for format {fmt}")
    body = value.removeprefix("whsec_")
    try:
        raw_key = base64.b64decode(body, validate=True) if body != value else b""
    except binascii.Error:
        raw_key = b""
    if not 24 <= len(raw_key) <= 64:
        raise _Invalid(
            where, "must be a Standard Webhooks secret: whsec_ and base64 of 24 to 64 bytes"
        )
    return value


def _receiver(ctx: _Ctx, path: str, raw: object) -> Receiver:
    _exclusive(path, raw, ("url", "url_file"), ("secret", "secret_file"))
    fields = _walk(ctx, path, raw, _RECEIVER_FIELDS)
    _required(fields, path, "name")
    url = _one_of(fields, "url", "url_file")
    if url is None:
        raise _Invalid(_join(path, "url"), "required (or url_file)")
    fields["url"] = url[1]
    secret = _one_of(fields, "secret", "secret_file")
    backoff = fields.pop("backoff", {})
    fields.update({f"backoff_{k}": v for k, v in backoff.items()})
    result = Receiver(**fields)
    result = dataclasses.replace(result, secret=_check_secret(path, result.format, secret))
    if result.backoff_initial > result.backoff_max:
        raise _Invalid(_join(path, "backoff.initial"), "must not be longer than backoff.max")
    _unique(_join(path, "events"), list(result.events), "event")
    _unique(_join(path, "groups"), list(result.groups), "group")
    return result


def _receivers(ctx: _Ctx, path: str, raw: object) -> tuple[Receiver, ...]:
    receivers: tuple[Receiver, ...] = _items(_receiver)(ctx, path, raw)
    _unique(path, [r.name for r in receivers], "receiver")
    return receivers


def _check_receiver_groups(receivers: tuple[Receiver, ...], groups: set[str]) -> None:
    for i, receiver in enumerate(receivers):
        for j, group in enumerate(receiver.groups):
            if group not in groups:
                where = f"alerts.receivers.{i}.groups.{j}"
                raise _Invalid(where, f"unknown target group {group!r}")


# --- the top level -------------------------------------------------------------------------------

_TOP_FIELDS: Mapping[str, Parser] = {
    "resolver": _section(
        ResolverConfig,
        {
            "nameservers": _items(_nameserver),
            "timeout": _duration(),
            "attempts": _int(1),
            "max_in_flight": _int(1),
        },
    ),
    "schedule": _section(
        ScheduleConfig,
        {
            "interval": _duration(MIN_INTERVAL),
            "jitter": _duration(zero_ok=True),
            "confirm": _int(1),
            "confirm_delay": _duration(zero_ok=True),
            "health_interval": _duration(MIN_INTERVAL),
        },
    ),
    "store": _section(StoreConfig, {"url": _store_url}),
    "web": _section(WebConfig, {"listen_address": _listen_address}),
    "metrics": _section(MetricsConfig, {"per_target": _choice("listed", "all", "none")}),
    "limits": _section(LimitsConfig, {"ipv4_min_prefix": _int(8, 32)}),
    "lists": _lists,
    "targets": _targets,
    "alerts": _section(AlertsConfig, {"receivers": _receivers}),
}


def _parse_top(ctx: _Ctx, data: object, source: str, require_targets: bool) -> Config:
    if not isinstance(data, Mapping):
        raise _Invalid("", f"the top level must be a mapping of settings, not {_kind_of(data)}")
    _walk(ctx, "", {k: None for k in data}, _TOP_FIELDS)  # unknown keys first, in file order
    # targets are checked against limits, wherever `limits` sits in the file
    limits = data.get("limits")
    if limits is not None:
        ctx = dataclasses.replace(ctx, limits=_call(_TOP_FIELDS["limits"], ctx, "limits", limits))
    parsed = _walk(ctx, "", dict(data), _TOP_FIELDS)
    if "lists" not in parsed:
        from rblwatch import catalogue  # only when the catalogue is used: a start-up cost

        parsed["lists"] = tuple(catalogue.get(name) for name in catalogue.default_names())
    if require_targets and not parsed.get("targets"):
        raise _Invalid("targets", "at least one target group is required for run")
    if "alerts" in parsed and parsed.get("targets"):
        _check_receiver_groups(parsed["alerts"].receivers, {g.group for g in parsed["targets"]})
    return Config(**parsed, source=source)
