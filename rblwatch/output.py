"""How check results are shown: the stable JSON of SPEC §9 and a table for people."""

from __future__ import annotations

import json
from typing import IO

from rblwatch.model import OutcomeKind
from rblwatch.scan import Report, Result


def result_json(r: Result) -> dict[str, object]:
    o = r.outcome
    return {
        "target": r.target.value,
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


def check_json(report: Report) -> dict[str, object]:
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


def write_check_json(report: Report, out: IO[str]) -> None:
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


def _what(r: Result) -> str:
    o = r.outcome
    if o.kind is OutcomeKind.ERROR:
        assert o.reason is not None
        return o.reason.value + (f": {o.detail}" if o.detail else "")
    text = "; ".join(dict.fromkeys(o.meanings))
    if o.txt:
        text = f"{text} — {o.txt}" if text else o.txt
    return text


def table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def check_table(report: Report) -> str:
    out = []
    if report.results:
        rows = [
            [r.target.value, r.lst.name, r.outcome.kind.value, ",".join(r.outcome.codes), _what(r)]
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
