"""The bounce corpus: each tests/data/bounces/NAME.eml explained must equal NAME.json exactly,
and the JSON must agree with the hand labels in tests/data/bounces/labels.tsv (written from
what each message says, apart from the JSON, so that neither is a copy of explain's output)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rblwatch.bounces.explain import ListFacts, explain
from rblwatch.bounces.model import message_json

CORPUS = Path(__file__).parent / "data" / "bounces"


def _labels() -> tuple[dict[str, str], list[tuple[str, str, str | None, str | None, str]]]:
    kinds: dict[str, str] = {}
    rows: list[tuple[str, str, str | None, str | None, str]] = []
    for line in (CORPUS / "labels.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, kind, address, status, reply, cause = line.split("\t")
        kinds[name] = kind
        if address != "-":
            rows.append((name, address, None if status == "-" else status,
                         None if reply == "-" else reply, cause))  # fmt: skip
    return kinds, rows


KINDS, LABELS = _labels()

# a few catalogue lists as the catalogue states them, plus the provider-run lists
LISTS = (
    ListFacts("spamhaus-zen", ("zen.spamhaus.org",), "https://check.spamhaus.org/"),
    ListFacts("spamhaus-sbl", ("sbl.spamhaus.org",), "https://check.spamhaus.org/"),
    ListFacts("cbl", ("cbl.abuseat.org",), "https://check.spamhaus.org/"),
    ListFacts("barracuda", ("b.barracudacentral.org",), "https://www.barracudacentral.org/lookups"),
    ListFacts("spamcop", ("bl.spamcop.net",), "https://www.spamcop.net/bl.shtml"),
    ListFacts("microsoft", (), "https://sender.office.com/", queryable=False),
    ListFacts("proofpoint", (), "https://ipcheck.proofpoint.com/", queryable=False),
)

NAMES = sorted(p.stem for p in CORPUS.glob("*.eml"))


def test_the_corpus_covers_each_format_and_is_labelled() -> None:
    assert len(NAMES) >= 30
    assert sorted(KINDS) == NAMES
    assert sorted({p.stem for p in CORPUS.glob("*.json")}) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_explained_as_its_json_says(name: str) -> None:
    raw = (CORPUS / f"{name}.eml").read_bytes()
    want = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    assert message_json(explain(raw, f"{name}.eml", LISTS)) == want


@pytest.mark.parametrize("name", NAMES)
def test_the_json_agrees_with_the_hand_labels(name: str) -> None:
    want = json.loads((CORPUS / f"{name}.json").read_text(encoding="utf-8"))
    assert want["kind"] == KINDS[name]
    rows = [(r["address"], r["status"], r["reply_code"], r["cause"]) for r in want["recipients"]]
    labelled = [(a, s, c, k) for f, a, s, c, k in LABELS if f == name]
    assert rows == labelled


def accuracy() -> dict[str, float]:
    """Across the corpus, the share of labelled recipients whose status, reply code and cause
    explain() gets right (against the hand labels, not the JSON)."""
    got: dict[tuple[str, str | None], tuple[str | None, str | None, str]] = {}
    for name in NAMES:
        raw = (CORPUS / f"{name}.eml").read_bytes()
        for r in explain(raw, f"{name}.eml", LISTS).recipients:
            got[(name, r.address)] = (r.status, r.reply_code, r.cause)
    n = len(LABELS)
    hits = {"status": 0, "reply_code": 0, "cause": 0, "all": 0}
    for f, a, s, c, k in LABELS:
        g = got.get((f, a))
        if g is None:
            continue
        hits["status"] += g[0] == s
        hits["reply_code"] += g[1] == c
        hits["cause"] += g[2] == k
        hits["all"] += g == (s, c, k)
    return {key: v / n for key, v in hits.items()}


def test_accuracy_across_the_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    acc = accuracy()
    with capsys.disabled():
        print(
            f"\nbounce corpus: {len(NAMES)} messages, {len(LABELS)} recipients; "
            + ", ".join(f"{k} {v:.0%}" for k, v in acc.items())
        )
    assert acc == {"status": 1.0, "reply_code": 1.0, "cause": 1.0, "all": 1.0}
