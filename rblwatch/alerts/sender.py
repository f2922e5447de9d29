"""The alert sender: drains the store's outbox, one asyncio task per receiver (SPEC §12).

Semantics, and why:

- **In order, one at a time, per receiver.** A receiver sees an event only after every older
  event of its own, so a `listing.removed` can never overtake its `listing.created`. A
  retryable failure therefore holds the receiver's line: the oldest row waits out its backoff
  and nothing behind it is sent meanwhile (a receiver that fails one request is almost always
  failing all of them). Receivers are independent: one being down delays no other.
- **At-least-once.** A row leaves the outbox only after a 2xx answer (or when it is given up).
  A crash, a kill -9 or a SIGTERM mid-request leaves the row, which is sent again after the
  restart under the same `webhook-id`; receivers de-duplicate by it.
- **Outcomes.** 2xx: delivered. 408, 429, 5xx, timeouts and network errors: retried after
  `backoff.initial` doubling per failed attempt up to `backoff.max`, with jitter (a random
  50 to 100 % of that step, so senders restarted together do not retry in lock-step), or after the
  receiver's `Retry-After` (seconds or an HTTP date) when it sends one, capped at `backoff.max`.
  Anything else (other 4xx, and 3xx: redirects are not followed, the URL is wrong) fails for
  good. A row older than `max_age` (counted from the event) is dropped. Failures for good and
  drops are counted in `alert_failures`; every outcome is logged with the receiver's name,
  never its URL or secret.
- **Grouping** (a receiver's `group_wait`). The sender waits until the receiver's oldest due
  row is `group_wait` old (from its `created`, the event's time), then takes it and up to
  `group_max` - 1 rows right behind it (`Store.claim_deliveries`) and sends them as ONE
  message (the format's `batch_request`; a lone event goes as it always does). The batch is
  one delivery: a 2xx removes all its rows at once, a retryable failure retries them together
  with the head's backoff (rows that arrived meanwhile join the next attempt), a failure for
  good gives all of them up. The window lives in the outbox, not in memory: a crash mid-window
  loses nothing, and the rows' holds keep two instances' senders from sending one row.
  With `group_wait` 0 every message is one event, as without grouping.
- **Alertmanager** needs more than the outbox: an alert it is not told about again expires at
  its `endsAt`. So the sender of a receiver whose format `resends` (alertmanager's, see
  `rblwatch.alerts.formats`), besides delivering events (a listing fires the alert,
  a delisting resolves it with `endsAt` = the delisting's time), re-posts every pair that is
  listed now and every unhealthy list every `resend_interval` (60 s) with `endsAt` = now +
  `ttl` (4 minutes), read from the store's current state. Re-posts are not outbox rows: they
  are rebuilt from state each time, so a lost one is simply replaced by the next, and they are
  neither counted as deliveries nor retried. They run in the same task as the outbox drain, so
  a re-post built before a delisting is always sent before that delisting's resolved alert,
  never after it (which would revive the alert until its `endsAt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import enum
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from rblwatch import __version__
from rblwatch.alerts import formats
from rblwatch.alerts.formats import AlertFormat, Context, Firing, Request
from rblwatch.alerts.routing import receivers_for
from rblwatch.config import Config, Receiver
from rblwatch.model import (
    Delivery,
    DnsList,
    Event,
    EventKind,
    Health,
    PairState,
    PairStatus,
    Subject,
    frozen_map,
)
from rblwatch.runtime import Runtime
from rblwatch.store import Store, StoreError

log = logging.getLogger("rblwatch.alerts")

IDLE_POLL = 1.0  # seconds between outbox reads when nothing wakes the sender
RESEND_INTERVAL = 60.0  # Alertmanager re-posts
ALERT_TTL = 4 * RESEND_INTERVAL  # endsAt of a firing alert: survives three lost re-posts
HOLD_MARGIN = 30.0  # seconds a held row outlasts its request's timeout
ERROR_PAUSE = 1.0  # after an unexpected error (a store error, say) before trying again
_MAX_DOUBLINGS = 64  # 2**64 times any initial is past any backoff.max


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"  # for good


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST came to. `error` is safe to log: it never holds the URL."""

    status: int | None  # None: no HTTP answer (timeout, refused, reset …)
    retry_after: float | None = None  # seconds, from the answer's Retry-After
    error: str = ""


def verdict(attempt: Attempt) -> Verdict:
    """Only 2xx is success; 408, 429, 5xx and no answer at all are worth another try."""
    status = attempt.status
    if status is None or status in (408, 429) or status >= 500:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DELIVERED
    return Verdict.FAILED


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    text = value.strip()
    # ASCII digits only: "²".isdigit() is true and float("²") raises, and a peer's header
    # must never end a delivery in a traceback (that delivery would then go out again)
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - now)


def backoff(attempts: int, initial: float, maximum: float, rand: float) -> float:
    """The wait after the `attempts`+1-th failure: initial doubling to maximum; `rand` in
    [0, 1) picks a point between half that step and all of it."""
    step: float = min(maximum, initial * 2 ** min(attempts, _MAX_DOUBLINGS))
    return step * (0.5 + rand / 2)


def retry_delay(attempts: int, receiver: Receiver, retry_after: float | None, rand: float) -> float:
    if retry_after is not None:
        return min(retry_after, receiver.backoff_max)
    return backoff(attempts, receiver.backoff_initial, receiver.backoff_max, rand)


def context_for(config: Config, event_group: str | None, list_name: str) -> Context:
    """What the current config says about an event's group and list."""
    labels = next((g.labels for g in config.targets if g.group == event_group), frozen_map())
    lst = next((x for x in config.subjects if x.name == list_name), None)
    return Context(labels=labels, dns_list=lst)


def _describe(event: Event) -> str:
    if event.target is None:
        return f"{event.kind.value} of list {event.list}"
    return f"{event.kind.value} {event.target} on {event.list}"


def _network_error(exc: BaseException) -> str:
    """A failure as text without the URL: str() of aiohttp's errors names the host and port,
    and of some (InvalidURL) the whole URL, which may hold a token."""
    cause = exc.os_error if isinstance(exc, aiohttp.ClientConnectorError) else exc
    if isinstance(cause, OSError) and cause.errno:
        return f"{type(exc).__name__}: {os.strerror(cause.errno)}"
    return type(exc).__name__


def _ids(batch: Sequence[Delivery]) -> str:
    first = formats.webhook_id(batch[0].event)
    return first if len(batch) == 1 else f"{first} … {formats.webhook_id(batch[-1].event)}"


def _describe_all(batch: Sequence[Delivery]) -> str:
    if len(batch) == 1:
        return _describe(batch[0].event)
    return f"{len(batch)} events, from {_describe(batch[0].event)}"


def _count(counters: dict[str, int], name: str, n: int = 1) -> None:
    counters[name] = counters.get(name, 0) + n


class Sender:
    """One receiver's task: its outbox rows in order, and Alertmanager re-posts."""

    def __init__(
        self,
        runtime: Runtime,
        receiver: Receiver,
        *,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        poll: float = IDLE_POLL,
        resend_interval: float = RESEND_INTERVAL,
        ttl: float = ALERT_TTL,
    ) -> None:
        self.rt = runtime
        self.receiver = receiver
        self.clock = clock
        self.rand = rand
        self.poll = poll
        self.resend_interval = resend_interval
        self.ttl = ttl
        self._wake = asyncio.Event()
        self._next_refresh = 0.0
        self._session: aiohttp.ClientSession | None = None
        self._store_down = False  # said once per outage
        # rows whose delivery is over (sent, or given up) but which the store failed to
        # remove: removed before anything else, never sent again by this process
        self._over: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.receiver.name

    @property
    def format(self) -> AlertFormat:
        return formats.format_named(self.receiver.format)

    def update(self, receiver: Receiver) -> None:
        """A reload changed the receiver: the next attempt uses the new settings."""
        if receiver.format != self.receiver.format or receiver.url != self.receiver.url:
            self._next_refresh = 0.0
        self.receiver = receiver
        self.wake()

    def wake(self) -> None:
        """New outbox rows may be there: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        headers = {"user-agent": f"rblwatch/{__version__}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            self._session = session
            while True:
                try:
                    await self._step()
                    self._store_down = False
                except StoreError as exc:  # the database is away: the rows wait in it
                    if not self._store_down:
                        log.warning("alerts to %s: waiting for the store: %s", self.name, exc)
                    self._store_down = True
                    await asyncio.sleep(ERROR_PAUSE)
                except Exception:  # a bug must not end alerting for good
                    log.exception("alerts to %s: unexpected error; trying again", self.name)
                    await asyncio.sleep(ERROR_PAUSE)

    # -- the loop -----------------------------------------------------------------------------

    async def _step(self) -> None:
        if self._over:
            await self._remove(self._over)
        if self._refresh_due():
            await self._refresh()
        # cleared before the read, so a wake-up during it is not lost: the wait returns at once
        self._wake.clear()
        now = self.clock()
        batch = await self._claim(now)
        if not batch:
            await self._idle(min(self.poll, self._until_refresh(now)))
            return
        head = batch[0]
        expires = head.created + self.receiver.max_age
        elsewhere = head.held_by not in (None, self.owner) and (head.held_until or 0.0) > now
        if now >= expires and not elsewhere:
            await self._give_up([head], f"older than max_age ({self.receiver.max_age:g}s)")
            return
        opens = head.created + self.receiver.group_wait  # config: always before `expires`
        if head.held_by != self.owner or opens > now:
            # not due yet, its window still open, or another instance's sender has it: wait
            # for that to end (a hold ends by itself should that sender die mid-request)
            if elsewhere:
                until = head.held_until or now
            else:
                until = max(min(head.next_attempt, expires), opens)
            await self._idle(min(max(until - now, 0.0), self.poll, self._until_refresh(now)))
            return
        await self._deliver(batch)

    @property
    def owner(self) -> str:
        """Who holds the rows this sender sends: the instance (alone: its one name)."""
        me = self.rt.me
        return me.id if me is not None else "rblwatch"

    async def _claim(self, now: float) -> list[Delivery]:
        # the oldest pending row, not only a due one: it holds the line while it waits, and
        # it is held for this sender (against the others') while due, with the rows of its
        # batch; the hold outlasts a request, so it never ends while this sender is still
        # waiting for the answer
        r = self.receiver
        hold = r.timeout + HOLD_MARGIN
        limit = r.group_max if r.group_wait > 0 else 1
        return await self.rt.db.claim_deliveries(
            self.name, self.owner, now, hold, limit, r.group_wait
        )

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, seconds))

    # -- one delivery ---------------------------------------------------------------------------

    def _request(self, batch: Sequence[Delivery]) -> Request:
        r, cfg, now = self.receiver, self.rt.config, self.clock()
        if len(batch) == 1:  # one event: its own message, exactly as without grouping
            event = batch[0].event
            ctx = context_for(cfg, event.group, event.list)
            return self.format.event_request(event, ctx, secret=r.secret, now=now, ttl=self.ttl)
        items = [(d.event, context_for(cfg, d.event.group, d.event.list)) for d in batch]
        return self.format.batch_request(items, secret=r.secret, now=now, ttl=self.ttl)

    async def _deliver(self, batch: Sequence[Delivery]) -> None:
        attempt = await self._post(self._request(batch))
        outcome = verdict(attempt)
        if outcome is Verdict.DELIVERED:
            # counted and logged before the rows go: whoever sees the outbox empty sees the
            # count and the line too (a stop right after the commit would lose the line)
            _count(self.rt.stats.alert_deliveries, self.name, len(batch))
            log.info(
                "alert %s (%s) delivered to %s: %s after %d failed attempts",
                _ids(batch),
                _describe_all(batch),
                self.name,
                attempt.error,
                batch[0].attempts,
            )
            await self._remove(tuple(d.id for d in batch))
        elif outcome is Verdict.RETRY:
            await self._retry(batch, attempt)
        else:
            await self._give_up(batch, f"{attempt.error} (not retried)")

    async def _retry(self, batch: Sequence[Delivery], attempt: Attempt) -> None:
        head = batch[0]  # the oldest: its attempts set the backoff of the whole batch
        delay = retry_delay(head.attempts, self.receiver, attempt.retry_after, self.rand())
        ids = [d.id for d in batch]
        await self.rt.db.deliveries_retry(ids, self.clock() + delay, attempt.error)
        log.warning(
            "alert %s (%s) to %s failed: %s; attempt %d, next in %.1fs",
            _ids(batch),
            _describe_all(batch),
            self.name,
            attempt.error,
            head.attempts + 1,
            delay,
        )

    async def _give_up(self, batch: Sequence[Delivery], why: str) -> None:
        _count(self.rt.stats.alert_failures, self.name, len(batch))
        log.error(
            "alert %s (%s) to %s given up: %s",
            _ids(batch),
            _describe_all(batch),
            self.name,
            why,
        )
        await self._remove(tuple(d.id for d in batch))  # after the line, as for a delivery

    async def _remove(self, delivery_ids: tuple[int, ...]) -> None:
        self._over = delivery_ids
        await self.rt.db.deliveries_done(delivery_ids)
        self._over = ()

    async def _post(self, request: Request) -> Attempt:
        """One POST; every failure becomes an `Attempt` whose text never shows the URL."""
        assert self._session is not None
        r = self.receiver
        url = r.url.rstrip("/") + request.path if request.path else r.url
        try:
            async with self._session.post(
                url,
                data=request.body,
                headers=dict(request.headers),
                timeout=aiohttp.ClientTimeout(total=r.timeout),
                allow_redirects=False,
            ) as resp:
                after = parse_retry_after(resp.headers.get("Retry-After"), self.clock())
                return Attempt(resp.status, after, f"HTTP {resp.status}")
        except TimeoutError:
            return Attempt(None, error=f"no answer within {r.timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            return Attempt(None, error=_network_error(exc))

    # -- re-posts (Alertmanager) ---------------------------------------------------------------

    def _refresh_due(self) -> bool:
        # the leader's alone (with several instances): one set of re-posts, not one per instance
        view = self.rt.view
        leads = view is None or view.leader
        return self.format.resends and leads and self.clock() >= self._next_refresh

    def _until_refresh(self, now: float) -> float:
        return max(0.0, self._next_refresh - now) if self.format.resends else math.inf

    async def _refresh(self) -> None:
        """Post every alert firing now, so the receiver never times one out."""
        now = self.clock()
        self._next_refresh = now + self.resend_interval
        count, requests = await self.rt.db.read(lambda store: self._resends(store, now))
        for request in requests:
            attempt = await self._post(request)
            if verdict(attempt) is not Verdict.DELIVERED:
                log.warning(
                    "alert re-post to %s failed: %s; again in %.0fs",
                    self.name,
                    attempt.error,
                    self.resend_interval,
                )
                return
        if count:
            log.debug("%d firing alerts re-posted to %s", count, self.name)

    def _resends(self, store: Store, now: float) -> tuple[int, list[Request]]:
        """How many alerts fire now and the requests that re-post them (runs in a thread:
        thousands of listings make a body worth keeping off the event loop)."""
        firing = self._firing(store, now)
        requests = self.format.resend_requests(firing, now=now, ttl=self.ttl)
        firing_count = len(firing.pairs) + len(firing.lists) + (firing.resolver is not None)
        return firing_count, requests

    def _firing(self, store: Store, now: float) -> Firing:
        """What fires now for this receiver, from the store (runs in a thread)."""
        cfg = self.rt.config
        every: list[Subject] = [*cfg.subjects, *cfg.hygiene]
        lists = {x.name: x for x in every}
        wants = _Wants(cfg, self.name, lists)
        labels = {g.group: g.labels for g in cfg.targets}
        pairs = []
        for pair in store.pairs():
            lst = lists.get(pair.list)
            if pair.status is PairStatus.LISTED and lst is not None and wants.pair(pair, lst):
                dns_list = lst if isinstance(lst, DnsList) else None
                ctx = Context(labels=labels.get(pair.group, frozen_map()), dns_list=dns_list)
                pairs.append((pair, ctx))
        unhealthy = []
        for s in store.list_statuses():
            lst = lists.get(s.name)
            if s.health in (Health.HEALTHY, Health.UNKNOWN) or lst is None:
                continue
            if wants.list(lst):
                unhealthy.append(s)
        acks = {(a.target, a.list): a for a in store.acks() if a.active(now)}
        resolver = store.resolver_state()
        if resolver.reachable or EventKind.RESOLVER_UNREACHABLE not in self.receiver.events:
            return Firing(pairs=pairs, lists=unhealthy, acks=acks)
        return Firing(pairs=pairs, lists=unhealthy, acks=acks, resolver=resolver)


class _Wants:
    """Whether a receiver takes a pair's or a list's alert: the rule that picks its outbox rows
    (`alerts.routing`), asked about the event that started the condition."""

    def __init__(self, config: Config, name: str, lists: Mapping[str, Subject]) -> None:
        self.name = name
        self._pick = {n: receivers_for(config.alerts.receivers, lst) for n, lst in lists.items()}

    def pair(self, pair: PairState, lst: Subject) -> bool:
        kind = EventKind.LISTED if isinstance(lst, DnsList) else EventKind.CHECK_FAILED
        event = Event(kind=kind, list=lst.name, at=0.0, target=pair.target, group=pair.group)
        return self.name in self._pick[lst.name](event)

    def list(self, lst: Subject) -> bool:
        event = Event(kind=EventKind.LIST_UNHEALTHY, list=lst.name, at=0.0)
        return self.name in self._pick[lst.name](event)


class Alerts:
    """Every receiver's sender; started with the daemon, swapped on reload, stopped with it."""

    def __init__(self, runtime: Runtime, **sender_options: Any) -> None:
        self.rt = runtime
        self.options = sender_options
        self._senders: dict[str, tuple[Sender, asyncio.Task[None]]] = {}

    @property
    def senders(self) -> dict[str, Sender]:
        return {name: s for name, (s, _) in self._senders.items()}

    async def apply(self, config: Config) -> None:
        """Run one sender per configured receiver: start new ones, update changed ones, stop
        removed ones (their rows stay in the outbox, sent if the receiver comes back)."""
        wanted = {r.name: r for r in config.alerts.receivers}
        self.rt.stats.ensure_receivers(wanted)
        # no await before the senders are in place: two reloads at once cannot both start one
        for name, receiver in wanted.items():
            if name in self._senders:
                sender = self._senders[name][0]
                if sender.receiver != receiver:
                    sender.update(receiver)
                continue
            sender = Sender(self.rt, receiver, **self.options)
            task = asyncio.create_task(sender.run(), name=f"alerts:{name}")
            self._senders[name] = (sender, task)
        await self._stop([name for name in self._senders if name not in wanted])

    def wake(self) -> None:
        """Events were committed: every sender looks at its outbox now."""
        for sender, _ in self._senders.values():
            sender.wake()

    async def stop(self) -> None:
        """Abandon in-flight deliveries: their rows stay and are sent again after a restart."""
        await self._stop(list(self._senders))

    async def _stop(self, names: Sequence[str]) -> None:
        tasks = [self._senders.pop(name)[1] for name in names]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)


__all__ = [
    "ALERT_TTL",
    "RESEND_INTERVAL",
    "Alerts",
    "Attempt",
    "Sender",
    "Verdict",
    "backoff",
    "context_for",
    "parse_retry_after",
    "retry_delay",
    "verdict",
]
