"""The `dmarc` check: the domain's DMARC record (RFC 7489), or its organisational domain's.

`_dmarc.<domain>` first; when it holds no DMARC record, `_dmarc.<organisational domain>` by
the Public Suffix List (RFC 7489 §6.6.3), as a receiver looks. The record is parsed here
(§6.3: a tag list; unknown tags ignored, a known tag with a bad value is an `invalid` naming
it): checkdmarc's parser pulls in its own resolver and HTTP client, and the grammar is
small. Result words: `pass`, `missing`, `invalid` (and `temperror` for an error).

Also the tag-list reader and text clipping the MTA-STS and TLS-RPT checks share (`policy.py`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from publicsuffixlist import PublicSuffixList

from rblwatch.hygiene.dns import Dns, DnsTempError, txt_strings
from rblwatch.hygiene.result import CheckResult, errored, failed, passed
from rblwatch.targets import TargetError, normalize_domain

CLIP = 200  # record text in a reason or detail: a 10,000-character TXT must not become one

_TAG_NAME = re.compile(r"[a-z][a-z0-9_]*")
_VERSION = re.compile(r"v\s*=\s*DMARC1\s*(;|$)", re.IGNORECASE)
_MAILTO = re.compile(r"mailto:[^@\s,;!]+@[a-z0-9_-]+(\.[a-z0-9_-]+)+(![0-9]+[kmgt]?)?", re.I)
_POLICIES = ("none", "quarantine", "reject")


def clip(text: str, limit: int = CLIP) -> str:
    """`text` cut to `limit` characters with an ellipsis: hostile records stay short."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_tags(text: str) -> dict[str, str]:
    """A tag=value list (RFC 6376 §3.2, shared by DMARC, MTA-STS and TLS-RPT): tag names in
    lower case, values stripped; ValueError naming the piece that is not one."""
    tags: dict[str, str] = {}
    for raw in text.split(";"):
        part = raw.strip()
        if not part:  # a trailing ';' is allowed, and receivers shrug at an empty one
            continue
        name, eq, value = part.partition("=")
        name = name.strip().lower()
        if not eq or _TAG_NAME.fullmatch(name) is None:
            raise ValueError(f"{clip(part, 40)!r} is not tag=value")
        if name in tags:
            raise ValueError(f"tag {name}= appears twice")
        tags[name] = value.strip()
    return tags


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # reads the bundled list once per process, on first use


def organisational_domain(domain: str) -> str | None:
    """The registrable domain of `domain` by the Public Suffix List (RFC 7489 §3.2):
    `example.co.uk` for `mail.example.co.uk`; None for a public suffix itself."""
    org = _psl().privatesuffix(domain.lower().rstrip("."))
    return str(org) if org else None


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value.lower() in allowed else "must be " + " or ".join(allowed)

    return check


def _number(top: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        ok = re.fullmatch(r"[0-9]{1,10}", value) is not None and int(value) <= top
        return None if ok else f"must be a whole number from 0 to {top}"

    return check


def _keywords(allowed: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        ok = all(re.fullmatch(allowed, k.strip(), re.I) for k in value.split(":"))
        return None if ok else "is not a ':'-separated list of known options"

    return check


def _uris(value: str) -> str | None:
    for uri in value.split(","):
        if _MAILTO.fullmatch(uri.strip()) is None:
            return f"{clip(uri.strip(), 60)!r} is not a mailto: address"
    return None


_TAGS: dict[str, Callable[[str], str | None]] = {
    "p": _one_of(*_POLICIES),
    "sp": _one_of(*_POLICIES),
    "pct": _number(100),
    "rua": _uris,
    "ruf": _uris,
    "adkim": _one_of("r", "s"),
    "aspf": _one_of("r", "s"),
    "fo": _keywords(r"[01ds]"),
    "ri": _number(2**32 - 1),
    "rf": _keywords(r"[a-z0-9]+"),  # afrf is the one registered format
}


def parse_dmarc(record: str) -> dict[str, str]:
    """The tags of a DMARC record whose known values are valid; ValueError naming the bad
    tag. `p` is required here, although RFC 7489 §6.6.3 lets a receiver read a record with
    `rua` and no `p` as `p=none`: a record that relies on that is a mistake worth a line."""
    tags = parse_tags(record)
    if "p" not in tags:
        raise ValueError("the policy tag p= is missing (add p=none, quarantine or reject)")
    for name, value in tags.items():
        why = _TAGS[name](value) if name in _TAGS else None
        if why is not None:
            raise ValueError(f"tag {name}={clip(value, 60)!r} {why}")
    return tags


def _dmarc_records(dns: Dns, name: str) -> list[str]:
    # §6.6.3: records not starting with v=DMARC1 are discarded (an SPF record at _dmarc, …)
    texts = txt_strings(dns.lookup(name, "TXT"))
    return [t.strip() for t in texts if _VERSION.match(t.strip())]


def check_dmarc(dns: Dns, domain: str) -> CheckResult:
    """`pass` when one valid DMARC record applies to `domain` (its own or its organisational
    domain's), with the policy and reporting addresses (and warnings) in the detail."""
    try:
        domain = normalize_domain(domain)
    except TargetError as e:
        return failed("dmarc", clip(domain), "invalid", clip(str(e)))
    own = name = f"_dmarc.{domain}"
    org = organisational_domain(domain)
    try:
        found = _dmarc_records(dns, name)
        if not found and org is not None and org != domain:
            name = f"_dmarc.{org}"
            found = _dmarc_records(dns, name)
    except DnsTempError as e:
        return errored("dmarc", domain, f"DMARC lookup of {name}: {e}")
    if not found:
        where = own if org in (None, domain) else f"{own} nor at _dmarc.{org}"
        return failed(
            "dmarc",
            domain,
            "missing",
            f"no DMARC record at {where}: publish TXT {own} "
            f'"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}" to start, and move to '
            "p=quarantine or p=reject once the reports show only your own mail",
        )
    if len(found) > 1:
        return failed(
            "dmarc",
            domain,
            "invalid",
            f"{len(found)} DMARC records at {name}: receivers then apply none (RFC 7489 "
            "§6.6.3); keep exactly one",
            detail={"records": [clip(r) for r in found[:5]], "found_at": name},
        )
    return _judge(domain, name, found[0], organisational=name != own)


def _judge(domain: str, name: str, record: str, *, organisational: bool) -> CheckResult:
    try:
        tags = parse_dmarc(record)
    except ValueError as e:
        return failed(
            "dmarc",
            domain,
            "invalid",
            f"DMARC record at {name} is invalid: {e}; record: {clip(record)!r}",
            detail={"record": clip(record), "found_at": name},
        )
    policy = tags["p"].lower()
    rua = [u.strip() for u in tags["rua"].split(",")] if "rua" in tags else []
    pct = int(tags.get("pct", "100"))
    warnings = []
    if policy == "none":
        warnings.append(
            "policy none: monitoring only; Gmail/Yahoo accept it for bulk senders but it "
            "protects nothing"
        )
    if not rua:
        warnings.append(
            f"no rua=: no aggregate reports, so you cannot see who sends as {domain}; add "
            f"rua=mailto:dmarc-reports@{domain}"
        )
    if not record.startswith("v=DMARC1"):
        # §6.4's ABNF spells the version in capitals; receivers differ on other spellings,
        # so the record is read but the spelling is worth a line
        warnings.append("write the version exactly v=DMARC1: strict receivers ignore others")
    if pct < 100:
        warnings.append(f"pct={pct}: the policy applies to {pct}% of failing mail only")
    detail = {
        "record": clip(record),
        "policy": policy,
        "subdomain_policy": tags.get("sp", policy).lower(),  # sp defaults to p (§6.3)
        "pct": pct,
        "rua": [clip(u) for u in rua[:10]],
        "found_at": name,
        "organisational": organisational,
        "warnings": warnings,
    }
    return passed("dmarc", domain, detail=detail)


__all__ = ["CLIP", "check_dmarc", "clip", "organisational_domain", "parse_dmarc", "parse_tags"]
