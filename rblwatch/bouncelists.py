"""What `explain` may name a list by (`ListFacts`), from the catalogue and the config.

An adapter: it reads the catalogue (a file) and a loaded config. Every catalogue list is here,
active or not — a receiver may still quote a zone long dead — then the config's own lists (a
custom list's zone, or a catalogue list's overrides, such as its delist page), then the
provider-run lists that no DNS query can ask (`catalogue.providers()`).
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
    """The catalogue's lists and providers, with the config's lists (by name) over them."""
    known = catalogue.catalogue().values()
    facts: dict[str, ListFacts] = {lst.name: _dns_facts(lst) for lst in known}
    if cfg is not None:
        facts.update((lst.name, _dns_facts(lst)) for lst in cfg.lists)
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
