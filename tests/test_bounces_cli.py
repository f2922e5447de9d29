"""`rblwatch explain-bounce` as a user meets it: files in, a table or the JSON out, exit codes,
and `--recheck` against a real rbldnsd.

Most tests replace the parser (`rblwatch.bounces.explain.explain`) with a fake that returns
fixed `Explained` values, so they pin the command itself; the end-to-end tests at the bottom
run the real parser on simple RFC 3464 reports in a process of its own.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rblwatch import cli, config
from rblwatch.bounces import explain as explaining
from rblwatch.bounces.explain import ListFacts
from rblwatch.bounces.model import Explained, NamedList, Recipient, report_json
from tests.rbldnsd import Rbldnsd, available

NOWHERE = "127.0.0.1:9"  # discard port: a lookup that wrongly goes out stays local
LISTED_IP = "192.0.2.10"
CLEAN_IP = "198.51.100.7"

BL = {
    "name": "bl",
    "zone": "bl.test",
    "kind": "ip",
    "codes": {"127.0.0.2": "spam source", "127.0.0.4": "exploited"},
    "delist_url": "https://bl.test/delist",
}
OTHER = {"name": "other", "zone": "other.test", "kind": "ip"}
DOMAINS = {"name": "domains", "zone": "domains.test", "kind": "domain"}


@pytest.fixture(scope="module")
def zones() -> Iterator[Rbldnsd]:
    """One rbldnsd: two IP lists of a config, a domain list, and Spamhaus ZEN's zone."""
    if not available():
        # never a skip: lookups are only proven against a real DNSBL server
        pytest.fail("rbldnsd is not installed: apt-get install -y rbldnsd (see README, Tests)")
    srv = Rbldnsd()
    srv.add_zone("bl.test", "ip4set", ["127.0.0.2", f"{LISTED_IP} :127.0.0.4:exploited"])
    srv.add_zone("other.test", "ip4set", ["127.0.0.2", f"{LISTED_IP} :127.0.0.2:other"])
    srv.add_zone("domains.test", "dnset", [":127.0.1.2:Domain $", "test"])
    srv.add_zone(
        "zen.spamhaus.org",
        "combined",
        [
            "$DATASET ip4set @",
            "127.0.0.2 :127.0.0.2:SBL test",
            f"{LISTED_IP} :127.0.0.4:XBL",
            "$DATASET ip6trie @",
            "::ffff:7f00:2 :127.0.0.2:SBL test",
        ],
    )
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def server(srv: Rbldnsd) -> str:
    return f"{srv.address[0]}:{srv.address[1]}"


@pytest.fixture
def no_default_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Runs as if /etc/rblwatch/config.yaml did not exist, whatever this machine has."""
    monkeypatch.setattr(config, "DEFAULT_CONFIG_PATH", str(tmp_path / "etc-rblwatch.yaml"))


def write_config(
    path: Path, lists: Sequence[Mapping[str, Any]], nameserver: str, timeout: str = "300ms"
) -> Path:
    data = {
        "resolver": {"nameservers": [nameserver], "timeout": timeout, "attempts": 2},
        "lists": [dict(lst) for lst in lists],
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def recipients(self) -> list[dict[str, Any]]:
        return [r for m in self.json()["messages"] for r in m["recipients"]]


@pytest.fixture
def rblwatch(capsys: pytest.CaptureFixture[str], no_default_config: None) -> Callable[..., Ran]:
    def run(*args: str | Path) -> Ran:
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


Fake = Callable[[bytes, str], Explained]


@pytest.fixture
def fake_explain(monkeypatch: pytest.MonkeyPatch) -> Callable[[Fake], list[tuple[Any, ...]]]:
    """Replace the parser with `fake`; the calls it got (raw, source, lists) are returned."""

    def install(fake: Fake) -> list[tuple[Any, ...]]:
        calls: list[tuple[Any, ...]] = []

        def explain(raw: bytes, source: str, lists: Sequence[ListFacts] = ()) -> Explained:
            calls.append((raw, source, tuple(lists)))
            return fake(raw, source)

        monkeypatch.setattr(explaining, "explain", explain)
        return calls

    return install


def blocklisted(source: str, ip: str = LISTED_IP, *lists: NamedList) -> Explained:
    named = lists or (NamedList("bl", "bl.test", "https://bl.test/delist"),)
    return Explained(
        source,
        "bounce",
        message_id="<dsn-1@mx.example.net>",
        reporting_mta="mx.example.net",
        recipients=(
            Recipient(
                "user@example.com",
                action="failed",
                status="5.7.1",
                status_meaning="Delivery not authorized, message refused",
                reply_code="550",
                reply_meaning="Requested action not taken: mailbox unavailable",
                diagnostic=f"Client host [{ip}] blocked using bl.test",
                remote_mta="mx.example.com",
                permanent=True,
                cause="blocklisted",
                sending_ip=ip,
                lists=named,
            ),
        ),
    )


def auto_reply(source: str) -> Explained:
    return Explained(source, "auto_reply", message_id="<away@example.com>")


@pytest.fixture
def eml(tmp_path: Path) -> Callable[..., Path]:
    count = 0

    def make(body: bytes = b"Subject: x\n\nreturned\n") -> Path:
        nonlocal count
        count += 1
        path = tmp_path / f"bounce-{count}.eml"
        path.write_bytes(body)
        return path

    return make


def assert_one_line_error(ran: Ran, *mentions: str) -> None:
    assert "Traceback" not in ran.err
    assert ran.code == cli.EXIT_USAGE, ran.err
    assert ran.out == ""
    assert ran.err.count("\n") == 1, ran.err
    for text in mentions:
        assert text in ran.err, (text, ran.err)


# -- usage -----------------------------------------------------------------------------------


def test_no_file_is_a_usage_error(rblwatch: Callable[..., Ran]) -> None:
    assert_one_line_error(rblwatch("explain-bounce"), "explain-bounce", "FILE")


def test_an_unknown_format_is_a_usage_error(
    rblwatch: Callable[..., Ran], eml: Callable[..., Path]
) -> None:
    assert_one_line_error(rblwatch("explain-bounce", "--format", "xml", eml()), "--format")


def test_a_missing_file_is_one_line_naming_it_and_nothing_is_explained(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    calls = fake_explain(lambda _raw, source: blocklisted(source))
    missing = tmp_path / "gone.eml"
    ran = rblwatch("explain-bounce", eml(), missing)
    assert_one_line_error(ran, f"rblwatch: {missing}: cannot be read: No such file or directory")
    assert calls == []


def test_a_directory_that_is_no_maildir_is_one_line(
    rblwatch: Callable[..., Ran], tmp_path: Path
) -> None:
    (tmp_path / "mail").mkdir()
    ran = rblwatch("explain-bounce", tmp_path / "mail")
    assert_one_line_error(ran, "mail: a directory but not a maildir")


def test_standard_input_named_twice_is_a_usage_error(rblwatch: Callable[..., Ran]) -> None:
    assert_one_line_error(rblwatch("explain-bounce", "-", "-"), "standard input (-)")


# -- output ----------------------------------------------------------------------------------


def test_json_is_report_json_indented_as_status_prints_it(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
) -> None:
    fake_explain(lambda _raw, source: blocklisted(source))
    first, second = eml(), eml()
    ran = rblwatch("explain-bounce", "--format", "json", first, second)
    expected = report_json([blocklisted(str(first)), blocklisted(str(second))])
    assert ran.out == json.dumps(expected, indent=1) + "\n"
    assert ran.code == cli.EXIT_LISTED
    assert "other_lists" not in ran.out  # the key only with --recheck


def test_each_message_is_explained_with_its_source_and_bytes(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    calls = fake_explain(lambda _raw, source: auto_reply(source))
    box = tmp_path / "returned.mbox"
    box.write_bytes(b"From x\nSubject: 1\n\none\n\nFrom y\nSubject: 2\n\ntwo\n")
    one = eml(b"Subject: single\n\nbody\n")
    rblwatch("explain-bounce", one, box)
    assert [(raw, source) for raw, source, _ in calls] == [
        (b"Subject: single\n\nbody\n", str(one)),
        (b"Subject: 1\n\none\n", f"{box}#1"),
        (b"Subject: 2\n\ntwo\n", f"{box}#2"),
    ]


def test_standard_input_is_read_when_named(
    rblwatch: Callable[..., Ran],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_explain(lambda _raw, source: auto_reply(source))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"Subject: piped\n\nhi\n")))
    assert rblwatch("explain-bounce", "-").code == cli.EXIT_CLEAN
    assert [(raw, source) for raw, source, _ in calls] == [(b"Subject: piped\n\nhi\n", "-")]


def test_the_table_shows_each_recipient_s_status_cause_ip_and_list(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
) -> None:
    fake_explain(lambda _raw, source: blocklisted(source))
    path = eml()
    ran = rblwatch("explain-bounce", path)
    assert ran.out.splitlines() == [
        f"{path}: bounce from mx.example.net (<dsn-1@mx.example.net>)",
        "  user@example.com: failed, permanent",
        "    status      5.7.1 Delivery not authorized, message refused",
        "    reply code  550 Requested action not taken: mailbox unavailable",
        "    cause       blocklisted",
        f"    diagnostic  Client host [{LISTED_IP}] blocked using bl.test",
        "    remote MTA  mx.example.com",
        f"    sending IP  {LISTED_IP}",
        "    list        bl (named as bl.test), delist at https://bl.test/delist",
        "",
        "1 messages, 1 recipients bounced",
    ]


def test_a_message_too_big_to_read_is_kind_other_with_its_problem_and_exit_3(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_explain(lambda _raw, source: auto_reply(source))
    monkeypatch.setattr("rblwatch.mailsources.MAX_MESSAGE_BYTES", 100)
    big = eml(b"Subject: big\n\n" + b"x" * 200)
    ran = rblwatch("explain-bounce", "--format", "json", big)
    (message,) = ran.json()["messages"]
    assert message == {
        "source": str(big),
        "message_id": None,
        "kind": "other",
        "reporting_mta": None,
        "recipients": [],
        "problem": "larger than 100 bytes: not read",
    }
    assert calls == []  # never handed to the parser
    assert ran.code == cli.EXIT_ERRORS


def test_exit_0_when_nothing_bounced(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
) -> None:
    def delivered(_raw: bytes, source: str) -> Explained:
        return Explained(source, "bounce", recipients=(Recipient("a@x.test", action="delivered"),))

    fake_explain(lambda _raw, source: auto_reply(source))
    assert rblwatch("explain-bounce", eml()).code == cli.EXIT_CLEAN
    fake_explain(delivered)
    assert rblwatch("explain-bounce", eml()).code == cli.EXIT_CLEAN


def test_exit_1_when_any_recipient_bounced_even_among_auto_replies(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
) -> None:
    fake_explain(lambda raw, source: blocklisted(source) if b"dsn" in raw else auto_reply(source))
    ran = rblwatch("explain-bounce", eml(b"away"), eml(b"dsn"), eml(b"away"))
    assert ran.code == cli.EXIT_LISTED
    assert ran.out.endswith("3 messages, 1 recipients bounced\n")


# -- the lists handed to the parser ---------------------------------------------------------


def facts_by_name(calls: list[tuple[Any, ...]]) -> dict[str, ListFacts]:
    return {f.name: f for f in calls[0][2]}


def test_the_parser_knows_every_catalogue_list_and_the_provider_lists(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
) -> None:
    calls = fake_explain(lambda _raw, source: auto_reply(source))
    rblwatch("explain-bounce", eml())
    facts = facts_by_name(calls)
    assert facts["spamhaus-zen"] == ListFacts(
        "spamhaus-zen", ("zen.spamhaus.org",), "https://check.spamhaus.org/", True
    )
    assert facts["sorbs"].zones  # a defunct list may still be quoted by a receiver
    # a keyed zone is known by its part after the key, which a bounce never shows
    assert facts["spamhaus-zen-dqs"].zones == ("zen.dq.spamhaus.net",)
    ms = facts["microsoft"]
    assert not ms.queryable and ms.delist_url == "https://sender.office.com/"
    assert "S3150" in ms.zones and "5.7.606" in ms.zones
    assert not facts["proofpoint"].queryable


def test_the_config_s_lists_are_known_too_and_its_settings_win(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    calls = fake_explain(lambda _raw, source: auto_reply(source))
    zen = {"name": "my-zen", "use": "spamhaus-zen", "delist_url": "https://delist.example/zen"}
    cfg = write_config(tmp_path / "c.yaml", [BL, zen], NOWHERE)
    rblwatch("explain-bounce", "--config.file", cfg, eml())
    facts = facts_by_name(calls)
    assert facts["bl"] == ListFacts("bl", ("bl.test",), "https://bl.test/delist", True)
    assert facts["my-zen"].delist_url == "https://delist.example/zen"
    # the config's lists come first: a zone both know is named as the config names it
    order = [f.name for f in calls[0][2]]
    assert order[:2] == ["bl", "my-zen"] and order.index("spamhaus-zen") > 1
    assert "spamcop" in facts  # the catalogue's lists stay known


# -- --recheck against a real rbldnsd ------------------------------------------------------


def test_recheck_looks_the_ip_up_on_the_named_list_and_the_config_s_others(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    zones: Rbldnsd,
    tmp_path: Path,
) -> None:
    fake_explain(lambda raw, source: blocklisted(source, raw.decode().strip()))
    cfg = write_config(tmp_path / "c.yaml", [BL, OTHER, DOMAINS], server(zones))
    ran = rblwatch(
        "explain-bounce", "--recheck", "--format", "json", "--config.file", cfg,
        eml(LISTED_IP.encode()), eml(CLEAN_IP.encode()),
    )  # fmt: skip
    assert ran.code == cli.EXIT_LISTED, ran.err
    listed, clean = ran.recipients()
    assert listed["lists"][0]["recheck"] == {"outcome": "listed", "codes": ["127.0.0.4"]}
    # the other lists: block lists of IPs only (a domain list cannot take an IP)
    assert listed["other_lists"] == [
        {
            "name": "other",
            "delist_url": None,
            "recheck": {"outcome": "listed", "codes": ["127.0.0.2"]},
        }
    ]
    assert clean["lists"][0]["recheck"] == {"outcome": "clean", "codes": []}
    assert clean["other_lists"][0]["recheck"] == {"outcome": "clean", "codes": []}


def test_recheck_of_a_catalogue_list_asks_the_nameserver_given(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    zones: Rbldnsd,
) -> None:
    zen = NamedList("spamhaus-zen", "zen.spamhaus.org", "https://check.spamhaus.org/")
    fake_explain(lambda _raw, source: blocklisted(source, LISTED_IP, zen))
    ran = rblwatch("explain-bounce", "--recheck", "--nameserver", server(zones), eml())
    assert ran.code == cli.EXIT_LISTED, ran.err
    assert (
        "spamhaus-zen (named as zen.spamhaus.org), delist at https://check.spamhaus.org/;"
        " now listed (127.0.0.4)" in ran.out
    )
    ran = rblwatch(
        "explain-bounce", "--recheck", "--nameserver", server(zones), "--format", "json", eml()
    )
    (r,) = ran.recipients()
    # without a config the catalogue's default lists are the others; rbldnsd serves none of
    # them, so each is an error with its reason — never clean
    others = {o["name"]: o["recheck"] for o in r["other_lists"]}
    assert "spamhaus-zen" not in others and "spamcop" in others and "dnswl" not in others
    assert "spamhaus-dbl" not in others  # a domain list
    for name, recheck in others.items():
        assert recheck["outcome"] == "error" and recheck["reason"], (name, recheck)


def test_recheck_errors_are_errors_with_their_reason(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    fake_explain(lambda _raw, source: blocklisted(source))
    cfg = write_config(tmp_path / "c.yaml", [BL], NOWHERE, timeout="100ms")
    ran = rblwatch("explain-bounce", "--recheck", "--format", "json", "--config.file", cfg, eml())
    (r,) = ran.recipients()
    recheck = r["lists"][0]["recheck"]
    assert recheck["outcome"] == "error" and recheck["reason"] == "list_unhealthy", recheck
    assert r["other_lists"] == []


def test_recheck_does_not_ask_a_defunct_list_a_provider_s_or_a_domain_list(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
    tmp_path: Path,
) -> None:
    named = (
        NamedList("sorbs", "dnsbl.sorbs.net"),
        NamedList("microsoft", "S3150", "https://sender.office.com/", queryable=False),
        NamedList("domains", "domains.test"),
        NamedList(None, "bl.unknown.example"),
    )
    fake_explain(lambda _raw, source: blocklisted(source, LISTED_IP, *named))
    cfg = write_config(tmp_path / "c.yaml", [DOMAINS], NOWHERE)
    ran = rblwatch("explain-bounce", "--recheck", "--format", "json", "--config.file", cfg, eml())
    (r,) = ran.recipients()
    rechecks = [n["recheck"] for n in r["lists"]]
    assert rechecks == [
        {"outcome": "error", "codes": [], "reason": "not_queried"},
        None,
        None,
        None,
    ]
    assert ran.err.count("\n") == 1 and "rblwatch: sorbs not rechecked: " in ran.err
    assert "defunct" in ran.err


def test_recheck_without_a_sending_ip_sends_nothing(
    rblwatch: Callable[..., Ran],
    eml: Callable[..., Path],
    fake_explain: Callable[[Fake], list[tuple[Any, ...]]],
) -> None:
    fake_explain(lambda _raw, source: blocklisted(source, "not an address"))
    ran = rblwatch(
        "explain-bounce", "--recheck", "--nameserver", NOWHERE, "--format", "json", eml()
    )
    (r,) = ran.recipients()
    assert r["lists"][0]["recheck"] is None and "other_lists" not in r


# -- what the command loads -----------------------------------------------------------------


def test_explain_bounce_without_recheck_loads_no_resolver(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rblwatch", "explain-bounce", tmp_path / "x"],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == cli.EXIT_USAGE, proc.stderr
    modules = {ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines() if "|" in ln}
    assert "rblwatch.mailsources" in modules  # (import_module escapes -X importtime)
    heavy = {"rblwatch.resolver", "rblwatch.scan", "dns", "aiohttp"} & modules
    assert heavy == set()


# -- end to end, with the real parser (rblwatch.bounces.parse / classify) ------------------


def dsn(
    recipient: str, status: str, diagnostic: str, *, action: str = "failed", ip: str = LISTED_IP
) -> bytes:
    """A plain RFC 3464 report, the returned original's headers with its sending IP."""
    text = f"""\
        From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
        To: sender@example.org
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <dsn-{recipient}@mx.example.net>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

        --b1
        Content-Type: text/plain

        Your message could not be delivered.

        --b1
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.example.net

        Final-Recipient: rfc822; {recipient}
        Action: {action}
        Status: {status}
        Remote-MTA: dns; mx.example.com
        Diagnostic-Code: smtp; {diagnostic}

        --b1
        Content-Type: text/rfc822-headers

        Received: from out.example.org (out.example.org [{ip}])
        \tby mx.example.net with ESMTP id 1; Thu, 1 Jan 2026 00:00:00 +0000
        From: sender@example.org
        To: {recipient}
        Subject: hello
        Message-ID: <orig-1@example.org>

        --b1--
        """
    return textwrap.dedent(text).replace("\n", "\r\n").encode()


BLOCKED = dsn(
    "user@example.com",
    "5.7.1",
    f"550 5.7.1 Service unavailable; Client host [{LISTED_IP}] blocked using zen.spamhaus.org",
)
UNKNOWN_USER = dsn("nobody@example.com", "5.1.1", "550 5.1.1 <nobody@example.com>: User unknown")


def run_process(*args: str | Path, stdin: bytes | None = None) -> Ran:
    proc = subprocess.run(
        [sys.executable, "-m", "rblwatch", *map(str, args)],
        check=False, capture_output=True, input=stdin, timeout=60,
    )  # fmt: skip
    err = proc.stderr.decode()
    assert "Traceback" not in err, err  # a traceback is a bug (and would exit 1 as a bounce)
    return Ran(proc.returncode, proc.stdout.decode(), err)


def test_end_to_end_a_blocklisted_bounce_names_the_list_ip_and_delist_page(tmp_path: Path) -> None:
    path = tmp_path / "blocked.eml"
    path.write_bytes(BLOCKED)
    ran = run_process("explain-bounce", "--format", "json", "--nameserver", NOWHERE, path)
    assert ran.code == cli.EXIT_LISTED, ran.err
    (m,) = ran.json()["messages"]
    assert m["source"] == str(path) and m["kind"] == "bounce"
    assert m["reporting_mta"] == "mx.example.net"
    (r,) = m["recipients"]
    assert r["address"] == "user@example.com" and r["action"] == "failed"
    assert (r["status"], r["reply_code"], r["permanent"]) == ("5.7.1", "550", True)
    assert r["cause"] == "blocklisted" and r["sending_ip"] == LISTED_IP
    assert r["remote_mta"] == "mx.example.com"
    (named,) = r["lists"]
    assert named["name"] == "spamhaus-zen" and named["named_as"] == "zen.spamhaus.org"
    assert named["delist_url"] == "https://check.spamhaus.org/" and named["recheck"] is None


def test_end_to_end_recheck_finds_the_ip_still_listed(zones: Rbldnsd, tmp_path: Path) -> None:
    path = tmp_path / "blocked.eml"
    path.write_bytes(BLOCKED)
    ran = run_process(
        "explain-bounce", "--recheck", "--format", "json", "--nameserver", server(zones), path
    )
    assert ran.code == cli.EXIT_LISTED, ran.err
    (r,) = ran.recipients()
    assert r["lists"][0]["recheck"] == {"outcome": "listed", "codes": ["127.0.0.4"]}


def test_end_to_end_an_mbox_a_maildir_and_stdin(tmp_path: Path) -> None:
    box = tmp_path / "bounces.mbox"
    box.write_bytes(
        b"From MAILER-DAEMON\r\n" + BLOCKED + b"\r\nFrom MAILER-DAEMON\r\n" + UNKNOWN_USER
    )
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    (md / "new" / "1.host").write_bytes(UNKNOWN_USER)
    ran = run_process(
        "explain-bounce", "--format", "json", "--nameserver", NOWHERE, box, md, "-", stdin=BLOCKED
    )
    assert ran.code == cli.EXIT_LISTED, ran.err
    sources = [(m["source"], m["recipients"][0]["cause"]) for m in ran.json()["messages"]]
    assert sources == [
        (f"{box}#1", "blocklisted"),
        (f"{box}#2", "recipient"),
        (str(md / "new" / "1.host"), "recipient"),
        ("-", "blocklisted"),
    ]


def test_end_to_end_a_delivery_report_that_is_no_bounce_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "delivered.eml"
    path.write_bytes(dsn("user@example.com", "2.0.0", "250 2.0.0 Ok", action="delivered"))
    ran = run_process("explain-bounce", "--nameserver", NOWHERE, path)
    assert ran.code == cli.EXIT_CLEAN, ran.err
    assert "Traceback" not in ran.err
