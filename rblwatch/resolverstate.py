"""The resolver's own state: whether the resolver every list without nameservers of its own is
asked through answers at all (issue 11), kept by the leader as list health is.

The rule. With the resolver gone, every list's test points fail the same way (timeout,
network, SERVFAIL) and, judged one by one, every list would go `dead` with its own
`list_unhealthy`. But an error never changes what we believe (SPEC §2-4), and a probe that
heard nothing says nothing about the list. So, for a list on the default resolver:

- a probe that heard any DNS answer (listed, clean, refused, a blocked code …) proves the
  resolver reachable: its verdict is the list's, as always, and an outage is over;
- a probe that heard nothing (`Verdict.transport`) is the list's only once the resolver is
  known to answer now: a control query is sent to the same nameservers, for a random name
  under the root — a name no cache holds, so a resolver that cannot reach the internet cannot
  answer it either. Any reply but SERVFAIL means the resolver works and the list itself is
  dead; none (or SERVFAIL) means the resolver is unreachable: the state becomes
  `unreachable` with one `resolver_unreachable` event, and the list's health is left as it
  was.

Why a control query rather than waiting for "every list failed": the lists are probed one at
a time, each on its own `health_interval`, so "every list" is never seen at one instant; the
first list to fail would go dead before the second was asked. One query answers the question
directly, at the moment it arises, and works with one list configured. Lists with
nameservers of their own are judged as before: their servers are not this resolver.

While the resolver is unreachable, cycles of the lists behind it send no lookups (skipped,
"resolver_unreachable") and pairs keep their state; the leader's cycles probe their list's
test points first, so the resolver's return is noticed within one interval, and the first
answer heard raises one `resolver_recovered`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence

from rblwatch import health
from rblwatch.alerts.routing import receivers_for_all
from rblwatch.cluster import Fence
from rblwatch.logs import EVENT_LINE
from rblwatch.model import DnsList, Event, ResolverState
from rblwatch.resolver import Resolver, Status, Template
from rblwatch.runtime import Runtime
from rblwatch.store import Fenced

log = logging.getLogger("rblwatch.engine")

SKIPPED = "resolver_unreachable"  # a cycle's skip reason while the resolver is unreachable
_RCODE_SERVFAIL = 2
_STATUS_WORDS = {Status.TIMEOUT: "timeout", Status.NETWORK: "network"}


def behind_resolver(lst: object) -> bool:
    """Whether a subject is asked through the default resolver (a DNS list without
    nameservers of its own): only those lists' silence can be the resolver's."""
    return isinstance(lst, DnsList) and not lst.nameservers


async def control(resolver: Resolver, servers: Sequence[tuple[str, int]]) -> str | None:
    """Ask the nameservers for a random name under the root: None if any reply but SERVFAIL
    came back (the resolver answers), else what went wrong ("timeout", "network",
    "servfail")."""
    label = f"rblwatch-control-{secrets.token_hex(6)}"
    template = Template.build(label, servers)
    heard: list[str | None] = ["timeout"]

    def on_result(
        _key: object, _i: int, status: int, rcode: int, _rd: list[bytes], _ttl: int | None
    ) -> None:
        if status == Status.OK:
            heard[0] = "servfail" if rcode == _RCODE_SERVFAIL else None
        else:
            heard[0] = _STATUS_WORDS.get(status)  # an unparsable reply is a reply all the same

    await resolver.run([(0, (template,), b"")], on_result)
    return heard[0]


class ResolverKeeper:
    """The resolver's stored state, changed by what the leader's probes hear."""

    def __init__(
        self,
        runtime: Runtime,
        clock: Callable[[], float],
        on_events: Callable[[Sequence[Event]], None],
    ) -> None:
        self.rt = runtime
        self.clock = clock
        self._on_events = on_events
        self.state = ResolverState()
        self._loaded = False

    @property
    def reachable(self) -> bool:
        return self.state.reachable

    async def load(self, *, refresh: bool = False) -> None:
        """Read the stored state once (again with `refresh`: a follower learns the leader's)."""
        if refresh or not self._loaded:
            self.state = self.rt.resolver = await self.rt.db.resolver_state()
            self._loaded = True

    async def heard(self, reached: bool, detail: str) -> None:
        """Record what a probe heard through the resolver; raise the event of a change."""
        await self.load()
        state, event = health.resolver_after(self.state, reached, detail, self.clock())
        if event is None and state == self.state:
            return
        view = self.rt.view
        try:
            stored = await self.rt.db.record_resolver(
                state,
                event,
                receivers_for_all(self.rt.config.alerts.receivers),
                None if view is None else Fence(view.owner, leader=True),
            )
        except Fenced:
            log.info("resolver state not stored: this instance no longer leads")
            return
        self.state = self.rt.resolver = state
        if stored is not None:
            self._on_events([stored])
            log.warning("resolver: %s %s", stored.kind.value, detail, extra=EVENT_LINE)


__all__ = ["SKIPPED", "ResolverKeeper", "behind_resolver", "control"]
