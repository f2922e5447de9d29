"""Review of issue 11: hostile values to the acks API and CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from rblwatch.model import CycleCommit
from rblwatch.runtime import Runtime
from tests.test_web import get
from tests.webstate import event, listed, make_runtime, put

IP = "192.0.2.1"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    rt = make_runtime(tmp_path)
    put(rt, [listed(IP)], [event(IP, 1_795_780_800.0)])
    rt.store.commit(CycleCommit("corp-bl", seen=[IP]))
    return rt


@pytest.mark.parametrize("until", ["999999999999999d", "99999999999d", "9999-12-31T23:59:59-14:00"])
def test_an_until_beyond_any_date_is_a_400_not_a_500(runtime: Runtime, until: str) -> None:
    body = {"target": IP, "list": "corp-bl", "until": until}
    reply = get(runtime, "/api/v1/acks", "POST", json=body)
    assert reply.status == 400, reply.text
    assert runtime.store.acks() == []


def test_the_cli_s_until_beyond_any_date_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from tests.test_acks_cli import fill, one_line_error, rblwatch
    from tests.test_cli_store import write_config

    db = tmp_path / "state.db"
    fill(f"sqlite:///{db}")
    cfg = write_config(tmp_path, db)
    ran = rblwatch(cfg, "ack", "--until", "999999999999999d", "192.0.2.1", "bl")
    one_line_error(ran)
