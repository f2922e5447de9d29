"""Check kinds: what rblwatch can check about a target, one module each behind `CheckKind`.

`CHECK_KINDS` is the one map of them (blackbox_exporter's `Probers`); `subject_of` finds what
a scheduled name refers to and which kind checks it, and `subjects` lists every one the
scheduler runs: the DNS lists (checked by `dnsbl`) and the hygiene checks the target groups
ask for (`hygiene`). A new kind with subjects of its own adds them in these two functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from rblwatch.checks.base import CheckIO, CheckKind, CheckRun, IsNews, Probed, States
from rblwatch.checks.dnsbl import DnsblCheck
from rblwatch.checks.hygiene import HygieneCheck
from rblwatch.config import Config
from rblwatch.model import Subject

CHECK_KINDS: Mapping[str, Callable[[], CheckKind[Any]]] = MappingProxyType(
    {"dnsbl": DnsblCheck, "hygiene": HygieneCheck}
)


def subjects(cfg: Config) -> list[Subject]:
    """Everything the scheduler runs cycles of, each under its own name."""
    return [*cfg.subjects, *cfg.hygiene]


def subject_of(cfg: Config, name: str) -> tuple[str, Subject] | None:
    """The check kind (its CHECK_KINDS key) and subject a scheduled name stands for."""
    lst = next((lst for lst in cfg.subjects if lst.name == name), None)
    if lst is not None:
        return "dnsbl", lst
    check = next((h for h in cfg.hygiene if h.name == name), None)
    return None if check is None else ("hygiene", check)


__all__ = [
    "CHECK_KINDS",
    "CheckIO",
    "CheckKind",
    "CheckRun",
    "IsNews",
    "Probed",
    "States",
    "subject_of",
    "subjects",
]
