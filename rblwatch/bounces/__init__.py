"""Bounces explained: a returned message → what happened to each recipient, why, and which
blocklist (if any) the receiver named — then, on request, whether the sending IP is still on it.

`model` holds the shapes (and the one JSON form), `codes` the meanings of enhanced status codes
(RFC 3463 and the IANA registry) and SMTP reply codes (RFC 5321), `parse` turns raw bytes into
an `Explained` message (RFC 3464 / 6533 DSNs and the common MTAs' plain-text bounces,
auto-replies and feedback reports told apart; `mta` the plain-text formats, `diagnostic` one
recipient's codes and cleaned diagnostic, `ips` which addresses look public), `classify` gives
each failed recipient its cause and the lists named. All are pure: no sockets, no files.
"""
