"""The `mta-sts` and `tls-rpt` checks: a domain's SMTP TLS policy records in the DNS.

`mta-sts` reads the TXT at `_mta-sts.<domain>` (RFC 8461 §3.1: `v=STSv1; id=…`) and
`tls-rpt` the TXT at `_smtp._tls.<domain>` (RFC 8460 §3: `v=TLSRPTv1; rua=…`). Both RFCs
discard records that do not start with their version and treat more than one remaining
record as none, which is an `invalid` here. Result words: `pass`, `missing`, `invalid` (and
`temperror` for an error).

The MTA-STS policy file itself (`https://mta-sts.<domain>/.well-known/mta-sts.txt`) is NOT
fetched: the checks speak DNS only, through rblwatch's resolver. Its URL is in the detail.
"""

from __future__ import annotations

import re

from rblwatch.hygiene.dmarc import clip, parse_tags
from rblwatch.hygiene.dns import Dns, DnsTempError, txt_strings
from rblwatch.hygiene.result import CheckResult, errored, failed, passed
from rblwatch.targets import TargetError, normalize_domain

# Both versions are case-sensitive (%s"…" in the RFCs' ABNF), unlike DMARC's.
_STS_VERSION = re.compile(r"v=STSv1[ \t]*(;|$)")
_RPT_VERSION = re.compile(r"v=TLSRPTv1[ \t]*(;|$)")
_STS_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_RPT_URI = re.compile(
    r"(mailto:[^@\s,;!]+@[a-z0-9_-]+(\.[a-z0-9_-]+)+|https://[a-z0-9.-]+(:[0-9]+)?(/[^\s,;]*)?)",
    re.IGNORECASE,
)


class _Bad(Exception):
    """A check's own early end: carries the finished result."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.reason)
        self.result = result


def _the_record(check: str, domain: str, name: str, dns: Dns, version: re.Pattern[str]) -> str:
    """The one record at `name` that starts with `version`, or _Bad with the result."""
    try:
        texts = txt_strings(dns.lookup(name, "TXT"))
    except DnsTempError as e:
        raise _Bad(errored(check, domain, f"{check} lookup of {name}: {e}")) from None
    found = [t.strip() for t in texts if version.match(t.strip())]
    if len(found) > 1:
        why = f"{len(found)} records at {name}: senders then apply none; keep exactly one"
        detail = {"records": [clip(r) for r in found[:5]], "found_at": name}
        raise _Bad(failed(check, domain, "invalid", why, detail=detail))
    return found[0] if found else ""


def _domain(check: str, domain: str) -> str:
    try:
        return normalize_domain(domain)
    except TargetError as e:
        raise _Bad(failed(check, clip(domain), "invalid", clip(str(e)))) from None


def _invalid(check: str, domain: str, name: str, record: str, why: str) -> CheckResult:
    return failed(
        check,
        domain,
        "invalid",
        f"record at {name} is invalid: {why}; record: {clip(record)!r}",
        detail={"record": clip(record), "found_at": name},
    )


def check_mta_sts(dns: Dns, domain: str) -> CheckResult:
    """`pass` when `_mta-sts.<domain>` holds one `v=STSv1` record with a valid `id`.
    The HTTPS policy is not fetched (see the module docstring)."""
    try:
        domain = _domain("mta-sts", domain)
        name = f"_mta-sts.{domain}"
        record = _the_record("mta-sts", domain, name, dns, _STS_VERSION)
    except _Bad as bad:
        return bad.result
    if not record:
        return failed(
            "mta-sts",
            domain,
            "missing",
            f'no MTA-STS record at {name}: publish TXT {name} "v=STSv1; id=20250101000000" '
            f"(change the id whenever the policy changes) and the policy at "
            f"https://mta-sts.{domain}/.well-known/mta-sts.txt",
        )
    try:
        tags = parse_tags(record)
    except ValueError as e:
        return _invalid("mta-sts", domain, name, record, str(e))
    sts_id = tags.get("id")
    if sts_id is None:
        return _invalid("mta-sts", domain, name, record, "the id= tag is missing")
    if _STS_ID.fullmatch(sts_id) is None:
        why = f"id={clip(sts_id, 40)!r} must be 1 to 32 letters and digits"
        return _invalid("mta-sts", domain, name, record, why)
    detail = {
        "record": clip(record),
        "id": sts_id,
        "found_at": name,
        "policy_url": f"https://mta-sts.{domain}/.well-known/mta-sts.txt",
        "policy_fetched": False,
    }
    return passed("mta-sts", domain, detail=detail)


def check_tls_rpt(dns: Dns, domain: str) -> CheckResult:
    """`pass` when `_smtp._tls.<domain>` holds one `v=TLSRPTv1` record whose `rua` lists
    mailto: or https: addresses for the reports."""
    try:
        domain = _domain("tls-rpt", domain)
        name = f"_smtp._tls.{domain}"
        record = _the_record("tls-rpt", domain, name, dns, _RPT_VERSION)
    except _Bad as bad:
        return bad.result
    if not record:
        return failed(
            "tls-rpt",
            domain,
            "missing",
            f"no TLS-RPT record at {name}: publish TXT {name} "
            f'"v=TLSRPTv1; rua=mailto:tls-reports@{domain}" to receive reports of TLS '
            "failures delivering to you",
        )
    try:
        tags = parse_tags(record)
    except ValueError as e:
        return _invalid("tls-rpt", domain, name, record, str(e))
    if not tags.get("rua"):
        return _invalid("tls-rpt", domain, name, record, "the rua= tag is missing or empty")
    rua = [u.strip() for u in tags["rua"].split(",")]
    for uri in rua:
        if _RPT_URI.fullmatch(uri) is None:
            why = f"rua {clip(uri, 60)!r} is not a mailto: or https: URI"
            return _invalid("tls-rpt", domain, name, record, why)
    detail = {"record": clip(record), "rua": [clip(u) for u in rua[:10]], "found_at": name}
    return passed("tls-rpt", domain, detail=detail)


__all__ = ["check_mta_sts", "check_tls_rpt"]
