"""The target inventory: each list's targets and their query labels as one value (SPEC §6).

Hostnames are resolved by a function handed in, so these tests need no DNS at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rblwatch.config import Config, parse_config
from rblwatch.inventory import Inventory, Slice
from rblwatch.lookup import prefix_wire
from rblwatch.model import Target, TargetKind

IP = (TargetKind.IPV4, TargetKind.IPV6)


def config(**group: object) -> Config:
    return parse_config(
        {
            "lists": [{"name": "bl", "zone": "bl.test", "kind": "ip"}],
            "targets": [{"group": "mail", **group}],
        }
    )


class Hostnames:
    """A stand-in resolver whose answers the test changes between cycles."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.failed: list[tuple[str, str]] = []

    async def __call__(
        self, names: Sequence[str], group: str
    ) -> tuple[list[Target], list[tuple[str, str]]]:
        kind = {False: TargetKind.IPV4, True: TargetKind.IPV6}
        got = [Target(a, kind[":" in a], group, names[0]) for a in self.addresses]
        return got, self.failed


def assert_labels_match(part: Slice) -> None:
    assert list(part.labels) == [prefix_wire(t.value, t.kind) for t in part.targets]
    assert part.values == {t.value for t in part.targets}


def test_a_slice_holds_each_target_with_its_own_labels() -> None:
    inv = Inventory(Hostnames())
    cfg = config(addresses=["192.0.2.0/30", "2001:db8::1"], domains=["example.com"])
    found = asyncio.run(inv.current(cfg))
    ip = inv.slice(found, IP)
    assert [t.value for t in ip.targets][-1] == "2001:db8::1"
    assert_labels_match(ip)
    assert [t.value for t in inv.slice(found, (TargetKind.DOMAIN,)).targets] == ["example.com"]


def test_labels_follow_the_targets_when_hostnames_move_between_cycles() -> None:
    names = Hostnames("192.0.2.77", "2001:db8::77")
    inv = Inventory(names)
    cfg = config(addresses=["192.0.2.1"], hostnames=["mx.example.test"])
    first = inv.slice(asyncio.run(inv.current(cfg)), IP)
    assert_labels_match(first)
    names.addresses = ["2001:db8::78", "192.0.2.78", "192.0.2.1"]  # moved, and one is static
    second = inv.slice(asyncio.run(inv.current(cfg)), IP)
    assert [t.value for t in second.targets] == ["192.0.2.1", "2001:db8::78", "192.0.2.78"]
    assert_labels_match(second)
    assert_labels_match(first)  # an earlier cycle's slice is a value: it did not change


def test_a_round_of_a_few_targets_keeps_their_labels() -> None:
    inv = Inventory(Hostnames())
    found = asyncio.run(inv.current(config(addresses=["192.0.2.0/28"])))
    few = inv.slice(found, IP).only({"192.0.2.9", "192.0.2.3", "198.51.100.1"})
    assert [t.value for t in few.targets] == ["192.0.2.3", "192.0.2.9"]
    assert_labels_match(few)


def test_static_targets_are_expanded_and_sliced_once_per_config() -> None:
    inv = Inventory(Hostnames())
    cfg = config(addresses=["192.0.2.0/24"])
    found = asyncio.run(inv.current(cfg))
    assert asyncio.run(inv.current(cfg)) is found
    assert inv.slice(found, IP) is inv.slice(found, IP)  # no Python loop per target per cycle
    assert found.per_group == {"mail": 256} and found.complete


def test_a_failed_hostname_makes_the_targets_incomplete() -> None:
    names = Hostnames("192.0.2.77")
    names.failed = [("gone.example.test", "no such domain (NXDOMAIN)")]
    inv = Inventory(names)
    found = asyncio.run(inv.current(config(hostnames=["mx.example.test", "gone.example.test"])))
    assert not found.complete and [t.value for t in found.targets] == ["192.0.2.77"]
