"""What one hygiene check found: `pass`, `fail` with a reason, or `error`.

Pure. `result` is the short machine word ("softfail", "no_ptr", "revoked"); `reason` the
sentence for a person (set whenever the outcome is not `pass`); `detail` facts for output and
JSON (the record seen, the key size, warnings); `trace` the steps an evaluation took (SPF's
mechanism chain), shown on request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from rblwatch.model import HYGIENE_CHECKS, hygiene_key

Verdict = Literal["pass", "fail", "error"]
CHECKS = HYGIENE_CHECKS
DEFAULT_CHECKS = ("fcrdns", "spf", "dmarc")  # dkim joins them when selectors are given

_NO_DETAIL: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str  # one of CHECKS
    target: str  # the domain checked, or the IP for fcrdns
    outcome: Verdict
    result: str  # the short word: "pass", "softfail", "no_ptr", "missing", "temperror", …
    reason: str = ""  # what is wrong and what to do, when outcome is not "pass"
    ip: str | None = None  # the sending IP (spf, fcrdns); None for a domain's own checks
    selector: str | None = None  # dkim only
    detail: Mapping[str, object] = field(default_factory=lambda: _NO_DETAIL)
    trace: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The pair's target as the store keeps it: unique per (check, what is checked)."""
        return hygiene_key(self.check, self.target, self.ip, self.selector)


def passed(
    check: str,
    target: str,
    result: str = "pass",
    *,
    ip: str | None = None,
    selector: str | None = None,
    detail: Mapping[str, object] | None = None,
    trace: tuple[str, ...] = (),
) -> CheckResult:
    return CheckResult(check, target, "pass", result, "", ip, selector, _frozen(detail), trace)


def failed(
    check: str,
    target: str,
    result: str,
    reason: str,
    *,
    ip: str | None = None,
    selector: str | None = None,
    detail: Mapping[str, object] | None = None,
    trace: tuple[str, ...] = (),
) -> CheckResult:
    return CheckResult(check, target, "fail", result, reason, ip, selector, _frozen(detail), trace)


def errored(
    check: str,
    target: str,
    reason: str,
    *,
    ip: str | None = None,
    selector: str | None = None,
    detail: Mapping[str, object] | None = None,
    trace: tuple[str, ...] = (),
) -> CheckResult:
    """The DNS could not tell (timeout, SERVFAIL, …): `result` is "temperror"."""
    return CheckResult(
        check, target, "error", "temperror", reason, ip, selector, _frozen(detail), trace
    )


def _frozen(detail: Mapping[str, object] | None) -> Mapping[str, object]:
    return _NO_DETAIL if not detail else MappingProxyType(dict(detail))


__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "CheckResult",
    "Verdict",
    "errored",
    "failed",
    "passed",
]
