"""What `explain` may name a list by (`ListFacts`), from the catalogue and the config.

An adapter: it reads the catalogue (a file) and a loaded config. The config's own lists (a
custom list's zone, or a catalogue list's overrides, such as its delist page), every catalogue
list, active or not — a receiver may still quote a zone long dead — and the provider-run lists
that no DNS query can ask (`catalogue.providers()`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rblwatch import catalogue
from rblwatch.bounces.explain import ListFacts
from rblwatch.config import Config
from rblwatch.model import DnsList

# the secret first labels of a keyed zone: "${SPAMHAUS_DQS_KEY}." as the catalogue writes it,
# "***." as a config shows it once expanded; a bounce never quotes the key
_KEY_LABELS = re.compile(r"^(?:(?:\$\{[^}]*\}|\*\*\*)\.)+")


def list_facts(cfg: Config | None = None) -> tuple[ListFacts, ...]:
    """The config's lists first, then the catalogue's lists and providers not named alike.

    First, because a zone both know (the config's `name: my-zen, use: spamhaus-zen`) should
    be named as the config names it: that is the name its listing history is kept under.
    """
    facts: dict[str, ListFacts] = {}
    for lst in [*(cfg.lists if cfg is not None else ()), *catalogue.catalogue().values()]:
        facts.setdefault(lst.name, _dns_facts(lst))
    for p in catalogue.providers().values():
        facts.setdefault(p.name, ListFacts(p.name, p.names(), p.delist_url, queryable=False))
    return tuple(facts.values())


def _dns_facts(lst: DnsList) -> ListFacts:
    return ListFacts(lst.name, tuple(_zones(lst)), lst.delist_url, queryable=True)


def _zones(lst: DnsList) -> Iterable[str]:
    """The zone a bounce may quote: for a keyed zone, the part after the key."""
    shown = lst.shown_zone
    bare = _KEY_LABELS.sub("", shown)
    return (bare.lower(),) if bare else ()


__all__ = ["list_facts"]
