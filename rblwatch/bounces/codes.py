"""What the codes in a bounce mean: RFC 3463 enhanced status codes and RFC 5321 reply codes.

Pure data and two look-ups. The enhanced codes are those of the IANA "Enumerated Status Codes"
registry (RFC 3463, 3886, 4468, 4954, 5248, 6531, 6710, 7293, 7372, 7505, 8617, 8689 and the
registry's own entries); the reply codes those of RFC 5321 §4.2 plus RFC 4954 (AUTH) and
RFC 7504 (521, 556). A code that is well formed but not registered falls back to what its
parts still say — X.Y.Z to X.Y.0, an unknown subject to X.0.0, a reply code to its class —
so an operator always gets a meaning; malformed input gets None.
"""

from __future__ import annotations

import re

CLASSES = {
    "2": "Success",
    "4": "Persistent Transient Failure",
    "5": "Permanent Failure",
}

SUBJECTS = {
    "0": "Other or Undefined Status",
    "1": "Addressing Status",
    "2": "Mailbox Status",
    "3": "Mail System Status",
    "4": "Network and Routing Status",
    "5": "Mail Delivery Protocol Status",
    "6": "Message Content or Media Status",
    "7": "Security or Policy Status",
}

# "subject.detail" → the registry's description (the class is added in front)
DETAILS = {
    "0.0": "Other undefined status",
    "1.0": "Other address status",
    "1.1": "Bad destination mailbox address",
    "1.2": "Bad destination system address",
    "1.3": "Bad destination mailbox address syntax",
    "1.4": "Destination mailbox address ambiguous",
    "1.5": "Destination address valid",
    "1.6": "Destination mailbox has moved, no forwarding address",
    "1.7": "Bad sender's mailbox address syntax",
    "1.8": "Bad sender's system address",
    "1.9": "Message relayed to non-compliant mailer",  # RFC 3886
    "1.10": "Recipient address has null MX",  # RFC 7505
    "2.0": "Other or undefined mailbox status",
    "2.1": "Mailbox disabled, not accepting messages",
    "2.2": "Mailbox full",
    "2.3": "Message length exceeds administrative limit",
    "2.4": "Mailing list expansion problem",
    "3.0": "Other or undefined mail system status",
    "3.1": "Mail system full",
    "3.2": "System not accepting network messages",
    "3.3": "System not capable of selected features",
    "3.4": "Message too big for system",
    "3.5": "System incorrectly configured",
    "3.6": "Requested priority was changed",  # RFC 6710
    "4.0": "Other or undefined network or routing status",
    "4.1": "No answer from host",
    "4.2": "Bad connection",
    "4.3": "Directory server failure",
    "4.4": "Unable to route",
    "4.5": "Mail system congestion",
    "4.6": "Routing loop detected",
    "4.7": "Delivery time expired",
    "5.0": "Other or undefined protocol status",
    "5.1": "Invalid command",
    "5.2": "Syntax error",
    "5.3": "Too many recipients",
    "5.4": "Invalid command arguments",
    "5.5": "Wrong protocol version",
    "5.6": "Authentication exchange line is too long",  # RFC 4954
    "6.0": "Other or undefined media error",
    "6.1": "Media not supported",
    "6.2": "Conversion required and prohibited",
    "6.3": "Conversion required but not supported",
    "6.4": "Conversion with loss performed",
    "6.5": "Conversion failed",
    "6.6": "Message content not available",  # RFC 4468
    "6.7": "Non-ASCII addresses not permitted for that sender/recipient",  # RFC 6531
    "6.8": "UTF-8 string reply is required, but not permitted by the SMTP client",  # RFC 6531
    "6.9": "UTF-8 header message cannot be transferred to one or more recipients",  # RFC 6531
    "6.10": "UTF-8 string reply is required, but not permitted by the SMTP client",  # RFC 6531
    "7.0": "Other or undefined security status",
    "7.1": "Delivery not authorized, message refused",
    "7.2": "Mailing list expansion prohibited",
    "7.3": "Security conversion required but not possible",
    "7.4": "Security features not supported",
    "7.5": "Cryptographic failure",
    "7.6": "Cryptographic algorithm not supported",
    "7.7": "Message integrity failure",
    "7.8": "Authentication credentials invalid",  # RFC 4954
    "7.9": "Authentication mechanism is too weak",  # RFC 4954
    "7.10": "Encryption needed",  # RFC 5248
    "7.11": "Encryption required for requested authentication mechanism",  # RFC 4954
    "7.12": "A password transition is needed",  # RFC 4954
    "7.13": "User account disabled",  # RFC 5248
    "7.14": "Trust relationship required",  # RFC 5248
    "7.15": "Priority level is too low",  # RFC 6710
    "7.16": "Message is too big for the specified priority",  # RFC 6710
    "7.17": "Mailbox owner has changed",  # RFC 7293
    "7.18": "Domain owner has changed",  # RFC 7293
    "7.19": "RRVS test cannot be completed",  # RFC 7293
    "7.20": "No passing DKIM signature found",  # RFC 7372
    "7.21": "No acceptable DKIM signature found",  # RFC 7372
    "7.22": "No valid author-matched DKIM signature found",  # RFC 7372
    "7.23": "SPF validation failed",  # RFC 7372
    "7.24": "SPF validation error",  # RFC 7372
    "7.25": "Reverse DNS validation failed",  # RFC 7372
    "7.26": "Multiple authentication checks failed",  # RFC 7372
    "7.27": "Sender address has null MX",  # RFC 7505
    "7.28": "Mail flood detected",  # IANA registry
    "7.29": "ARC validation failure",  # RFC 8617
    "7.30": "REQUIRETLS support required",  # RFC 8689
}

REPLIES = {
    "211": "System status, or system help reply",
    "214": "Help message",
    "220": "Service ready",
    "221": "Service closing transmission channel",
    "235": "Authentication succeeded",  # RFC 4954
    "250": "Requested mail action okay, completed",
    "251": "User not local; will forward",
    "252": "Cannot VRFY user, but will accept message and attempt delivery",
    "334": "Authentication challenge",  # RFC 4954
    "354": "Start mail input",
    "421": "Service not available, closing transmission channel",
    "432": "A password transition is needed",  # RFC 4954
    "450": "Requested mail action not taken: mailbox unavailable",
    "451": "Requested action aborted: local error in processing",
    "452": "Requested action not taken: insufficient system storage",
    "454": "Temporary authentication failure",  # RFC 4954
    "455": "Server unable to accommodate parameters",
    "500": "Syntax error, command unrecognized",
    "501": "Syntax error in parameters or arguments",
    "502": "Command not implemented",
    "503": "Bad sequence of commands",
    "504": "Command parameter not implemented",
    "521": "Host does not accept mail",  # RFC 7504
    "530": "Authentication required",  # RFC 4954
    "534": "Authentication mechanism is too weak",  # RFC 4954
    "535": "Authentication credentials invalid",  # RFC 4954
    "538": "Encryption required for requested authentication mechanism",  # RFC 4954
    "550": "Requested action not taken: mailbox unavailable",
    "551": "User not local; please try <forward-path>",
    "552": "Requested mail action aborted: exceeded storage allocation",
    "553": "Requested action not taken: mailbox name not allowed",
    "554": "Transaction failed",
    "555": "MAIL FROM/RCPT TO parameters not recognized or not implemented",
    "556": "Domain does not accept mail",  # RFC 7504
}

REPLY_CLASSES = {
    "2": "Positive completion reply",
    "3": "Positive intermediate reply",
    "4": "Transient negative completion reply",
    "5": "Permanent negative completion reply",
}

# RFC 3463 §2: class 2/4/5, subject and detail of one to three digits, no leading zeros
# beyond a single 0 (we accept them anyway: a bounce that writes 5.07.001 still means 5.7.1).
STATUS_RE = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
REPLY_RE = re.compile(r"[2-5][0-5]\d")


def normal_status(code: str) -> str | None:
    """'5.07.001' → '5.7.1'; None when it is not an enhanced status code."""
    m = STATUS_RE.fullmatch(code.strip())
    if m is None:
        return None
    return f"{m[1]}.{int(m[2])}.{int(m[3])}"


def status_meaning(code: str) -> str | None:
    """'5.7.1' → 'Permanent Failure: Security or Policy Status: Delivery not authorized, …'."""
    norm = normal_status(code)
    if norm is None:
        return None
    klass, subject, detail = norm.split(".")
    text = DETAILS.get(f"{subject}.{detail}") or DETAILS.get(f"{subject}.0") or DETAILS["0.0"]
    subject_text = SUBJECTS.get(subject, SUBJECTS["0"])
    return f"{CLASSES[klass]}: {subject_text}: {text}"


def reply_meaning(code: str) -> str | None:
    """'550' → 'Requested action not taken: mailbox unavailable'; an unregistered but well-formed
    code gets its class ('Permanent negative completion reply')."""
    code = code.strip()
    if REPLY_RE.fullmatch(code) is None:
        return None
    return REPLIES.get(code) or REPLY_CLASSES[code[0]]


__all__ = ["normal_status", "reply_meaning", "status_meaning"]
