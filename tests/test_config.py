"""rblwatch.config: YAML → frozen, validated config objects, and one-line errors for bad ones.

Bad configs live as files under tests/data/bad/, each starting with `# expect: <message>`: the
exact error after `<file>: `.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from rblwatch import catalogue
from rblwatch.config import (
    DEFAULT_CONFIG_PATH,
    EVENT_KINDS,
    RECEIVER_FORMATS,
    SIGNED_FORMATS,
    STORE_SCHEMES,
    AlertsConfig,
    Config,
    ConfigError,
    LimitsConfig,
    MetricsConfig,
    ResolverConfig,
    ScheduleConfig,
    StoreConfig,
    WebConfig,
    default_config,
    format_nameserver,
    load_config,
    parse_config,
    parse_duration,
    parse_nameserver,
)
from rblwatch.model import Kind, Nameserver, Purpose, Reason

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).resolve().parent / "data" / "bad"
SECRET_IN_ENV = "s3cr3tkey"  # what bad files may reference as ${RBLWATCH_TEST_KEY}
WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


def parse(
    text: str, *, env: Mapping[str, str] | None = None, require_targets: bool = False
) -> Config:
    data = yaml.safe_load(text)
    return parse_config(data, source="test.yaml", env=env, require_targets=require_targets)


def error_of(
    text: str, *, env: Mapping[str, str] | None = None, require_targets: bool = False
) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env=env, require_targets=require_targets)
    return str(info.value)


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults ----------------------------------------------------------------------------------


def test_default_config_uses_catalogue_defaults_and_system_resolver() -> None:
    cfg = default_config()
    assert [lst.name for lst in cfg.lists] == list(catalogue.default_names())
    assert cfg.resolver.nameservers == ()
    assert cfg.targets == ()
    assert cfg.alerts.receivers == ()


def test_an_empty_config_has_exactly_the_dataclass_defaults() -> None:
    cfg = parse("{}")
    assert cfg.resolver == ResolverConfig(nameservers=(), timeout=2.0, attempts=3, max_in_flight=64)
    assert cfg.schedule == ScheduleConfig(
        interval=1800.0, jitter=60.0, confirm=2, confirm_delay=30.0, health_interval=600.0
    )
    assert cfg.store == StoreConfig(url="sqlite:////var/lib/rblwatch/state.db")
    assert cfg.web == WebConfig(listen_address="127.0.0.1:9798")
    assert cfg.metrics == MetricsConfig(per_target="listed")
    assert cfg.limits == LimitsConfig(ipv4_min_prefix=16)
    assert cfg.alerts == AlertsConfig(receivers=())
    assert cfg.source == "test.yaml"
    assert DEFAULT_CONFIG_PATH == "/etc/rblwatch/config.yaml"


def test_an_empty_file_and_null_sections_mean_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "c.yaml", "")).resolver == ResolverConfig()
    cfg = parse("resolver:\nschedule:\nalerts:\n  receivers:\n")
    assert cfg.resolver == ResolverConfig()
    assert cfg.alerts == AlertsConfig()


def test_config_objects_are_frozen() -> None:
    cfg = default_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.resolver.timeout = 1.0  # type: ignore[misc]


# --- every key ---------------------------------------------------------------------------------

FULL = f"""
resolver:
  nameservers: ["127.0.0.1", "10.0.0.53:5353", "[::1]:53", "2001:db8::53"]
  timeout: 500ms
  attempts: 2
  max_in_flight: 128
schedule:
  interval: 1h30m
  jitter: 0
  confirm: 3
  confirm_delay: 10s
  health_interval: 1h
store:
  url: sqlite:////var/lib/rblwatch/other.db
web:
  listen_address: "[::1]:9100"
metrics:
  per_target: all
limits:
  ipv4_min_prefix: 20
lists:
  - spamcop
  - name: zen-fast
    use: spamhaus-zen
    interval: 5m
    jitter: 10s
  - name: corp-uri
    zone: URI.Example.NET.
    kind: domain
    ipv6: false
    purpose: allow
    bits: {{2: spam, 4: phish}}
    error_bits: {{1: blocked, 128: rate_limited}}
    description: our URI list
    delist_url: https://example.net/delist
    test_listed: [test, _dnsbl_.test]
    test_clean: []
    health_check: false
    nameservers: ["10.0.0.53", "[::1]:5353"]
    max_qps: 25.5
    daily_query_limit: 100000
  - name: corp-bl
    zone: bl.example.net
    kind: ip
    ipv6: true
    codes: {{127.0.0.2: listed, 127.0.0.3: trap}}
    errors: [127.0.0.255]
    test_listed: 127.0.0.2
    test_clean: ["127.0.0.1", "::ffff:7f00:1"]
targets:
  - group: mail-out
    addresses: [192.0.2.10, 198.51.100.0/28, "2001:DB8::25", "2001:db8::100/120"]
    exclude: [198.51.100.0/30]
    hostnames: [MX1.example.net.]
    domains: [example.com, bücher.example]
    labels: {{team: mail, tier: "1"}}
  - group: web
    domains: [example.org]
alerts:
  receivers:
    - name: ops
      url: https://hooks.example.net/rblwatch
      format: json
      events: [listed, delisted]
      groups: [mail-out]
      secret: {WHSEC}
      timeout: 5s
      max_age: 12h
      backoff: {{initial: 2s, max: 10m}}
    - name: am
      url: http://alertmanager.example.net:9093
      format: alertmanager
"""


def test_every_key_is_parsed() -> None:
    cfg = parse(FULL)
    assert cfg.resolver == ResolverConfig(
        nameservers=(("127.0.0.1", 53), ("10.0.0.53", 5353), ("::1", 53), ("2001:db8::53", 53)),
        timeout=0.5,
        attempts=2,
        max_in_flight=128,
    )
    assert cfg.schedule == ScheduleConfig(
        interval=5400.0, jitter=0.0, confirm=3, confirm_delay=10.0, health_interval=3600.0
    )
    assert cfg.store.url == "sqlite:////var/lib/rblwatch/other.db"
    assert (cfg.web.listen_address, cfg.web.host, cfg.web.port) == ("[::1]:9100", "::1", 9100)
    assert cfg.metrics.per_target == "all"
    assert cfg.limits.ipv4_min_prefix == 20
    assert [lst.name for lst in cfg.lists] == ["spamcop", "zen-fast", "corp-uri", "corp-bl"]


def test_every_list_field_is_parsed() -> None:
    uri, bl = parse(FULL).lists[2:]
    assert uri.zone == "uri.example.net"
    assert (uri.kind, uri.ipv6, uri.purpose) == (Kind.DOMAIN, False, Purpose.ALLOW)
    assert dict(uri.bits) == {2: "spam", 4: "phish"}
    assert dict(uri.error_bits) == {1: Reason.BLOCKED, 128: Reason.RATE_LIMITED}
    assert (uri.description, uri.delist_url) == ("our URI list", "https://example.net/delist")
    assert (uri.test_listed, uri.test_clean) == (("test", "_dnsbl_.test"), ())
    assert uri.health_check is False
    assert uri.nameservers == (Nameserver("10.0.0.53", 53), Nameserver("::1", 5353))
    assert (uri.max_qps, uri.daily_query_limit) == (25.5, 100000)
    assert uri.display_zone is None
    assert dict(bl.codes) == {"127.0.0.2": "listed", "127.0.0.3": "trap"}
    assert dict(bl.errors) == {"127.0.0.255": Reason.BLOCKED}
    assert bl.ipv6 is True
    assert (bl.test_listed, bl.test_clean) == (("127.0.0.2",), ("127.0.0.1", "::ffff:7f00:1"))


def test_every_target_field_is_parsed_into_canonical_form() -> None:
    mail, web = parse(FULL).targets
    assert mail.group == "mail-out"
    assert mail.addresses == ("192.0.2.10", "198.51.100.0/28", "2001:db8::25", "2001:db8::100/120")
    assert mail.exclude == ("198.51.100.0/30",)
    assert mail.hostnames == ("mx1.example.net",)
    assert mail.domains == ("example.com", "xn--bcher-kva.example")  # IDNA
    assert dict(mail.labels) == {"team": "mail", "tier": "1"}
    assert (web.group, web.domains, web.addresses) == ("web", ("example.org",), ())


def test_every_receiver_field_is_parsed() -> None:
    ops, am = parse(FULL).alerts.receivers
    assert (ops.name, ops.url, ops.format) == ("ops", "https://hooks.example.net/rblwatch", "json")
    assert (ops.events, ops.groups, ops.secret) == (("listed", "delisted"), ("mail-out",), WHSEC)
    assert (ops.timeout, ops.max_age, ops.backoff_initial, ops.backoff_max) == (5, 43200, 2, 600)
    assert (am.format, am.events, am.groups, am.secret) == ("alertmanager", EVENT_KINDS, (), None)
    assert (am.timeout, am.max_age, am.backoff_initial, am.backoff_max) == (10, 86400, 1, 300)


# --- durations and nameservers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("45", 45.0),
        (90, 90.0),
        (2.5, 2.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["abc", "10 s", "1x", "h", "-5s", "", "1h-30m", "s10"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration .* \(use e\.g\. 30s, 10m, 1h\)$"):
        parse_duration(text)


@pytest.mark.parametrize("value", [0, "0s", -1, True, None, [], float("inf")])
def test_durations_must_be_positive_numbers(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_intervals_down_to_one_second_are_accepted() -> None:
    cfg = parse(
        "schedule: {interval: 1s, health_interval: 1s}\nlists: [{name: x, use: psbl, interval: 1}]"
    )
    assert (cfg.schedule.interval, cfg.lists[0].interval) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("2001:DB8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_nameservers(text: str, parsed: tuple[str, int]) -> None:
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize(
    "text", ["dns.example.net", "192.0.2.53:0", "192.0.2.53:x", "[::1", "[::1]x", "[192.0.2.1]z"]
)
def test_bad_nameservers_raise_readable_value_errors(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_nameserver(text)


def test_nameservers_are_written_host_colon_port_with_ipv6_in_brackets() -> None:
    assert format_nameserver("10.0.0.1", 53) == "10.0.0.1:53"
    assert format_nameserver("::1", 5353) == "[::1]:5353"


# --- environment and files ---------------------------------------------------------------------


def test_variables_expand_in_every_string_value() -> None:
    env = {"TEAM": "mail", "HOOK": "https://hooks.example.net/x", "NET": "198.51.100.0"}
    cfg = parse(
        """
store: {url: "sqlite:///${TEAM}.db"}
targets: [{group: "${TEAM}-out", addresses: ["${NET}/28"], labels: {team: "${TEAM}"}}]
alerts: {receivers: [{name: ops, url: "${HOOK}", format: slack, timeout: "${TEAM_TIMEOUT}"}]}
""",
        env={**env, "TEAM_TIMEOUT": "3s"},
    )
    assert cfg.store.url == "sqlite:///mail.db"  # no base_dir: left relative
    assert (cfg.targets[0].group, cfg.targets[0].addresses) == ("mail-out", ("198.51.100.0/28",))
    assert dict(cfg.targets[0].labels) == {"team": "mail"}
    assert cfg.alerts.receivers[0].url == "https://hooks.example.net/x"
    assert cfg.alerts.receivers[0].timeout == 3.0


def test_a_missing_variable_names_the_key_and_the_variable() -> None:
    assert error_of("web: {listen_address: '${ADDR}:9798'}", env={}) == (
        "test.yaml: web.listen_address: environment variable ADDR is not set"
    )


def test_a_zone_with_a_variable_is_shown_masked() -> None:
    cfg = parse(
        """
lists:
  - name: spamhaus-zen-dqs
    use: spamhaus-zen
    zone: "${SPAMHAUS_DQS_KEY}.zen.dq.spamhaus.net"
""",
        env={"SPAMHAUS_DQS_KEY": SECRET_IN_ENV},
    )
    (lst,) = cfg.lists
    assert lst.zone == f"{SECRET_IN_ENV}.zen.dq.spamhaus.net"
    assert lst.display_zone == lst.shown_zone == "***.zen.dq.spamhaus.net"
    assert lst.codes == catalogue.get("spamhaus-zen").codes  # inherited
    assert SECRET_IN_ENV not in repr(cfg)


def test_a_keyed_catalogue_list_expands_its_zone_from_the_environment() -> None:
    cfg = parse("lists: [spamhaus-zen-dqs]", env={"SPAMHAUS_DQS_KEY": SECRET_IN_ENV})
    (lst,) = cfg.lists
    assert lst.zone == f"{SECRET_IN_ENV}.zen.dq.spamhaus.net"
    assert lst.shown_zone == "***.zen.dq.spamhaus.net"


def test_overriding_the_zone_of_a_keyed_list_needs_no_variable() -> None:
    cfg = parse("lists: [{name: dqs, use: spamhaus-zen-dqs, zone: zen.mirror.example}]", env={})
    assert (cfg.lists[0].zone, cfg.lists[0].display_zone) == ("zen.mirror.example", None)


def test_file_keys_read_relative_to_the_config_file_and_strip(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    write(tmp_path / "secrets", "ops.url", "  https://hooks.example.net/T/B/xyz\n")
    write(tmp_path / "secrets", "ops.key", WHSEC + "\n")
    write(tmp_path / "secrets", "zen.zone", f"{SECRET_IN_ENV}.zen.dq.spamhaus.net\n")
    path = write(
        tmp_path,
        "c.yaml",
        """
lists: [{name: zen-dqs, use: spamhaus-zen, zone_file: secrets/zen.zone}]
alerts:
  receivers: [{name: ops, url_file: secrets/ops.url, secret_file: "${DIR}/ops.key"}]
""",
    )
    cfg = load_config(path, env={"DIR": str(tmp_path / "secrets")})
    receiver = cfg.alerts.receivers[0]
    assert (receiver.url, receiver.secret) == ("https://hooks.example.net/T/B/xyz", WHSEC)
    assert cfg.lists[0].zone == f"{SECRET_IN_ENV}.zen.dq.spamhaus.net"
    assert cfg.lists[0].shown_zone == "***"
    assert "xyz" not in repr(cfg)
    assert WHSEC not in repr(cfg)
    assert SECRET_IN_ENV not in repr(cfg)


def test_an_empty_file_key_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "ops.url", "\n")
    path = write(tmp_path, "c.yaml", "alerts: {receivers: [{name: ops, url_file: ops.url}]}")
    with pytest.raises(ConfigError, match=r"alerts\.receivers\.0\.url_file: 'ops\.url' is empty$"):
        load_config(path)


def test_a_relative_sqlite_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "c.yaml", "store: {url: 'sqlite:///state/r.db'}"))
    assert cfg.store.url == f"sqlite:///{tmp_path}/state/r.db"
    assert load_config(write(tmp_path, "d.yaml", "store: {url: 'sqlite:////r.db'}")).store.url == (
        "sqlite:////r.db"
    )


def test_a_store_password_never_shows_in_repr() -> None:
    cfg = Config(store=StoreConfig("postgresql://rblwatch:hunter2@db.example.net/rblwatch"))
    assert cfg.store.url.endswith(":hunter2@db.example.net/rblwatch")
    assert "hunter2" not in repr(cfg)
    assert cfg.store.display_url == "postgresql://rblwatch:***@db.example.net/rblwatch"


def test_only_store_schemes_that_exist_are_accepted() -> None:
    # check-config said OK for postgresql://, then run refused it (issue 9)
    assert STORE_SCHEMES == ("sqlite", "postgresql", "postgres")
    message = error_of("store: {url: 'mysql://rblwatch:hunter2@db.example.net/rblwatch'}")
    assert message == (
        "test.yaml: store.url: mysql stores are not available in this rblwatch"
        " (use sqlite:///PATH or postgresql://USER@HOST/DB)"
    )


@pytest.mark.parametrize(
    "url", ["sqlite://relative.db", "state.db", "://x", "s q l://x", "x" * 40 + "://y"]
)
def test_a_store_url_without_a_known_form_is_unsupported(url: str) -> None:
    assert error_of(f"store: {{url: {url!r}}}") == (
        "test.yaml: store.url: unsupported store URL"
        " (use sqlite:///PATH or postgresql://USER@HOST/DB)"
    )


# --- lists -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["lists: [spamcop, sorbs]", "lists: [spamcop, {name: my-sorbs, use: sorbs}]"],
    ids=["by-name", "via-use"],
)
def test_a_defunct_list_is_refused_with_the_catalogue_message(text: str) -> None:
    message = catalogue.defunct_message(catalogue.get("sorbs"))
    assert error_of(text) == f"test.yaml: lists.1: {message}"


def test_an_unknown_list_points_to_rblwatch_lists() -> None:
    assert error_of("lists: [spamcop, psbl, foo]") == (
        "test.yaml: lists.2: unknown list 'foo' (see 'rblwatch lists')"
    )


def test_use_inherits_the_catalogue_entry_and_overrides_fields() -> None:
    base = catalogue.get("spamhaus-zen")
    (lst,) = parse(
        """
lists:
  - name: zen-mirror
    use: spamhaus-zen
    zone: zen.mirror.example
    nameservers: [10.0.0.53]
    interval: 10m
    codes: {127.0.0.2: SBL}
"""
    ).lists
    assert (lst.name, lst.zone, lst.interval) == ("zen-mirror", "zen.mirror.example", 600.0)
    assert lst.nameservers == (Nameserver("10.0.0.53", 53),)
    assert dict(lst.codes) == {"127.0.0.2": "SBL"}  # replaced, not merged
    assert (lst.errors, lst.delist_url, lst.kind, lst.ipv6) == (
        base.errors,
        base.delist_url,
        base.kind,
        base.ipv6,
    )


def test_a_custom_list_gets_model_defaults_for_what_it_leaves_out() -> None:
    (lst,) = parse("lists: [{name: corp-bl, zone: bl.example.net, kind: ip}]").lists
    assert (lst.purpose, lst.ipv6, lst.health_check) == (Purpose.BLOCK, False, True)
    assert (lst.codes, lst.test_listed, lst.interval) == ({}, None, None)


def test_duplicate_list_names_are_errors() -> None:
    assert error_of("lists: [spamcop, {name: spamcop, use: spamcop}]") == (
        "test.yaml: lists.1: duplicate list name 'spamcop' (also lists.0)"
    )


def test_errors_may_name_a_reason_per_answer() -> None:
    (lst,) = parse(
        "lists: [{name: x, use: spamhaus-zen, errors: {127.255.255.254: blocked,"
        " 127.255.255.255: rate_limited}}]"
    ).lists
    assert dict(lst.errors) == {
        "127.255.255.254": Reason.BLOCKED,
        "127.255.255.255": Reason.RATE_LIMITED,
    }


# --- targets -----------------------------------------------------------------------------------


def test_a_larger_ipv4_limit_admits_larger_networks_and_excludes_have_no_limit() -> None:
    cfg = parse(
        "limits: {ipv4_min_prefix: 8}\n"
        "targets: [{group: big, addresses: [10.0.0.0/8], exclude: [0.0.0.0/0, '::/0']}]"
    )
    assert cfg.targets[0].addresses == ("10.0.0.0/8",)
    assert cfg.targets[0].exclude == ("0.0.0.0/0", "::/0")


def test_targets_are_required_only_when_asked() -> None:
    assert parse("lists: [spamcop]").targets == ()
    for text in ("{}", "targets: []"):
        assert error_of(text, require_targets=True) == (
            "test.yaml: targets: at least one target group is required for run"
        )


# --- receivers ---------------------------------------------------------------------------------


def test_receiver_urls_and_secrets_never_show_in_repr_or_errors() -> None:
    cfg = parse(
        f"alerts: {{receivers: [{{name: ops, url: 'https://h.example/TOKEN', secret: {WHSEC}}}]}}"
    )
    assert "TOKEN" not in repr(cfg)
    assert WHSEC not in repr(cfg)
    message = error_of("alerts: {receivers: [{name: ops, url: 'ftp://h.example/TOKEN'}]}")
    assert "TOKEN" not in message


def test_receiver_groups_are_checked_only_against_configured_targets() -> None:
    cfg = parse("alerts: {receivers: [{name: ops, url: 'https://h.example/', groups: [x]}]}")
    assert cfg.alerts.receivers[0].groups == ("x",)


@pytest.mark.parametrize("fmt", RECEIVER_FORMATS)
def test_each_receiver_format_takes_a_secret_only_if_it_signs(fmt: str) -> None:
    # the format names live in one constant, the signing ones in another (config/model.py)
    receiver = f"{{name: r, url: 'https://h.example/', format: {fmt}, secret: {WHSEC}}}"
    text = f"alerts: {{receivers: [{receiver}]}}"
    if fmt in SIGNED_FORMATS:
        assert parse(text).alerts.receivers[0].secret == WHSEC
    else:
        assert error_of(text) == (
            "test.yaml: alerts.receivers.0.secret: only json deliveries are signed;"
            f" remove it for format {fmt}"
        )


def test_an_unknown_receiver_format_names_the_known_ones() -> None:
    message = error_of("alerts: {receivers: [{name: r, url: 'https://h.example/', format: xml}]}")
    assert message == (
        "test.yaml: alerts.receivers.0.format: must be one of json, slack, alertmanager, not 'xml'"
    )
    assert (RECEIVER_FORMATS, SIGNED_FORMATS) == (("json", "slack", "alertmanager"), ("json",))


# --- files and messages ------------------------------------------------------------------------


def _bad_files() -> list[Path]:
    return sorted(BAD.glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: …'"
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("path", _bad_files(), ids=lambda p: p.stem)
def test_bad_config_gives_its_exact_one_line_message(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"RBLWATCH_TEST_KEY": SECRET_IN_ENV}, require_targets=False)
    message = str(info.value)
    assert message == f"{path}: {_expected(path)}"
    assert "\n" not in message
    assert SECRET_IN_ENV not in message


def test_there_are_bad_config_examples() -> None:
    assert len(_bad_files()) > 40


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: cannot read config file: No such file or directory"


def test_a_config_error_carries_its_parts() -> None:
    with pytest.raises(ConfigError) as info:
        parse("schedule: {interval: abc}")
    assert (info.value.source, info.value.path) == ("test.yaml", "schedule.interval")
    assert info.value.problem.startswith("invalid duration")


def test_the_example_config_loads_as_a_run_config() -> None:
    cfg = load_config(ROOT / "config.example.yaml", env={}, require_targets=True)
    assert cfg.resolver.nameservers == ()  # the system resolver
    assert cfg.store.url == f"sqlite:///{ROOT}/rblwatch.db"
    assert cfg.targets[0].addresses == ("192.0.2.10",)
    assert cfg.targets[0].domains == ("example.com",)
    assert cfg.alerts.receivers == ()
    assert {"spamhaus-zen", "dnswl"} <= {lst.name for lst in cfg.lists}


# a commented-out key line: "# key: …" or "# - …" (explanations are prose, not keys)
_COMMENTED_KEY = re.compile(r"^(\s*)# (\s*(?:- |[a-z0-9_]+:(?:\s|$)).*)$")


def test_the_commented_examples_in_the_example_config_are_valid(tmp_path: Path) -> None:
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    lines = [_COMMENTED_KEY.sub(r"\1\2", line) for line in text.splitlines()]
    assert lines != text.splitlines()
    write(tmp_path, "ops.url", "https://hooks.example.net/rblwatch\n")
    write(tmp_path, "ops.key", WHSEC)
    write(tmp_path, "imap.pw", "imap-secret\n")
    path = write(tmp_path, "config.yaml", "\n".join(lines))
    env = {
        "SPAMHAUS_DQS_KEY": SECRET_IN_ENV,
        "OPS_SECRET": WHSEC,
        "SLACK_WEBHOOK_URL": "https://hooks.example.net/slack",
    }
    cfg = load_config(path, env=env, require_targets=True)
    names = [lst.name for lst in cfg.lists]
    assert names[-2:] == ["spamhaus-zen-dqs", "corp-bl"]
    assert cfg.resolver.nameservers != ()
    assert [r.name for r in cfg.alerts.receivers] == ["ops", "slack", "alertmanager"]
    assert cfg.targets[0].exclude and cfg.targets[0].hostnames


def test_config_domains_and_hostnames_are_converted_by_idna_2008_as_check_does() -> None:
    # the daemon must ask about the name `check` and `history --target` use: faß.de is
    # xn--fa-hia.de under IDNA 2008, never fass.de (IDNA 2003, another domain)
    from rblwatch.targets import normalize_domain

    cfg = parse_config(
        {"targets": [{"group": "g", "domains": ["faß.de"], "hostnames": ["mx.faß.de"]}]}
    )
    assert cfg.targets[0].domains == ("xn--fa-hia.de",) == (normalize_domain("faß.de"),)
    assert cfg.targets[0].hostnames == ("mx.xn--fa-hia.de",)
