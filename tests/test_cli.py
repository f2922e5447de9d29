"""The command line of SPEC §9 as a user meets it: `rblwatch check`, `lists` and `check-config`.

Every lookup goes to a server on 127.0.0.1: the lists of a config written per test are served by
one rbldnsd for the module (zones below), failures come from faultdns, and a run with the
catalogue's lists always has `--nameserver` pointing at a local server. Most runs call
`cli.main` in process; a few go through `python -m rblwatch` and the `rblwatch` console script.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rblwatch import catalogue, cli, config
from tests.faultdns import Action, Fault, FaultDns
from tests.rbldnsd import Rbldnsd, available

DATA = Path(__file__).parent / "data" / "cli"
EXAMPLE_CONFIG = Path(__file__).parents[1] / "config.example.yaml"
NOWHERE = "127.0.0.1:9"  # discard port: a run that wrongly gets as far as a lookup stays local
KEY = "s3cret-k3y"  # the secret part of keyed zones; must never be printed

# -- the lists, as a config file defines them -----------------------------------------------------

BL = {
    "name": "bl",
    "zone": "bl.test",
    "kind": "ip",
    "ipv6": True,
    "codes": {"127.0.0.2": "spam source", "127.0.0.3": "bad network", "127.0.0.4": "exploited"},
    "delist_url": "https://bl.test/delist",
}
DBL = {"name": "dbl", "zone": "dbl.test", "kind": "domain", "codes": {"127.0.1.2": "spam domain"}}
DEAD = {"name": "dead", "zone": "dead.test", "kind": "ip"}  # no 127.0.0.2: dead
EVERYTHING = {"name": "everything", "zone": "everything.test", "kind": "ip"}  # lists 127.0.0.1
KEYED = {"name": "keyed", "zone": "${RBLWATCH_TEST_KEY}.keyed.test", "kind": "ip"}
V4_TEST_POINT = "127.0.0.2"


@pytest.fixture(scope="module")
def zones() -> Iterator[Rbldnsd]:
    """One rbldnsd serving every zone the configs here name."""
    if not available():
        # never a skip: lookups are only proven against a real DNSBL server
        pytest.fail("rbldnsd is not installed: apt-get install -y rbldnsd (see README, Tests)")
    srv = Rbldnsd()
    srv.add_zone(
        "bl.test",
        "combined",
        [
            "$DATASET ip4set @",
            ":127.0.0.2:Listed: $",
            "127.0.0.2",
            # one line per A record: 192.0.2.10 answers both codes, each with its own TXT
            "192.0.2.10 :127.0.0.4:exploited host, see https://bl.test/192.0.2.10",
            "192.0.2.10 :127.0.0.2:spam source",
            "198.51.100.2 :127.0.0.2:relay abused",
            "$DATASET ip6trie @",
            "::ffff:7f00:2 :127.0.0.2:v6 test point",
            "2001:db8:bad::/48 :127.0.0.3:bad v6 network",
        ],
    )
    srv.add_zone("dbl.test", "dnset", [":127.0.1.2:Domain $", "test", "xn--bcher-kva.example"])
    srv.add_zone("dead.test", "ip4set", ["192.0.2.10 :127.0.0.2:stale entry"])
    srv.add_zone("everything.test", "ip4set", ["0-255 :127.0.0.2:parked"])
    srv.add_zone(f"{KEY}.keyed.test", "ip4set", ["127.0.0.2", "192.0.2.10 :127.0.0.2:keyed"])
    # what `--list spamhaus-zen-dqs` asks once SPAMHAUS_DQS_KEY is set (an IPv6 list)
    srv.add_zone(
        f"{KEY}.zen.dq.spamhaus.net",
        "combined",
        [
            "$DATASET ip4set @",
            "127.0.0.2 :127.0.0.2:SBL test",
            "192.0.2.10 :127.0.0.4:XBL",
            "$DATASET ip6trie @",
            "::ffff:7f00:2 :127.0.0.2:SBL test",
        ],
    )
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def server(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


MakeConfig = Callable[..., Path]


@pytest.fixture
def make_config(zones: Rbldnsd, tmp_path: Path) -> MakeConfig:
    """A config file whose resolver is the module's rbldnsd, with the lists given (bl and dbl)."""
    count = 0

    def make(
        lists: Sequence[Mapping[str, Any]] = (BL, DBL),
        *,
        timeout: str = "300ms",
        attempts: int = 2,
        **top: Any,
    ) -> Path:
        nonlocal count
        count += 1
        data = {
            "resolver": {
                "nameservers": [server(zones.address)],
                "timeout": timeout,
                "attempts": attempts,
            },
            "lists": [dict(lst) for lst in lists],
            **top,
        }
        path = tmp_path / f"config-{count}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return make


@pytest.fixture
def no_default_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Runs as if /etc/rblwatch/config.yaml did not exist, whatever this machine has."""
    missing = tmp_path / "etc-rblwatch-config.yaml"
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(missing))
    return missing


# -- running it -----------------------------------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def results(self) -> dict[tuple[str, str], dict[str, Any]]:
        """(target, list) → result row of `--format json`; a row reported twice fails."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for row in self.json()["results"]:
            key = (row["target"], row["list"])
            assert key not in rows, f"{key} reported twice"
            rows[key] = row
        return rows

    def health(self) -> dict[str, str]:
        return {lst["name"]: lst["health"] for lst in self.json()["lists"]}


@pytest.fixture
def rblwatch(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run `rblwatch ARGS…` in this process (cli.main) and capture what it printed."""

    def run(*args: str | Path) -> Ran:
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def run_process(
    *args: str | Path, script: bool = False, env: Mapping[str, str] | None = None
) -> Ran:
    """Run it as its own process: `python -m rblwatch`, or the installed `rblwatch` script."""
    if script:
        exe = shutil.which("rblwatch", path=str(Path(sys.executable).parent))
        assert exe is not None, "the rblwatch console script is not installed next to python"
        cmd = [exe]
    else:
        cmd = [sys.executable, "-m", "rblwatch"]
    proc = subprocess.run(
        [*cmd, *map(str, args)], check=False, capture_output=True, text=True, timeout=60, env=env
    )
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(ran: Ran, *mentions: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr mentioning each of `mentions`, no traceback."""
    assert "Traceback" not in ran.err
    assert ran.code == cli.EXIT_USAGE, ran.err
    assert ran.out == ""
    assert ran.err.endswith("\n") and ran.err.count("\n") == 1, ran.err
    # "rblwatch: …", or "rblwatch check: …" for a command line argparse refused; never both
    assert re.match(r"rblwatch( [a-z-]+)?: ", ran.err), ran.err
    assert not ran.err.startswith("rblwatch: rblwatch"), ran.err
    for text in mentions:
        assert text in ran.err


# -- exit codes -----------------------------------------------------------------------------------


def test_a_clean_address_exits_0_and_prints_only_the_summary(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch("check", "--config.file", make_config(), "198.51.100.7")
    assert ran.code == cli.EXIT_CLEAN
    # an address is asked of the ip list only; the domain list is still probed and counted
    assert ran.out == "1 lookups on 2 lists: 0 listed, 1 clean, 0 error, 0 allowlisted\n"
    assert ran.err == ""


def test_a_listed_address_exits_1_and_the_table_shows_it(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch("check", "--config.file", make_config(), "192.0.2.10", "198.51.100.7")
    assert ran.code == cli.EXIT_LISTED
    header, row, blank, summary = ran.out.splitlines()
    assert header.split() == ["TARGET", "LIST", "OUTCOME", "CODES", "DETAIL"]
    assert row.split()[:4] == ["192.0.2.10", "bl", "listed", "127.0.0.2,127.0.0.4"]
    assert "spam source; exploited" in row
    assert blank == ""
    assert summary == "2 lookups on 2 lists: 1 listed, 1 clean, 0 error, 0 allowlisted"


def test_a_list_whose_server_never_answers_is_dead_and_exits_3(
    make_config: MakeConfig, faultdns: FaultDns, rblwatch: Callable[..., Ran]
) -> None:
    faultdns.default = Action(Fault.DROP)
    gone = {
        "name": "gone",
        "zone": "gone.test",
        "kind": "ip",
        "nameservers": [server(faultdns.address)],
    }
    cfg = make_config([gone], timeout="200ms", attempts=1)
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "192.0.2.10")
    assert ran.code == cli.EXIT_ERRORS
    assert ran.health() == {"gone": "dead"}
    row = ran.results()[("192.0.2.10", "gone")]
    assert (row["outcome"], row["reason"]) == ("error", "list_unhealthy")
    # a dead list is not asked about targets at all
    assert faultdns.count("10.2.0.192.gone.test") == 0


def test_one_servfail_on_a_healthy_list_exits_3_and_says_servfail(
    make_config: MakeConfig, faultdns: FaultDns, rblwatch: Callable[..., Ran]
) -> None:
    faultdns.rule("2.0.0.127.flaky.test", a=["127.0.0.2"])  # test points right: healthy
    faultdns.rule("10.2.0.192.flaky.test", Fault.SERVFAIL)
    flaky = {
        "name": "flaky",
        "zone": "flaky.test",
        "kind": "ip",
        "nameservers": [server(faultdns.address)],
    }
    cfg = make_config([flaky], timeout="200ms", attempts=1)
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "192.0.2.10", "198.51.100.7")
    assert ran.code == cli.EXIT_ERRORS
    assert ran.health() == {"flaky": "healthy"}
    assert [(r["target"], r["outcome"], r["reason"]) for r in ran.json()["results"]] == [
        ("192.0.2.10", "error", "servfail")
    ]
    assert ran.json()["summary"]["clean"] == 1


def test_a_listing_wins_over_errors_exit_1(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch("check", "--config.file", make_config([BL, DEAD]), "192.0.2.10")
    assert ran.code == cli.EXIT_LISTED
    assert "list dead is dead: test point 127.0.0.2 should be listed" in ran.out


def test_a_list_that_lists_everything_is_not_believed_and_exits_3(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([EVERYTHING])
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "192.0.2.10")
    assert ran.code == cli.EXIT_ERRORS
    assert ran.health() == {"everything": "lists_everything"}
    assert ran.json()["summary"] == {
        "lookups": 1,
        "listed": 0,
        "clean": 0,
        "error": 1,
        "allowlisted": 0,
    }


# -- --format json --------------------------------------------------------------------------------

RESULT_KEYS = {"target", "list", "outcome", "codes", "meanings", "reason", "txt", "delist_url"}


def test_json_has_results_lists_and_summary_with_the_documented_keys(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([BL, DBL, DEAD])
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "--all", "192.0.2.10")
    doc = ran.json()
    assert set(doc) == {"results", "lists", "summary"}
    assert all(set(row) >= RESULT_KEYS for row in doc["results"])
    listed = ran.results()[("192.0.2.10", "bl")]
    assert listed["outcome"] == "listed"
    assert listed["codes"] == ["127.0.0.2", "127.0.0.4"]  # sorted, whatever the zone's order
    assert listed["meanings"] == ["spam source", "exploited"]
    assert listed["reason"] is None
    assert listed["txt"] is None  # not asked for without --txt
    assert listed["delist_url"] == "https://bl.test/delist"
    assert [lst["name"] for lst in doc["lists"]] == ["bl", "dbl", "dead"]
    assert all({"name", "zone", "health"} <= set(lst) for lst in doc["lists"])
    assert {lst["name"]: lst["zone"] for lst in doc["lists"]}["bl"] == "bl.test"
    assert set(doc["summary"]) == {"lookups", "listed", "clean", "error", "allowlisted"}


def test_reason_is_set_exactly_when_the_outcome_is_error(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([BL, DEAD, EVERYTHING])
    ran = rblwatch(
        "check", "--config.file", cfg, "--format", "json", "--all", "192.0.2.10", "198.51.100.7"
    )
    rows = ran.json()["results"]
    assert {r["outcome"] for r in rows} == {"listed", "clean", "error"}
    for row in rows:
        assert (row["reason"] is not None) == (row["outcome"] == "error"), row
        if row["outcome"] != "listed":
            assert (row["codes"], row["meanings"], row["delist_url"]) == ([], [], None), row


def test_the_summary_adds_up_to_the_lookups_shown_with_all(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([BL, DBL, DEAD])
    targets = ["192.0.2.10", "198.51.100.7", "2001:db8:bad::25", "bücher.example", "example.org"]
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "--all", *targets)
    summary = ran.json()["summary"]
    # IPv4 on bl and dead (2 x 2), IPv6 on bl only (1), domains on dbl only (2)
    assert summary["lookups"] == 7 == len(ran.json()["results"])
    assert sum(summary[k] for k in ("listed", "clean", "error", "allowlisted")) == 7
    outcomes = [r["outcome"] for r in ran.json()["results"]]
    assert {k: outcomes.count(k) for k in ("listed", "clean", "error")} == {
        k: summary[k] for k in ("listed", "clean", "error")
    }


def test_clean_rows_are_left_out_unless_all_is_asked_for(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    args = ["check", "--config.file", make_config(), "192.0.2.10", "198.51.100.7"]
    lean = rblwatch(*args, "--format", "json")
    full = rblwatch(*args, "--format", "json", "--all")
    assert set(lean.results()) == {("192.0.2.10", "bl")}
    assert set(full.results()) == {("192.0.2.10", "bl"), ("198.51.100.7", "bl")}
    assert full.results()[("198.51.100.7", "bl")]["outcome"] == "clean"
    assert lean.json()["summary"] == full.json()["summary"]
    table = rblwatch(*args, "--all")
    assert any(
        line.split()[:3] == ["198.51.100.7", "bl", "clean"] for line in table.out.splitlines()
    )


def test_txt_fills_in_the_zone_s_txt_text(
    make_config: MakeConfig, zones: Rbldnsd, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch(
        "check", "--config.file", make_config(), "--format", "json", "--txt", "192.0.2.10"
    )
    txt = ran.results()[("192.0.2.10", "bl")]["txt"]
    assert txt is not None
    expected = zones.txt_records("10.2.0.192.bl.test")  # the oracle: what the zone says
    assert sorted(txt.split("; ")) == expected
    assert "https://bl.test/192.0.2.10" in txt
    table = rblwatch("check", "--config.file", make_config(), "--txt", "192.0.2.10")
    assert "https://bl.test/192.0.2.10" in table.out


def test_list_restricts_the_lookups_to_the_lists_named(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([BL, DBL, DEAD])
    ran = rblwatch(
        "check", "--config.file", cfg, "--list", "dead", "--format", "json", "192.0.2.10"
    )
    assert ran.health() == {"dead": "dead"}
    assert set(ran.results()) == {("192.0.2.10", "dead")}
    assert ran.code == cli.EXIT_ERRORS  # bl, which lists it, was not asked


def test_a_list_named_twice_is_looked_up_once(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config()
    ran = rblwatch(
        "check",
        "--config.file",
        cfg,
        "--list",
        "bl",
        "--list",
        "bl",
        "--format",
        "json",
        "192.0.2.10",
    )
    assert [lst["name"] for lst in ran.json()["lists"]] == ["bl"]
    assert ran.json()["summary"]["lookups"] == 1


def test_a_keyed_zone_is_looked_up_and_shown_masked(
    make_config: MakeConfig, rblwatch: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RBLWATCH_TEST_KEY", KEY)
    ran = rblwatch("check", "--config.file", make_config([KEYED]), "--format", "json", "192.0.2.10")
    assert ran.code == cli.EXIT_LISTED
    assert ran.json()["lists"] == [
        {"name": "keyed", "zone": "***.keyed.test", "health": "healthy", "health_detail": None}
    ]
    assert KEY not in ran.out + ran.err


def test_a_keyed_catalogue_list_named_by_list_takes_its_key_from_the_environment(
    zones: Rbldnsd,
    rblwatch: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
    no_default_config: Path,
) -> None:
    monkeypatch.setenv("SPAMHAUS_DQS_KEY", KEY)
    ran = rblwatch(
        "check",
        "--nameserver",
        server(zones.address),
        "--list",
        "spamhaus-zen-dqs",
        "--format",
        "json",
        "192.0.2.10",
    )
    assert ran.code == cli.EXIT_LISTED, ran.out
    (lst,) = ran.json()["lists"]
    assert (lst["zone"], lst["health"]) == ("***.zen.dq.spamhaus.net", "healthy")
    assert ran.results()[("192.0.2.10", "spamhaus-zen-dqs")]["codes"] == ["127.0.0.4"]
    assert KEY not in ran.out + ran.err


def test_a_keyed_catalogue_list_without_its_key_is_refused_before_any_query(
    faultdns: FaultDns,
    rblwatch: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
    no_default_config: Path,
) -> None:
    monkeypatch.delenv("SPAMHAUS_DQS_KEY", raising=False)
    ran = rblwatch(
        "check",
        "--nameserver",
        server(faultdns.address),
        "--list",
        "spamhaus-zen-dqs",
        "192.0.2.10",
    )
    assert_one_line_error(ran, "--list spamhaus-zen-dqs", "SPAMHAUS_DQS_KEY is not set")
    assert faultdns.queries == []


def test_nameserver_overrides_the_config_and_per_list_nameservers(
    make_config: MakeConfig, zones: Rbldnsd, faultdns: FaultDns, rblwatch: Callable[..., Ran]
) -> None:
    faultdns.default = Action(Fault.DROP)
    elsewhere = {**BL, "nameservers": [server(faultdns.address)]}
    cfg = make_config([elsewhere], timeout="200ms", attempts=1)
    cfg.write_text(cfg.read_text().replace(server(zones.address), server(faultdns.address)))
    ran = rblwatch(
        "check",
        "--config.file",
        cfg,
        "--nameserver",
        server(zones.address),
        "--format",
        "json",
        "192.0.2.10",
    )
    assert ran.code == cli.EXIT_LISTED
    assert ran.health() == {"bl": "healthy"}
    assert faultdns.queries == []


def test_check_without_any_config_asks_the_default_lists_of_the_given_nameserver(
    faultdns: FaultDns, rblwatch: Callable[..., Ran], no_default_config: Path
) -> None:
    ran = rblwatch(
        "check", "--nameserver", server(faultdns.address), "--format", "json", "192.0.2.10"
    )
    defaults = catalogue.default_names()
    assert [lst["name"] for lst in ran.json()["lists"]] == list(defaults)
    # faultdns says NXDOMAIN to everything: every list is dead, so nothing is believed
    assert set(ran.health().values()) == {"dead"}
    assert ran.code == cli.EXIT_ERRORS
    zones_asked = {catalogue.get(name).zone for name in defaults}
    assert faultdns.queries
    assert all(any(q.name.endswith("." + z) for z in zones_asked) for q in faultdns.queries)


# -- targets --------------------------------------------------------------------------------------


def test_an_ipv6_address_is_checked_on_the_ipv6_list_only(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    v4only = {**BL, "name": "v4only", "ipv6": False}
    cfg = make_config([BL, v4only, DBL])
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "--all", "2001:db8:bad::25")
    rows = ran.results()
    assert set(rows) == {("2001:db8:bad::25", "bl")}
    assert (
        rows[("2001:db8:bad::25", "bl")]["outcome"],
        rows[("2001:db8:bad::25", "bl")]["codes"],
    ) == (
        "listed",
        ["127.0.0.3"],
    )
    assert ran.code == cli.EXIT_LISTED


def test_an_idn_domain_is_checked_by_its_a_label_on_the_domain_list(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch("check", "--config.file", make_config(), "--format", "json", "bücher.example")
    rows = ran.results()
    assert set(rows) == {("xn--bcher-kva.example", "dbl")}
    assert rows[("xn--bcher-kva.example", "dbl")]["meanings"] == ["spam domain"]
    assert ran.code == cli.EXIT_LISTED


def test_a_target_file_with_comments_and_a_cidr_checks_every_address(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch(
        "check",
        "--config.file",
        make_config(),
        "--format",
        "json",
        "--all",
        f"@{DATA / 'targets.txt'}",
    )
    rows = ran.results()
    assert set(rows) == {
        ("192.0.2.10", "bl"),
        # a CIDR is every address, network and broadcast included
        ("198.51.100.0", "bl"),
        ("198.51.100.1", "bl"),
        ("198.51.100.2", "bl"),
        ("198.51.100.3", "bl"),
        ("xn--bcher-kva.example", "dbl"),
    }
    listed = {key for key, row in rows.items() if row["outcome"] == "listed"}
    assert listed == {
        ("192.0.2.10", "bl"),
        ("198.51.100.2", "bl"),
        ("xn--bcher-kva.example", "dbl"),
    }


def test_a_name_is_also_a_host_whose_addresses_are_checked_on_the_ip_lists(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    # rbldnsd answers A 127.0.0.2 for a name its dead.test zone lists: that is the host's
    # address, and on bl it is listed (the test point); the result names the host
    cfg = make_config([BL, DBL])
    ran = rblwatch("check", "--config.file", cfg, "--format", "json", "10.2.0.192.dead.test")
    assert ran.code == cli.EXIT_LISTED
    (result,) = ran.json()["results"]
    assert (result["target"], result["hostname"], result["list"], result["outcome"]) == (
        "127.0.0.2",
        "10.2.0.192.dead.test",
        "bl",
        "listed",
    )
    assert ran.json()["summary"]["lookups"] == 2  # the name on dbl, its address on bl
    table = rblwatch("check", "--config.file", cfg, "10.2.0.192.dead.test")
    assert table.out.splitlines()[1].startswith("127.0.0.2 (10.2.0.192.dead.test)  bl")


def test_a_name_without_addresses_is_only_a_domain_and_a_failed_lookup_is_said(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([BL])
    nothing = rblwatch("check", "--config.file", cfg, "nosuch.dead.test")  # NXDOMAIN
    assert nothing.code == cli.EXIT_CLEAN and nothing.err == ""
    assert nothing.out == "0 lookups on 1 lists: 0 listed, 0 clean, 0 error, 0 allowlisted\n"
    refused = rblwatch("check", "--config.file", cfg, "example.com")  # not rbldnsd's zone
    assert refused.code == cli.EXIT_ERRORS  # nothing was checked: never "all clean"
    assert refused.err.startswith("rblwatch: warning: example.com: addresses not looked up: ")


# -- bad input: exit 2, one line, no traceback ----------------------------------------------------

CFG = "{cfg}"  # replaced by a config whose lists and resolver are the module's rbldnsd


def _args(args: Sequence[str], cfg: Path) -> list[str]:
    return [str(cfg) if a == CFG else a for a in args]


BAD_INPUT = {
    "unparsable address": (["check", "--config.file", CFG, "999.1.1.1"], ["'999.1.1.1'"]),
    "bad CIDR": (["check", "--config.file", CFG, "10.0.0.0/33"], ["'10.0.0.0/33'"]),
    "network too large": (["check", "--config.file", CFG, "10.0.0.0/8"], ["'10.0.0.0/8'", "/16"]),
    "IPv6 network too large": (["check", "--config.file", CFG, "2001:db8::/64"], ["/120"]),
    "missing target file": (["check", "--config.file", CFG, "@no-such-file"], ["no-such-file"]),
    "bad line in target file": (
        ["check", "--config.file", CFG, f"@{DATA / 'bad_targets.txt'}"],
        [f"{DATA / 'bad_targets.txt'}:3:", "'mx1 example net'"],
    ),
    "empty target file": (
        ["check", "--config.file", CFG, f"@{DATA / 'empty_targets.txt'}"],
        [f"{DATA / 'empty_targets.txt'}: no targets"],
    ),
    "target file of comments only": (
        ["check", "--config.file", CFG, f"@{DATA / 'comments_only_targets.txt'}"],
        [f"{DATA / 'comments_only_targets.txt'}: no targets"],
    ),
    "unknown list": (
        ["check", "--config.file", CFG, "--list", "nosuch", "192.0.2.10"],
        ["--list nosuch", "unknown list"],
    ),
    "defunct list": (
        ["check", "--config.file", CFG, "--list", "sorbs", "192.0.2.10"],
        ["--list sorbs", "defunct since 2024"],
    ),
    "bad nameserver port": (
        ["check", "--config.file", CFG, "--nameserver", "127.0.0.1:abc", "192.0.2.10"],
        ["--nameserver 127.0.0.1:abc", "port"],
    ),
    "bad nameserver address": (
        ["check", "--config.file", CFG, "--nameserver", "999.1.1.1", "192.0.2.10"],
        ["--nameserver 999.1.1.1"],
    ),
    "unknown format": (
        ["check", "--config.file", CFG, "--format", "xml", "192.0.2.10"],
        ["--format", "'xml'"],
    ),
    "no target": (["check", "--config.file", CFG], ["TARGET"]),
    "no command": ([], ["command"]),
    "unknown command": (["frobnicate"], ["'frobnicate'"]),
    "lists format": (["lists", "--config.file", CFG, "--format", "xml"], ["'xml'"]),
}


@pytest.mark.parametrize(("args", "mentions"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], mentions: list[str], make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    assert_one_line_error(rblwatch(*_args(args, make_config())), *mentions)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["check"], "rblwatch check: the following arguments are required: TARGET (see --help)"),
        (["status", "--format", "xml"], "rblwatch status: argument --format: invalid choice: "),
        (["--bogus"], "rblwatch: the following arguments are required: command (see --help)"),
    ],
)
def test_an_argument_error_names_the_command_once(
    args: list[str], expected: str, rblwatch: Callable[..., Ran]
) -> None:
    ran = rblwatch(*args)
    assert (ran.code, ran.out) == (cli.EXIT_USAGE, "")
    assert ran.err.startswith(expected), ran.err
    assert ran.err.count("\n") == 1 and ran.err.endswith("(see --help)\n"), ran.err


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: ")
    return first.removeprefix("# expect: ")


@pytest.mark.parametrize("command", ["check", "lists", "check-config"])
@pytest.mark.parametrize("name", ["bad_yaml.yaml", "unknown_key.yaml"])
def test_a_bad_config_file_is_named_with_its_line_or_key_path(
    command: str, name: str, rblwatch: Callable[..., Ran]
) -> None:
    path = DATA / name
    extra = ["--nameserver", NOWHERE, "192.0.2.10"] if command == "check" else []
    ran = rblwatch(command, "--config.file", path, *extra)
    assert_one_line_error(ran)
    assert ran.err == f"rblwatch: {path}: {_expected(path)}\n"


def test_a_missing_config_file_is_named(tmp_path: Path, rblwatch: Callable[..., Ran]) -> None:
    missing = tmp_path / "nope.yaml"
    ran = rblwatch("check", "--config.file", missing, "--nameserver", NOWHERE, "192.0.2.10")
    assert_one_line_error(ran, str(missing), "No such file")


def test_check_config_without_a_file_names_the_default_path(
    rblwatch: Callable[..., Ran], no_default_config: Path
) -> None:
    assert_one_line_error(rblwatch("check-config"), str(no_default_config))


def test_bad_input_through_python_m_is_one_line_and_exit_2() -> None:
    ran = run_process("check", "--nameserver", NOWHERE, "999.1.1.1")
    assert_one_line_error(ran, "'999.1.1.1'")
    assert_one_line_error(
        run_process("check", "--nameserver", NOWHERE, "--format", "xml", "1.2.3.4"), "xml"
    )


def test_bad_config_through_the_console_script_is_one_line_and_exit_2() -> None:
    path = DATA / "unknown_key.yaml"
    ran = run_process("check-config", "--config.file", path, script=True)
    assert_one_line_error(ran, "lists.0.zonee")


# -- rblwatch lists -------------------------------------------------------------------------------


def test_lists_without_config_prints_the_catalogue_and_marks_defunct_lists(
    rblwatch: Callable[..., Ran], no_default_config: Path
) -> None:
    ran = rblwatch("lists")
    assert ran.code == 0
    rows = {line.split()[0]: line.split() for line in ran.out.splitlines()[1:]}
    assert rows["spamhaus-zen"][:5] == ["spamhaus-zen", "ip", "yes", "block", "active"]
    assert "zen.spamhaus.org" in rows["spamhaus-zen"]
    assert rows["sorbs"][4] == "defunct"


def test_lists_json_is_an_array_of_the_catalogue(
    rblwatch: Callable[..., Ran], no_default_config: Path
) -> None:
    doc = rblwatch("lists", "--format", "json").json()
    assert isinstance(doc, list)
    by_name = {lst["name"]: lst for lst in doc}
    assert by_name["spamhaus-zen"]["zone"] == "zen.spamhaus.org"
    assert (by_name["sorbs"]["status"], by_name["sorbs"]["status_since"]) == (
        "defunct",
        "2024-06-05",
    )
    assert all(lst["health"] is None for lst in doc)  # not probed without --test


def test_lists_test_shows_each_configured_list_s_health(
    make_config: MakeConfig, faultdns: FaultDns, rblwatch: Callable[..., Ran]
) -> None:
    faultdns.default = Action(Fault.DROP)
    gone = {
        "name": "gone",
        "zone": "gone.test",
        "kind": "ip",
        "nameservers": [server(faultdns.address)],
    }
    cfg = make_config([BL, DBL, DEAD, EVERYTHING, gone], timeout="200ms", attempts=1)
    ran = rblwatch("lists", "--test", "--config.file", cfg, "--format", "json")
    assert ran.code == 3  # some lists are unhealthy: a script checking its setup must see it
    assert {lst["name"]: lst["health"] for lst in ran.json()} == {
        "bl": "healthy",
        "dbl": "healthy",
        "dead": "dead",
        "everything": "lists_everything",
        "gone": "dead",
    }
    table = rblwatch("lists", "--test", "--config.file", cfg)
    assert table.out.splitlines()[0].split()[-1] == "HEALTH"
    assert table.out.splitlines()[1].split()[-1] == "healthy"


def test_lists_test_exits_0_only_when_every_list_is_healthy(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    assert rblwatch("lists", "--test", "--config.file", make_config([BL, DBL])).code == 0
    assert rblwatch("lists", "--test", "--config.file", make_config([BL, DEAD])).code == 3
    assert rblwatch("lists", "--config.file", make_config([BL, DEAD])).code == 0  # not probed


def test_lists_of_a_config_masks_a_keyed_zone(
    make_config: MakeConfig, rblwatch: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RBLWATCH_TEST_KEY", KEY)
    cfg = make_config([KEYED])
    (lst,) = rblwatch("lists", "--config.file", cfg, "--format", "json").json()
    assert lst["zone"] == "***.keyed.test"
    assert lst["health"] is None
    table = rblwatch("lists", "--config.file", cfg, "--test")
    assert "***.keyed.test" in table.out and "healthy" in table.out
    assert KEY not in table.out + table.err


def test_lists_test_of_the_catalogue_skips_keyed_lists_whose_key_is_not_set(
    faultdns: FaultDns,
    rblwatch: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
    no_default_config: Path,
) -> None:
    monkeypatch.delenv("SPAMHAUS_DQS_KEY", raising=False)
    monkeypatch.delenv("ABUSIX_KEY", raising=False)
    ran = rblwatch("lists", "--test", "--nameserver", server(faultdns.address), "--format", "json")
    health = {lst["name"]: lst["health"] for lst in ran.json()}
    assert health["spamhaus-zen-dqs"] is None
    assert health["spamhaus-zen"] == "dead"  # NXDOMAIN for the test point
    assert health["sorbs"] is None  # defunct lists are never asked
    # never a query for the unexpanded template "${SPAMHAUS_DQS_KEY}.zen.dq.spamhaus.net"
    assert faultdns.queries and not any("$" in q.name for q in faultdns.queries)
    assert (
        "spamhaus-zen-dqs not tested: environment variable SPAMHAUS_DQS_KEY is not set" in ran.err
    )


# -- check-config ---------------------------------------------------------------------------------


def test_check_config_accepts_the_example_config(rblwatch: Callable[..., Ran]) -> None:
    ran = rblwatch("check-config", "--config.file", EXAMPLE_CONFIG)
    assert ran.code == 0
    assert ran.out.startswith(f"{EXAMPLE_CONFIG}: OK (")
    assert ran.err == ""


# -- progress -------------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_erased_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli.Progress, "DELAY", 0.0)
    tty = _Terminal()
    progress = cli.Progress(tty)
    progress.update(5, 10)
    progress.finish()
    assert tty.getvalue().startswith("\r[###############")
    assert "5/10 lookups" in tty.getvalue()
    assert tty.getvalue().endswith("\r")


def test_no_progress_bar_when_stderr_is_not_a_terminal(
    make_config: MakeConfig, rblwatch: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.Progress, "DELAY", 0.0)  # would draw at once on a terminal
    ran = rblwatch("check", "--config.file", make_config([BL]), "198.51.100.0/24")
    assert ran.code == cli.EXIT_LISTED
    assert "\r" not in ran.err and "#" not in ran.err


def test_a_run_as_its_own_process_prints_no_progress_and_exits_by_outcome(
    make_config: MakeConfig,
) -> None:
    ran = run_process("check", "--config.file", make_config([BL]), "198.51.100.0/24", "192.0.2.10")
    assert ran.code == cli.EXIT_LISTED, ran.err
    assert ran.err == ""
    assert (
        ran.out.splitlines()[-1]
        == "257 lookups on 1 lists: 2 listed, 255 clean, 0 error, 0 allowlisted"
    )


@pytest.mark.parametrize("script", [False, True], ids=["python -m", "console script"])
def test_a_process_of_its_own_prints_every_result_before_it_exits(
    make_config: MakeConfig, script: bool
) -> None:
    # check ends its process without tearing it down: what it printed must all be flushed
    # (stdout to a pipe is block-buffered, unless PYTHONUNBUFFERED says otherwise)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    ran = run_process(
        "check", "--config.file", make_config([BL]), "--all", "--format", "json",
        "198.51.100.0/24", "192.0.2.10", script=script, env=env,
    )  # fmt: skip
    assert ran.code == cli.EXIT_LISTED, ran.err
    assert ran.err == ""
    assert len(ran.results()) == 257
    assert ran.out.endswith("}\n")


# -- what a command loads --------------------------------------------------------------------------


def imported_by(*args: str | Path) -> tuple[int, set[str]]:
    """The exit code of `python -m rblwatch ARGS…` and the modules it imported (`-X importtime`)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rblwatch", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("import time:")]
    assert lines, proc.stderr
    return proc.returncode, {ln.rsplit("|", 1)[1].strip() for ln in lines}


def test_only_run_loads_the_web_listener(make_config: MakeConfig, tmp_path: Path) -> None:
    from rblwatch.store.sqlite import SqliteStore

    db = tmp_path / "state.db"
    SqliteStore(str(db)).close()
    cfg = make_config(
        [BL],
        store={"url": f"sqlite:///{db}"},
        targets=[{"group": "mail", "addresses": ["192.0.2.10"]}],  # check-config wants targets
    )
    commands = {
        "status": (["status", "--config.file", cfg, "--format", "json"], cli.EXIT_CLEAN),
        "history": (["history", "--config.file", cfg], cli.EXIT_CLEAN),
        "check": (["check", "--config.file", cfg, "192.0.2.10"], cli.EXIT_LISTED),
        "lists": (["lists", "--config.file", cfg, "--test"], cli.EXIT_CLEAN),
        "plan": (["plan", "--config.file", cfg], cli.EXIT_CLEAN),
        "check-config": (["check-config", "--config.file", cfg], cli.EXIT_CLEAN),
    }
    for name, (args, expected) in commands.items():
        code, modules = imported_by(*args)
        loaded = sorted(m for m in modules if m.split(".")[0] == "aiohttp" or m == "rblwatch.web")
        assert loaded == [], f"rblwatch {name} loads {loaded[:3]}"
        assert code == expected, f"rblwatch {name} exited {code}"


# -- etiquette: a one-off check minds each list's daily limit and rate ---------------------------


def test_check_past_a_list_s_daily_limit_is_refused_unless_forced(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([{**BL, "daily_query_limit": 100}])
    refused = rblwatch("check", "--config.file", cfg, "192.0.2.0/24")
    assert_one_line_error(refused, "260 queries to bl", "daily limit of 100", "--force")
    forced = rblwatch("check", "--config.file", cfg, "--force", "192.0.2.0/24")
    assert forced.code == 1  # 192.0.2.10 is listed: the lookups were sent
    assert "sent anyway (--force)" in forced.err


def test_check_warns_when_it_takes_a_tenth_of_a_list_s_daily_limit(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    cfg = make_config([{**BL, "daily_query_limit": 2000}])
    ran = rblwatch("check", "--config.file", cfg, "198.51.100.0/24")
    assert ran.code == 1
    assert "rblwatch: warning: this check sends 260 queries to bl, 13% of its daily limit" in (
        ran.err
    )
    quiet = rblwatch("check", "--config.file", cfg, "198.51.100.2")
    assert quiet.code == 1 and "warning" not in quiet.err


def test_check_asks_a_list_with_max_qps_at_its_pace(
    make_config: MakeConfig, rblwatch: Callable[..., Ran]
) -> None:
    # 40 lookups at 20 a second cannot be done in much less than two seconds; unpaced, this
    # check takes a few milliseconds of lookups. The outcomes are those of an unpaced check.
    cfg = make_config([{**BL, "max_qps": 20}, DBL])
    started = time.monotonic()
    ran = rblwatch(
        "check",
        "--config.file",
        cfg,
        "--format",
        "json",
        "192.0.2.0/27",
        "192.0.2.64/29",
        "dbl.test",
    )
    took = time.monotonic() - started
    assert ran.code == 1
    doc = ran.json()
    assert doc["summary"]["lookups"] == 41
    assert [(r["target"], r["list"]) for r in doc["results"]] == [("192.0.2.10", "bl")]
    assert [lst["name"] for lst in doc["lists"]] == ["bl", "dbl"]
    assert took > 1.2
