"""The pairs view over HTTP (`GET /api/v1/pairs`, the `"pairs"` of `/api/v1/status`) and in
`rblwatch status` run as a command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rblwatch.inventory import Found
from rblwatch.model import CycleCommit, ListStatus, PairError, Reason, Target, TargetKind
from rblwatch.pairsource import configured_targets
from rblwatch.runtime import Runtime
from tests.test_web import get, serve
from tests.webstate import listed, make_runtime, put

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    rt = make_runtime(tmp_path)
    now = time.time()
    every = [t.value for t in configured_targets(rt.config)]
    for name in ("corp-bl", "spamhaus-zen", "corp-dbl"):  # every list answered a minute ago
        status = ListStatus(name, last_cycle_end=now - 60, last_cycle_success=now - 60)
        # ... and had looked up its targets before (`seen`): none is new to it
        rt.store.commit(CycleCommit(list=name, status=status, seen=every))
    return rt


def test_pairs_lists_every_configured_pair_with_counts(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")])
    timeout = PairError("192.0.2.3", "corp-bl", Reason.TIMEOUT, time.time() - 30, "", None)
    runtime.store.commit(CycleCommit("corp-bl", errors=[timeout]))
    reply = get(runtime, "/api/v1/pairs?list=corp-bl")
    assert reply.status == 200 and reply.content_type == "application/json"
    doc = reply.json()
    assert [(p["target"], p["state"], p["last_outcome"]) for p in doc["pairs"]] == [
        ("192.0.2.0", "clean", "clean"),
        ("192.0.2.1", "listed", "listed"),
        ("192.0.2.2", "clean", "clean"),
        ("192.0.2.3", "unknown", "error"),  # never answered
    ]
    assert set(doc["pairs"][0]) >= {
        "target", "list", "group", "state", "last_outcome", "last_reason", "last_checked",
        "last_good_at", "stale", "ack",
    }  # fmt: skip
    assert doc["pairs"][3]["last_reason"] == "timeout" and doc["next_cursor"] is None
    # counts are of every list's pairs, whatever the filter: 4 + 4 addresses, 1 domain
    assert doc["counts"] == {
        "total": 9,
        "listed": 1,
        "clean": 7,
        "unknown": 1,
        "errors": 1,
        "stale": 1,
        "acknowledged": 0,
    }


def test_pairs_filter_by_network_and_state_and_page_with_the_cursor(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1"), listed("192.0.2.2", list_name="spamhaus-zen")])
    assert [
        (p["list"], p["target"]) for p in get(runtime, "/api/v1/pairs?state=listed").json()["pairs"]
    ] == [("corp-bl", "192.0.2.1"), ("spamhaus-zen", "192.0.2.2")]
    inside = get(runtime, "/api/v1/pairs?target=192.0.2.2/31&list=spamhaus-zen").json()
    assert [p["target"] for p in inside["pairs"]] == ["192.0.2.2", "192.0.2.3"]

    async def pages(request):  # type: ignore[no-untyped-def]
        got, cursor = [], ""
        while True:
            doc = (await request(f"/api/v1/pairs?limit=4{cursor}")).json()
            got.append([(p["list"], p["target"]) for p in doc["pairs"]])
            if doc["next_cursor"] is None:
                return got
            cursor = f"&cursor={doc['next_cursor']}"

    got = serve(runtime, pages)
    assert [len(page) for page in got] == [4, 4, 1]
    # by list name, then address
    assert got[1][:2] == [("corp-dbl", "example.com"), ("spamhaus-zen", "192.0.2.0")]
    assert got[2] == [("spamhaus-zen", "192.0.2.3")]
    every = [pair for page in got for pair in page]
    assert every[0] == ("corp-bl", "192.0.2.0") and len(set(every)) == 9


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("state=gone", "state: must be one of listed, clean, unknown, got 'gone'"),
        ("limit=0", "limit: must be at least 1, got 0"),
        ("cursor=zz", "cursor: 'zz' is not a cursor this API gave (start without one)"),
        ("list=nope", "list: no such list 'nope' (known: corp-bl, corp-dbl, spamhaus-zen)"),
        ("colour=red", "unknown parameter 'colour' (use target, list, state, limit, cursor)"),
        ("state=listed&state=clean", "state: given 2 times (give it once)"),
    ],
)
def test_a_bad_pairs_parameter_is_a_400_with_one_line(
    runtime: Runtime, query: str, message: str
) -> None:
    reply = get(runtime, f"/api/v1/pairs?{query}")
    assert reply.status == 400 and reply.json() == {"error": message}


def test_the_daemon_s_resolved_targets_are_the_pairs_shown(runtime: Runtime) -> None:
    # a hostname's address, known only to the daemon's inventory of its last cycle
    mx = Target("198.51.100.25", TargetKind.IPV4, "mail", "mx.example.net")
    runtime.found = Found([mx], complete=True)
    doc = get(runtime, "/api/v1/pairs?list=corp-bl").json()
    assert [p["target"] for p in doc["pairs"]] == ["198.51.100.25"]


def test_status_carries_the_counts_and_the_first_page(runtime: Runtime) -> None:
    put(runtime, [listed("192.0.2.1")])
    doc = get(runtime, "/api/v1/status").json()
    assert doc["counts"]["listed"] == 1 and doc["counts"]["total"] == 9
    assert len(doc["pairs"]["items"]) == 9 and doc["pairs"]["next_cursor"] is None


# -- rblwatch status, as a command --------------------------------------------------------------


def status(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "rblwatch", "status", "--config.file", str(cfg), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.fixture
def cfg(tmp_path: Path, runtime: Runtime) -> Path:
    put(runtime, [listed("192.0.2.1")])
    runtime.store.commit(
        CycleCommit(
            "corp-bl",
            errors=[PairError("192.0.2.2", "corp-bl", Reason.SERVFAIL, time.time(), "", None)],
        )
    )
    path = tmp_path / "rblwatch.yaml"
    data = {
        "store": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "lists": [{"name": "corp-bl", "zone": "bl.example.net", "kind": "ip"}],
        "targets": [{"group": "mail", "addresses": ["192.0.2.0/30"]}],
    }
    path.write_text(yaml.safe_dump(data))
    return path


def test_status_json_has_the_pairs_view_filtered_as_asked(cfg: Path) -> None:
    ran = status(cfg, "--format", "json", "--state", "unknown")
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert [(p["target"], p["last_reason"]) for p in doc["pairs"]["items"]] == [
        ("192.0.2.2", "servfail")
    ]
    assert doc["counts"] == {
        "total": 4,
        "listed": 1,
        "clean": 2,
        "unknown": 1,
        "errors": 1,
        "stale": 1,
        "acknowledged": 0,
    }
    paged = json.loads(status(cfg, "--format", "json", "--limit", "2").stdout)["pairs"]
    assert [p["target"] for p in paged["items"]] == ["192.0.2.0", "192.0.2.1"]
    rest = status(cfg, "--format", "json", "--cursor", paged["next_cursor"])
    assert [p["target"] for p in json.loads(rest.stdout)["pairs"]["items"]] == [
        "192.0.2.2",
        "192.0.2.3",
    ]


def test_the_status_table_counts_unknown_and_errors_and_shows_a_filtered_page(cfg: Path) -> None:
    ran = status(cfg, "--target", "192.0.2.2")
    assert ran.returncode == 0, ran.stderr
    assert "1 listed, 1 unknown, 1 errors of 4 pairs (1 stale), 4 targets" in ran.stdout
    row = next(line.split() for line in ran.stdout.splitlines() if line.startswith("192.0.2.2"))
    assert row[:5] == ["192.0.2.2", "corp-bl", "mail", "unknown", "(stale)"]


def test_a_bad_status_option_is_one_line_and_exit_2(cfg: Path) -> None:
    ran = status(cfg, "--cursor", "zz")
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.strip().endswith(
        "--cursor: 'zz' is not a cursor this API gave (start without one)"
    )
    assert ran.stderr.count("\n") == 1
