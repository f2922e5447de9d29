"""Parsing and expanding targets: addresses, CIDRs, domains, excludes and @FILE (SPEC §6, §9)."""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path

import pytest

from rblwatch.model import Target, TargetKind
from rblwatch.targets import (
    TargetError,
    _plain_ipv4,
    expand,
    parse_cli_targets,
    parse_target,
    read_target_file,
)


def values(targets: list[Target]) -> list[str]:
    return [t.value for t in targets]


def test_an_ipv4_address_is_one_target_remembering_what_was_written() -> None:
    assert parse_target(" 192.0.2.10 ", group="mail") == [
        Target("192.0.2.10", TargetKind.IPV4, "mail", "192.0.2.10")
    ]


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("2001:DB8:0:0:0:0:0:25", "2001:db8::25"),
        ("2001:0db8::0001", "2001:db8::1"),
        ("::FFFF:192.0.2.1", "::ffff:c000:201"),
    ],
)
def test_ipv6_addresses_are_compressed_and_lower_case(written: str, canonical: str) -> None:
    assert parse_target(written) == [Target(canonical, TargetKind.IPV6, "", written)]
    assert canonical == str(ipaddress.ip_address(written))


def test_a_cidr_expands_to_every_address_network_and_broadcast_included() -> None:
    targets = parse_target("198.51.100.0/30")
    assert values(targets) == ["198.51.100.0", "198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert {t.source for t in targets} == {"198.51.100.0/30"}


def test_a_slash_16_is_65536_canonical_targets_built_quickly() -> None:
    start = time.perf_counter()
    targets = parse_target("10.1.0.0/16")
    elapsed = time.perf_counter() - start
    assert len(targets) == 65_536
    assert targets[0].value == "10.1.0.0" and targets[-1].value == "10.1.255.255"
    assert all(t.value == str(ipaddress.ip_address(t.value)) for t in targets[::257])
    assert elapsed < 1.0


def test_an_ipv4_network_larger_than_the_limit_is_refused_naming_the_setting() -> None:
    with pytest.raises(TargetError) as err:
        parse_target("10.0.0.0/15")
    message = str(err.value)
    assert "'10.0.0.0/15'" in message
    assert "/16" in message and "limits.ipv4_min_prefix" in message


def test_lowering_ipv4_min_prefix_allows_a_larger_network() -> None:
    assert len(parse_target("10.0.0.0/15", ipv4_min_prefix=15)) == 131_072


def test_ipv6_networks_expand_up_to_slash_120_and_no_further() -> None:
    targets = parse_target("2001:db8::/120")
    assert len(targets) == 256
    assert values(targets)[:2] == ["2001:db8::", "2001:db8::1"]
    assert targets[-1].value == "2001:db8::ff"
    with pytest.raises(TargetError, match=r"'2001:db8::/119'.*/120"):
        parse_target("2001:db8::/119")


def test_a_network_with_host_bits_set_is_refused_with_the_likely_meaning() -> None:
    with pytest.raises(TargetError, match=r"'192.0.2.5/24': host bits set.*192.0.2.0/24"):
        parse_target("192.0.2.5/24")


def test_excluding_a_cidr_inside_a_cidr_removes_exactly_its_addresses() -> None:
    targets = expand(["198.51.100.0/28"], exclude=["198.51.100.4/30"])
    assert len(targets) == 12
    got = set(values(targets))
    assert {"198.51.100.0", "198.51.100.3", "198.51.100.8", "198.51.100.15"} <= got
    assert got.isdisjoint({"198.51.100.4", "198.51.100.5", "198.51.100.6", "198.51.100.7"})
    assert values(targets) == sorted(got, key=lambda v: int(ipaddress.ip_address(v)))


def test_excluding_one_address() -> None:
    assert values(expand(["192.0.2.0/30"], exclude=["192.0.2.2"])) == [
        "192.0.2.0",
        "192.0.2.1",
        "192.0.2.3",
    ]


def test_excluding_several_networks_from_a_slash_16_stays_fast() -> None:
    excludes = [f"10.0.{i}.0/24" for i in range(0, 256, 2)] + ["10.0.1.7", "::1"]
    start = time.perf_counter()
    targets = expand(["10.0.0.0/16"], exclude=excludes)
    assert time.perf_counter() - start < 1.0
    assert len(targets) == 128 * 256 - 1
    assert "10.0.1.7" not in set(values(targets))


def test_an_exclude_larger_than_the_limit_or_outside_is_harmless() -> None:
    assert expand(["192.0.2.0/30"], exclude=["10.0.0.0/8", "192.0.0.0/8"]) == []


def test_a_group_has_addresses_then_domains_with_the_group_name() -> None:
    targets = expand(["2001:db8::25", "192.0.2.10"], domains=["Example.COM"], group="mail-out")
    assert [(t.value, t.kind) for t in targets] == [
        ("2001:db8::25", TargetKind.IPV6),
        ("192.0.2.10", TargetKind.IPV4),
        ("example.com", TargetKind.DOMAIN),
    ]
    assert {t.group for t in targets} == {"mail-out"}


def test_a_domain_under_addresses_or_an_address_under_domains_is_refused() -> None:
    with pytest.raises(TargetError, match=r"'example\.com'.*domains"):
        expand(["example.com"])
    with pytest.raises(TargetError, match=r"'192\.0\.2\.1'.*addresses"):
        expand([], domains=["192.0.2.1"])


def test_duplicates_are_removed_keeping_the_first() -> None:
    targets = expand(
        ["192.0.2.1", "192.0.2.0/30", "192.0.2.1"], domains=["example.com", "EXAMPLE.com."]
    )
    assert values(targets) == ["192.0.2.1", "192.0.2.0", "192.0.2.2", "192.0.2.3", "example.com"]
    assert targets[0].source == "192.0.2.1"


def test_an_idn_domain_becomes_its_a_label_form() -> None:
    assert parse_target("bücher.example") == [
        Target("xn--bcher-kva.example", TargetKind.DOMAIN, "", "bücher.example")
    ]


@pytest.mark.parametrize(
    ("written", "a_label"),
    [
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008; the stdlib's IDNA 2003 codec gives fass.de
        ("Faß.DE", "xn--fa-hia.de"),
        ("\uff22ÜCHER.example", "xn--bcher-kva.example"),  # UTS 46 maps width and case
    ],
)
def test_idn_domains_are_converted_by_idna_2008_with_the_uts_46_mapping(
    written: str, a_label: str
) -> None:
    assert values(parse_target(written)) == [a_label]


@pytest.mark.parametrize("written", ["☃.example", "a\u200db.example", "ü-.example"])
def test_a_label_idna_2008_refuses_is_one_line_naming_it(written: str) -> None:
    with pytest.raises(TargetError) as info:
        parse_target(written)
    message = str(info.value)
    assert "\n" not in message and "cannot be converted with IDNA" in message
    assert message.startswith(f"target {written!r}: ")


@pytest.mark.parametrize("written", ["WWW.Example.COM.", "www.example.com", "www.example.com."])
def test_domains_are_lower_case_without_the_trailing_dot(written: str) -> None:
    assert values(parse_target(written)) == ["www.example.com"]


def test_underscores_are_allowed_in_domain_labels() -> None:
    assert values(parse_target("_dmarc.example.com")) == ["_dmarc.example.com"]


@pytest.mark.parametrize(
    "bad",
    [
        "999.1.1.1",
        "10.0.0.0/33",
        "not a domain",
        "-bad-.example",
        "",
        "a" * 64 + ".example",
        ".".join(["a" * 60] * 5),  # 304 characters
        "localhost",
        "a..example",
        "1.2.3",
        "2001:db8::zz",
        "fe80::1%eth0",
        "@example.com",
    ],
)
def test_bad_input_is_a_target_error_naming_it(bad: str) -> None:
    with pytest.raises(TargetError) as err:
        parse_target(bad)
    message = str(err.value)
    assert repr(bad) in message
    assert "\n" not in message


def test_a_target_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("# our mail servers\n\n192.0.2.10\n  198.51.100.0/30  # pool\nbücher.example\n")
    assert read_target_file(str(path)) == ["192.0.2.10", "198.51.100.0/30", "bücher.example"]


def test_a_missing_target_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(TargetError, match=r"nope\.txt"):
        read_target_file(missing)
    with pytest.raises(TargetError, match=r"nope\.txt"):
        parse_cli_targets([f"@{missing}"])


def test_a_bad_line_in_a_target_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("# header\n192.0.2.10\n\n999.1.1.1\n")
    with pytest.raises(TargetError, match=rf"^{re.escape(str(path))}:4: target '999.1.1.1'"):
        read_target_file(str(path))
    with pytest.raises(TargetError, match=rf"^{re.escape(str(path))}:4: target '999.1.1.1'"):
        parse_cli_targets(["192.0.2.1", f"@{path}"])


def test_cli_targets_mix_arguments_and_files_without_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("192.0.2.1\nexample.com\n192.0.2.0/31\n")
    targets = parse_cli_targets(["192.0.2.1", f"@{path}", "Example.com", "2001:db8::1"])
    assert values(targets) == ["192.0.2.1", "example.com", "192.0.2.0", "2001:db8::1"]
    assert {t.group for t in targets} == {""}


def test_cli_targets_apply_the_network_limit() -> None:
    with pytest.raises(TargetError, match=r"limits\.ipv4_min_prefix"):
        parse_cli_targets(["10.0.0.0/15"])
    assert len(parse_cli_targets(["10.0.0.0/15"], ipv4_min_prefix=15)) == 131_072


def test_a_file_of_plain_addresses_reads_as_the_general_parser_reads_it(tmp_path: Path) -> None:
    # only digits, dots and line ends: the bulk path; the same lines with a comment take the
    # general one, and both must give the same targets in the same order
    body = "192.0.2.3\r\n\r\n192.0.2.1\n192.0.2.3\n198.51.100.7\n\n192.0.2.2"
    plain, commented = tmp_path / "plain.txt", tmp_path / "commented.txt"
    plain.write_text(body)
    commented.write_text("# pool\n" + body)
    assert _plain_ipv4(plain.read_text()) is not None
    assert _plain_ipv4(commented.read_text()) is None
    args = ["192.0.2.2", "@{}", "2001:db8::1"]
    fast = parse_cli_targets([a.format(plain) for a in args])
    general = parse_cli_targets([a.format(commented) for a in args])
    assert fast == general
    assert values(fast) == ["192.0.2.2", "192.0.2.3", "192.0.2.1", "198.51.100.7", "2001:db8::1"]
    assert fast[1] == Target("192.0.2.3", TargetKind.IPV4, "", "192.0.2.3")


@pytest.mark.parametrize("bad", ["999.1.1.1", "192.0.2", "192.0.2.01", "1.2.3.4.5"])
def test_a_bad_address_in_a_file_of_plain_addresses_names_its_line(
    tmp_path: Path, bad: str
) -> None:
    path = tmp_path / "targets.txt"
    path.write_text(f"192.0.2.10\n192.0.2.11\n{bad}\n192.0.2.12\n")
    with pytest.raises(TargetError, match=rf"^{re.escape(str(path))}:3: target '{re.escape(bad)}'"):
        parse_cli_targets([f"@{path}"])
