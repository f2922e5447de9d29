"""`rblwatch hygiene` as a user runs it: a process of its own against a real authoritative
server (NSD, serving tests/test_hygiene_nsd.py's zones), judged by its exit code, its table or
JSON, and — for bad input — one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests import test_hygiene_nsd as cases
from tests.nsd import NsdServer

IP = cases.IP
# the NSD of tests/test_hygiene_nsd.py's zones: one per module, restored after each test
module_nsd = cases.module_nsd
served = cases.served

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "127.0.0.1:9"  # discard: nothing answers there
SLOW = 20.0  # no run here may come near it: a hang fails, it does not stall the suite


def hygiene(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A run; with neither --nameserver nor a config, a dead loopback port as the resolver,
    so that no run (even of a command line that should have been refused) asks the system's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if "--nameserver" not in args and "--config.file" not in args:
        args = ("--nameserver", NOWHERE, *args)  # before a "--"
    return subprocess.run(
        [sys.executable, "-m", "rblwatch", "hygiene", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or ROOT,
        timeout=SLOW,
        check=False,
    )


def at(ns: NsdServer) -> list[str]:
    return ["--nameserver", f"127.0.0.1:{ns.port}"]


def config(tmp_path: Path, ns: NsdServer, targets: str = "") -> str:
    """A config file whose resolver is the NSD (a short timeout: an outage costs little)."""
    path = tmp_path / "rblwatch.yaml"
    path.write_text(
        f'resolver:\n  nameservers: ["127.0.0.1:{ns.port}"]\n  timeout: 200ms\n  attempts: 1\n'
        + targets
    )
    return str(path)


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def rows(done: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The table's rows, cut at the header's column starts; trace lines and the summary
    left out."""
    lines = done.stdout.splitlines()
    header = ["CHECK", "TARGET", "IP/SELECTOR", "OUTCOME", "RESULT", "REASON"]
    assert lines[0].split() == header
    starts = [lines[0].index(h) for h in header]
    ends = [*starts[1:], None]
    body = [line for line in lines[1:] if line and not line.startswith(" ")][:-1]
    return [[line[a:b].strip() for a, b in zip(starts, ends, strict=True)] for line in body]


def usage_error(done: subprocess.CompletedProcess[str], *pieces: str) -> None:
    """Exit 2, nothing on stdout, one line on stderr holding every piece."""
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    for piece in pieces:
        assert piece in done.stderr, done.stderr


# --- exit codes and the table ---------------------------------------------------------------


def test_every_check_passing_exits_0_with_pass_rows_and_the_summary(served: NsdServer) -> None:
    done = hygiene("example.com", "--ip", IP, "--selector", "s2048", *at(served))
    assert done.returncode == 0, done
    table = rows(done)
    assert [(r[0], r[3], r[4], r[5]) for r in table] == [
        ("fcrdns", "PASS", "pass", ""),
        ("spf", "PASS", "pass", ""),
        ("dkim", "PASS", "pass", ""),
        ("dmarc", "PASS", "pass", ""),
    ]
    assert table[1][:3] == ["spf", "example.com", IP]
    assert table[2][:3] == ["dkim", "example.com", "s2048"]
    assert done.stdout.splitlines()[-1] == "4 pass, 0 fail, 0 error"
    assert "queries in" in done.stderr


def test_one_failure_exits_1(served: NsdServer) -> None:
    done = hygiene("example.com", "example.org", "--ip", IP, "--check", "dmarc", *at(served))
    assert done.returncode == 1, done
    assert [r[:5] for r in rows(done)] == [
        ["dmarc", "example.com", "", "PASS", "pass"],
        ["dmarc", "example.org", "", "FAIL", "missing"],
    ]
    assert "v=DMARC1; p=none" in done.stdout  # the record to publish
    assert done.stdout.splitlines()[-1] == "1 pass, 1 fail, 0 error"


def test_errors_without_a_failure_exit_3(tmp_path: Path, served: NsdServer) -> None:
    cfg = config(tmp_path, served)
    served.stop()
    start = time.monotonic()
    done = hygiene("example.com", "--ip", IP, "--config.file", cfg)
    assert done.returncode == 3, done
    assert {r[3] for r in rows(done)} == {"ERROR"}
    assert "timeout" in done.stdout
    assert done.stdout.splitlines()[-1] == "0 pass, 0 fail, 3 error"
    assert time.monotonic() - start < 10  # one 200 ms timeout per name, in parallel


def test_trace_prints_the_spf_steps_after_its_row(served: NsdServer) -> None:
    done = hygiene("nested.example.com", "--ip", IP, "--check", "spf", "--trace", *at(served))
    assert done.returncode == 0, done
    lines = done.stdout.splitlines()
    (spf_row,) = [i for i, line in enumerate(lines) if line.startswith("spf ")]
    steps = []
    for line in lines[spf_row + 1 :]:
        if not line.startswith(" "):
            break
        steps.append(line.strip())
    assert steps[0] == 'nested.example.com: "v=spf1 include:_spf.example.net -all"'
    assert "include:_inner.example.net" in steps
    assert "ip4:192.0.2.10: match → pass" in steps
    untraced = hygiene("nested.example.com", "--ip", IP, "--check", "spf", *at(served))
    assert "include:_inner.example.net" not in untraced.stdout


# --- JSON -----------------------------------------------------------------------------------

DOMAINS = ("example.com", "example.org")
KEYS = {"check", "target", "ip", "outcome", "result", "reason", "detail", "trace"}


def test_json_has_the_documented_shape(served: NsdServer) -> None:
    every = [f"--check={c}" for c in ("fcrdns", "spf", "dkim", "dmarc", "mta-sts", "tls-rpt")]
    done = hygiene(
        "example.com", "example.org", "--ip", IP, "--selector", "s2048", *every,
        "--format", "json", *at(served),
    )  # fmt: skip
    assert done.returncode == 1, done
    out = report(done)
    assert set(out) == {"checks", "summary"}
    checks = out["checks"]
    for c in checks:
        assert set(c) == (KEYS | {"selector"} if c["check"] == "dkim" else KEYS), c
        assert isinstance(c["detail"], dict) and isinstance(c["trace"], list)
        assert c["ip"] == (IP if c["check"] in ("fcrdns", "spf") else None), c
        assert (c["reason"] is None) == (c["outcome"] == "pass"), c
        if c["reason"] is not None:
            assert c["reason"]
    pairs = {(c["check"], c["target"], c["ip"], c.get("selector")) for c in checks}
    assert pairs == {
        ("fcrdns", IP, IP, None),
        *[("spf", d, IP, None) for d in DOMAINS],
        *[("dkim", d, None, "s2048") for d in DOMAINS],
        *[(c, d, None, None) for c in ("dmarc", "mta-sts", "tls-rpt") for d in DOMAINS],
    }
    counts = {k: sum(c["outcome"] == k for c in checks) for k in ("pass", "fail", "error")}
    assert out["summary"] == counts
    assert counts["fail"] == 5  # example.org: no SPF, DKIM key, DMARC, MTA-STS, TLS-RPT
    spf = next(c for c in checks if c["check"] == "spf" and c["target"] == "example.com")
    assert (spf["outcome"], spf["result"], spf["reason"]) == ("pass", "pass", None)
    assert spf["trace"] and spf["detail"]["record"] == "v=spf1 mx -all"
    dmarc = next(c for c in checks if c["check"] == "dmarc" and c["target"] == "example.org")
    assert (dmarc["outcome"], dmarc["result"]) == ("fail", "missing")
    assert "v=DMARC1" in dmarc["reason"]


def test_json_of_an_outage_counts_errors(tmp_path: Path, served: NsdServer) -> None:
    cfg = config(tmp_path, served)
    served.stop()
    done = hygiene("example.com", "--format", "json", "--config.file", cfg)
    assert done.returncode == 3, done
    (dmarc,) = report(done)["checks"]
    assert (dmarc["outcome"], dmarc["result"]) == ("error", "temperror")
    assert report(done)["summary"] == {"pass": 0, "fail": 0, "error": 1}


# --- bad input ------------------------------------------------------------------------------


def test_a_domain_that_is_not_a_domain_is_one_line_and_exit_2() -> None:
    usage_error(hygiene("exa mple..com"), "DOMAIN", "'exa mple..com'")
    usage_error(hygiene("--", "-x-"), "DOMAIN", "'-x-'")
    usage_error(hygiene("-x-"), "-x-")  # taken for an option: argparse says so, in one line
    usage_error(hygiene("a" * 300), "DOMAIN", "longer than 63")
    usage_error(hygiene(".".join(["a" * 60] * 5)), "DOMAIN", "longer than 253")


def test_bad_options_are_one_line_and_exit_2() -> None:
    usage_error(hygiene("example.com", "--selector", "a.b"), "--selector", "'a.b'", "dot")
    usage_error(hygiene("example.com", "--ip", "999.1.1.1"), "--ip 999.1.1.1", "not an IP")
    usage_error(hygiene("example.com", "--check", "dkim"), "--check dkim needs --selector")
    usage_error(hygiene("--ip", IP, "--check", "spf"), "need a DOMAIN")
    usage_error(hygiene("example.com", "--nameserver", "not a server"), "--nameserver")


def test_a_domain_that_is_an_address_points_at_ip() -> None:
    # not "not an address, network or domain": it is an address, in the wrong place
    usage_error(hygiene(IP), f"DOMAIN {IP} is an IP address", "--ip")


def test_the_ip_checks_without_an_ip_say_so_rather_than_drop_the_check() -> None:
    usage_error(hygiene("example.com", "--check", "spf"), "--check spf needs --ip")
    usage_error(hygiene("example.com", "--check", "fcrdns"), "--check fcrdns needs --ip")
    usage_error(hygiene("example.com", "--check", "spf", "--check", "dmarc"), "needs --ip")


def test_a_helo_that_is_not_a_name_is_a_usage_error() -> None:
    done = hygiene("--ip", IP, "--helo", "bad..name", "--check", "fcrdns")
    usage_error(done, "--helo", "'bad..name'")


def test_a_selector_the_dkim_check_refuses_is_a_usage_error_not_a_failing_key() -> None:
    usage_error(hygiene("example.com", "--selector", "s_1"), "--selector", "'s_1'")


def test_a_domain_or_address_named_twice_is_checked_once(served: NsdServer) -> None:
    args = ("example.com", "EXAMPLE.com.", "--ip", IP, "--ip", f" {IP}")
    done = hygiene(*args, "--selector", "s2048", "--selector", "S2048", *at(served))
    assert done.returncode == 0, done
    assert [r[0] for r in rows(done)] == ["fcrdns", "spf", "dkim", "dmarc"]


def test_nothing_to_check_is_one_line_and_exit_2(tmp_path: Path, served: NsdServer) -> None:
    no_targets = config(tmp_path, served)
    usage_error(hygiene("--config.file", no_targets), "nothing to check")
    without_hygiene = tmp_path / "plain.yaml"
    without_hygiene.write_text(
        Path(no_targets).read_text()
        + f"targets:\n  - group: mail\n    addresses: [{IP}]\n    domains: [example.com]\n"
    )
    usage_error(hygiene("--config.file", str(without_hygiene)), "nothing to check", "hygiene:")


def test_fifty_includes_fail_with_a_permerror_naming_the_limit(served: NsdServer) -> None:
    start = time.monotonic()
    args = ("fifty.example.com", "--ip", IP, "--check", "spf", "--format", "json")
    done = hygiene(*args, *at(served))
    assert time.monotonic() - start < 10
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    (spf,) = report(done)["checks"]
    assert (spf["outcome"], spf["result"]) == ("fail", "permerror")
    assert "more than 10 DNS lookups" in spf["reason"]


# --- from the config ------------------------------------------------------------------------


def test_config_mode_checks_the_pairs_of_groups_with_hygiene(
    tmp_path: Path, served: NsdServer
) -> None:
    cfg = config(
        tmp_path,
        served,
        f"""\
targets:
  - group: mail
    addresses: [{IP}, 192.0.2.11]
    domains: [example.com, example.org]
    hygiene: {{}}
  - group: web
    addresses: [192.0.2.13]
    domains: [example.net]
""",
    )
    done = hygiene("--config.file", cfg, "--format", "json")
    assert done.returncode == 1, done  # .11 is not confirmed, example.org has no DMARC
    checks = report(done)["checks"]
    got = sorted((c["check"], c["target"], c["ip"]) for c in checks)
    assert got == sorted(
        [
            ("fcrdns", IP, IP),
            ("fcrdns", "192.0.2.11", "192.0.2.11"),
            *[("spf", d, ip) for d in ("example.com", "example.org") for ip in (IP, "192.0.2.11")],
            ("dmarc", "example.com", None),
            ("dmarc", "example.org", None),
        ]
    )
    outcome = {(c["check"], c["target"], c["ip"]): c["result"] for c in checks}
    assert outcome[("fcrdns", "192.0.2.11", "192.0.2.11")] == "not_confirmed"
    assert outcome[("spf", "example.com", IP)] == "pass"
    assert outcome[("spf", "example.com", "192.0.2.11")] == "fail"
    assert outcome[("dmarc", "example.org", None)] == "missing"


def test_config_mode_takes_sending_ips_from_hostnames_resolved_now(
    tmp_path: Path, served: NsdServer
) -> None:
    cfg = config(
        tmp_path,
        served,
        """\
targets:
  - group: mail
    hostnames: [mail.example.com]
    domains: [example.com]
    hygiene:
      dkim_selectors: [s2048]
""",
    )
    done = hygiene("--config.file", cfg, "--format", "json")
    assert done.returncode == 0, done
    got = [(c["check"], c["target"], c["ip"], c.get("selector")) for c in report(done)["checks"]]
    assert got == [
        ("fcrdns", IP, IP, None),
        ("spf", "example.com", IP, None),
        ("dkim", "example.com", None, "s2048"),
        ("dmarc", "example.com", None, None),
    ]
