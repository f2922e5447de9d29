"""The acks, delisting and notes API (`rblwatch.webacks`) over HTTP on 127.0.0.1, on a real
SQLite store: what each route writes and answers, and what it refuses."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rblwatch import webacks
from rblwatch.model import CycleCommit, EventKind
from rblwatch.runtime import Runtime
from rblwatch.views.status import rfc3339
from tests.test_web import Reply, get, serve
from tests.webstate import event, listed, make_runtime, put

IP = "192.0.2.1"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    rt = make_runtime(tmp_path)
    put(rt, [listed(IP)], [event(IP, 1_795_780_800.0)])
    rt.store.commit(CycleCommit("corp-bl", seen=[IP, "192.0.2.2"]))  # looked up: notes take them
    return rt


def post(runtime: Runtime, path: str, **kw: Any) -> Reply:
    return get(runtime, path, "POST", **kw)


def test_an_ack_posted_as_json_is_stored_and_shown_by_acks_and_status(runtime: Runtime) -> None:
    body = {"target": IP, "list": "corp-bl", "note": "ticket 123", "until": "7d", "by": "alice"}

    async def action(request: Any) -> list[Reply]:
        return [
            await request("/api/v1/acks", "POST", json=body),
            await request("/api/v1/acks"),
            await request("/api/v1/acks?list=corp-bl&target=192.0.2.1"),
            await request("/api/v1/acks?list=spamhaus-zen"),
            await request("/api/v1/status"),
        ]

    posted, every, filtered, other, status = serve(runtime, action)
    assert posted.status == 200, posted.text
    ack = posted.json()["ack"]
    assert (ack["target"], ack["list"], ack["by"], ack["note"], ack["active"]) == (
        IP,
        "corp-bl",
        "alice",
        "ticket 123",
        True,
    )
    assert ack["until"] is not None
    [stored] = runtime.store.acks()
    assert posted.json()["event_id"] == runtime.store.events(target=IP)[-1].id
    assert every.json() == filtered.json() == {"acks": [ack]}
    assert other.json() == {"acks": []}
    [listing] = status.json()["listings"]
    assert listing["ack"] == {k: v for k, v in ack.items() if k != "active"}
    assert stored.by == "alice"


def test_a_form_post_works_and_a_missing_by_is_api(runtime: Runtime) -> None:
    reply = post(runtime, "/api/v1/acks", data={"target": "192.0.2.1", "list": "corp-bl"})
    assert reply.status == 200, reply.text
    assert reply.json()["ack"]["by"] == "api" and reply.json()["ack"]["until"] is None


def test_a_delisting_request_and_a_delete_answer_what_they_did(runtime: Runtime) -> None:
    pair = {"target": IP, "list": "corp-bl"}

    async def action(request: Any) -> list[Reply]:
        return [
            await request("/api/v1/delisting", "POST", json={**pair, "note": "form sent"}),
            await request("/api/v1/acks/delete", "POST", json=pair),
            await request("/api/v1/acks/delete", "POST", json=pair),
        ]

    asked, removed, again = serve(runtime, action)
    assert asked.status == 200, asked.text
    assert asked.json()["ack"]["delisting_note"] == "form sent"
    assert asked.json()["ack"]["delisting_requested_at"] is not None
    assert removed.json()["removed"] is True and isinstance(removed.json()["event_id"], int)
    assert again.json() == {"removed": False, "event_id": None}
    kinds = [e.kind for e in runtime.store.events(target=IP)]
    assert kinds[-2:] == [EventKind.DELISTING_REQUESTED, EventKind.UNACKNOWLEDGED]
    assert runtime.store.outbox_counts() == {"ops": 1}  # the listing's only


def test_notes_are_posted_and_read_per_target(runtime: Runtime) -> None:
    async def action(request: Any) -> list[Reply]:
        return [
            await request("/api/v1/notes", "POST", json={"target": IP, "text": "test box"}),
            await request("/api/v1/notes", "POST", data={"target": IP, "text": "b", "by": "bob"}),
            await request("/api/v1/notes?target=192.0.2.1"),
            await request("/api/v1/notes?target=192.0.2.2"),
        ]

    first, second, notes, none = serve(runtime, action)
    assert first.status == second.status == 200
    assert first.json()["note"]["text"] == "test box" and first.json()["note"]["by"] == "api"
    assert [(n["by"], n["text"]) for n in notes.json()["notes"]] == [
        ("api", "test box"),
        ("bob", "b"),
    ]
    assert notes.json()["notes"][0]["at"] == rfc3339(runtime.store.notes(IP)[0].at)
    assert none.json() == {"notes": []}


@pytest.mark.parametrize(
    ("path", "kw", "status", "says"),
    [
        ("/api/v1/acks", {"json": {"target": "192.0.2.2", "list": "corp-bl"}}, 409, "not listed"),
        ("/api/v1/acks", {"json": {"target": IP, "list": "nope"}}, 400, "list: no such list"),
        ("/api/v1/acks", {"json": {"target": "300.1.1.1", "list": "corp-bl"}}, 400, "target:"),
        ("/api/v1/acks", {"json": {"list": "corp-bl"}}, 400, "target: missing"),
        ("/api/v1/acks", {"json": {"target": IP, "list": "corp-bl", "x": "1"}}, 400, "'x'"),
        (
            "/api/v1/acks",
            {"json": {"target": IP, "list": "corp-bl", "until": "soon"}},
            400,
            "until",
        ),
        ("/api/v1/acks", {"json": {"target": IP, "list": "corp-bl", "note": 5}}, 400, "a string"),
        ("/api/v1/acks", {"json": [IP]}, 400, "a JSON object"),
        (
            "/api/v1/acks",
            {"data": "{", "headers": {"Content-Type": "application/json"}},
            400,
            "JSON",
        ),
        ("/api/v1/delisting", {"json": {"target": "example.com", "list": "corp-dbl"}}, 409, "not"),
        ("/api/v1/notes", {"json": {"target": "198.51.100.1", "text": "x"}}, 409, "never looked"),
        ("/api/v1/notes", {"json": {"target": IP, "text": "x" * 4001}}, 400, "longer than"),
        ("/api/v1/notes", {"json": {"target": IP}}, 400, "text: missing"),
    ],
)
def test_a_bad_or_refused_write_is_one_line_of_json_and_writes_nothing(
    runtime: Runtime, path: str, kw: dict[str, Any], status: int, says: str
) -> None:
    before = runtime.store.events(limit=1000)
    reply = post(runtime, path, **kw)
    assert reply.status == status and reply.content_type == "application/json"
    assert says in reply.json()["error"] and "\n" not in reply.json()["error"]
    assert runtime.store.events(limit=1000) == before and runtime.store.acks() == []


def test_bad_reads_are_400(runtime: Runtime) -> None:
    for path in (
        "/api/v1/notes",
        "/api/v1/acks?nope=1",
        "/api/v1/acks?list=x",
        "/api/v1/acks?list=corp-bl&list=corp-bl",
    ):
        reply = get(runtime, path)
        assert reply.status == 400, path
        assert "\n" not in reply.json()["error"]


def test_a_write_from_a_web_page_is_refused_with_403_and_writes_nothing(runtime: Runtime) -> None:
    for path in ("/api/v1/acks", "/api/v1/acks/delete", "/api/v1/delisting", "/api/v1/notes"):
        reply = post(
            runtime,
            path,
            data={"target": IP, "list": "corp-bl", "text": "x"},
            headers={"Origin": "https://evil.example"},
        )
        assert reply.status == 403, path
        assert reply.text.startswith("refused: a cross-site request (Origin 'https://evil.example'")
    assert runtime.store.acks() == [] and runtime.store.notes(IP) == []


def test_a_guard_that_knows_the_user_names_the_actor_whatever_the_body_says(
    runtime: Runtime,
) -> None:
    async def main() -> dict[str, Any]:
        app = web.Application()
        webacks.add_routes(app, runtime, who=lambda request: "carol")
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{port}/api/v1/acks"
                body = {"target": IP, "list": "corp-bl", "by": "mallory"}
                async with session.post(url, json=body) as r:
                    doc: dict[str, Any] = await r.json()
                    return doc
        finally:
            await runner.cleanup()

    assert asyncio.run(main())["ack"]["by"] == "carol"


def test_a_store_that_is_away_is_503_not_a_traceback(runtime: Runtime) -> None:
    runtime.store.close()
    reply = post(runtime, "/api/v1/acks", json={"target": IP, "list": "corp-bl"})
    assert reply.status == 503 and "store unavailable" in reply.json()["error"]
