"""The `hygiene:` section of a target group and `schedule.hygiene_interval` (issue 12).

Defaults, what each key becomes, and every refusal as one line naming its key path.
"""

from __future__ import annotations

from typing import Any

import pytest

from rblwatch import cli
from rblwatch.config import ConfigError, HygieneConfig, parse_config
from rblwatch.model import HygieneSubject


def cfg_of(hygiene: object, **group: Any) -> Any:
    g = {"group": "mail", "addresses": ["192.0.2.10"], "domains": ["example.com"], **group}
    g["hygiene"] = hygiene
    return parse_config({"targets": [g]})


def error_of(hygiene: object, **group: Any) -> str:
    with pytest.raises(ConfigError) as info:
        cfg_of(hygiene, **group)
    return str(info.value)


def test_a_group_without_a_hygiene_section_is_not_checked() -> None:
    cfg = parse_config({"targets": [{"group": "mail", "addresses": ["192.0.2.10"]}]})
    assert cfg.targets[0].hygiene is None
    assert cfg.hygiene == ()


def test_an_empty_section_takes_the_defaults() -> None:
    cfg = cfg_of({})
    assert cfg.targets[0].hygiene == HygieneConfig()
    assert [h.name for h in cfg.hygiene] == ["fcrdns", "spf", "dmarc"]
    assert cfg.hygiene[0] == HygieneSubject("fcrdns", interval=3600.0)


def test_selectors_add_dkim_and_every_key_is_parsed() -> None:
    cfg = parse_config(
        {
            "schedule": {"hygiene_interval": "15m"},
            "targets": [
                {
                    "group": "mail",
                    "addresses": ["192.0.2.10"],
                    "domains": ["example.com", "example.org"],
                    "hygiene": {
                        "sending_ips": ["192.0.2.10", "2001:DB8::25"],
                        "helo": "MX1.Example.COM.",
                        "dkim_selectors": {"example.com": ["S1", "s2"]},
                    },
                }
            ],
        }
    )
    h = cfg.targets[0].hygiene
    assert h is not None
    assert h.checks == ("fcrdns", "spf", "dmarc", "dkim")
    assert h.sending_ips == ("192.0.2.10", "2001:db8::25")
    assert h.helo == "mx1.example.com"
    assert h.selectors_of("example.com") == ("s1", "s2")
    assert h.selectors_of("example.org") == ()
    assert [(s.name, s.interval) for s in cfg.hygiene] == [
        ("fcrdns", 900.0),
        ("spf", 900.0),
        ("dkim", 900.0),
        ("dmarc", 900.0),
    ]


def test_a_list_of_selectors_is_for_every_domain() -> None:
    h = cfg_of({"dkim_selectors": ["k1"], "checks": ["dkim"]}).targets[0].hygiene
    assert (h.checks, h.selectors_of("example.com"), h.selectors_of("x.example")) == (
        ("dkim",),
        ("k1",),
        ("k1",),
    )


@pytest.mark.parametrize(
    ("hygiene", "group", "where", "what"),
    [
        ({"checks": ["spf", "bogus"]}, {}, "targets.0.hygiene.checks.1", "must be one of"),
        ({"checks": ["spf", "spf"]}, {}, "targets.0.hygiene.checks.1", "duplicate check"),
        ({"checks": ["dkim"]}, {}, "targets.0.hygiene.checks", "dkim needs dkim_selectors"),
        ({"dkim_selectors": ["s1.x"]}, {}, "dkim_selectors.0", "has a dot"),
        ({"dkim_selectors": ["-x"]}, {}, "dkim_selectors.0", "not a DNS label"),
        ({"dkim_selectors": ["s_1"]}, {}, "dkim_selectors.0", "not a DNS label"),
        ({"dkim_selectors": {"other.example": ["s1"]}}, {}, "other.example", "not one of the"),
        ({"sending_ips": ["mail.example.com"]}, {}, "sending_ips.0", "not an IP address"),
        ({"sending_ips": ["192.0.2.0/24"]}, {}, "sending_ips.0", "not an IP address"),
        ({"helo": "192.0.2.1"}, {}, "targets.0.hygiene.helo", "an address, not a name"),
        ({"sneaky": 1}, {}, "targets.0.hygiene.sneaky", "unknown key"),
        ({"checks": ["dmarc"]}, {"domains": []}, "targets.0.hygiene", "need the group's domains"),
        ({}, {"addresses": ["10.0.0.0/16"]}, "targets.0.hygiene", "list the ones that send"),
        ("yes", {}, "targets.0.hygiene", "mapping"),
    ],
)
def test_bad_sections_are_one_line_naming_the_key(
    hygiene: object, group: dict[str, Any], where: str, what: str
) -> None:
    message = error_of(hygiene, **group)
    assert where in message and what in message, message
    assert "\n" not in message


def test_a_list_may_not_take_a_checks_name() -> None:
    with pytest.raises(ConfigError, match=r"lists\.0\.name: 'spf' is the name of a hygiene check"):
        parse_config({"lists": [{"name": "spf", "zone": "spf.example", "kind": "ip"}]})


def test_check_config_refuses_with_one_line_and_exit_2(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "targets:\n  - group: g\n    addresses: [192.0.2.1]\n    domains: [example.com]\n"
        "    hygiene: {dkim_selectors: [a.b]}\n"
    )
    code = cli.main(["check-config", "--config.file", str(path)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert err.count("\n") == 1 and "targets.0.hygiene.dkim_selectors.0" in err


def test_history_filters_take_a_hygiene_pairs_key_and_its_check_before_the_first_pass(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from rblwatch.store.sqlite import SqliteStore
    from rblwatch.targets import canonical_target

    assert canonical_target(" Example.COM   192.0.2.10 ") == "example.com 192.0.2.10"
    assert canonical_target("S1._domainkey.example.com") == "s1._domainkey.example.com"
    db = tmp_path / "state.db"
    SqliteStore(str(db)).close()  # a store no pass has written to yet
    path = tmp_path / "c.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{db}'}}\n"
        "targets:\n  - group: g\n    addresses: [192.0.2.10]\n    domains: [example.com]\n"
        "    hygiene: {}\n"
    )
    code = cli.main(
        [
            "history",
            "--config.file",
            str(path),
            "--list",
            "spf",
            "--target",
            "example.com 192.0.2.10",
        ]
    )
    _out, err = capsys.readouterr()
    assert (code, err) == (cli.EXIT_CLEAN, "")
