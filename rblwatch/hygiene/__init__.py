"""Sender hygiene: what a receiver checks of a sender beside the blocklists.

Forward-confirmed reverse DNS of each sending IP, SPF authorising it for each domain, the
domains' DKIM keys and DMARC records (and MTA-STS / TLS-RPT when asked for). Each check is a
function of a `Dns` (the one lookup interface, `dns.py`) and its subject, returning one
`CheckResult` (`result.py`) that ends `pass`, `fail` (with a reason a person can act on) or
`error` (the DNS could not tell: never a change of what we believe).
"""
