"""Per nameserver: how long its answers take and how many queries it may have in flight.

One `Path` per server (address and port), kept by the `Resolver` across runs and shared by
the runs at the same time, as Unbound's infra cache keeps per-server RTTs.

The retransmission timeout is RFC 6298's: SRTT and RTTVAR from answered first attempts only
(Karn's algorithm: a retransmitted lookup's reply says nothing reliable about the path, and a
timeout that retransmits spuriously would otherwise learn from its own retransmissions),
RTO = SRTT + max(G, 4·RTTVAR), G the expiry timer's granularity, within [RTO_FLOOR,
`resolver.timeout`]. Before the first sample a query waits `resolver.timeout` (RFC 6298's
1 s initial RTO would be shorter than the configured timeout users expect for a remote
list). After a loss the RTO backs off (doubled, within the ceiling) until the next valid
sample, as RFC 6298 §5.5 with Karn: otherwise an RTT that jumped above the RTO would expire
every first attempt and never be sampled. The RTO only says when to send again: the loop
still takes an earlier attempt's answer for `resolver.timeout` (`loop.Batch._older`).

The floor is 50 ms: loopback answers in well under a millisecond, but a busy event loop
reads a burst of replies late (a run at 4,096 in flight on loopback holds them ~40 ms by
Little's law), and a floor below that would retransmit what is merely queued.

The window is TCP's congestion control (RFC 5681) counted in datagrams: it starts at
INITIAL_WINDOW, doubles per RTT in slow start (one more per answer), grows by one per window
of answers past ssthresh, and is halved when a round trip loses more than LOSS_SHARE of its
datagrams (and at least LOSS_EVENT of them), at most once per window of data: only losses of
datagrams sent after the last decrease count towards the next (NewReno's rule). Halving
rather than TCP's collapse to one segment on RTO: lookups are independent datagrams, not a
byte stream that stalls behind a hole, so a timeout is the congestion signal that TCP's fast
retransmit answers with a halving.

A loss is congestion only in numbers. A poor path loses a datagram now and then whatever the
window (1 % each way is 2 % of lookups), and halving on each such loss keeps the window near its
floor: at 50 ms and 1 % loss, 0.14 of the rate the window allows, and Reno's additive increase
needs hundreds of round trips to climb back from a halving. A server's receive buffer that
overflows drops a whole burst, tens of percent of a round trip's datagrams. So losses are
counted per round trip (a period of one SRTT, AVOIDANCE_RTT at least) against the datagrams the
round resolved, or the window if more, and a decrease needs more than LOSS_SHARE (10 %) of them
and at least LOSS_EVENT (8): with 2 % random loss that happens by chance less than once in
5,000 round trips at any window size (a Poisson tail; worst near 80), where 5 % and 4 halved a
window of 40-80 every few seconds. BBR v2 backs off above 2 % a round; a lookup, unlike a TCP
segment, holds nothing up behind it, so this errs on the side of speed, and the delay signal
below is what keeps the window off the server's queue. An overflow that loses only a few
percent (a window of 4,096 at 50 ms) is told from chance by what it loses: random loss seldom
takes a lookup's second attempt too (2 % of 2 %, a tenth of one a round trip at 256), an
overflow takes retransmissions with the rest, so RETRY_LOSS_EVENT (3) lost retransmissions in
a round trip halve the window as well. The window never goes below
INITIAL_WINDOW: 16 datagrams cannot overflow any server's buffer, so losses at that size are
not congestion but a server that drops some names (or is gone), and shrinking further would
only slow the run down. `max_in_flight` is the ceiling.

Growth also stops while answers queue (HyStart's and Vegas' delay signal): while SRTT is
above twice the least RTT seen (over the last MIN_RTT_WINDOW seconds) plus QUEUE_ALLOWANCE,
the window holds, and slow start ends. A window past the path's bandwidth-delay product only
fills buffers: on loopback 4,096 in flight answer no faster than ~100, and a window bigger
than a server's receive buffer (rbldnsd: ~170 datagrams) loses a burst of queries each time
that server is descheduled for a moment. The loss rule above remains for paths whose queues
sit where the delay does not show. Both growths count a round trip as AVOIDANCE_RTT (25 ms)
at least: on loopback a round trip is a fraction of a millisecond, and doubling per round
trip would reach 4,096 in a few milliseconds, long before SRTT shows the queue or the first
loss is detected (one RTO, 50 ms), and after a loss Reno's one per round trip would be back at
the size that overflowed within a fraction of a second.

Sends are paced: a token bucket refilled at the window per SRTT (gain 2 in slow start, 1.25
after, as Linux paces TCP) and at most BURST deep, so no more than BURST datagrams leave back
to back (rbldnsd's 128 KiB receive buffer holds a few hundred).
"""

from __future__ import annotations

RTO_FLOOR = 0.05
INITIAL_WINDOW = 16
BURST = 64
QUEUE_ALLOWANCE = 0.002
AVOIDANCE_RTT = 0.025
MIN_RTT_WINDOW = 10.0
LOSS_SHARE = 0.10
LOSS_EVENT = 8
RETRY_LOSS_EVENT = 3
_SLOW_START_GAIN = 2.0
_AVOIDANCE_GAIN = 1.25


class Path:
    """One nameserver's RTT estimate, congestion window and pacer (datagrams, seconds)."""

    __slots__ = (
        "backoff",
        "ceiling",
        "cwnd",
        "decreased_at",
        "granularity",
        "in_flight",
        "min_rtt",
        "min_rtt_at",
        "refilled_at",
        "retransmissions",
        "round_at",
        "round_done",
        "round_lost",
        "round_retries_lost",
        "rto",
        "rttvar",
        "srtt",
        "ssthresh",
        "timeout",
        "tokens",
        "users",
    )

    def __init__(self, *, timeout: float, ceiling: int, granularity: float) -> None:
        self.timeout = timeout  # the RTO's ceiling and its value before any sample
        self.ceiling = max(1, ceiling)
        self.granularity = granularity
        self.srtt: float | None = None
        self.min_rtt = float("inf")
        self.min_rtt_at = 0.0
        self.rttvar = 0.0
        self.rto = timeout
        self.backoff = 1.0
        # not capped by the ceiling here: the resolver-wide room is (`Window.room`)
        self.cwnd = float(INITIAL_WINDOW)
        self.ssthresh = float(self.ceiling)
        self.in_flight = 0
        self.decreased_at = float("-inf")
        # the current round trip's losses (counting towards a decrease) and datagrams resolved
        self.round_at = float("-inf")
        self.round_lost = 0
        self.round_retries_lost = 0
        self.round_done = 0
        self.retransmissions = 0
        self.tokens = float(BURST)
        self.refilled_at = 0.0
        self.users = 0  # runs sending to this server now: they share its window

    # -- the estimator ----------------------------------------------------------------------

    def sample(self, rtt: float, now: float) -> None:
        """An answered first attempt took `rtt` (RFC 6298 §2.2-2.3)."""
        if rtt <= self.min_rtt or now - self.min_rtt_at > MIN_RTT_WINDOW:
            self.min_rtt, self.min_rtt_at = rtt, now
        srtt = self.srtt
        if srtt is None:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(srtt - rtt)
            self.srtt = 0.875 * srtt + 0.125 * rtt
        self.backoff = 1.0
        self._set_rto()

    def _set_rto(self) -> None:
        assert self.srtt is not None
        rto = (self.srtt + max(self.granularity, 4 * self.rttvar)) * self.backoff
        self.rto = min(self.timeout, max(RTO_FLOOR, rto))

    def retry_timeout(self, attempt: int) -> float:
        """The timeout of retry `attempt` (1, 2, ...): the RTO doubled per retry, capped."""
        return min(self.timeout, self.rto * (1 << min(attempt, 16)))

    # -- the window -------------------------------------------------------------------------

    def answered(self, n: int) -> None:
        """`n` datagrams answered: out of flight, and the window grows if it was in use."""
        self.in_flight -= n
        self.round_done += n
        cwnd = self.cwnd
        if cwnd >= self.ceiling or 2 * (self.in_flight + n) < cwnd:
            return  # at the ceiling, or not using half of it: no evidence it could be bigger
        srtt = self.srtt
        if srtt is not None and srtt > 2 * self.min_rtt + QUEUE_ALLOWANCE:
            self.ssthresh = min(self.ssthresh, cwnd)  # answers queue: the path is full
            return
        # a round trip counted as AVOIDANCE_RTT at least (see the module docstring)
        pace = min(1.0, (srtt or AVOIDANCE_RTT) / AVOIDANCE_RTT)
        if cwnd < self.ssthresh:
            cwnd += n * pace
        else:
            cwnd += n / cwnd * pace
        self.cwnd = min(cwnd, float(self.ceiling))

    def lost(self, sent_at: float, now: float, *, retry: bool = False) -> None:
        """A datagram sent at `sent_at` timed out (`retry`: a lookup's second attempt or
        later): out of flight; the window halves when its round trip has lost more than
        chance explains, once per window."""
        self.in_flight -= 1
        self.round_done += 1
        if now - self.round_at > max(self.srtt or 0.0, AVOIDANCE_RTT):
            self.round_at, self.round_lost, self.round_retries_lost = now, 0, 0
            self.round_done = 1
        if sent_at <= self.decreased_at:
            return  # sent before the last decrease: part of the loss already answered
        self.round_lost += 1
        self.round_retries_lost += retry
        lost = self.round_lost
        share = lost >= LOSS_EVENT and lost > LOSS_SHARE * max(self.round_done, self.cwnd)
        if not share and self.round_retries_lost < RETRY_LOSS_EVENT:
            return  # a path's random loss, not a queue overflowing (module docstring)
        self.decreased_at = now
        self.round_lost = self.round_retries_lost = 0
        self.ssthresh = max(self.cwnd / 2, float(INITIAL_WINDOW))
        self.cwnd = self.ssthresh
        if self.srtt is not None:
            self.backoff = min(self.backoff * 2, 64.0)
            self._set_rto()

    # -- the pacer --------------------------------------------------------------------------

    def room(self, now: float) -> int:
        """How many datagrams may leave now: the window's free places, within the pacer."""
        free = int(self.cwnd) - self.in_flight
        if free <= 0:
            return 0
        srtt = self.srtt
        if srtt is None:  # no rate to pace at yet: bursts of BURST at most, one per fill
            self.tokens = float(BURST)
        elif self.tokens < BURST:
            gain = _SLOW_START_GAIN if self.cwnd < self.ssthresh else _AVOIDANCE_GAIN
            rate = gain * self.cwnd / max(srtt, 1e-4)
            self.tokens = min(float(BURST), self.tokens + (now - self.refilled_at) * rate)
        self.refilled_at = now
        return min(free, int(self.tokens))

    def wait(self) -> float:
        """Seconds until the pacer lets one more datagram go (0 if it does now)."""
        if self.tokens >= 1 or self.srtt is None:
            return 0.0
        gain = _SLOW_START_GAIN if self.cwnd < self.ssthresh else _AVOIDANCE_GAIN
        return (1 - self.tokens) * max(self.srtt, 1e-4) / (gain * self.cwnd)

    def sent(self, n: int) -> None:
        """`n` datagrams left (or were started: a full socket buffer is a loss to come)."""
        self.in_flight += n
        self.tokens -= n
