"""Which receivers an event goes to: by event kind and target group; never allow-list hits.

Pure: it takes the receivers as values (anything with a name, the event kinds and the groups
it wants), so the engine, which writes the outbox rows, and the alert sender, which re-posts
firing alerts, share the rule without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from rblwatch.model import Event, Purpose, Subject


class Wants(Protocol):
    """What routing reads of a receiver (config's `Receiver` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def events(self) -> Sequence[str]: ...
    @property
    def groups(self) -> Sequence[str]: ...


def wants(receiver: Wants, event: Event) -> bool:
    """A receiver wants an event of a kind it names, of a group it names (or of any group when
    it names none); list events have no group and go to every receiver of their kind."""
    if event.kind.value not in receiver.events:
        return False
    return not receiver.groups or event.group is None or event.group in receiver.groups


def receivers_for(receivers: Iterable[Wants], lst: Subject) -> Callable[[Event], list[str]]:
    """The store's `ReceiversFor` for the events of one list."""
    chosen = tuple(receivers)

    def pick(event: Event) -> list[str]:
        if lst.purpose is Purpose.ALLOW and event.target is not None:
            return []  # an allow-list hit is good news, never an alert (SPEC §2)
        return [r.name for r in chosen if wants(r, event)]

    return pick


def receivers_for_all(receivers: Iterable[Wants]) -> Callable[[Event], list[str]]:
    """The store's `ReceiversFor` for events of no list (the resolver's): every receiver
    that takes the event's kind, whatever its groups (every list is concerned)."""
    chosen = tuple(receivers)

    def pick(event: Event) -> list[str]:
        return [r.name for r in chosen if event.kind.value in r.events]

    return pick
