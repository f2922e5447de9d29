"""`rblwatch ack`, `unack`, `delisting-requested`, `note` and `notes` (issue 11 part 2), run as
subprocesses on a store the test fills as the daemon would (SQLite, and PostgreSQL once), and
what `status` and `history` then show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rblwatch.model import CycleCommit, EventKind
from rblwatch.store import open_store
from rblwatch.views.status import rfc3339
from tests.postgres import Cluster
from tests.test_cli_store import listed, pair_event, write_config

ROOT = Path(__file__).resolve().parent.parent
NOW = time.time()


def fill(url: str) -> None:
    """192.0.2.1 listed on bl, example.com on dbl; 192.0.2.2 looked up and clean."""
    store = open_store(url)
    try:
        store.commit(
            CycleCommit(
                "bl",
                upserts=[listed("192.0.2.1", "bl", "mail", NOW - 3600)],
                seen=["192.0.2.1", "192.0.2.2"],
                events=[pair_event(EventKind.LISTED, "192.0.2.1", "bl", "mail", NOW - 3600)],
            )
        )
        store.commit(CycleCommit("dbl", upserts=[listed("example.com", "dbl", "web", NOW - 60)]))
    finally:
        store.close()


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    db = tmp_path / "state.db"
    fill(f"sqlite:///{db}")
    return write_config(tmp_path, db)


def rblwatch(cfg: Path, *args: str, user: str = "ops-user") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOGNAME": user, "USER": user}
    argv = [sys.executable, "-m", "rblwatch", args[0], "--config.file", str(cfg), *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


def one_line_error(ran: subprocess.CompletedProcess[str]) -> str:
    assert ran.returncode == 2, ran
    assert ran.stdout == "" and ran.stderr.count("\n") == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    return ran.stderr.strip()


def status_json(cfg: Path) -> dict[str, object]:
    ran = rblwatch(cfg, "status", "--format", "json")
    assert ran.returncode == 0, ran.stderr
    doc: dict[str, object] = json.loads(ran.stdout)
    return doc


def test_an_ack_with_a_note_and_an_expiry_shows_in_status_and_history(cfg: Path) -> None:
    ran = rblwatch(cfg, "ack", "192.0.2.1", "bl", "--note", "asked on ticket 123", "--until", "7d")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("acknowledged 192.0.2.1 on bl (by ops-user; event ")

    table = rblwatch(cfg, "status").stdout.splitlines()
    assert table[0].split() == ["TARGET", "LIST", "GROUP", "SINCE", "CODES", "MEANINGS", "ACK"]
    [row] = [line for line in table if line.startswith("192.0.2.1")]
    assert "ack ops-user until " in row and row.endswith(": asked on ticket 123")
    assert table[-1].startswith("2 listed (1 acknowledged), 3 unknown, 0 errors of 5 pairs")

    [first, second] = status_json(cfg)["listings"]  # type: ignore[misc]
    assert second["ack"] is None
    ack = first["ack"]
    assert (ack["by"], ack["note"], ack["list"], ack["target"]) == (
        "ops-user",
        "asked on ticket 123",
        "bl",
        "192.0.2.1",
    )
    until = ack["until"]
    assert until is not None and abs(_at(until) - (NOW + 7 * 86400)) < 120

    history = rblwatch(cfg, "history", "--target", "192.0.2.1").stdout.splitlines()
    [acked] = [line for line in history if " acknowledged " in line]
    assert acked.endswith(f"by ops-user until {until}: asked on ticket 123")


def _at(text: str) -> float:
    from rblwatch.views.status import parse_rfc3339

    return parse_rfc3339(text)


def test_by_names_someone_else_and_an_rfc3339_expiry_is_taken_as_is(cfg: Path) -> None:
    when = rfc3339(NOW + 3 * 86400)
    assert when is not None
    ran = rblwatch(cfg, "ack", "192.0.2.1", "bl", "--by", "alice", "--until", when)
    assert ran.returncode == 0, ran.stderr
    [listing, _] = status_json(cfg)["listings"]  # type: ignore[misc]
    assert (listing["ack"]["by"], listing["ack"]["until"]) == ("alice", when)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["ack", "192.0.2.1", "nope"], "ack: no such list 'nope' (known: bl, dbl)"),
        (["ack", "192.0.2.2", "bl"], "192.0.2.2 is not listed on bl"),
        (["ack", "192.0.2.300", "bl"], "TARGET 192.0.2.300"),
        (["ack", "192.0.2.1", "bl", "--until", "soon"], "--until soon: use a duration"),
        (["ack", "192.0.2.1", "bl", "--until", "2020-01-01T00:00:00Z"], "in the past"),
        (["ack", "192.0.2.1", "bl", "--by", " "], "--by: empty"),
        (["delisting-requested", "example.com", "bl"], "example.com is not listed on bl"),
        (["unack", "192.0.2.1", "zen"], "unack: no such list 'zen'"),
        (["note", "198.51.100.9", "hello"], "198.51.100.9: rblwatch has never looked"),
    ],
)
def test_a_mistake_is_one_line_and_exit_2_and_writes_nothing(
    cfg: Path, args: list[str], says: str
) -> None:
    before = rblwatch(cfg, "history", "--since", "30d").stdout
    assert says in one_line_error(rblwatch(cfg, *args))
    assert rblwatch(cfg, "history", "--since", "30d").stdout == before


def test_unack_removes_the_ack_and_says_so_when_there_was_none(cfg: Path) -> None:
    assert rblwatch(cfg, "ack", "example.com", "dbl").returncode == 0
    ran = rblwatch(cfg, "unack", "EXAMPLE.com.", "dbl")  # the target canonicalised
    assert ran.returncode == 0 and ran.stdout.startswith("removed the ack of example.com on dbl")
    assert all(x["ack"] is None for x in status_json(cfg)["listings"])  # type: ignore[attr-defined]
    again = rblwatch(cfg, "unack", "example.com", "dbl")
    assert again.returncode == 0 and again.stdout == "example.com on dbl was not acknowledged\n"
    kinds = rblwatch(cfg, "history", "--target", "example.com").stdout
    assert kinds.count(" acknowledged ") == 1 and kinds.count(" unacknowledged ") == 1


def test_delisting_requested_acknowledges_and_shows_in_status(cfg: Path) -> None:
    ran = rblwatch(cfg, "delisting-requested", "192.0.2.1", "bl", "--note", "form sent")
    assert ran.returncode == 0, ran.stderr
    [row] = [line for line in rblwatch(cfg, "status").stdout.splitlines() if "192.0.2.1" in line]
    assert "ack ops-user; delisting requested " in row and row.endswith(": form sent")
    [listing, _] = status_json(cfg)["listings"]  # type: ignore[misc]
    assert listing["ack"]["delisting_note"] == "form sent"
    assert listing["ack"]["delisting_requested_at"] is not None


def test_notes_on_a_target_are_listed_oldest_first_as_a_table_and_as_json(cfg: Path) -> None:
    assert rblwatch(cfg, "note", "192.0.2.2", "customer", "says", "test box").returncode == 0
    assert rblwatch(cfg, "note", "192.0.2.2", "moved", user="bob").stdout.startswith(
        "noted on 192.0.2.2 (note "
    )
    lines = rblwatch(cfg, "notes", "192.0.2.2").stdout.splitlines()
    assert lines[0].split() == ["AT", "BY", "NOTE"]
    assert [line.split("  ", 1)[1].split() for line in lines[1:]] == [
        ["ops-user", "customer", "says", "test", "box"],
        ["bob", "moved"],
    ]
    doc = json.loads(rblwatch(cfg, "notes", "192.0.2.2", "--format", "json").stdout)
    assert [(n["by"], n["text"]) for n in doc["notes"]] == [
        ("ops-user", "customer says test box"),
        ("bob", "moved"),
    ]
    history = rblwatch(cfg, "history", "--target", "192.0.2.2").stdout
    assert "note  192.0.2.2  -" in history and "by bob: moved" in history


def test_the_commands_work_on_a_postgresql_store(tmp_path: Path, postgres_cluster: Cluster) -> None:
    database = postgres_cluster.create_database()
    try:
        url = postgres_cluster.url(database)
        fill(url)
        cfg = write_config(tmp_path, url)
        assert rblwatch(cfg, "ack", "192.0.2.1", "bl", "--note", "pg").returncode == 0
        [listing, _] = status_json(cfg)["listings"]  # type: ignore[misc]
        assert listing["ack"]["note"] == "pg"
        assert "is not listed on bl" in one_line_error(rblwatch(cfg, "ack", "192.0.2.2", "bl"))
    finally:
        postgres_cluster.drop_database(database)
