"""Defects found reviewing the sender hygiene work, each pinned by the test that found it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rblwatch.checks.hygiene import items_of
from rblwatch.config import parse_config
from rblwatch.inventory import Inventory
from rblwatch.model import Target, TargetKind


def _resolving_to(address: str):  # type: ignore[no-untyped-def]
    async def resolve(
        names: Sequence[str], group: str
    ) -> tuple[list[Target], list[tuple[str, str]]]:
        return [Target(address, TargetKind.IPV4, group, n) for n in names[:1]], []

    return resolve


def test_a_sending_ip_shared_by_two_groups_is_checked_for_each_group_s_domains() -> None:
    # the inventory keeps one target per address (the first group's), which the DNSBL lookups
    # want; a group's SPF pairs must still take every address the group itself names
    cfg = parse_config(
        {
            "targets": [
                {"group": "a", "addresses": ["192.0.2.10"], "domains": ["a.example"]},
                {
                    "group": "b",
                    "addresses": ["192.0.2.0/28"],
                    "domains": ["b.example"],
                    "hygiene": {},
                },
                {
                    "group": "c",
                    "hostnames": ["mx.c.example"],
                    "domains": ["c.example"],
                    "hygiene": {},
                },
            ]
        }
    )
    found = asyncio.run(Inventory(_resolving_to("192.0.2.10")).current(cfg))
    spf = {i.key for i in items_of(cfg, "spf", found)}
    assert "b.example 192.0.2.10" in spf  # a's address too, first in the inventory
    assert "c.example 192.0.2.10" in spf  # c's hostname resolves to it
    assert len(spf) == 16 + 1
    fcrdns = [i for i in items_of(cfg, "fcrdns", found) if i.key == "192.0.2.10"]
    assert [i.group for i in fcrdns] == ["b"]  # one pair per address: the first group asking
