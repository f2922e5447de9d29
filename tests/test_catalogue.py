"""The built-in catalogue: SPEC §7 names, error codes that must never read as listings."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
import yaml

from rblwatch import catalogue as cat
from rblwatch.config import ConfigError, parse_config
from rblwatch.config.catalogue import parse_catalogue
from rblwatch.model import DnsList, Kind, Purpose, Reason, Status

SPEC_ACTIVE = [
    "spamhaus-zen",
    "spamhaus-dbl",
    "spamhaus-zen-dqs",
    "spamhaus-dbl-dqs",
    "barracuda",
    "spamcop",
    "uceprotect-1",
    "uceprotect-2",
    "uceprotect-3",
    "psbl",
    "mailspike-bl",
    "abusix-combined",
    "surbl-multi",
    "uribl-multi",
    "dnswl",
    "sem-black",
    "blocklist-de",
]
SPEC_DEFUNCT = ["sorbs", "njabl", "ahbl", "nixspam"]
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
KEYED = re.compile(r"\$\{([A-Z0-9_]+)\}")


def all_lists() -> list[DnsList]:
    return list(cat.catalogue().values())


# --------------------------------------------------------------------------- names and status


@pytest.mark.parametrize("name", SPEC_ACTIVE)
def test_every_list_spec_names_is_in_the_catalogue_and_active(name: str) -> None:
    lst = cat.get(name)
    assert lst.name == name
    assert lst.status is Status.ACTIVE


@pytest.mark.parametrize("name", [*SPEC_DEFUNCT, "dsbl", "burnt-tech", "lbl"])
def test_defunct_lists_stay_in_the_catalogue_marked_with_date_and_reason(name: str) -> None:
    lst = cat.get(name)
    assert lst.status is Status.DEFUNCT
    assert lst.status_since and re.fullmatch(r"\d{4}(-\d{2}){0,2}", lst.status_since)
    assert lst.status_reason


def test_sorbs_is_defunct_since_the_proofpoint_shutdown() -> None:
    assert cat.get("sorbs").status_since == "2024-06-05"


def test_lists_that_answer_for_the_world_say_so() -> None:
    for name in ("ahbl", "njabl", "burnt-tech", "lbl"):
        assert "lists the world" in cat.get(name).status_reason, name


def test_every_name_is_lowercase_operator_list() -> None:
    for lst in all_lists():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", lst.name), lst.name


def test_defunct_message_is_one_line_naming_list_date_reason_and_fix() -> None:
    message = cat.defunct_message(cat.get("sorbs"))
    assert message.startswith("'sorbs' is defunct since 2024-06-05: ")
    assert "Proofpoint" in message
    assert message.endswith("; remove it from lists")
    assert "\n" not in message


def test_get_an_unknown_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        cat.get("no-such-list")


def test_catalogue_keeps_file_order_and_is_read_only() -> None:
    lists = cat.catalogue()
    assert next(iter(lists)) == "spamhaus-zen"
    assert [lst.name for lst in lists.values()] == list(lists)
    with pytest.raises(TypeError):
        lists["x"] = cat.get("psbl")  # type: ignore[index]
    with pytest.raises(TypeError):
        cat.get("spamhaus-zen").codes["127.0.0.99"] = "x"  # type: ignore[index]


def test_catalogue_is_loaded_once() -> None:
    assert cat.catalogue() is cat.catalogue()


# --------------------------------------------------------------------------- codes and errors


@pytest.mark.parametrize("name", ["spamhaus-zen", "spamhaus-dbl", "spamhaus-zen-dqs"])
def test_spamhaus_error_answers_are_blocked_or_rate_limited_never_listings(name: str) -> None:
    lst = cat.get(name)
    assert lst.errors["127.255.255.252"] is Reason.BLOCKED
    assert lst.errors["127.255.255.254"] is Reason.BLOCKED
    assert lst.errors["127.255.255.255"] is Reason.RATE_LIMITED
    assert not set(lst.errors) & set(lst.codes)


def test_dbl_answer_for_an_ip_query_is_blocked() -> None:
    assert cat.get("spamhaus-dbl").errors["127.0.1.255"] is Reason.BLOCKED


def test_zen_listing_codes_are_written_out_one_by_one() -> None:
    codes = cat.get("spamhaus-zen").codes
    assert {"127.0.0.2", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"} <= set(codes)
    assert codes["127.0.0.10"].startswith("PBL")


def test_uribl_refusal_127_0_0_1_is_blocked() -> None:
    lst = cat.get("uribl-multi")
    assert lst.errors["127.0.0.1"] is Reason.BLOCKED
    assert 1 not in lst.bits
    assert lst.bits[2] == "black"


def test_surbl_bit_1_is_an_error_bit_not_a_listing() -> None:
    lst = cat.get("surbl-multi")
    assert lst.error_bits == {1: Reason.BLOCKED}
    assert 1 not in lst.bits
    assert lst.bits[8].startswith("PH")


def test_dnswl_is_an_allow_list_whose_parentblock_is_an_error() -> None:
    lst = cat.get("dnswl")
    assert lst.purpose is Purpose.ALLOW
    assert lst.errors["127.0.0.255"] is Reason.BLOCKED
    assert lst.codes["127.0.3.3"] == "email service providers, high trust"


def test_every_answer_is_inside_127_slash_8() -> None:
    for lst in all_lists():
        for answer in [*lst.codes, *lst.errors]:
            assert ipaddress.IPv4Address(answer) in LOOPBACK, (lst.name, answer)


def test_bits_are_single_bits_of_the_last_octet_with_int_keys() -> None:
    for lst in all_lists():
        for bit in [*lst.bits, *lst.error_bits]:
            assert isinstance(bit, int)
            assert bit in {1, 2, 4, 8, 16, 32, 64, 128}, (lst.name, bit)


def test_errors_are_reasons_a_list_can_answer() -> None:
    for lst in all_lists():
        for reason in [*lst.errors.values(), *lst.error_bits.values()]:
            assert reason in {Reason.BLOCKED, Reason.RATE_LIMITED}, lst.name


def test_published_free_use_limits() -> None:
    assert cat.get("spamhaus-zen").daily_query_limit == 300_000
    assert cat.get("dnswl").daily_query_limit == 100_000
    assert cat.get("mailspike-bl").daily_query_limit == 100_000
    assert cat.get("surbl-multi").daily_query_limit == 250_000
    assert cat.get("uribl-multi").daily_query_limit is None


def test_kinds_send_domains_only_to_domain_lists() -> None:
    assert cat.get("spamhaus-dbl").kind is Kind.DOMAIN
    assert cat.get("surbl-multi").kind is Kind.DOMAIN
    assert cat.get("spamhaus-zen").kind is Kind.IP
    assert cat.get("spamhaus-zen").ipv6


def test_test_points_are_overridden_only_where_a_list_breaks_rfc_5782() -> None:
    assert cat.get("spamhaus-zen").test_listed is None
    assert cat.get("sem-uribl").test_listed == ("_dnsbl_.test",)
    assert cat.get("hostkarma").test_clean == ()  # 127.0.0.1 means whitelisted there


# --------------------------------------------------------------------------- usability


def test_every_active_list_has_a_zone_and_a_delist_url_or_access_note() -> None:
    for lst in all_lists():
        if lst.status is Status.ACTIVE:
            assert lst.zone, lst.name
            assert lst.delist_url or lst.access, lst.name
            assert lst.description, lst.name


def test_delist_urls_are_web_pages() -> None:
    for lst in all_lists():
        if lst.delist_url is not None:
            assert lst.delist_url.startswith(("https://", "http://")), lst.name


def test_keyed_lists_name_their_variable_in_the_description() -> None:
    for name in ("spamhaus-zen-dqs", "spamhaus-dbl-dqs", "abusix-combined"):
        lst = cat.get(name)
        match = KEYED.search(lst.zone)
        assert match, name
        assert match.group(1) in lst.description, name


def test_default_names_are_known_active_and_keyless() -> None:
    defaults = cat.default_names()
    assert {"spamhaus-zen", "spamhaus-dbl", "dnswl"} <= set(defaults)
    assert len(set(defaults)) == len(defaults)
    for name in defaults:
        lst = cat.get(name)
        assert lst.status is Status.ACTIVE, name
        assert "${" not in lst.zone, name


def test_defaults_cover_ip_and_domain_targets() -> None:
    kinds = {cat.get(name).kind for name in cat.default_names()}
    assert kinds == {Kind.IP, Kind.DOMAIN}


# --------------------------------------------------------------------------- strict loading

GOOD_ENTRY: dict[str, Any] = {
    "name": "corp-bl",
    "zone": "bl.example.net",
    "kind": "ip",
    "ipv6": False,
    "purpose": "block",
    "status": "active",
    "codes": {"127.0.0.2": "listed"},
    "errors": {"127.0.0.255": "blocked"},
}


def parse(entry: dict[str, Any], defaults: list[str] | None = None) -> None:
    text = yaml.safe_dump({"defaults": defaults or ["corp-bl"], "lists": [entry]})
    parse_catalogue(text)


def test_a_good_entry_parses() -> None:
    parse(GOOD_ENTRY)


def test_the_shipped_file_parses_with_the_strict_loader() -> None:
    from importlib import resources

    text = resources.files("rblwatch").joinpath("catalogue.yaml").read_text(encoding="utf-8")
    assert list(parse_catalogue(text).lists) == list(cat.catalogue())


# The catalogue is checked by the config's list rules (rblwatch/config/lists.py): the same
# messages, after `catalogue.yaml: list '<name>': `.
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"zonee": "x"}, r"list 'corp-bl': zonee: unknown key 'zonee' \(did you mean 'zone'\?\)$"),
        (
            {"codes": {"10.0.0.2": "listed"}},
            r"list 'corp-bl': codes\.10\.0\.0\.2: 10\.0\.0\.2 is outside 127\.0\.0\.0/8",
        ),
        ({"codes": {"127.0.0.x": "listed"}}, r"codes\.127\.0\.0\.x: '127\.0\.0\.x' is not an IPv4"),
        (
            {"errors": {"127.0.0.255": "timeout"}},
            r"errors\.127\.0\.0\.255: must be one of blocked, rate_limited, not 'timeout'$",
        ),
        (
            {"errors": {"127.0.0.2": "blocked"}},
            r"list 'corp-bl': 127\.0\.0\.2 is both a listing and an error answer$",
        ),
        ({"codes": {}, "bits": {3: "x"}}, r"bits\.3: bit values are single bits \(1, 2, 4 … 128\)"),
        ({"ipv6": "yes"}, r"list 'corp-bl': ipv6: must be true or false, not 'yes'$"),
        ({"kind": "hash"}, r"list 'corp-bl': kind: must be one of ip, domain, not 'hash'$"),
        ({"status": "defunct"}, r"status: defunct needs status_since and status_reason$"),
        ({"daily_query_limit": -1}, r"daily_query_limit: must be at least 1, not -1$"),
        ({"delist_url": "example.org"}, r"delist_url: must be an http:// or https:// URL$"),
        ({"name": "Corp_BL"}, r"lists\.0: name: invalid name 'Corp_BL' \(lowercase letters"),
        ({"use": "spamcop"}, r"list 'corp-bl': use: unknown key 'use'"),  # config-only keys
        ({"interval": "5m"}, r"list 'corp-bl': interval: unknown key 'interval'"),
        ({"test_listed": ["example.com"]}, r"test_listed\.0: 'example\.com' is not an IP address"),
        ({"zone": "bl..example.net"}, r"zone: 'bl\.\.example\.net' is not a valid DNS name$"),
    ],
)
def test_a_bad_edit_is_rejected_naming_list_and_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=r"^catalogue\.yaml: .*" + message):
        parse({**GOOD_ENTRY, **change})


@pytest.mark.parametrize(
    "text",
    [
        "lists: [{name: x, zone: x.example, kind: domain, bits: {3: x}}]",
        "lists: [{name: x, zone: x.example, kind: domain, error_bits: [3]}]",
    ],
)
def test_config_lists_follow_the_catalogue_bit_rule(text: str) -> None:
    # one rule set: config accepted a mask of two bits, which the catalogue refused, and a
    # mask overlapping an error bit made one answer both a listing and an error
    with pytest.raises(ConfigError, match=r"bit values are single bits \(1, 2, 4 … 128\), not 3$"):
        parse_config(yaml.safe_load(text))


def test_the_catalogue_accepts_what_config_lists_may_write() -> None:
    # errors as a list of answers, a trailing dot on the zone: config syntax, now the catalogue's
    entry = {**GOOD_ENTRY, "errors": ["127.0.0.255"], "zone": "BL.example.net."}
    text = yaml.safe_dump({"defaults": ["corp-bl"], "lists": [entry]})
    lst = parse_catalogue(text).lists["corp-bl"]
    assert (lst.zone, dict(lst.errors)) == ("bl.example.net", {"127.0.0.255": Reason.BLOCKED})


def test_a_keyed_zone_is_kept_as_written_and_checked_as_a_name() -> None:
    keyed = {**GOOD_ENTRY, "zone": "${CORP_KEY}.bl.example.net", "description": "a  b\n c"}
    text = yaml.safe_dump({"defaults": ["corp-bl"], "lists": [keyed, {**GOOD_ENTRY, "name": "x"}]})
    with pytest.raises(ValueError, match=r"defaults: 'corp-bl' is not active and keyless"):
        parse_catalogue(text)
    lst = parse_catalogue(text.replace("- corp-bl", "- x", 1)).lists["corp-bl"]
    assert (lst.zone, lst.description) == ("${CORP_KEY}.bl.example.net", "a b c")
    bad = {**GOOD_ENTRY, "zone": "${CORP_KEY}..bl.example.net"}
    with pytest.raises(ValueError, match=r"zone: '\$\{CORP_KEY\}\.\.bl\.example\.net' is not"):
        parse({**bad})


def test_a_missing_required_key_is_rejected() -> None:
    entry = {k: v for k, v in GOOD_ENTRY.items() if k != "zone"}
    with pytest.raises(ValueError, match=r"list 'corp-bl': zone: required"):
        parse(entry)


def test_defaults_may_not_name_a_keyed_list() -> None:
    keyed = {**GOOD_ENTRY, "zone": "${CORP_KEY}.bl.example.net"}
    with pytest.raises(ValueError, match=r"defaults: 'corp-bl' is not active and keyless"):
        parse(keyed)


def test_defaults_may_not_name_an_unknown_list() -> None:
    with pytest.raises(ValueError, match=r"defaults: unknown list 'nope'"):
        parse(GOOD_ENTRY, ["nope"])


def test_an_unknown_top_level_key_is_rejected() -> None:
    text = yaml.safe_dump({"defaults": ["corp-bl"], "lists": [GOOD_ENTRY], "extra": 1})
    with pytest.raises(ValueError, match=r"unknown top-level key 'extra'"):
        parse_catalogue(text)
