"""The check seam: one CheckKind shape, one map of kinds; a new kind reuses the whole daemon.

The fake kind below does no I/O at all. Plugged into a real Engine over a real SQLite store,
its `fail` outcomes go through confirmation, transitions, events and the outbox exactly as a
DNSBL listing does: that is the promise the seam makes to the hygiene checks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rblwatch import health
from rblwatch.checks import CHECK_KINDS, CheckIO, CheckKind, CheckRun, IsNews, Probed, States
from rblwatch.checks.dnsbl import DnsblCheck
from rblwatch.config import Config, parse_config
from rblwatch.engine import Engine
from rblwatch.inventory import Found, Inventory, Slice
from rblwatch.model import DnsList, EventKind, Outcome, OutcomeKind, TargetKind
from rblwatch.resolver import Durations
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore


class FakeCheck:
    """A check kind that fails the targets in `failing`, with a reason a person can act on."""

    name = "fake"
    states = States(bad="fail", good="pass")
    probes = True

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.runs: list[int] = []

    def takes(self, subject: DnsList) -> tuple[TargetKind, ...]:
        return (TargetKind.IPV4,)

    def targets(self, cfg: Config, subject: DnsList, found: Found, inventory: Inventory) -> Slice:
        return inventory.slice(found, self.takes(subject))

    async def probe(self, io: CheckIO, subject: DnsList) -> Probed:
        return Probed(health.HEALTHY)

    async def run(
        self,
        io: CheckIO,
        subject: DnsList,
        targets: Slice,
        durations: Durations,
        until: float | None = None,
    ) -> CheckRun:
        self.runs.append(len(targets))  # one call per subject and cycle, all targets at once
        fail = Outcome(OutcomeKind.LISTED, codes=("no-ptr",), meanings=("no PTR record",))
        outcomes = {t.value: fail for t in targets.targets if t.value in self.failing}
        return CheckRun(outcomes, lookups=len(targets), queries=len(targets))

    async def annotate(self, io: CheckIO, subject: DnsList, run: CheckRun, news: IsNews) -> None:
        return None


def test_every_kind_in_the_map_has_the_one_shape() -> None:
    assert set(CHECK_KINDS) == {"dnsbl", "hygiene"}
    kinds: list[CheckKind[DnsList]] = [CHECK_KINDS["dnsbl"](), DnsblCheck(), FakeCheck()]
    assert [k.states.good for k in kinds] == ["clean", "clean", "pass"]
    lst = DnsList(name="bl", zone="bl.test", ipv6=True)
    assert kinds[0].takes(lst) == (TargetKind.IPV4, TargetKind.IPV6)


def test_a_new_check_kind_reuses_confirmation_events_and_the_store(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "resolver": {"nameservers": ["127.0.0.1:9"]},  # never asked: the fake does no I/O
            "schedule": {"confirm": 2, "jitter": 0},
            "lists": [{"name": "bl", "zone": "bl.test", "kind": "ip"}],
            "targets": [{"group": "mail", "addresses": ["192.0.2.0/30"]}],
        }
    )
    store = SqliteStore(str(tmp_path / "state.db"))
    engine = Engine(Runtime(cfg, store))
    fake = FakeCheck()
    engine.kinds["dnsbl"] = fake  # the list's name now stands for the fake kind's subject

    async def scenario() -> list[list[EventKind]]:
        seen = [[e.kind for e in (await engine.cycle("bl")).events]]  # the clean baseline
        fake.failing = {"192.0.2.2"}
        for _ in range(2):  # confirm: 2
            seen.append([e.kind for e in (await engine.cycle("bl")).events])
        fake.failing = set()
        for _ in range(2):
            seen.append([e.kind for e in (await engine.cycle("bl")).events])
        return seen

    try:
        got = asyncio.run(scenario())
        events = store.events(limit=10)
    finally:
        store.close()
    assert got == [[], [], [EventKind.LISTED], [], [EventKind.DELISTED]]
    assert fake.runs == [4, 4, 4, 4, 4]
    listed = next(e for e in events if e.kind is EventKind.LISTED)
    assert (listed.target, listed.meanings, listed.initial) == (
        "192.0.2.2",
        ("no PTR record",),
        False,
    )
