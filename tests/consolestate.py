"""A big daemon state for the console's tests and benchmark: a /16 on four lists.

`seed_big` fills a store, through the store API as cycles do, with 65,536 targets x 4 lists
(262,144 pairs, every one looked up), of which `listings` are listed (spread evenly over the
lists, each with a TXT and a listed event), and a finished cycle per list. `big_config` is
the matching config (one group, four lists, delisting links).
"""

from __future__ import annotations

from rblwatch.config import Config, parse_config
from rblwatch.model import CycleCommit, Event, EventKind, Health, ListStatus, PairState, PairStatus
from rblwatch.store import Store

T0 = 1_795_780_800.0  # 2026-11-27T12:00:00Z
BIG_LISTS = ("zen", "bl-two", "bl-three", "bl-four")
NETWORK = "10.20.0.0/16"


def big_config() -> Config:
    return parse_config(
        {
            "lists": [
                {
                    "name": name,
                    "zone": f"{name}.example.net",
                    "kind": "ip",
                    "delist_url": f"https://{name}.example.net/remove",
                }
                for name in BIG_LISTS
            ],
            "targets": [{"group": "mail", "addresses": [NETWORK]}],
        }
    )


def address(i: int) -> str:
    return f"10.20.{i >> 8 & 255}.{i & 255}"


def seed_big(store: Store, listings: int = 10_000, at: float = T0) -> None:
    """`listings` listed pairs among 65,536 x 4; the i-th listing is address(i * step)."""
    everyone = [address(i) for i in range(65_536)]
    per_list = listings // len(BIG_LISTS)
    step = 65_536 // per_list
    for n, name in enumerate(BIG_LISTS):
        upserts, events = [], []
        for k in range(per_list):
            target = address((k * step + n) % 65_536)
            since = at - 60 * k
            txt = f"{target} listed on {name}, see https://{name}.example.net/q/{k}"
            upserts.append(
                PairState(
                    target,
                    name,
                    "mail",
                    PairStatus.LISTED,
                    since,
                    since - 3600,
                    ("127.0.0.2",),
                    ("spam source",),
                    txt,
                )
            )
            events.append(
                Event(
                    EventKind.LISTED,
                    name,
                    since,
                    target=target,
                    group="mail",
                    codes=("127.0.0.2",),
                    meanings=("spam source",),
                    txt=txt,
                )
            )
        status = ListStatus(
            name=name,
            health=Health.HEALTHY,
            health_since=at - 86_400,
            last_cycle_start=at - 30,
            last_cycle_end=at,
            last_cycle_success=at,
            last_cycle_duration=30.0,
            last_cycle_lookups=65_536,
            last_cycle_errors=3,
            targets=65_536,
        )
        store.commit(
            CycleCommit(list=name, upserts=upserts, seen=everyone, events=events, status=status)
        )
        store.record_health(name, Health.HEALTHY, "", at - 86_400, None)
