"""The compact target list (rblwatch.targetlist): a network's targets are numbers, not objects,
until a scan takes them a piece at a time; and the list reads as the list of Targets it was."""

from __future__ import annotations

import ipaddress
import tracemalloc

from rblwatch.model import TARGET_KINDS, Target, TargetKind
from rblwatch.targetlist import TargetList, ipv4_text, ipv4_wire
from rblwatch.targets import expand, parse_cli_targets, parse_target


def _as_objects(text: str, group: str = "") -> list[Target]:
    net = ipaddress.ip_network(text)
    return [Target(str(a), TargetKind.IPV4, group, text) for a in net]


def test_a_network_reads_as_its_targets() -> None:
    got = parse_target("10.1.0.0/22", group="g")
    assert isinstance(got, TargetList)
    want = _as_objects("10.1.0.0/22", "g")
    assert len(got) == len(want) and list(got) == want
    assert got[0] == want[0] and got[-1] == want[-1] and got[517] == want[517]
    assert got[3:6] == want[3:6]
    assert list(got.values()) == [t.value for t in want]


def test_labels_made_from_numbers_match_the_kind_table() -> None:
    wire = TARGET_KINDS[TargetKind.IPV4].wire
    for n in (0, 1, 255, 256, 0x0A140102, 0xFFFFFFFF):
        assert ipv4_wire(n) == wire(ipv4_text(n))
    got = parse_target("192.0.2.0/28")
    assert list(got.labels(3, 9)) == [wire(t.value) for t in list(got)[3:9]]


def test_a_16_group_makes_no_target_per_address_until_taken() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        got = expand(["10.7.0.0/16"], ["10.7.3.0/24"], ["example.org"], group="g",
                     ipv4_min_prefix=16)  # fmt: skip
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(got) == 65_536 - 256 + 1
    # a Target per address would be ~150 B each (~10 MB); ranges hold a few hundred bytes
    assert held < 64 * 1024, held
    assert got[768] == Target("10.7.4.0", TargetKind.IPV4, "g", "10.7.0.0/16")
    assert got[-1] == Target("example.org", TargetKind.DOMAIN, "g", "example.org")


def test_duplicates_keep_their_first_position_across_networks_and_addresses() -> None:
    got = list(parse_cli_targets(["10.0.0.5", "10.0.0.0/29", "10.0.0.3", "10.0.0.0/30", "::1"]))
    values = [t.value for t in got]
    assert values == ["10.0.0.5", "10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4",
                      "10.0.0.6", "10.0.0.7", "::1"]  # fmt: skip
    assert got[0].source == "10.0.0.5" and got[1].source == "10.0.0.0/29"


def test_a_file_of_addresses_is_one_array(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    f = tmp_path / "t.txt"
    f.write_text("10.0.0.9\n10.0.0.1\n10.0.0.9\n")
    got = parse_cli_targets([f"@{f}", "10.0.0.0/30"])
    assert [(t.value, t.source) for t in got] == [
        ("10.0.0.9", "10.0.0.9"), ("10.0.0.1", "10.0.0.1"), ("10.0.0.0", "10.0.0.0/30"),
        ("10.0.0.2", "10.0.0.0/30"), ("10.0.0.3", "10.0.0.0/30"),
    ]  # fmt: skip


def test_picked_and_added_lists_keep_targets() -> None:
    got = parse_target("10.0.0.0/28")
    dom = Target("example.org", TargetKind.DOMAIN, "", "example.org")
    both = got + [dom]  # noqa: RUF005 - TargetList.__add__ is what is tested
    assert len(both) == 17 and both[16] == dom and both.kinds()[TargetKind.IPV4] == 16
    assert list(both.picked([1, 16])) == [got[1], dom]
