"""`Resolver`: runs batches of lookups, with one window shared by the runs at the same time."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from rblwatch.resolver.loop import Batch
from rblwatch.resolver.path import RTO_FLOOR, Path
from rblwatch.resolver.vocab import (
    Durations,
    Job,
    ResolverStats,
    ResultCallback,
    RunResult,
    random_ids,
)
from rblwatch.stats import NameserverGauges

log = logging.getLogger("rblwatch.resolver")

# Past this many in flight a window buys nothing but queueing: 4,096 datagrams are ~4 MiB of
# kernel buffer at either end, more than a server's (rbldnsd: 128 KiB) and than this host's
# own (net.core.rmem_max) usually hold; the congestion window keeps a run below what the path
# takes, so a bigger ceiling is accepted but said to be pointless.
SENSIBLE_IN_FLIGHT = 4096


class Resolver:
    """Runs batches of DNS lookups with at most `max_in_flight` outstanding at once.

    `timeout` is the longest an attempt waits (`path.Path` adapts the timeout to each
    server's RTT below it); a lookup is tried `attempts` times (over the template's servers
    in turn) before it ends as a timeout. Each server has a congestion window under
    `max_in_flight` (`path.Path`), kept across runs. A truncated UDP reply is retried over
    TCP. Each run opens `sockets` sockets per server (random ports, `receive_buffer` bytes
    of kernel buffer each), reads datagrams of up to `max_udp` bytes and looks for expired
    attempts every `tick` seconds (or a quarter of the RTO, if less).
    """

    def __init__(
        self,
        *,
        timeout: float = 2.0,
        attempts: int = 3,
        max_in_flight: int = 64,
        sockets: int = 2,
        receive_buffer: int = 1 << 20,
        max_udp: int = 4096,
        tick: float = 0.05,
    ) -> None:
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.max_in_flight = max(1, max_in_flight)
        self.n_sockets = max(1, sockets)
        self.receive_buffer = receive_buffer
        self.max_udp = max_udp
        self.tick = tick
        # runs at the same time (the daemon's lists) share max_in_flight (see Window)
        self.in_flight = 0
        self.runs: list[Batch] = []
        self.stats = ResolverStats()
        self.ids = random_ids()
        self.paths: dict[tuple[str, int], Path] = {}  # per nameserver: RTT and window
        if self.max_in_flight > SENSIBLE_IN_FLIGHT:
            log.warning(
                "resolver.max_in_flight %d is above %d, more than socket buffers hold: the"
                " congestion window stays below what the path takes, so lower it",
                self.max_in_flight,
                SENSIBLE_IN_FLIGHT,
            )

    def path(self, server: tuple[str, int]) -> Path:
        """The RTT estimate and window of `server`, made on first use."""
        path = self.paths.get(server)
        if path is None:
            path = self.paths[server] = Path(
                timeout=self.timeout,
                ceiling=self.max_in_flight,
                granularity=min(self.tick, RTO_FLOOR / 4),
            )
        return path

    def gauges(self) -> list[NameserverGauges]:
        """Per nameserver: SRTT, RTO, window and retransmissions (read by another thread:
        copied first, and each value is one read)."""
        return [
            NameserverGauges(
                _label(server), p.srtt, p.rto, min(int(p.cwnd), p.ceiling), p.retransmissions
            )
            for server, p in list(self.paths.items())
        ]

    async def run(
        self,
        jobs: Iterable[Job],
        on_result: ResultCallback,
        *,
        count_nxdomain: bool = False,
        durations: Durations | None = None,
        max_qps: float | None = None,
        until: float | None = None,
    ) -> RunResult:
        """Look up every job on each of its templates.

        `on_result(key, i, ...)` is called once per (job, template i), in completion order.
        With `count_nxdomain`, plain NXDOMAIN replies (the bulk of a scan) are only counted:
        the count is returned and they are not reported. `durations` collects how long each
        answered query took; `max_qps` caps the rate of queries sent (a list's etiquette).
        At `until` (a `time.monotonic()` time) the run stops: no job is started any more,
        every lookup still unanswered is reported as `Status.ABANDONED` and its place in the
        window given back, and the run returns as usual (its `sent` counts every query).
        """
        batch = Batch(
            self,
            iter(jobs),
            on_result,
            count_nxdomain=count_nxdomain,
            durations=durations,
            max_qps=max_qps,
            until=until,
        )
        self.runs.append(batch)
        try:
            await batch.run()
        finally:
            self.runs.remove(batch)
            for other in self.runs:  # their share of max_in_flight just grew
                other.poke()
        self.stats.nxdomain += batch.nxdomain
        return RunResult(batch.nxdomain, batch.window.sent)

    def nxdomain_so_far(self) -> int:
        """Plain NXDOMAINs counted so far, the runs still going included (`stats.nxdomain`
        takes a run's count only when it ends): what a progress bar reads while a scan runs."""
        return self.stats.nxdomain + sum(b.nxdomain for b in self.runs)


def _label(server: tuple[str, int]) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
