"""`Resolver`: runs batches of lookups, with one window shared by the runs at the same time."""

from __future__ import annotations

from collections.abc import Iterable

from rblwatch.resolver.loop import Batch
from rblwatch.resolver.vocab import (
    Durations,
    Job,
    ResolverStats,
    ResultCallback,
    RunResult,
    random_ids,
)


class Resolver:
    """Runs batches of DNS lookups with at most `max_in_flight` outstanding at once.

    `timeout` is per attempt; a lookup is tried `attempts` times (over the template's servers
    in turn) before it ends as a timeout. A truncated UDP reply is retried over TCP. Each run
    opens `sockets` sockets per server (random ports, `receive_buffer` bytes of kernel buffer
    each), reads datagrams of up to `max_udp` bytes and looks for expired attempts every
    `tick` seconds (or a quarter of the timeout, if less).
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
