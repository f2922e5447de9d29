"""The daemon's bounce reader: each configured mailbox's new messages, read once, explained,
and a bounce that blames a target raised as a `bounce` event on it, with a re-check.

An adapter. Every `bounces.interval` this instance (alone, or the leader of several) asks each
source for the messages whose key the store has not seen — the keys are kept as the `seen` set
of the pseudo-list `bounces:<source>`, so a restart or a `kill -9` reads nothing twice: the keys
and the events are written in one commit per source, after the explaining. A recipient whose
sending IP is a configured target (else the domain its original was sent from, a domain
target) gives one `bounce` event (its cause, status, the list it
named, the diagnostic) with its outbox rows; any other is only counted
(`rblwatch_bounces_total{cause,group=""}`). Then each blamed target is re-checked at once on
each configured list the bounce named: a confirmation round of that one target, within the
list's health and daily budget; its outcome goes through `schedule.confirm` like any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from rblwatch.alerts.routing import wants
from rblwatch.bouncelists import list_facts
from rblwatch.bounces.explain import ListFacts, explain
from rblwatch.bounces.model import Explained, Recipient
from rblwatch.cluster import Fence
from rblwatch.config import Config
from rblwatch.config.model import BounceSource
from rblwatch.engine import Engine
from rblwatch.mailbox import MailboxError, source_of
from rblwatch.model import CycleCommit, Event, EventKind, Kind, Target
from rblwatch.runtime import Runtime
from rblwatch.store import Fenced, StoreError

log = logging.getLogger("rblwatch.bounces")

MAX_DIAGNOSTIC = 500  # characters of a diagnostic kept in an event
IDLE_S = 5.0  # how often to look again when no source is configured (a reload may add one)

Fetched = list[tuple[str, bytes | None]]  # (key, raw; None: too big to read, only remembered)
Facts = Callable[[Config], Sequence[ListFacts]]
Fetch = Callable[[BounceSource, set[str], Callable[[], bool]], Fetched]
# a key no mailbox makes, remembered once a source's first reading is done: the messages that
# were in the mailbox before are remembered, not alerted (a new source on a full mailbox, or a
# renamed one, must not page about last year's bounces)
BASELINE = "~baseline"
# causes of the recipient's own making: counted, never an event on the sender
NOT_THE_SENDERS = frozenset({"recipient"})
MAX_PER_ROUND = 1000  # messages read from one source per round: a full mailbox is read in turns


def fetch(source: BounceSource, seen: set[str], stop: Callable[[], bool]) -> Fetched:
    """A source's messages not seen yet (at most MAX_PER_ROUND), read in a worker thread;
    `stop()` ends the read between two messages (the daemon stopping must not wait for a
    slow server's whole folder)."""
    out: Fetched = []
    for m in source_of(source).fetch_new(seen.__contains__):
        out.append((m.key, m.raw))
        if len(out) >= MAX_PER_ROUND or stop():
            break
    return out


def seen_name(source: str) -> str:
    """The pseudo-list whose `seen` set remembers a source's messages."""
    return f"bounces:{source}"


class BounceWatcher:
    def __init__(
        self,
        runtime: Runtime,
        engine: Engine,
        facts: Facts = list_facts,
        fetch: Fetch = fetch,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rt = runtime
        self.engine = engine
        self.facts = facts
        self.fetch = fetch  # (the config's source, keys seen) -> the new messages, in a thread
        self.clock = clock

    async def run(self) -> None:
        """Poll until cancelled; the config is read afresh each round (reloads apply)."""
        while True:
            cfg = self.rt.config
            if cfg.bounces is None or not cfg.bounces.sources:
                await asyncio.sleep(IDLE_S)
                continue
            if self.engine.leads():
                try:
                    await self.poll()
                except Exception:  # one bad round must not end the reader
                    log.exception("bounces: a round failed")
            await asyncio.sleep(cfg.bounces.interval)

    async def poll(self) -> list[Event]:
        """One round over every source: the events raised."""
        cfg = self.rt.config
        if cfg.bounces is None:
            return []
        found = await self.engine.inventory.current(cfg)
        targets = {t.value: t for t in found.targets}
        facts = self.facts(cfg)
        raised: list[Event] = []
        for source in cfg.bounces.sources:
            raised += await self._poll_source(cfg, source, targets, facts)
        return raised

    async def _poll_source(
        self,
        cfg: Config,
        source: BounceSource,
        targets: dict[str, Target],
        facts: Sequence[ListFacts],
    ) -> list[Event]:
        name = seen_name(source.name)
        try:
            seen = await self.rt.db.seen(name)
            got = await asyncio.to_thread(self.fetch, source, seen, lambda: self.rt.stopping)
        except StoreError as exc:
            log.warning("bounces: %s: the store did not answer: %s", name, exc)
            return []
        except MailboxError as exc:  # one line; the next round tries again
            errors = self.rt.stats.bounce_errors
            errors[source.name] = errors.get(source.name, 0) + 1
            log.warning("bounces: %s", exc)
            return []
        if BASELINE not in seen:
            return await self._baseline(name, got)
        if not got:
            return []
        events: list[Event] = []
        rechecks: set[tuple[str, str]] = set()
        for key, raw in got:
            if raw is None:
                log.warning("bounces: %s: message %s too big to read, skipped", name, key)
        readable = [(key, raw) for key, raw in got if raw is not None]
        # one thread hop for the round's messages (up to MAX_PER_ROUND), not one per message
        for explained in await asyncio.to_thread(
            lambda: [explain(raw, key, facts) for key, raw in readable]
        ):
            self._read(cfg, explained, targets, events, rechecks)
        commit = CycleCommit(list=name, seen=[key for key, _ in got], events=events)
        receivers = cfg.alerts.receivers
        try:
            written = await self.rt.db.commit(
                commit, lambda e: [r.name for r in receivers if wants(r, e)], self._fence()
            )
        except (StoreError, Fenced) as exc:
            log.warning("bounces: %s: not written, read again next round: %s", name, exc)
            return []
        self._count(written)
        for e in written:
            named = f" naming {e.list}" if e.list else ""
            log.warning("bounce %s: %s%s", e.target, ",".join(e.meanings), named)
        await self._recheck(rechecks)
        return written

    def _fence(self) -> Fence | None:
        """Written only while this instance still leads: a round can outlast the lead (a long
        fetch), and the new leader reads the same messages and raises the same events."""
        view = self.rt.view
        return None if view is None or view.solo else Fence(view.owner, leader=True)

    async def _baseline(self, name: str, got: Fetched) -> list[Event]:
        """A source's first reading: what is in the mailbox already is remembered, unread."""
        keys = [key for key, _ in got]
        done = len(got) < MAX_PER_ROUND  # a fuller mailbox takes a few rounds
        try:
            seen = keys + [BASELINE] * done
            await self.rt.db.commit(CycleCommit(list=name, seen=seen), fence=self._fence())
        except (StoreError, Fenced) as exc:
            log.warning("bounces: %s: not written, read again next round: %s", name, exc)
            return []
        if keys:
            log.info(
                "bounces: %s: %d messages already there remembered, not alerted", name, len(keys)
            )
        return []

    def _read(
        self,
        cfg: Config,
        explained: Explained,
        targets: dict[str, Target],
        events: list[Event],
        rechecks: set[tuple[str, str]],
    ) -> None:
        if explained.kind != "bounce":
            return
        configured = {lst.name: lst for lst in cfg.lists}
        for r in explained.recipients:
            # the sending IP blamed, else the domain the original was sent from
            target = blamed(r, explained, targets, cfg)
            group = target.group if target is not None else ""
            key = (r.cause, group)
            self.rt.stats.bounces[key] = self.rt.stats.bounces.get(key, 0) + 1
            if target is None or r.cause in NOT_THE_SENDERS:
                continue
            events.append(bounce_event(r, target, self.clock()))
            for n in r.lists:
                lst = configured.get(n.name or "")
                if lst is not None and lst.checks(target.kind):  # a list that looks it up
                    rechecks.add((lst.name, target.value))

    async def _recheck(self, rechecks: set[tuple[str, str]]) -> None:
        for list_name, target in sorted(rechecks):
            try:
                report = await self.engine.cycle(list_name, only={target})
            except Exception as exc:  # a re-check is best effort: the list's cycle comes anyway
                log.warning("bounces: re-check of %s on %s failed: %s", target, list_name, exc)
                continue
            log.info(
                "bounces: re-checked %s on %s%s",
                target,
                list_name,
                f" ({report.skipped})" if report.skipped else "",
            )

    def _count(self, events: Sequence[Event]) -> None:
        for e in events:
            self.rt.stats.events[e.kind] += 1
        if events and self.rt.on_events is not None:
            self.rt.on_events()


def blamed(
    r: Recipient, explained: Explained, targets: dict[str, Target], cfg: Config
) -> Target | None:
    """The target a bounced recipient blames: its sending IP; else the domain the original
    was sent from, when the bounce is about a domain (no sending IP known, a cause of the
    domain's records or content, or a domain list named) — not for an IP's listing."""
    target = targets.get(r.sending_ip or "")
    if target is not None or explained.sender_domain is None:
        return target
    domain_lists = {lst.name for lst in cfg.lists if lst.kind is Kind.DOMAIN}
    about_domain = (
        r.sending_ip is None
        or r.cause in ("authentication", "content")
        or any(n.name in domain_lists for n in r.lists)
    )
    return targets.get(explained.sender_domain) if about_domain else None


def bounce_event(r: Recipient, target: Target, at: float) -> Event:
    named = next((n.name for n in r.lists if n.name), "")
    domain = (r.address or "").rpartition("@")[2]
    diagnostic = (r.diagnostic or "")[:MAX_DIAGNOSTIC]
    return Event(
        kind=EventKind.BOUNCE,
        list=named,
        at=at,
        target=target.value,
        group=target.group,
        codes=(r.status or r.reply_code or "",),
        meanings=(r.cause,),
        detail=f"{domain}: {diagnostic}" if domain else diagnostic,
        hostname=target.source if target.source != target.value else None,
    )


__all__ = ["BASELINE", "BounceWatcher", "blamed", "bounce_event", "fetch", "seen_name"]
