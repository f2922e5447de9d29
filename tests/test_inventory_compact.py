"""The inventory keeps a big network compactly (issue 14, "Memory bounded").

A /14 x 4 lists is a million pairs the daemon holds for as long as its config lasts: its
targets, its slices' labels and values are answered from `TargetList` runs, not kept as a
Target, a label and a string per address.
"""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from collections.abc import Sequence

import pytest

from rblwatch import targetlist
from rblwatch.cluster import shard_of
from rblwatch.config import Config, parse_config
from rblwatch.inventory import Found, Inventory, Slice
from rblwatch.lookup import prefix_wire
from rblwatch.model import Target, TargetKind
from rblwatch.targetlist import (
    KnownValues,
    TargetList,
    TargetListBuilder,
    TargetValues,
    ValueSet,
    ipv4_number,
)

IP = (TargetKind.IPV4, TargetKind.IPV6)
SLASH16 = 1 << 16


def config(*groups: dict[str, object], prefix: int = 16) -> Config:
    return parse_config(
        {
            "lists": [{"name": "bl", "zone": "bl.test", "kind": "ip"}],
            "targets": list(groups),
            "limits": {"ipv4_min_prefix": prefix},
        }
    )


async def no_hostnames(
    names: Sequence[str], group: str
) -> tuple[list[Target], list[tuple[str, str]]]:
    return [], []


def build(cfg: Config) -> tuple[Found, Slice]:
    inv = Inventory(no_hostnames)
    found = asyncio.run(inv.current(cfg))
    part = inv.slice(found, IP)
    assert "10.0.255.255" in part.values  # membership answered (its index made) too
    return found, part


def test_a_slash16_found_and_slice_hold_no_target_per_address() -> None:
    cfg = config({"group": "mail", "addresses": ["10.0.0.0/16"]})
    gc.collect()
    targets_before = _targets_alive()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        found, part = build(cfg)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(found.targets) == len(part) == SLASH16
    # a Target, its value and its label per address were ~200 bytes each: 13 MB at a /16
    assert held < 256 * 1024, f"{held:,} bytes held for a /16"
    assert _targets_alive() - targets_before < 1000  # other tests' may be alive: a difference


def _targets_alive() -> int:
    return sum(1 for o in gc.get_objects() if isinstance(o, Target))


def test_a_compact_slice_reads_as_the_targets_their_labels_and_values() -> None:
    cfg = config(
        {"group": "mail", "addresses": ["192.0.2.0/28", "198.51.100.7", "2001:db8::1"]},
        {"group": "web", "addresses": ["192.0.2.8/29", "203.0.113.9"], "domains": ["a.test"]},
        prefix=24,
    )
    inv = Inventory(no_hostnames)
    found = asyncio.run(inv.current(cfg))
    part = inv.slice(found, IP)
    values = [t.value for t in part.targets]
    # the first group wins an address of two: 192.0.2.8/29 is mail's
    assert values[:16] == [f"192.0.2.{i}" for i in range(16)]
    assert values[16:] == ["198.51.100.7", "2001:db8::1", "203.0.113.9"]
    assert [t.group for t in part.targets][-1] == "web"
    assert list(part.labels) == [prefix_wire(t.value, t.kind) for t in part.targets]
    assert part.labels[17] == prefix_wire("2001:db8::1", TargetKind.IPV6)
    assert part.values == set(values) and len(part.values) == 19
    assert found.per_group == {"mail": 18, "web": 2}
    # each group's own addresses, an address of both in each
    assert list(found.addresses["web"]) == [*(f"192.0.2.{i}" for i in range(8, 16)), "203.0.113.9"]
    assert "192.0.2.9" in found.addresses["web"] and "192.0.2.1" not in found.addresses["web"]


def test_values_answer_only_canonical_text_of_their_own_targets() -> None:
    network = asyncio.run(
        Inventory(no_hostnames).current(config({"group": "g", "addresses": ["10.0.0.0/24"]}))
    )
    one = Target("192.0.2.1", TargetKind.IPV4, "g", "192.0.2.1")
    values = TargetValues(
        TargetList.of([one, Target("a.test", TargetKind.DOMAIN)]) + network.targets
    )
    for yes in ("192.0.2.1", "a.test", "10.0.0.0", "10.0.0.255"):
        assert yes in values
    for no in ("10.0.1.0", "10.0.0.01", "10.0.0", "010.0.0.1", "192.0.2.2", "b.test", "", 3):
        assert no not in values


def test_shards_and_rounds_of_a_compact_slice_match_the_targets_they_pick() -> None:
    inv = Inventory(no_hostnames)
    found = asyncio.run(inv.current(config({"group": "mail", "addresses": ["10.9.0.0/22"]})))
    whole = inv.slice(found, IP)
    held = {1, 5, 17, 40}
    part = whole.in_shards(held)
    expected = [t.value for t in whole.targets if shard_of(t.value) in held]
    assert [t.value for t in part.targets] == expected and part.values == set(expected)
    assert list(part.labels) == [prefix_wire(v, TargetKind.IPV4) for v in expected]
    assert isinstance(part.targets, TargetList) and part.prefixes is None
    few = whole.only({expected[3], "10.9.0.1", "192.0.2.1"})
    assert [t.value for t in few.targets] == sorted({expected[3], "10.9.0.1"}, key=expected_key)
    assert list(few.labels) == [prefix_wire(t.value, t.kind) for t in few.targets]


def expected_key(value: str) -> tuple[int, ...]:
    return tuple(int(p) for p in value.split("."))


def test_a_slice_of_kept_labels_still_hands_them_to_its_scan() -> None:
    t = Target("mx.example.test", TargetKind.DOMAIN, "g", "mx.example.test")
    kept = Slice([t], [b"kept"], frozenset({t.value}))
    assert kept.prefixes == [b"kept"]
    assert kept.only({t.value}).labels == [b"kept"] and len(kept.in_shards(set())) == 0


def test_a_value_set_is_a_set_of_the_values_added() -> None:
    rng = random.Random(14)
    dense = [f"10.1.{i >> 8}.{i & 255}" for i in rng.sample(range(65536), 3000)]
    sparse = [f"192.0.2.{i}" for i in range(0, 256, 3)]
    others = ["2001:db8::1", "mx.example.test", "a.test b"]
    added = [*dense, *sparse, *others, *dense[:50]]  # some twice
    seen = ValueSet(added[:100])
    seen.update(added[100:])
    assert seen == set(added) and len(seen) == len(set(added))
    for no in ("10.1.0.01", "10.2.0.1", "192.0.2.1", "2001:db8::2", "10.1", 7):
        assert no not in seen


def test_a_value_set_of_a_slash14_keeps_no_string_per_address() -> None:
    values = [f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}" for i in range(1 << 18)]
    gc.collect()
    tracemalloc.start()
    try:
        seen = ValueSet(values)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(seen) == 1 << 18 and "10.3.255.255" in seen
    # a set of the strings is 23 MB: a /16 is an 8 KiB bitmap here
    assert held < 256 * 1024, f"{held:,} bytes for a /14's seen set"


def test_many_groups_are_checked_against_one_growing_index_not_one_per_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one group per hosting customer: each group's addresses are checked against those of
    # the groups before it (the first group wins a shared address). An index of those made
    # afresh per group made the expansion quadratic (2,000 groups: 3.4 s on the event loop)
    built = []
    real = targetlist._ValueIndex.__init__

    def counted(self: object, targets: TargetList) -> None:
        built.append(len(targets))
        real(self, targets)  # type: ignore[arg-type]

    monkeypatch.setattr(targetlist._ValueIndex, "__init__", counted)
    groups = [
        {"group": f"g{i}", "addresses": [f"10.1.{i}.{j}" for j in range(4)]} for i in range(200)
    ]
    groups.append({"group": "shared", "addresses": ["10.1.5.2", "10.1.5.0/30", "10.9.0.0/30"]})
    groups.append({"group": "named", "domains": ["example.test"], "addresses": ["10.9.0.1"]})
    groups.append({"group": "again", "domains": ["example.test"]})
    found = Inventory(no_hostnames)._static_of(config(*groups))
    assert built == []  # no index rebuilt per group
    values = [t.value for t in found.targets]
    assert len(values) == len(set(values)) == 200 * 4 + 4 + 1
    by_value = {t.value: t.group for t in found.targets}
    assert by_value["10.1.5.2"] == "g5"  # the first group wins
    assert by_value["10.9.0.1"] == "shared" and by_value["10.9.0.3"] == "shared"
    assert by_value["example.test"] == "named"


def test_known_values_answer_ranges_arrays_and_other_values_canonically() -> None:
    known = KnownValues()
    assert known.empty and "10.0.0.1" not in known
    known.add(TargetList.of([Target("example.test", TargetKind.DOMAIN, "g", "example.test")]))
    b = TargetListBuilder()
    b.add_range(ipv4_number("10.0.0.0") or 0, ipv4_number("10.0.0.255") or 0, "g", "10.0.0.0/24")
    b.add_numbers([ipv4_number("10.2.0.7") or 0, ipv4_number("10.3.0.1") or 0], "g", None)
    known.add(b.build())
    assert not known.empty
    for v in ("example.test", "10.0.0.0", "10.0.0.255", "10.2.0.7", "10.3.0.1"):
        assert v in known, v
    for v in ("10.0.1.0", "9.255.255.255", "10.2.0.8", "010.0.0.1", "other.test", 5):
        assert v not in known, v
