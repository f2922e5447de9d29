"""SPF: does a domain's record authorise a sending IP (RFC 7208 check_host, through pyspf).

pyspf does the evaluation; every lookup it makes goes through the `Dns` a check is handed.
Its one DNS hook is the module global `spf.DNSLookup`, so one dispatcher is installed at
import and reads the evaluation's `Dns` from a context variable: evaluations in different
threads each ask their own, and outside an evaluation the hook refuses (a temperror) rather
than fall back to pyspf's own dnspython resolver.

pyspf reports only the top-level mechanism that matched, so `_TracingQuery` follows the
evaluation through the methods every step passes: `check1` (each record, top, include and
redirect), `validate_mechanism` (each term parsed, in order) and `check_lookups` (each
DNS-costing term, in order). That is the trace, and the chain a reason names.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
from dataclasses import dataclass, field

import spf

from rblwatch.hygiene.dns import Dns, DnsTempError
from rblwatch.hygiene.result import CheckResult, errored, failed, passed
from rblwatch.targets import TargetError, normalize_domain

_ASKED = ("A", "AAAA", "MX", "PTR", "TXT")
_DNS_TERMS = frozenset({"include", "exists", "a", "mx", "ptr"})  # the ones check_lookups counts


@dataclass
class _Session:
    dns: Dns
    query: _TracingQuery
    queries: int = 0


_session: contextvars.ContextVar[_Session] = contextvars.ContextVar("rblwatch_spf_session")


def _dispatch(name: str, qtype: str, strict: object = True, timeout: object = None) -> list[object]:
    """pyspf's DNSLookup: ((name, type), value) pairs from the current evaluation's Dns.

    The timeout is the Dns's own (the configured resolver's); pyspf's is ignored."""
    session = _session.get(None)
    if session is None:
        raise spf.TempError("SPF lookup outside an evaluation: no Dns to ask")
    if qtype not in _ASKED:  # type SPF (99) is obsolete (RFC 7208 §3.1): never asked
        return []
    session.queries += 1
    try:
        records = session.dns.lookup(name, qtype)
    except DnsTempError as e:
        raise spf.TempError(f"DNS {qtype} {name}: {e}") from None
    if qtype != "TXT":  # records are traced as such, by check1
        session.query.note_answer(name, qtype, records.values, records.exists)
    return [((name, qtype), v) for v in records.values]


spf.DNSLookup = _dispatch


class _Qualified(str):
    """A mechanism's result word that remembers which mechanism it is: pyspf returns the
    qualifier of the mechanism that matched, and this is how we learn which one it was."""

    frame: _Frame
    position: int

    def __new__(cls, word: str, frame: _Frame, position: int) -> _Qualified:
        obj = super().__new__(cls, word)
        obj.frame, obj.position = frame, position
        return obj


@dataclass(eq=False)
class _Frame:
    """One record being evaluated: the top one, an include's or a redirect's."""

    domain: str
    label: str  # how the parent reached it: "include:x", "redirect=x", "" for the top
    indent: int
    record: str | None
    redirects: bool = False  # a redirect= whose check_lookups comes before the evaluation
    terms: list[tuple[str, str]] = field(default_factory=list)  # (text, mechanism name)
    cursor: int = 0  # terms before it have been written to the trace
    pending: int | None = None  # the DNS-costing term being evaluated, verdict not yet written
    children: dict[int | None, _Frame] = field(default_factory=dict)  # None: the redirect
    matched: int | None = None
    parent: _Frame | None = None

    def next_costly(self) -> int:
        """The next term (from the cursor) that costs a lookup: the one being evaluated."""
        costly = (i for i in range(self.cursor, len(self.terms)) if self.terms[i][1] in _DNS_TERMS)
        return next(costly, len(self.terms))


# RFC 7208 §4.6.4: a check_host() may be stopped after at least 20 seconds of DNS waits (pyspf
# counts only the time its lookups take: answers from the pass's cache cost nothing)
TIME_LIMIT = 20.0


class _TracingQuery(spf.query):  # type: ignore[misc]
    """spf.query that writes each record, term and answer to `steps` as it goes."""

    def __init__(self, ip: str, sender: str, helo: str) -> None:
        # each lookup is bounded by the Dns's own timeout and their number by the RFC 7208
        # limits; the whole evaluation by TIME_LIMIT, after which it is a temperror
        super().__init__(ip, sender, helo, strict=True, querytime=TIME_LIMIT)
        self.steps: list[str] = []
        self.stack: list[_Frame] = []
        self.root: _Frame | None = None
        self.failed_at: _Frame | None = None

    def _say(self, indent: int, text: str) -> None:
        self.steps.append("  " * indent + text)

    def note_answer(self, name: str, qtype: str, values: tuple[object, ...], exists: bool) -> None:
        shown = ", ".join(f"{v[0]} {v[1]}" if isinstance(v, tuple) else str(v) for v in values)
        shown = shown or ("nothing" if exists else "no such name")
        indent = self.stack[-1].indent + 2 if self.stack else 0
        self._say(indent, f"{qtype} {name} → {shown}")

    def check1(self, spf_text: str | None, domain: str, recursion: int) -> object:
        parent = self.stack[-1] if self.stack else None
        frame = _Frame(domain, "", 0, spf_text, parent=parent)
        if parent is None:
            self.root = frame
        else:
            self._attach(parent, frame)
        # as pyspf parses: terms split on spaces only, `redirect` in lower case, a second
        # redirect= a permerror before its lookup is counted
        frame.redirects = any(t.startswith("redirect=") for t in (spf_text or "").split(" "))
        self._say(frame.indent, f'{domain}: "{spf_text}"' if spf_text else f"{domain}: no record")
        self.stack.append(frame)
        try:
            rc = super().check1(spf_text, domain, recursion)
        except (spf.PermError, spf.TempError) as e:
            if self.failed_at is None:
                self.failed_at = frame
                self._say(frame.indent + (1 if frame.pending is None else 2), f"error: {e}")
            raise
        finally:
            self.stack.pop()
        self._finish(frame, rc[0])
        return rc

    def _attach(self, parent: _Frame, frame: _Frame) -> None:
        p = parent.pending
        if p is not None and parent.terms[p][1] == "include" and p not in parent.children:
            frame.label, frame.indent = parent.terms[p][0], parent.indent + 2
            parent.children[p] = frame
            return
        self._flush(parent, len(parent.terms))  # no term matched: the redirect is followed
        frame.label, frame.indent = f"redirect={frame.domain}", parent.indent + 2
        self._say(parent.indent + 1, frame.label)
        parent.children[None] = frame

    def validate_mechanism(self, mech: str) -> tuple[object, ...]:
        text, m, arg, cidr, result = super().validate_mechanism(mech)
        frame = self.stack[-1]
        frame.terms.append((str(text), str(m)))
        if isinstance(result, str):
            result = _Qualified(result, frame, len(frame.terms) - 1)
        return text, m, arg, cidr, result

    def check_lookups(self) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.redirects:
            frame.redirects = False  # redirect= is counted while the record is parsed
        elif frame is not None:
            nxt = frame.next_costly()
            self._flush(frame, nxt)
            if nxt < len(frame.terms):
                self._say(frame.indent + 1, frame.terms[nxt][0])
                frame.pending, frame.cursor = nxt, nxt + 1
        super().check_lookups()

    def _flush(self, frame: _Frame, upto: int) -> None:
        """Terms evaluated without a match, up to (not including) `upto`."""
        if frame.pending is not None:
            self._say(frame.indent + 2, "no match")
            frame.pending = None
        for text, _m in frame.terms[frame.cursor : upto]:
            self._say(frame.indent + 1, f"{text}: no match")
        frame.cursor = max(frame.cursor, upto)

    def _finish(self, frame: _Frame, word: object) -> None:
        if isinstance(word, _Qualified) and word.frame is frame:
            frame.matched = word.position
            if word.position == frame.pending:
                self._say(frame.indent + 2, f"match → {word}")
                frame.pending = None
            else:
                self._flush(frame, word.position)
                self._say(frame.indent + 1, f"{frame.terms[word.position][0]}: match → {word}")
        elif None not in frame.children and frame.record:
            self._flush(frame, len(frame.terms))
            self._say(frame.indent + 1, f"no term matched → {word} (the default)")


@dataclass(frozen=True)
class Evaluation:
    """What check_host said, and how it got there."""

    result: str  # pass, fail, softfail, neutral, none, permerror, temperror
    explanation: str
    record: str | None  # the evaluated domain's own record
    lookups: int  # the DNS-costing terms, as RFC 7208 §4.6.4 counts them
    queries: int  # what was asked of the Dns
    trace: tuple[str, ...]
    chain: str = ""  # "~all after include:_spf.example.net": the term that decided
    where: str = ""  # "include:a.example → include:b.example": where an error arose
    loop: str = ""  # "example.com → _spf.example.com → example.com" when that path loops


def evaluate(
    dns: Dns, ip: str, sender: str, helo: str, *, default_explanation: str | None = None
) -> Evaluation:
    """RFC 7208 check_host for (ip, sender, helo), every lookup through `dns`."""
    q = _TracingQuery(ip, sender, helo)
    if default_explanation is not None:
        q.set_default_explanation(default_explanation)
    session = _Session(dns, q)
    token = _session.set(session)
    try:
        result, _code, explanation = q.check()
    except Exception as e:  # hostile records can trip pyspf itself; a result, not a traceback
        result, explanation = "permerror", f"SPF Permanent Error: {type(e).__name__}: {e}"
    finally:
        _session.reset(token)
    root = q.root
    return Evaluation(
        str(result),
        str(explanation),
        root.record if root else None,
        int(q.lookups),
        session.queries,
        tuple(q.steps),
        _chain(root) if root else "",
        *_where(q.failed_at),
    )


def _chain(frame: _Frame) -> str:
    path: list[str] = []
    while True:
        if frame.matched is not None and frame.matched in frame.children:
            path.append(frame.terms[frame.matched][0])  # a matching include: inside it
            frame = frame.children[frame.matched]
        elif frame.matched is None and None in frame.children:
            path.append(frame.children[None].label)
            frame = frame.children[None]
        else:
            break
    if frame.matched is None:
        return ""
    text = frame.terms[frame.matched][0]
    tried = [t for t, m in frame.terms[: frame.matched] if m == "include"]
    return (
        text
        + (f" in {' → '.join(path)}" if path else "")
        + (f" after {', '.join(tried)}" if tried else "")
    )


def _where(frame: _Frame | None) -> tuple[str, str]:
    """Where an error arose (the includes and redirects leading to it) and, when that path
    comes back to a domain it has already passed, the loop."""
    frames: list[_Frame] = []
    while frame is not None and frame.parent is not None:
        frames.insert(0, frame)
        frame = frame.parent
    labels = [f.label for f in frames]
    if len(labels) > 4:
        labels = [*labels[:2], "…", labels[-1]]
    domains = [frame.domain] + [f.domain for f in frames] if frame is not None else []
    for i, d in enumerate(domains):
        if d in domains[:i]:
            return " → ".join(labels), " → ".join(domains[domains.index(d) : i + 1])
    return " → ".join(labels), ""


_PROBLEMS = (  # pyspf's message → what it means and what to do
    (r"Too many DNS lookups", "more than 10 DNS lookups (RFC 7208 §4.6.4): flatten includes"),
    (
        r"Void lookup limit",
        "more than 2 void lookups (RFC 7208 §4.6.4): drop the terms naming domains that do "
        "not exist or have no records",
    ),
    (r"Two or more type TXT", "more than one SPF record (RFC 7208 §4.5): merge them into one"),
    (
        r"No valid SPF record for included domain: (\S+):",
        r"include:\1 has no SPF record (RFC 7208 §5.2): publish one there or drop the include",
    ),
    (
        r"redirect domain has no SPF record: (\S+)",
        r"redirect=\1 has no SPF record (RFC 7208 §6.1): publish one there or fix the redirect",
    ),
)


def _problem(ev: Evaluation) -> str:
    text = ev.explanation.partition(" Error: ")[2] or ev.explanation
    if ev.result == "temperror":
        return f"{text} — the DNS could not tell; nothing changes until it answers"
    for pattern, meaning in _PROBLEMS:
        if m := re.match(pattern, text):
            return m.expand(meaning)
    return f"{text} — correct the record"


def _reason(ev: Evaluation, domain: str, ip: str) -> str:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped  # pyspf evaluates a mapped address as IPv4 (RFC 7208 §5)
    mech = f"ip{addr.version}:{addr}"
    if ev.result == "none":
        return f"none: {domain} publishes no SPF record — publish `v=spf1 {mech} -all`"
    if ev.loop and ev.result == "permerror":
        return (
            f"permerror: an include/redirect loop ({ev.loop}) runs past the 10-lookup limit "
            "(RFC 7208 §4.6.4): remove the term that points back"
        )
    if ev.result in ("permerror", "temperror"):
        return f"{ev.result}{f' in {ev.where}' if ev.where else ''}: {_problem(ev)}"
    how = f"via {ev.chain}" if ev.chain else "(no term matched)"
    return (
        f'{ev.result} {how}: {addr} is not authorised by "{_short(ev.record)}" — add `{mech}` to '
        f"{domain}'s SPF record if it sends mail for {domain}"
    )


def _short(text: str | None, limit: int = 160) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_spf(
    dns: Dns, domain: str, ip: str, *, helo: str | None = None, sender: str | None = None
) -> CheckResult:
    """Does `domain`'s SPF authorise `ip`? `pass` only for an SPF pass.

    `ip` must be an address (ValueError otherwise: the caller's bug); a `domain` that is not
    one is a permerror `fail`, as a receiver would find it."""
    ip = str(ipaddress.ip_address(ip))
    try:
        name = normalize_domain(domain)
    except TargetError as e:
        return failed("spf", domain, "permerror", f"permerror: {e}", ip=ip)
    ev = evaluate(dns, ip, sender or f"postmaster@{name}", helo or name)
    detail = {"record": ev.record, "lookups": ev.lookups, "queries": ev.queries}
    if ev.chain:
        detail["decided_by"] = ev.chain
    if ev.result == "pass":
        return passed("spf", domain, ip=ip, detail=detail, trace=ev.trace)
    if ev.result == "temperror":
        return errored("spf", domain, _reason(ev, name, ip), ip=ip, detail=detail, trace=ev.trace)
    return failed(
        "spf", domain, ev.result, _reason(ev, name, ip), ip=ip, detail=detail, trace=ev.trace
    )


__all__ = ["Evaluation", "check_spf", "evaluate"]
