"""A small daemon state for the web and metrics tests: a real config, a real SQLite store.

`make_runtime` gives a Runtime over a fresh SqliteStore with three configured lists (one whose
zone holds a secret key), two groups and one receiver; `listed`, `clean` and `event` build
rows to commit into it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rblwatch.config import Config, parse_config
from rblwatch.model import CycleCommit, Event, EventKind, PairState, PairStatus
from rblwatch.runtime import Runtime
from rblwatch.stats import Stats
from rblwatch.store.sqlite import SqliteStore

T0 = 1_795_780_800.0  # 2026-11-27T12:00:00Z
SECRET = "s3cr3tkey"
LISTS = ("corp-bl", "spamhaus-zen", "corp-dbl")
GROUPS = ("mail", "web")


def make_config(per_target: str = "listed") -> Config:
    return parse_config(
        {
            "lists": [
                {
                    "name": "corp-bl",
                    "zone": "${BL_KEY}.bl.example.net",
                    "kind": "ip",
                    "delist_url": "https://corp.example.net/delist?a=1&b=2",
                },
                "spamhaus-zen",
                {
                    "name": "corp-dbl",
                    "zone": "dbl.example.net",
                    "kind": "domain",
                    "health_check": False,
                },
            ],
            "targets": [
                {"group": "mail", "addresses": ["192.0.2.0/30"]},
                {"group": "web", "domains": ["example.com"]},
            ],
            "alerts": {"receivers": [{"name": "ops", "url": "https://hooks.example.net/x"}]},
            "metrics": {"per_target": per_target},
            "store": {"url": "sqlite:////var/lib/rblwatch/secret-store-path.db"},
        },
        env={"BL_KEY": SECRET},
    )


def make_runtime(tmp_path: Path, per_target: str = "listed") -> Runtime:
    config = make_config(per_target)
    stats = Stats()
    stats.ensure_lists(LISTS)
    stats.ensure_receivers(["ops"])
    store = SqliteStore(str(tmp_path / "state.db"))
    return Runtime(config=config, store=store, stats=stats, version="9.9.9")


def listed(
    target: str,
    list_name: str = "corp-bl",
    group: str = "mail",
    since: float = T0,
    codes: tuple[str, ...] = ("127.0.0.2",),
    meanings: tuple[str, ...] = ("spam source",),
    txt: str | None = None,
) -> PairState:
    return PairState(
        target=target,
        list=list_name,
        group=group,
        status=PairStatus.LISTED,
        since=since,
        first_seen=since,
        codes=codes,
        meanings=meanings,
        txt=txt,
    )


def clean(target: str, list_name: str = "corp-bl", group: str = "mail") -> PairState:
    return PairState(target, list_name, group, PairStatus.CLEAN, since=T0, first_seen=T0 - 3600)


def event(
    target: str | None,
    at: float,
    list_name: str = "corp-bl",
    kind: EventKind = EventKind.LISTED,
    group: str | None = "mail",
) -> Event:
    return Event(kind, list_name, at, target=target, group=group, codes=("127.0.0.2",))


def put(runtime: Runtime, pairs: Iterable[PairState] = (), events: Iterable[Event] = ()) -> None:
    """Commit pairs and events, one commit per list (as cycles do)."""
    by_list: dict[str, CycleCommit] = {}
    for p in pairs:
        by_list.setdefault(p.list, CycleCommit(list=p.list)).upserts.append(p)
    for e in events:
        by_list.setdefault(e.list, CycleCommit(list=e.list)).events.append(e)
    for commit in by_list.values():
        runtime.store.commit(commit, receivers_for=lambda e: ["ops"])
