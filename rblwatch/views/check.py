"""How `rblwatch check` results are shown: the stable JSON of SPEC §9 and a table for people.

The views read a scan's report through the small protocols below (a `scan.Report` fits them),
so they stay free of the resolver and the sockets that produced it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Protocol

from rblwatch.model import DnsList, Health, Outcome, OutcomeKind, Target, hostname_of
from rblwatch.views.tables import table


class CheckResult(Protocol):
    """One target on one list (`scan.Result`)."""

    @property
    def target(self) -> Target: ...
    @property
    def lst(self) -> DnsList: ...
    @property
    def outcome(self) -> Outcome: ...


class Verdict(Protocol):
    """A list's health as its test points showed it (`health.Verdict`)."""

    @property
    def health(self) -> Health: ...
    @property
    def detail(self) -> str: ...
    @property
    def healthy(self) -> bool: ...


class CheckedList(Protocol):
    """A list as the scan used it (`scan.Plan`)."""

    @property
    def lst(self) -> DnsList: ...
    @property
    def verdict(self) -> Verdict: ...


class Counts(Protocol):
    """Every lookup's outcome, counted (`scan.Summary`)."""

    @property
    def lookups(self) -> int: ...
    @property
    def listed(self) -> int: ...
    @property
    def clean(self) -> int: ...
    @property
    def error(self) -> int: ...
    @property
    def allowlisted(self) -> int: ...


class CheckReport(Protocol):
    """What a check found (`scan.Report`)."""

    @property
    def plans(self) -> Sequence[CheckedList]: ...
    @property
    def results(self) -> Sequence[CheckResult]: ...
    @property
    def summary(self) -> Counts: ...


def result_json(r: CheckResult) -> dict[str, object]:
    o = r.outcome
    return {
        "target": r.target.value,
        "hostname": hostname_of(r.target),
        "list": r.lst.name,
        "outcome": o.kind.value,
        "codes": list(o.codes),
        "meanings": list(o.meanings),
        "reason": o.reason.value if o.reason is not None else None,
        "detail": o.detail or None,
        "txt": o.txt,
        "ttl": o.ttl,
        "delist_url": r.lst.delist_url if o.kind is OutcomeKind.LISTED else None,
    }


def check_json(report: CheckReport) -> dict[str, object]:
    s = report.summary
    return {
        "results": [result_json(r) for r in report.results],
        "lists": [
            {
                "name": p.lst.name,
                "zone": p.lst.shown_zone,
                "health": p.verdict.health.value,
                "health_detail": p.verdict.detail or None,
            }
            for p in report.plans
        ],
        "summary": {
            "lookups": s.lookups,
            "listed": s.listed,
            "clean": s.clean,
            "error": s.error,
            "allowlisted": s.allowlisted,
        },
    }


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def write_check_json(report: CheckReport, out: IO[str]) -> None:
    """`check_json` written with one result per line.

    Readable in a terminal and diffable, and fast: json's indent mode is pure Python, which
    on a big scan costs more than the C encoder writing each result on its own line.
    """
    doc = check_json(report)
    results = doc.pop("results")
    assert isinstance(results, list)
    out.write('{"results": [')
    encode = _ENCODER.encode  # json.dumps with options builds a new encoder on every call
    out.write(",".join("\n " + encode(r) for r in results))
    out.write("\n ]")
    for key, value in doc.items():
        out.write(f",\n {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    out.write("\n}\n")


def _what(r: CheckResult) -> str:
    o = r.outcome
    if o.kind is OutcomeKind.ERROR:
        assert o.reason is not None
        return o.reason.value + (f": {o.detail}" if o.detail else "")
    text = "; ".join(dict.fromkeys(o.meanings))
    if o.txt:
        text = f"{text} — {o.txt}" if text else o.txt
    return text


def _shown(target: Target) -> str:
    name = hostname_of(target)
    return target.value if name is None else f"{target.value} ({name})"


def check_table(report: CheckReport) -> str:
    out = []
    if report.results:
        rows = [
            [
                _shown(r.target),
                r.lst.name,
                r.outcome.kind.value,
                ",".join(r.outcome.codes),
                _what(r),
            ]
            for r in report.results
        ]
        out.append(table(["TARGET", "LIST", "OUTCOME", "CODES", "DETAIL"], rows))
        out.append("\n")
    unhealthy = [p for p in report.plans if not p.verdict.healthy]
    for p in unhealthy:
        out.append(f"list {p.lst.name} is {p.verdict.health.value}: {p.verdict.detail}\n")
    s = report.summary
    out.append(
        f"{s.lookups} lookups on {len(report.plans)} lists: {s.listed} listed, {s.clean} clean, "
        f"{s.error} error, {s.allowlisted} allowlisted\n"
    )
    return "".join(out)


__all__ = ["CheckReport", "check_json", "check_table", "result_json", "write_check_json"]
