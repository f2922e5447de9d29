"""The configuration objects: frozen dataclasses, the one place defaults live, and ConfigError."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args
from urllib.parse import urlsplit

from rblwatch.model import HYGIENE_CHECKS, DnsList, HygieneSubject, Nameserver, frozen_map

DEFAULT_CONFIG_PATH = "/etc/rblwatch/config.yaml"
EVENT_KINDS = (
    "listed",
    "delisted",
    "changed",
    "list_unhealthy",
    "list_recovered",
    "resolver_unreachable",
    "resolver_recovered",
    "check_failed",
    "check_passed",
    "check_changed",
    "bounce",
)
DEFAULT_HYGIENE_CHECKS = ("fcrdns", "spf", "dmarc")  # and dkim when selectors are given
MAX_SENDING_IPS = 1024  # per group: SPF is checked for each domain and each of them

PerTarget = Literal["listed", "all", "none"]
# The alert formats (`receivers[].format`), named once: a new format is one name here, and one in
# SIGNED_FORMATS if it signs with a receiver `secret`. The alerts package's FORMATS map must name
# the same formats; config cannot import it.
ReceiverFormat = Literal["json", "slack", "alertmanager"]
RECEIVER_FORMATS: tuple[ReceiverFormat, ...] = get_args(ReceiverFormat)
SIGNED_FORMATS: tuple[ReceiverFormat, ...] = ("json",)


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    nameservers: tuple[Nameserver, ...] = ()  # () = the system's resolv.conf
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
    hygiene_interval: float = 3600.0


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str = "sqlite:////var/lib/rblwatch/state.db"
    # several instances on one PostgreSQL: how long a silent instance keeps its shards
    lease: float = 30.0

    @property
    def display_url(self) -> str:
        """The URL with any password replaced by ***, for logs and messages."""
        return mask_password(self.url)

    def __repr__(self) -> str:  # a database URL may carry a password
        return f"StoreConfig(url={self.display_url!r}, lease={self.lease!r})"


@dataclass(frozen=True, slots=True)
class WebConfig:
    listen_address: str = "127.0.0.1:9798"
    # exporter-toolkit's web config file (TLS, basic auth: `rblwatch.webconfig`); the
    # --web.config.file flag wins. Relative to the config file's directory.
    config_file: str | None = None

    @property
    def host(self) -> str:
        """The host to bind ("" = every interface), IPv6 without brackets."""
        from rblwatch.config.values import split_listen_address

        return split_listen_address(self.listen_address)[0]

    @property
    def port(self) -> int:
        from rblwatch.config.values import split_listen_address

        return split_listen_address(self.listen_address)[1]


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    per_target: PerTarget = "listed"


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    ipv4_min_prefix: int = 16  # the largest IPv4 network a CIDR target may expand


@dataclass(frozen=True, slots=True)
class HygieneConfig:
    """A target group's `hygiene:` section: which sender checks to run on it."""

    checks: tuple[str, ...] = DEFAULT_HYGIENE_CHECKS
    sending_ips: tuple[str, ...] | None = None  # None: the group's addresses and hostnames'
    helo: str | None = None
    # DKIM selectors by domain ("" = every domain of the group)
    selectors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def selectors_of(self, domain: str) -> tuple[str, ...]:
        return self.selectors.get(domain, self.selectors.get("", ()))


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """One `targets` entry, validated but not expanded (addresses and CIDRs in canonical form)."""

    group: str
    addresses: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()  # A-labels (IDNA), lower case
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    hygiene: HygieneConfig | None = None  # None: no sender checks for this group


@dataclass(frozen=True, slots=True)
class Receiver:
    name: str
    url: str = field(repr=False)  # webhook URLs are credentials
    format: ReceiverFormat = "json"
    events: tuple[str, ...] = EVENT_KINDS
    groups: tuple[str, ...] = ()  # () = every group
    secret: str | None = field(default=None, repr=False)  # whsec_… (SIGNED_FORMATS only)
    timeout: float = 10.0
    max_age: float = 86400.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    group_wait: float = 0.0  # 0: one message per event; else events within it go out as one
    group_max: int = 100  # events per grouped message (see config.alerts.GROUP_MAX)
    repeat_interval: float | None = None  # remind of open, unacknowledged listings; None: off


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    receivers: tuple[Receiver, ...] = ()


# How a bounce mailbox is reached over IMAP (`bounces.sources[].imap.tls`), and the port each
# implies when none is given (RFC 8314: 993 for implicit TLS; 143 for STARTTLS and plaintext).
BounceTls = Literal["imaps", "starttls", "none"]
BOUNCE_TLS: tuple[BounceTls, ...] = get_args(BounceTls)
IMAP_PORTS: Mapping[str, int] = MappingProxyType({"imaps": 993, "starttls": 143, "none": 143})


@dataclass(frozen=True, slots=True)
class ImapConfig:
    """An IMAP folder to read bounces from; `port` is filled from IMAP_PORTS when not given."""

    host: str
    user: str
    password: str = field(repr=False)  # from `password` or `password_file`; never shown
    port: int = 993
    tls: BounceTls = "imaps"
    folder: str = "INBOX"
    cafile: str | None = None  # None: the system's CAs


@dataclass(frozen=True, slots=True)
class BounceSource:
    """One `bounces.sources` entry: exactly one of `maildir` (a directory) and `imap`."""

    name: str
    maildir: str | None = None
    imap: ImapConfig | None = None


@dataclass(frozen=True, slots=True)
class BouncesConfig:
    interval: float = 60.0  # how often every source is polled
    sources: tuple[BounceSource, ...] = ()


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
    bounces: BouncesConfig | None = None  # None: no bounce mailboxes are read
    source: str = "<config>"

    @property
    def subjects(self) -> tuple[DnsList, ...]:
        """The DNS lists: what the daemon runs cycles of, probes, budgets, exports and alerts
        about, each under its own name (checked by `checks.dnsbl`). The sender hygiene checks
        are `hygiene`; `checks.subjects()` runs both."""
        return self.lists

    @property
    def hygiene(self) -> tuple[HygieneSubject, ...]:
        """The hygiene checks some target group asks for, each one subject (in CHECKS order)."""
        wanted = {c for g in self.targets if g.hygiene is not None for c in g.hygiene.checks}
        interval = self.schedule.hygiene_interval
        return tuple(HygieneSubject(c, interval=interval) for c in HYGIENE_CHECKS if c in wanted)


class ConfigError(Exception):
    """A config the user must fix. str() is one line: `<file>: <key.path>: <problem>`."""

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path  # a key path, a YAML position, or "" for the file as a whole
        self.problem = problem
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__((where + problem).replace("\n", " "))


def mask_password(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:  # e.g. a port that is not a number: nothing parsed, nothing masked
        return url
    if password is None:
        return url
    return url.replace(f":{password}@", ":***@", 1)
