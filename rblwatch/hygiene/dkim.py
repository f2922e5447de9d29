"""The `dkim` check: the public key a selector publishes (RFC 6376 §3.6.1).

The TXT at `<selector>._domainkey.<domain>` (a CNAME to a provider's key is followed by the
resolver) is parsed with dkimpy — its tag-list reader and its RSA key parser, the code its
verifier runs — and judged: `pass` (an RSA key of 1024 bits or more, or an Ed25519 key; RSA
under 2048 bits and `t=y` warn in the detail), `missing`, `invalid` (no parse, bad base64,
unknown `k=`, `v=` not DKIM1, several records, a bad selector or domain), `revoked` (`p=`
empty), `weak` (RSA under 1024 bits, which receivers ignore: RFC 8301 §3.2). `temperror` for
an error.
"""

from __future__ import annotations

import base64
import binascii
import re

import dkim.crypto
import dkim.util

from rblwatch.hygiene.dmarc import clip
from rblwatch.hygiene.dns import Dns, DnsTempError
from rblwatch.hygiene.result import CheckResult, errored, failed, passed
from rblwatch.targets import TargetError, normalize_domain

MIN_BITS = 1024  # below: `weak` (RFC 8301 §3.2: verifiers MUST NOT accept keys under 1024)
GOOD_BITS = 2048  # below: a warning (RFC 8301 §3.2: signers SHOULD use at least 2048)
_LDH = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_WS = re.compile(rb"\s+")


class _Invalid(Exception):
    """The record does not say a usable key; the message is the reason."""


def validate_selector(selector: str) -> str | None:
    """None for a usable selector, else the one-line message saying why not.

    RFC 6376 §3.1 lets a selector hold dots (sub-selectors, `2025.mail`); rblwatch takes one
    DNS label per selector, so that the store's pair key and the config stay unambiguous.
    Pure and import-free beside `re`, so the config layer can call (or copy) it.
    """
    if not selector:
        return "selector is empty: give the label before ._domainkey, e.g. 's1'"
    if "." in selector:
        return f"selector {clip(selector, 60)!r}: rblwatch takes one DNS label per selector"
    if len(selector) > 63:
        return f"selector {clip(selector, 60)!r}: longer than 63 characters"
    if _LDH.fullmatch(selector) is None:
        return (
            f"selector {clip(selector, 60)!r}: a selector holds letters, digits and '-' "
            "and neither starts nor ends with '-'"
        )
    return None


def check_dkim(dns: Dns, domain: str, selector: str) -> CheckResult:
    """The key at `<selector>._domainkey.<domain>`, judged; detail has the key type and
    bits when known, the record, and warnings."""
    bad = validate_selector(selector)
    if bad is not None:
        return failed("dkim", clip(domain), "invalid", bad, selector=clip(selector, 63))
    try:
        domain = normalize_domain(domain)
    except TargetError as e:
        return failed("dkim", clip(domain), "invalid", clip(str(e)), selector=selector)
    name = f"{selector}._domainkey.{domain}"
    try:
        answer = dns.lookup(name, "TXT")
    except DnsTempError as e:
        return errored("dkim", domain, f"DKIM lookup of {name}: {e}", selector=selector)
    # a TXT value is the tuple of its strings (bytes, as on the wire; `dns.py`)
    records = [
        b"".join(x for x in v if isinstance(x, bytes))
        for v in answer.values
        if isinstance(v, tuple)
    ]
    if not records:
        return failed(
            "dkim",
            domain,
            "missing",
            f"no DKIM key at {name}: publish the selector's public key (the TXT record the "
            "signing server or mail provider gives for this selector), or correct the "
            "selector name",
            selector=selector,
        )
    if len(records) > 1:
        shown = [clip(r.decode("utf-8", "replace")) for r in records[:5]]
        return failed(
            "dkim",
            domain,
            "invalid",
            f"{len(records)} TXT records at {name}: a verifier cannot tell which is the key; "
            "keep exactly one",
            selector=selector,
            detail={"records": shown, "found_at": name},
        )
    return _judge(domain, selector, name, records[0])


def _judge(domain: str, selector: str, name: str, raw: bytes) -> CheckResult:
    text = clip(raw.decode("utf-8", "replace"))
    detail: dict[str, object] = {"record": text, "found_at": name}
    try:
        key_type, bits, warnings = _key(raw)
    except _Invalid as e:
        return failed(
            "dkim",
            domain,
            "invalid",
            f"DKIM record at {name} is invalid: {e}; publish the key exactly as the signing "
            f"server gives it. Record: {text!r}",
            selector=selector,
            detail=detail,
        )
    detail.update({"key_type": key_type, "bits": bits, "warnings": warnings})
    if bits == 0:
        return failed(
            "dkim",
            domain,
            "revoked",
            f"the key at {name} is revoked (p= is empty): mail signed with selector "
            f"{selector} fails DKIM; sign with a current selector, or remove {selector} from "
            "the config once nothing signs with it",
            selector=selector,
            detail=detail,
        )
    if key_type == "rsa" and bits < MIN_BITS:
        return failed(
            "dkim",
            domain,
            "weak",
            f"the RSA key at {name} has {bits} bits: receivers ignore keys under {MIN_BITS}; "
            f"generate a {GOOD_BITS}-bit key, publish it under a new selector and sign with it",
            selector=selector,
            detail=detail,
        )
    return passed("dkim", domain, selector=selector, detail=detail)


def _key(raw: bytes) -> tuple[str, int, list[str]]:
    """(key type, bits, warnings) of a key record; bits 0 when revoked (Ed25519 keys are
    256 bits). _Invalid says what is wrong."""
    try:
        tags = dkim.util.parse_tag_value(raw)
    except (dkim.util.InvalidTagSpec, dkim.util.DuplicateTag) as e:
        raise _Invalid(f"not a tag=value list ({clip(str(e), 60)})") from None
    version = tags.get(b"v")
    if version is not None and version != b"DKIM1":
        raise _Invalid(f"v={_show(version)} (it must be DKIM1 or absent)")
    key_type = tags.get(b"k", b"rsa")
    if key_type not in (b"rsa", b"ed25519"):
        raise _Invalid(f"unknown key type k={_show(key_type)} (rsa or ed25519)")
    warnings = []
    flags = {f.strip() for f in tags.get(b"t", b"").split(b":")}
    if b"y" in flags:
        warnings.append("t=y: testing mode, receivers may treat signatures as absent")
    if b"p" not in tags:
        raise _Invalid("the key tag p= is missing")
    kind = key_type.decode("ascii")
    p = _WS.sub(b"", tags[b"p"])  # folding whitespace inside the base64 is allowed
    if not p:
        return kind, 0, warnings
    try:
        der = base64.b64decode(p, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid("p= is not valid base64") from None
    if kind == "ed25519":
        if len(der) != 32:
            raise _Invalid(f"an Ed25519 key is 32 bytes, p= holds {len(der)}")
        return kind, 256, warnings
    bits = _rsa_bits(der)
    if MIN_BITS <= bits < GOOD_BITS:
        warnings.append(f"RSA key of {bits} bits: use {GOOD_BITS}")
    return kind, bits, warnings


def _rsa_bits(der: bytes) -> int:
    try:
        key = dkim.crypto.parse_public_key(der)
        modulus = key["modulus"]
    # dkimpy turns its ASN.1 reader's errors into UnparsableKeyError (fuzzed: nothing else
    # escaped); the rest are not promised by its docs, and a hostile record must end as
    # `invalid`, never a traceback.
    except (dkim.crypto.UnparsableKeyError, IndexError, TypeError, ValueError):
        raise _Invalid("p= is not an RSA public key") from None
    if not isinstance(modulus, int) or modulus <= 0:
        raise _Invalid("p= is not an RSA public key")
    return modulus.bit_length()


def _show(value: bytes) -> str:
    return repr(clip(value.decode("utf-8", "replace"), 40))


__all__ = ["GOOD_BITS", "MIN_BITS", "check_dkim", "validate_selector"]
