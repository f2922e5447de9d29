"""The daemon's one resolver, kept while the resolver config is the same.

The lists' concurrent cycles (and every check kind) share its window of queries in flight.
Runs overlap, so its dropped-reply count is carried into the process counter by difference
from what was counted before, not per run.
"""

from __future__ import annotations

import dataclasses

from rblwatch.config import ResolverConfig
from rblwatch.resolver import Resolver
from rblwatch.stats import NameserverGauges, Stats


class ResolverCache:
    __slots__ = ("_current", "_dropped_seen", "_retransmitted")

    def __init__(self) -> None:
        self._current: tuple[ResolverConfig, Resolver] | None = None
        self._dropped_seen = 0
        # retransmissions of the resolvers replaced, per nameserver: the counter goes on
        self._retransmitted: dict[str, int] = {}

    def get(self, cfg: ResolverConfig) -> Resolver:
        if self._current is None or self._current[0] is not cfg:
            for g in self.gauges():
                self._retransmitted[g.nameserver] = g.retransmissions
            # one socket per run: the lists' concurrent cycles are several runs (so several
            # random ports already), and fewer sockets give bigger bursts per wake-up
            res = Resolver(
                timeout=cfg.timeout,
                attempts=cfg.attempts,
                max_in_flight=cfg.max_in_flight,
                sockets=1,
            )
            self._current = (cfg, res)
            self._dropped_seen = 0
        return self._current[1]

    def gauges(self) -> list[NameserverGauges]:
        """The current resolver's nameservers, retransmissions counted since start; a
        nameserver no longer used keeps its count (a counter), with no RTT or window."""
        current = self._current[1].gauges() if self._current is not None else []
        carried = dict(self._retransmitted)
        out = [
            dataclasses.replace(g, retransmissions=g.retransmissions + carried.pop(g.nameserver, 0))
            for g in current
        ]
        retired = [NameserverGauges(ns, None, None, None, n) for ns, n in sorted(carried.items())]
        return out + retired

    def count_dropped(self, resolver: Resolver, stats: Stats) -> None:
        """Add the replies `resolver` dropped since last counted to `stats`."""
        stats.replies_dropped += resolver.stats.dropped - self._dropped_seen
        self._dropped_seen = resolver.stats.dropped


__all__ = ["ResolverCache"]
