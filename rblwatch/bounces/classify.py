"""Why a recipient failed (a cause from model.CAUSES) and which blocklists its diagnostic names.

Pure. The order of the rules is the design:
1. the receiver's own resolver refused by the list (Spamhaus's "open resolver" / returnc
   answers) — `receiver_misconfigured`, whatever else the text says: the sender is not listed;
2. a list named (by zone, lookup URL or a provider's code) — `blocklisted`;
   then a provider's words that its status code would contradict (`PROVIDER_WORDS`);
3. an enhanced status code whose detail says the cause outright (5.1.1, 5.7.25, 5.7.26 …);
4. the words of the diagnostic (blocklist, PTR, SPF, spam, user unknown …);
5. the status code's subject (X.1 addressing, X.4 routing, X.7 policy …);
6. `other`.
Provider-run lists' facts (delist URL, not queryable) come from the caller's `ListFacts`; the
patterns that point at them live here, in `PROVIDER_CODES`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rblwatch.bounces.ips import bare_ipv4s, bracketed_ips, public_ip
from rblwatch.bounces.model import Cause, NamedList

if TYPE_CHECKING:
    from rblwatch.bounces.explain import ListFacts

# list name → patterns of the provider's own codes; group 1 (or the match) is `named_as`
PROVIDER_CODES: dict[str, tuple[re.Pattern[str], ...]] = {
    "microsoft": (
        re.compile(r"\b(5\.7\.6(?:0[6-9]|[1-3]\d|4\d))\b"),  # 5.7.606 to 5.7.649: banned IP
        re.compile(r"\b(S3150|S3140)\b"),  # "part of their network is on our block list"
    ),
    "spamhaus-zen": (re.compile(r"\[(BL2[13])\]"),),  # Yahoo: "the ip is in Spamhaus's list"
    "proofpoint": (
        re.compile(r"(https?://ipcheck\.proofpoint\.com\S*)", re.I),
        re.compile(r"(https?://\S*proofpoint\.com/dnsbl-lookup\S*)", re.I),
    ),
}

# lookup and removal pages → the list they belong to
LOOKUP_URLS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(https?://(?:www\.)?spamhaus\.org/(?:query|lookup|sbl/query)\S*)", re.I),
        "spamhaus-zen",
    ),
    (re.compile(r"(https?://check\.spamhaus\.org\S*)", re.I), "spamhaus-zen"),
    (
        re.compile(r"(https?://(?:www\.)?barracudacentral\.org/(?:lookups|rbl)\S*)", re.I),
        "barracuda",
    ),
    (re.compile(r"(https?://(?:www\.)?barracudanetworks\.com/reputation\S*)", re.I), "barracuda"),
    (re.compile(r"(https?://(?:www\.)?spamcop\.net/(?:bl\.shtml|w3m)\S*)", re.I), "spamcop"),
    (re.compile(r"(https?://(?:www\.)?uceprotect\.net/\S*)", re.I), "uceprotect-1"),
    (re.compile(r"(https?://(?:www\.)?abuseat\.org/lookup\S*)", re.I), "cbl"),
)

# a DNS name the text says an address was found on, when the catalogue does not know it
_UNKNOWN_ZONE = re.compile(
    r"(?:blocked using|listed (?:in|on|at|by)|found (?:in|on)|\b(?:rbl|dnsbl)\b:?)\s+"
    r"((?:[a-z0-9-]+\.)+[a-z]{2,})\b",
    re.I,
)
_DNS_NAME = re.compile(r"(?<![\w-])((?:[a-z0-9-]+\.)+[a-z]{2,})(?![\w-])", re.I)

_MISCONFIGURED = re.compile(
    r"open (?:dns )?resolver|public (?:dns )?resolver|open/public resolver|\breturnc\b"
    r"|127\.255\.255\.25[2-5]",
    re.I,
)

# X.Y.Z detail (without the class) whose meaning is the cause
STATUS_CAUSES: dict[str, Cause] = {
    "1.1": "recipient", "1.3": "recipient", "1.4": "recipient", "1.6": "recipient",
    # not 1.10 (null MX): Microsoft sends 5.1.10 for "recipient not found", the words decide
    "1.2": "routing",
    "2.1": "recipient", "2.2": "recipient",
    "2.3": "content", "3.4": "content",
    "4.0": "routing", "4.1": "routing", "4.2": "routing", "4.3": "routing", "4.4": "routing",
    "4.5": "routing", "4.6": "routing", "4.7": "routing",
    "7.13": "recipient", "7.17": "recipient",
    "7.20": "authentication", "7.21": "authentication", "7.22": "authentication",
    "7.23": "authentication", "7.24": "authentication", "7.26": "authentication",
    "7.29": "authentication",
    "7.25": "reverse_dns",
    "7.28": "reputation",
    # Microsoft's own: "traffic not accepted from this IP" (most of its traffic suspicious)
    "7.708": "reputation",
}  # fmt: skip

# a provider's words that say more than the status it sends with them (checked before it)
PROVIDER_WORDS: tuple[tuple[re.Pattern[str], Cause], ...] = (
    # Microsoft's Directory-Based Edge Blocking: no such recipient in the tenant, sent as 5.4.1
    (re.compile(r"Recipient address rejected: Access denied", re.I), "recipient"),
)

# the subject alone, when neither the detail nor the words said more
SUBJECT_CAUSES: dict[str, Cause] = {
    "1": "recipient",
    "2": "recipient",
    "3": "routing",
    "4": "routing",
    "6": "content",
    "7": "policy",
}

# the words, in order: the first that matches decides
WORDS: tuple[tuple[re.Pattern[str], Cause], ...] = (
    (re.compile(
        r"block ?list|black ?list|\bDNSBL\b|\bRBL\b|(?<!not )\blisted (?:in|on|at|by)\b"
        r"|\b(?:is|are|was|been|currently) listed\b|spamhaus|spamcop|barracuda|sorbs"
        r"|uceprotect|spamrats|mailspike|abusix|\bpsbl\b|\bcbl\b", re.I), "blocklisted"),
    (re.compile(r"\bPTR\b|reverse (?:DNS|lookup|hostname)|\brDNS\b|FCrDNS"
                r"|no reverse|reverse-dns", re.I), "reverse_dns"),
    (re.compile(r"\bSPF\b|\bDKIM\b|\bDMARC\b|unauthenticated|not authenticated", re.I),
     "authentication"),
    (re.compile(r"reputation|rate limit|rate-limit|\bvolume\b|complaints|sender score"
                r"|unusual rate", re.I), "reputation"),
    (re.compile(r"\bspam\b|unsolicited|virus|malware|phish|\bcontent\b|attachment"
                r"|message (?:is )?too (?:big|large)|size limit"
                r"|exceeds? (?:the )?(?:maximum )?size",
                re.I), "content"),
    (re.compile(r"user unknown|unknown user|no such (?:user|mailbox|recipient)|no mailbox"
                r"|does not exist|doesn't exist|not found|mailbox (?:is )?(?:full|unavailable)"
                r"|over quota|quota exceeded|(?:account|mailbox) (?:is |has been )?disabled"
                r"|recipient not found|invalid recipient|inactive", re.I), "recipient"),
    (re.compile(r"host (?:or domain name )?not found|name service error|no route|timed out"
                r"|connection refused|unrouteable|expired|too long|retry time|no mx"
                r"|unable to connect|network", re.I), "routing"),
    (re.compile(r"relay|not permitted|not allowed|policy|too many|throttl|greylist"
                r"|try again later|denied", re.I), "policy"),
)  # fmt: skip


def lists_named(diagnostic: str | None, lists: Sequence[ListFacts]) -> tuple[NamedList, ...]:
    """The lists the diagnostic names, once each, in the order found."""
    if not diagnostic:
        return ()
    by_name = {f.name: f for f in lists}
    # zones first: when a text names a zone and a lookup URL of the same list, the zone is
    # what an operator recognises
    found = _zones_named(diagnostic, lists)  # (catalogue name or the pattern's, named_as)
    for name, patterns in PROVIDER_CODES.items():
        for p in patterns:
            m = p.search(diagnostic)
            if m is not None:
                found.append((name, m[1]))
                break
    for p, name in LOOKUP_URLS:
        m = p.search(diagnostic)
        if m is not None:
            found.append((name, m[1].rstrip(".,;)'\"")))
    out: list[NamedList] = []
    seen: set[str] = set()
    for list_name, named_as in found:
        facts = by_name.get(list_name) if list_name else None
        key = facts.name if facts else named_as.lower()
        if key in seen:
            continue
        seen.add(key)
        if facts is None:
            out.append(NamedList(name=None, named_as=named_as))
        else:
            out.append(NamedList(facts.name, named_as, facts.delist_url, facts.queryable))
    return tuple(out)


def _zones_named(diagnostic: str, lists: Sequence[ListFacts]) -> list[tuple[str | None, str]]:
    zones = [(z.lower(), f.name) for f in lists for z in f.zones if "${" not in z]
    # the longest zone first, so zen.dq.spamhaus.net is not taken for spamhaus.net
    zones.sort(key=lambda zn: -len(zn[0]))
    out: list[tuple[str | None, str]] = []
    for m in _DNS_NAME.finditer(diagnostic):
        token = m[1].lower().rstrip(".")
        hit = next((zn for zn in zones if token == zn[0] or token.endswith("." + zn[0])), None)
        if hit is not None:
            out.append((hit[1], hit[0]))
    for m in _UNKNOWN_ZONE.finditer(diagnostic):
        token = m[1].lower()
        known = any(token == z or token.endswith("." + z) for z, _ in zones)
        if not known and not _looks_like_ip_zone(token):
            out.append((None, token))
    return out


def _looks_like_ip_zone(token: str) -> bool:
    # "listed in 192.0.2.22.in-addr" style junk and bare hostnames of the receiver itself are
    # not list names; a zone has at least one dot and is not an address
    return public_ip(token) is not None or "." not in token


def cause(status: str | None, diagnostic: str | None, named: Sequence[NamedList]) -> Cause:
    text = diagnostic or ""
    if _MISCONFIGURED.search(text):
        return "receiver_misconfigured"
    if named:
        return "blocklisted"
    for pattern, c in PROVIDER_WORDS:
        if pattern.search(text):
            return c
    detail = status.split(".", 1)[1] if status else None
    if detail is not None and detail in STATUS_CAUSES:
        return STATUS_CAUSES[detail]
    for pattern, c in WORDS:
        if pattern.search(text):
            return c
    if detail is not None:
        return SUBJECT_CAUSES.get(detail.split(".", 1)[0], "other")
    return "other"


_KEYWORD_IP = re.compile(
    r"(?:client host|sending ip|ip address|your ip|connections? (?:will not be accepted )?from"
    r"|messages? from|\bfrom|\bip)\s*[:=]?\s*\[?(?:IPv6:)?([0-9A-Fa-f:.]{7,45})\]?",
    re.I,
)


_HOST_AND_IP = re.compile(r"[\w.-]+\[[0-9A-Fa-f:.]+\](?::\d+)?")


def quoted_ip(diagnostic: str | None) -> str | None:
    """The address the receiver quotes as the client's: after 'Client host', 'sending IP',
    'from' …, else the first bracketed one, else the first bare IPv4."""
    if not diagnostic:
        return None
    # Postfix writes a remote host as name[ip] ("connect to mx.example.net[198.51.100.5]"):
    # that address is the receiver's, not the sender's
    text = _HOST_AND_IP.sub(" ", diagnostic)
    for m in _KEYWORD_IP.finditer(text):
        ip = public_ip(m[1].rstrip(".:"))
        if ip is not None:
            return ip
    ips = bracketed_ips(text) or bare_ipv4s(text)
    return ips[0] if ips else None


__all__ = ["LOOKUP_URLS", "PROVIDER_CODES", "cause", "lists_named", "quoted_ip"]
