"""The catalogue's provider-run lists: named by bounces, delisted at a page, never queried."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rblwatch import catalogue as cat
from rblwatch.config.catalogue import parse_catalogue
from rblwatch.config.providers import expand_code

MINIMAL_LIST = {
    "name": "bl",
    "zone": "bl.test",
    "kind": "ip",
    "ipv6": False,
    "purpose": "block",
    "status": "active",
}
PROVIDER = {
    "name": "bigmail",
    "operator": "Big Mail",
    "delist_url": "https://delist.bigmail.test/",
    "known_as": ["delist.bigmail.test"],
    "description": "Big Mail's own list.",
}


def catalogue_text(*providers: Any) -> str:
    doc = {"defaults": ["bl"], "lists": [MINIMAL_LIST], "providers": list(providers)}
    return yaml.safe_dump(doc, sort_keys=False)


def test_microsoft_is_a_provider_list_with_its_delist_portal_and_codes() -> None:
    ms = cat.providers()["microsoft"]
    assert ms.delist_url == "https://sender.office.com/"
    assert "5.7.606" in ms.names() and "5.7.649" in ms.names() and "5.7.650" not in ms.names()
    assert "S3150" in ms.names()
    assert "banned sending IP" in ms.codes["5.7.606-649"]
    assert "S3150" in ms.description


def test_proofpoint_is_named_by_its_lookup_pages() -> None:
    pp = cat.providers()["proofpoint"]
    assert pp.delist_url == "https://ipcheck.proofpoint.com/"
    assert "ipcheck.proofpoint.com" in pp.names()


def test_every_provider_has_an_https_delist_page_and_a_one_line_description() -> None:
    assert {"microsoft", "proofpoint", "cisco-talos", "cloudmark"} <= set(cat.providers())
    for p in cat.providers().values():
        assert p.delist_url.startswith("https://"), p.name
        assert p.description and "\n" not in p.description, p.name
        assert p.known_as, p.name


def test_no_provider_takes_a_list_name() -> None:
    assert not set(cat.providers()) & set(cat.catalogue())


def test_a_status_code_range_stands_for_every_code_in_it() -> None:
    assert expand_code("5.7.606-608") == ("5.7.606", "5.7.607", "5.7.608")
    assert expand_code("S3150") == ("S3150",)
    assert expand_code("5.7.1") == ("5.7.1",)


def test_a_catalogue_without_providers_still_loads() -> None:
    doc = {"defaults": ["bl"], "lists": [MINIMAL_LIST]}
    assert dict(parse_catalogue(yaml.safe_dump(doc)).providers) == {}


def test_a_good_provider_entry_loads() -> None:
    p = parse_catalogue(catalogue_text({**PROVIDER, "codes": {"X1": "refused"}})).providers
    assert p["bigmail"].names() == ("delist.bigmail.test", "X1")
    assert p["bigmail"].lookup_url is None


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"delist_ur": "https://x.test/"}, "'bigmail': delist_ur: unknown key 'delist_ur'"),
        ({"delist_url": None}, "provider 'bigmail': delist_url: required"),
        ({"delist_url": "ftp://x.test/"}, "provider 'bigmail': delist_url: must be an http"),
        ({"known_as": []}, "provider 'bigmail': known_as: name at least one page"),
        ({"known_as": ["two words"]}, "provider 'bigmail': known_as.0: must be a host name"),
        ({"codes": {"5.7.649-606": "x"}}, "codes.5.7.649-606: range '5.7.649-606' must go"),
        ({"codes": {"bad code!": "x"}}, "codes.bad code!: invalid code"),
        ({"codes": {"X1": 3}}, "codes.X1: must be a string"),
        ({"name": "Big Mail"}, "name: invalid name"),
        ({"name": "bl"}, "provider 'bl': name: a list's name"),
    ],
)
def test_a_bad_provider_edit_fails_naming_the_entry_and_key(
    edit: dict[str, Any], message: str
) -> None:
    entry = {k: v for k, v in {**PROVIDER, **edit}.items() if v is not None}
    with pytest.raises(ValueError, match=r"^catalogue\.yaml: ") as info:
        parse_catalogue(catalogue_text(entry))
    assert message in str(info.value)


def test_a_duplicate_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="provider 'bigmail': name: duplicate"):
        parse_catalogue(catalogue_text(PROVIDER, PROVIDER))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("not a list", "providers: expected a sequence"),
        ({"name": "x"}, "providers: expected a sequence"),
        (["not a mapping"], "providers.0: expected a mapping"),
    ],
)
def test_providers_must_be_a_sequence_of_mappings(section: object, message: str) -> None:
    doc = {"defaults": ["bl"], "lists": [MINIMAL_LIST], "providers": section}
    with pytest.raises(ValueError, match=message):
        parse_catalogue(yaml.safe_dump(doc))
