"""The console's truth and forms over HTTP (the real listener on 127.0.0.1, a real SQLite
store): the overview's pair counts, the target page's last answers, acks and notes, and the
forms that work a listing without JavaScript — a form post ends on its page again (303), a
refused one on a page naming the problem, and no form sends a browser to another site."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any

import pytest

from rblwatch import webacks
from rblwatch.model import Ack, CycleCommit, ListStatus, Reason
from rblwatch.model import PairError as StoredError
from rblwatch.runtime import Runtime
from tests.test_web import Reply, get, serve
from tests.webstate import LISTS, event, listed, make_runtime, put

IP = "192.0.2.1"
PAGE = f"/target/{IP}"


def fresh(runtime: Runtime, at: float | None = None) -> None:
    """Every list has just completed a good cycle over the config's targets."""
    now = time.time() if at is None else at
    targets = ["192.0.2.0", IP, "192.0.2.2", "192.0.2.3", "example.com"]
    for name in LISTS:
        runtime.store.commit(
            CycleCommit(
                name,
                seen=targets,
                status=ListStatus(
                    name=name,
                    last_cycle_start=now - 5,
                    last_cycle_end=now,
                    last_cycle_success=now,
                ),
            )
        )


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    rt = make_runtime(tmp_path)
    fresh(rt)
    put(rt, [listed(IP, since=time.time() - 600, txt="see https://corp.example.net/q")])
    rt.store.commit(CycleCommit("corp-bl", events=[event(IP, time.time() - 600)]))
    return rt


def csrf_of(page: str) -> str:
    [token] = set(re.findall(r'name="csrf_token" value="([0-9a-f]+)"', page))
    return token


def counts_of(page: str) -> list[str]:
    """The overview's counts: listed, unknown, errors, acknowledged."""
    return re.findall(r'<span class="n[^"]*">(?:<a href="/listings">)?([^<]+)', page)


def form(runtime: Runtime, path: str, fields: dict[str, str], **kw: Any) -> list[Reply]:
    """Load the target page, then post `fields` (with its csrf_token) as its browser would."""

    async def action(request: Any) -> list[Reply]:
        page = await request(PAGE)
        body = {"csrf_token": csrf_of(page.text), **fields}
        browser = {"Sec-Fetch-Site": "same-origin"}  # a browser's: the token is checked
        posted = await request(
            path, "POST", data=body, headers=browser, allow_redirects=False, **kw
        )
        after = await request(PAGE)
        return [page, posted, after]

    return serve(runtime, action)  # type: ignore[no-any-return]


# --- the overview ----------------------------------------------------------------------------


def test_the_overview_counts_every_pair_n_listed_m_unknown(runtime: Runtime) -> None:
    runtime.unresolved = [("mail", "mx.gone.example", "NXDOMAIN")]
    page = get(runtime, "/").text
    assert counts_of(page) == ["1", "0", "0", "0"]  # listed, unknown, errors, acknowledged
    assert "1 listed, 0 unknown, 0 errors." in page
    assert "<td>mx.gone.example</td>" in page  # the hostname that did not resolve
    assert "Hostnames that did not resolve: mx.gone.example." in page  # and its banner


def test_pairs_without_a_good_answer_are_unknown_and_errors_are_counted(
    runtime: Runtime,
) -> None:
    fresh(runtime, time.time() - 86_400 * 3)  # three days without a good answer: stale
    timeout = StoredError("example.com", "corp-dbl", Reason.TIMEOUT, time.time())
    runtime.store.commit(CycleCommit("corp-dbl", errors=[timeout]))
    page = get(runtime, "/").text
    # 9 pairs (4 addresses on two lists, a domain on one): the listed one stays listed
    # (marked stale), the 8 others are unknown, never clean; one lookup failed
    assert counts_of(page) == ["1", "8", "1", "0"]
    assert "1 listed, 8 unknown, 1 error." in page
    assert "No target is listed" not in page
    target = get(runtime, "/target/example.com").text
    assert '<span class="outcome error">error: timeout</span>' in target
    assert ">stale</span>" in target


# --- the target page -------------------------------------------------------------------------


def test_the_target_page_shows_each_lists_last_answer_and_its_forms(runtime: Runtime) -> None:
    page = get(runtime, PAGE).text
    row = re.search(r'<tr class="state-listed">.*?</tr>', page)
    assert row is not None
    assert '<span class="outcome listed">listed</span>' in row.group(0)
    assert "stale" not in row.group(0)
    for action in ("/api/v1/acks", "/api/v1/delisting", "/api/v1/notes"):
        assert f'method="post" action="{action}"' in page
    assert '<input type="hidden" name="return_to" value="/target/192.0.2.1#work-corp-bl">' in page
    assert len(csrf_of(page)) == 64


def test_an_ack_form_ends_on_the_target_page_which_shows_it(runtime: Runtime) -> None:
    fields = {"target": IP, "list": "corp-bl", "note": "ticket 42", "until": "7d"}
    fields["return_to"] = f"{PAGE}#work-corp-bl"
    _, posted, after = form(runtime, "/api/v1/acks", fields)
    assert posted.status == 303, posted.text
    assert posted.headers["Location"] == f"{PAGE}#work-corp-bl"
    [ack] = runtime.store.acks(target=IP)
    assert (ack.note, ack.by) == ("ticket 42", "api")
    assert "Acknowledged by <b>api</b>" in after.text and "<q>ticket 42</q>" in after.text
    assert 'class="ackmark" title="acknowledged: see below">✓ api</span>' in after.text
    assert "Remove acknowledgement" in after.text
    listings = get(runtime, "/listings").text
    assert "✓ api" in listings  # the listings row carries the mark
    assert counts_of(get(runtime, "/").text)[3] == "1"  # acknowledged, at once


def test_the_other_forms_end_on_the_page_too(runtime: Runtime) -> None:
    back = {"target": IP, "list": "corp-bl", "return_to": PAGE}
    _, asked, after = form(runtime, "/api/v1/delisting", {**back, "note": "form sent"})
    assert (asked.status, asked.headers["Location"]) == (303, PAGE)
    assert "Delisting requested" in after.text and "<q>form sent</q>" in after.text
    _, removed, after = form(runtime, "/api/v1/acks/delete", back)
    assert removed.status == 303 and runtime.store.acks() == []
    note = {"target": IP, "text": "called the ISP", "return_to": f"{PAGE}#notes"}
    _, noted, after = form(runtime, "/api/v1/notes", note)
    assert noted.status == 303
    assert "<b>api</b>: called the ISP" in after.text


def test_a_refused_form_post_is_a_page_naming_the_problem(runtime: Runtime) -> None:
    fields = {"target": "192.0.2.2", "list": "corp-bl", "return_to": "/target/192.0.2.2"}
    _, refused, _ = form(runtime, "/api/v1/acks", fields)
    assert refused.status == 409 and refused.content_type == "text/html"
    assert "is not listed" in refused.text and 'href="/target/192.0.2.2"' in refused.text
    _, bad, _ = form(runtime, "/api/v1/acks", {**fields, "until": "soon"})
    assert bad.status == 400 and "until soon" in bad.text and "<h1>Not saved</h1>" in bad.text


@pytest.mark.parametrize(
    "where",
    [
        "https://evil.example/",
        "//evil.example/target/x",
        "/\\evil.example",
        "/target/\\\\evil.example",
        "/listings.evil",
        "/-/reload",
        "/target/x\r\nLocation: https://evil.example",
    ],
)
def test_a_form_never_sends_the_browser_to_another_site(runtime: Runtime, where: str) -> None:
    assert not webacks.safe_return(where)
    fields = {"target": IP, "list": "corp-bl", "return_to": where}
    _, refused, _ = form(runtime, "/api/v1/acks", fields)
    assert refused.status == 400 and "Location" not in refused.headers
    assert "return_to: not a page of this console" in refused.text
    assert runtime.store.acks() == []  # nothing written


def test_a_json_post_or_a_form_without_return_to_is_answered_in_json(runtime: Runtime) -> None:
    reply = get(runtime, "/api/v1/acks", "POST", data={"target": IP, "list": "corp-bl"})
    assert reply.status == 200 and reply.content_type == "application/json"
    refused = get(runtime, "/api/v1/acks", "POST", json={"target": "192.0.2.2", "list": "corp-bl"})
    assert refused.status == 409 and refused.json()["error"]
    for ok in ("/listings", "/listings?q=192.0.2.1", PAGE, f"{PAGE}#notes"):
        assert webacks.safe_return(ok)


# --- the counts' cache -----------------------------------------------------------------------


def test_a_commit_recounts_its_own_list_and_an_ack_its_list_too(runtime: Runtime) -> None:
    from rblwatch.console.counting import CountsCache
    from rblwatch.console.snapshot import SnapshotCache
    from rblwatch.pairsource import PairsSource

    snaps, cache = SnapshotCache(), CountsCache(PairsSource())
    store, config = runtime.store, runtime.config

    def counted() -> dict[str, Any]:
        return dict(cache._kept)  # each list's kept count, as counted

    total, per_list = cache.counts(store, snaps.get(store), config, runtime)
    assert (total.total, total.listed, per_list["corp-bl"].listed) == (9, 1, 1)
    before = counted()
    # a cycle's commit: the listing and its event (the snapshot re-reads that list only)
    news = event("192.0.2.2", time.time(), "spamhaus-zen")
    put(runtime, [listed("192.0.2.2", list_name="spamhaus-zen")], [news])
    total, per_list = cache.counts(store, snaps.get(store), config, runtime)
    after = counted()
    assert per_list["spamhaus-zen"].listed == 1 and total.listed == 2
    # (the snapshot also re-reads the list of the newest event before: corp-bl's)
    assert after["corp-dbl"] is before["corp-dbl"]  # not counted again
    assert after["spamhaus-zen"] is not before["spamhaus-zen"]
    store.set_ack(Ack(IP, "corp-bl", "alice", time.time()))
    total, _ = cache.counts(store, snaps.get(store), config, runtime)
    assert total.acknowledged == 1 and counted()["corp-bl"] is not after["corp-bl"]


def test_a_resolver_outage_is_counted_at_once_not_after_the_cache_s_age(runtime: Runtime) -> None:
    from rblwatch.console.counting import CountsCache
    from rblwatch.console.snapshot import SnapshotCache
    from rblwatch.model import Event, EventKind, ResolverState
    from rblwatch.pairsource import PairsSource

    snaps, cache = SnapshotCache(), CountsCache(PairsSource())
    store, config = runtime.store, runtime.config
    now = time.time()
    for name in ("corp-bl", "corp-dbl", "spamhaus-zen"):  # every list answered a minute ago
        row = ListStatus(name, last_cycle_start=now - 61, last_cycle_end=now - 60)
        row = dataclasses.replace(row, last_cycle_success=now - 60)
        store.commit(CycleCommit(name, status=row))
    before, _ = cache.counts(store, snaps.get(store), config, runtime)
    assert before.unknown < before.total
    down = ResolverState("unreachable", now, "every list: timeout")
    store.record_resolver(down, Event(EventKind.RESOLVER_UNREACHABLE, "", now))
    during, _ = cache.counts(store, snaps.get(store), config, runtime)
    # nothing is being checked: every pair not listed is unknown now, not in 10 s
    assert during.unknown == during.total - during.listed and during.clean == 0
