"""The `fcrdns` check: forward-confirmed reverse DNS of a sending IP, as receivers demand it.

The PTR names of the address (in-addr.arpa, or ip6.arpa nibbles); each name's A (IPv4) or
AAAA (IPv6) records; `pass` when a name resolves back to the address, does not look generic
and, when a HELO name is configured, is that name. Result words, in the order a fix moves
through them: `no_ptr`, `not_confirmed`, `generic`, `helo_mismatch`, `pass`; `invalid` for
a target that is not an address, `temperror` for an error.

"Generic" is the heuristic receivers apply to ISP-assigned names (`generic_reason`): the
address's numbers in the name (`192-0-2-10`, `10.2.0.192`, `c0000210`, IPv6 groups), or a
word of `GENERIC_WORDS` as a whole token of the host part (left of the registered domain, so
`dsl.example` as a domain is not held against its own `mail.dsl.example`), or a word of
`NUMBERED_WORDS` in a label that also holds digits. `static` is not generic, and neither is
a bare `host.example.com`: `host-44.example.com` is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping

from rblwatch.hygiene.dmarc import clip, organisational_domain
from rblwatch.hygiene.dns import Dns, DnsTempError
from rblwatch.hygiene.result import CheckResult, errored, failed, passed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Whole tokens (letter runs) that mark an access network's name wherever they stand.
GENERIC_WORDS = frozenset(
    {
        "dyn", "dynamic", "dhcp", "pool", "dsl", "adsl", "vdsl", "xdsl", "sdsl", "cable",
        "catv", "dial", "dialup", "dialin", "ppp", "pppoe", "broadband", "residential",
        "resnet", "dip", "cpe", "ftth", "fttc", "fttx", "hsd", "unassigned",
    }
)  # fmt: skip
# Tokens that are generic only numbered, in a label with digits: `host-44`, not `host`.
NUMBERED_WORDS = frozenset({"host", "ip", "client", "cust", "customer", "user", "node", "addr"})
MAX_NAMES = 10  # PTR names followed, like RFC 7208 §5.5's limit for the same lookup


def generic_reason(name: str, ip: str) -> str | None:
    """Why `name` looks like a generic name for the address `ip`, or None."""
    labels = name.lower().rstrip(".").split(".")
    if _embeds(ipaddress.ip_address(ip), labels[:-1]):
        return "it contains the address's numbers"
    org = organisational_domain(name)
    host = labels[: len(labels) - len(org.split("."))] if org else labels[:-1]
    for label in host:
        numbered = any(c.isdigit() for c in label)
        for word in re.findall(r"[a-z]+", label):
            if word in GENERIC_WORDS:
                return f"it contains {word!r}"
            if numbered and word in NUMBERED_WORDS:
                return f"{label!r} is a numbered {word!r}"
    return None


def _embeds(addr: Address, labels: list[str]) -> bool:
    text = ".".join(labels)
    if addr.version == 4:
        octets = [str(b) for b in addr.packed]
        numbers = [n.lstrip("0") or "0" for n in re.findall(r"[0-9]+", text)]
        padded = [f"{b:03d}" for b in addr.packed]
        joined = {"".join(x).lstrip("0") for x in (octets, octets[::-1], padded, padded[::-1])}
        return (
            _run_in(octets, numbers, 3)
            or _run_in(octets[::-1], numbers, 3)
            or any(n in joined for n in numbers)
            or f"{int(addr):08x}" in text
        )
    groups = [g.lstrip("0") or "0" for g in addr.exploded.split(":")]
    tokens = [t.lstrip("0") or "0" for t in re.split(r"[^0-9a-z]+", text) if t]
    nibbles = addr.exploded.replace(":", "")
    compact = re.sub(r"[^0-9a-z]", "", text)
    return _run_in(groups, tokens, 4) or nibbles in compact or nibbles[::-1] in compact


def _run_in(parts: list[str], tokens: list[str], need: int) -> bool:
    """Whether `need` consecutive `parts` appear consecutively in `tokens`."""
    windows = {tuple(parts[i : i + need]) for i in range(len(parts) - need + 1)}
    return any(tuple(tokens[i : i + need]) in windows for i in range(len(tokens) - need + 1))


def check_fcrdns(dns: Dns, ip: str, *, helo: str | None = None) -> CheckResult:
    """The PTR names of `ip` and whether one of them forward-confirms (and is not generic,
    and is `helo` when given); detail {"ptr": [names], "confirmed": name} on a pass."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        why = f"{clip(ip, 60)!r} is not an IP address: give one IPv4 or IPv6 address"
        return failed("fcrdns", clip(ip), "invalid", why, ip=clip(ip))
    ip = str(addr)
    rev = addr.reverse_pointer
    try:
        answer = dns.lookup(rev, "PTR")
    except DnsTempError as e:
        return errored("fcrdns", ip, f"PTR lookup of {rev}: {e}", ip=ip)
    names = list(dict.fromkeys(v.lower().rstrip(".") for v in answer.values if isinstance(v, str)))
    if not names:
        back = "A" if addr.version == 4 else "AAAA"
        return failed(
            "fcrdns",
            ip,
            "no_ptr",
            f"no PTR record for {ip} ({rev}): ask the address's owner (your ISP or hosting "
            f"provider) to set a PTR to a name of yours, such as mail.example.com, whose "
            f"{back} record points back to {ip}",
            ip=ip,
        )
    forward: dict[str, list[Address] | DnsTempError] = {}
    for name in names[:MAX_NAMES]:
        forward[name] = _resolve(dns, name, addr.version)
    return _judge(addr, names, forward, helo.lower().rstrip(".") if helo else None)


def _resolve(dns: Dns, name: str, version: int) -> list[Address] | DnsTempError:
    try:
        values = dns.lookup(name, "A" if version == 4 else "AAAA").values
    except DnsTempError as e:
        return e
    out = []
    for v in values:
        if not isinstance(v, str):
            continue
        try:
            out.append(ipaddress.ip_address(v))
        except ValueError:
            continue  # not an address of any family: resolves to nothing we can use
    return out


def _verdict(addr: Address, confirmed: Collection[str], helo: str | None) -> str:
    """The result word for a set of confirmed names. Monotone in the set: more confirmed
    names only move it along not_confirmed → generic → helo_mismatch → pass, which `_judge`
    relies on."""
    if not confirmed:
        return "not_confirmed"
    good = [n for n in confirmed if generic_reason(n, str(addr)) is None]
    if not good:
        return "generic"
    return "pass" if helo is None or helo in good else "helo_mismatch"


def _judge(
    addr: Address,
    names: list[str],
    forward: Mapping[str, list[Address] | DnsTempError],
    helo: str | None,
) -> CheckResult:
    ip = str(addr)
    confirmed = [n for n, f in forward.items() if not isinstance(f, DnsTempError) and addr in f]
    unknown = {n: f for n, f in forward.items() if isinstance(f, DnsTempError)}
    word = _verdict(addr, confirmed, helo)
    # Unresolved names might confirm: when that could change the word, the DNS did not tell.
    if unknown and _verdict(addr, confirmed + list(unknown), helo) != word:
        err = next(iter(unknown.values()))
        why = f"could not resolve {', '.join(unknown)} to confirm {ip}: {err}"
        return errored("fcrdns", ip, why, ip=ip, detail={"ptr": [clip(n) for n in names]})
    detail: dict[str, object] = {"ptr": [clip(n) for n in names], "confirmed": None}
    good = [n for n in confirmed if generic_reason(n, ip) is None]
    chosen = (helo if helo in good else None) if helo else (good[0] if good else None)
    detail["confirmed"] = chosen or (confirmed[0] if confirmed else None)
    if helo:
        detail["helo"] = helo
    if word == "pass":
        return passed("fcrdns", ip, ip=ip, detail=detail)
    why = _reason(word, addr, forward, confirmed, helo)
    return failed("fcrdns", ip, word, why, ip=ip, detail=detail)


def _reason(
    word: str,
    addr: Address,
    forward: Mapping[str, list[Address] | DnsTempError],
    confirmed: list[str],
    helo: str | None,
) -> str:
    ip, back = str(addr), "A" if addr.version == 4 else "AAAA"
    if word == "not_confirmed":
        seen = "; ".join(
            f"{n} → {', '.join(map(str, f)) if isinstance(f, list) and f else 'nothing'}"
            for n, f in forward.items()
        )
        return clip(
            f"no PTR name of {ip} resolves back to it ({seen}): add an {back} record "
            f"{ip} for one of them, or change the PTR to a name that has one",
            400,
        )
    if word == "generic":
        name = confirmed[0]
        return (
            f"PTR name {name} looks generic ({generic_reason(name, ip)}): receivers take it "
            "for a dynamic or residential address; ask the address's owner for a PTR to a "
            f"name of your own (e.g. mail.<your domain>) with an {back} record back to {ip}"
        )
    good = ", ".join(n for n in confirmed if generic_reason(n, ip) is None)
    return (
        f"HELO name {helo} is not a confirmed PTR name of {ip} (confirmed: {good}): set the "
        f"server's HELO name to one of those, or point the PTR at {helo} with an {back} "
        f"record back to {ip}"
    )


__all__ = ["GENERIC_WORDS", "MAX_NAMES", "NUMBERED_WORDS", "check_fcrdns", "generic_reason"]
