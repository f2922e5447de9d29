"""Check kinds: what rblwatch can check about a target, one module each behind `CheckKind`.

`CHECK_KINDS` is the one map of them (blackbox_exporter's `Probers`); `subject_of` finds what
a scheduled name refers to and which kind checks it, and `subjects` lists every one the
scheduler runs. Today every subject is a DNS list, checked by `dnsbl`; a new kind with
subjects of its own adds them in these two functions (from its config section).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from rblwatch.checks.base import CheckIO, CheckKind, CheckRun, IsNews, Probed, States
from rblwatch.checks.dnsbl import DnsblCheck
from rblwatch.config import Config
from rblwatch.model import DnsList

CHECK_KINDS: Mapping[str, Callable[[], CheckKind[Any]]] = MappingProxyType({"dnsbl": DnsblCheck})


def subjects(cfg: Config) -> list[DnsList]:
    """Everything the scheduler runs cycles of, each under its own name."""
    return list(cfg.subjects)


def subject_of(cfg: Config, name: str) -> tuple[str, DnsList] | None:
    """The check kind (its CHECK_KINDS key) and subject a scheduled name stands for."""
    lst = next((lst for lst in cfg.subjects if lst.name == name), None)
    return None if lst is None else ("dnsbl", lst)


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
