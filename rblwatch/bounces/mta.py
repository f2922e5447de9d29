"""The plain-text bounces of the common MTAs and providers, read from their body text.

Pure. One function per format, one table (`RECOGNISERS`) tried in order; each recognises its
format by the sentence the software always writes and returns the recipients it names, or None.
The texts are those of Postfix (bounce(8) templates), Exim (the "mail delivery software"
message), Sendmail, qmail (qmail-send), Exchange / Office 365 NDRs, Gmail, Yahoo and Amazon SES
notifications (their JSON). A diagnostic is the remote server's reply, never the MTA's framing
("host … said:", "(in reply to RCPT TO command)").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

from rblwatch.bounces.codes import normal_status
from rblwatch.bounces.diagnostic import MAX_RECIPIENTS, Found, split, strip_type


@dataclass(slots=True)
class Recognised:
    reporting_mta: str | None = None
    recipients: list[Found] = field(default_factory=list)


def _found(address: str, action: str, text: str | None, remote: str | None = None) -> Found:
    reply, status, diag = split(text)
    return Found(address, action, status, reply, diag, remote)


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n[ \t]*\n", text) if p.strip()]


_IN_REPLY = re.compile(r"\s*\(in\s+reply\s+to\s[^)]*\)\s*$", re.S)
_POSTFIX_HOST = re.compile(r"^\s*host\s+(\S+?)\[[^\]]*\]\s+said:\s*", re.S)
_POSTFIX_RCPT = re.compile(r"^<([^>]+)>(?:\s*\(expanded from <[^>]+>\))?:\s*(.*)", re.S)


def postfix(body: str, subject: str) -> Recognised | None:
    m = re.search(r"This is the mail system at host (\S+?)\.?\s*$", body, re.M)
    if m is None:
        return None
    action = "delayed" if "THIS IS A WARNING ONLY" in body else "failed"
    out = Recognised(reporting_mta=m[1])
    for para in islice(_paragraphs(body[m.end() :]), MAX_RECIPIENTS):
        r = _POSTFIX_RCPT.match(para.strip())
        if r is None:
            continue
        text = _IN_REPLY.sub("", r[2])
        host = _POSTFIX_HOST.match(text)
        remote = host[1] if host else None
        text = text[host.end() :] if host else text
        out.recipients.append(_found(r[1], action, text, remote))
    return out if out.recipients else None


_EXIM_LIST = re.compile(
    r"(?:address\(es\) failed|has not yet been delivered to[^\n]*?|delivered is|delivered are)"
    r":\s*\n",
    re.I,
)
# where the remote's reply starts, most specific first (Exim 4.96: "… host: H (IP) reason: …")
_EXIM_SAID = (
    re.compile(r"\breason:\s*", re.I),
    re.compile(r"\bsaid:\s*", re.I),
    re.compile(r"SMTP error from remote (?:mail )?server after [A-Z ]+?(?::\s*<[^>]*>)?:\s*", re.I),
)


def exim(body: str, subject: str) -> Recognised | None:
    if "This message was created automatically by mail delivery software" not in body:
        return None
    m = _EXIM_LIST.search(body)
    if m is None:
        return None
    action = "delayed" if "not yet been delivered" in body else "failed"
    out = Recognised()
    for para in islice(_paragraphs(body[m.end() :]), MAX_RECIPIENTS):
        lines = para.splitlines()
        first = lines[0].strip()
        if not lines[0].startswith(" ") or "@" not in first or " " in first:
            break
        rest = " ".join(x.strip() for x in lines[1:])
        host = re.search(r"\bhost\s+(\S+)\s+\[[^\]]+\]", rest)
        said = next((m for p in _EXIM_SAID if (m := p.search(rest))), None)
        text = rest[said.end() :] if said else rest
        out.recipients.append(_found(first.strip("<>"), action, text, host[1] if host else None))
    return out if out.recipients else None


def sendmail(body: str, subject: str) -> Recognised | None:
    m = re.search(
        r"-+ The following addresses had (permanent fatal|transient non-fatal) errors -*", body
    )
    if m is None:
        return None
    action = "failed" if m[1] == "permanent fatal" else "delayed"
    talking = re.search(r"while talking to (\S+?)\.?:", body)
    out = Recognised()
    block = body[m.end() :].split("-----", 1)[0]
    # without a "(reason: …)" the transcript's "<addr>... Deferred: …" line says it
    transcript = {t[1]: t[2].strip() for t in _SENDMAIL_TRANSCRIPT.finditer(body)}
    for r in islice(_SENDMAIL_RCPT.finditer(block), MAX_RECIPIENTS):
        said = r[2] or transcript.get(r[1])
        out.recipients.append(_found(r[1], action, said, talking[1] if talking else None))
    return out if out.recipients else None


_SENDMAIL_RCPT = re.compile(
    r"^<([^>\n]+)>[ \t]*(?:\n[ \t]*\(reason:[ \t]*([^\n]*?)\)[ \t]*$)?", re.M
)
_SENDMAIL_TRANSCRIPT = re.compile(r"^<([^>\n]+)>\.\.\.[ \t]*([^\n]+)$", re.M)


_QMAIL_START = re.compile(
    r"(?:This is the qmail-send program at (\S+?)\.?\s*$"
    r"|Sorry, we were unable to deliver your message to the following address)",
    re.M,
)


_QMAIL_RCPT = re.compile(r"^<([^>\n]+)>:[ \t]*\n((?:[ \t]*\S[^\n]*(?:\n|\Z))+)", re.M)


def qmail(body: str, subject: str) -> Recognised | None:
    """qmail-send and the qmail-style bounces Yahoo writes."""
    m = _QMAIL_START.search(body)
    if m is None:
        return None
    action = "delayed" if "still trying" in body.lower() else "failed"
    out = Recognised(reporting_mta=m[1])
    text = body[m.end() :].split("--- Below this line is a copy of the message", 1)[0]
    for r in islice(_QMAIL_RCPT.finditer(text), MAX_RECIPIENTS):
        reason = " ".join(r[2].split())
        remote = re.match(r"(\S+) does not like recipient|Connected to (\S+) but", reason)
        said = re.search(r"Remote host said:\s*(.*?)(?:\s*Giving up on \S+)?$", reason)
        found = _found(r[1], action, said[1] if said else reason)
        if remote:
            found.remote_mta = (remote[1] or remote[2]).rstrip(".")
        qcode = re.search(r"\(#([245]\.\d{1,3}\.\d{1,3})\)", reason)
        if found.status is None and qcode:  # qmail's own code for the failure: carried, not made up
            found.status = qcode[1]
        out.recipients.append(found)
    return out if out.recipients else None


_ADDRESS = re.compile(r"[^\s@<>]+@[^\s@<>]+")
_EXCHANGE_SAID = re.compile(r"(?:Remote Server|Server at (\S+)(?: \([^)]*\))?) returned '", re.I)


def exchange(body: str, subject: str) -> Recognised | None:
    m = re.search(r"Diagnostic information for administrators:", body)
    if m is None:
        return None
    tail = body[m.end() :].split("Original message headers:", 1)[0]
    gen = re.search(r"Generating server:\s*(\S+)", tail)
    out = Recognised(reporting_mta=gen[1] if gen else None)
    # line by line, not one regex over the text: an address line is short, and a regex that
    # looks for one anywhere is quadratic on a hostile megabyte without line breaks
    lines = [x.strip() for x in tail.splitlines()]
    for i, line in enumerate(lines[:-1]):
        said = _EXCHANGE_SAID.match(lines[i + 1])
        if said is None or len(line) > 320 or not _ADDRESS.fullmatch(line):
            continue
        text = lines[i + 1][said.end() :]
        for more in lines[i + 2 : i + 20]:  # the reply may wrap; it ends at a closing quote
            if text.endswith("'") or not more:
                break
            text += " " + more
        out.recipients.append(_found(line, "failed", text.removesuffix("'"), said[1]))
        if len(out.recipients) >= MAX_RECIPIENTS:
            break
    return out if out.recipients else None


_GMAIL_TO = re.compile(
    r"(?:wasn't delivered to|Delivery to the following recipients? (?:failed permanently|"
    r"has been delayed|failed)):?\s*(\S+@[^\s,]+?)(?=[,.]?(?:\s|$))",
    re.I,
)
_GMAIL_SAID = re.compile(
    r"(?:The response from the remote server was|The error that the other server returned "
    r"was):\s*\n(.*?)(?:\n\s*\n|\Z)",
    re.S,
)


def gmail(body: str, subject: str) -> Recognised | None:
    said = _GMAIL_SAID.search(body)
    to = _GMAIL_TO.search(body)
    if said is None or to is None:
        return None
    delayed = "delayed" in subject.lower() or "has been delayed" in body
    remote = re.search(r"by ([\w.-]+?)\.? \[[\d.:a-fA-F]+\]", body)
    found = _found(
        to[1], "delayed" if delayed else "failed", said[1], remote[1] if remote else None
    )
    return Recognised(recipients=[found])


def ses_json(body: str, subject: str) -> Recognised | None:
    """An Amazon SES bounce notification (its JSON, alone or inside an SNS envelope)."""
    start = body.find("{")
    if start < 0 or ('"notificationType"' not in body and '"bounceType"' not in body):
        return None
    try:
        doc = json.loads(body[start : body.rfind("}") + 1])
        if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
            doc = json.loads(doc["Message"])
    except ValueError:
        return None
    bounce = doc.get("bounce") if isinstance(doc, dict) else None
    if not isinstance(bounce, dict):
        return None
    out = Recognised(reporting_mta=strip_type(_str(bounce.get("reportingMTA"))))
    for r in islice(bounce.get("bouncedRecipients") or (), MAX_RECIPIENTS):
        if isinstance(r, dict) and _str(r.get("emailAddress")):
            reply, diag_status, diag = split(_str(r.get("diagnosticCode")))
            status = normal_status(_str(r.get("status")) or "")
            action = _str(r.get("action"))
            address = str(r["emailAddress"])
            out.recipients.append(Found(address, action, status or diag_status, reply, diag))
    return out if out.recipients else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


RECOGNISERS: tuple[tuple[str, Callable[[str, str], Recognised | None]], ...] = (
    ("postfix", postfix),
    ("exim", exim),
    ("sendmail", sendmail),
    ("qmail", qmail),
    ("exchange", exchange),
    ("gmail", gmail),
    ("ses", ses_json),
)


def recognise(body: str, subject: str) -> Recognised | None:
    text = body.replace("\r\n", "\n")
    for _name, fn in RECOGNISERS:
        got = fn(text, subject)
        if got is not None:
            return got
    return None


__all__ = ["RECOGNISERS", "Recognised", "recognise"]
