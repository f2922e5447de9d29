"""Property tests of the pure layers: decoding, transitions and target expansion (issue 9).

Each property is a rule of SPEC §2-4 or §6 stated for every input hypothesis can think of, not
for the handful of cases the example tests pick. Bounded for CI (`RBLWATCH_FUZZ_EXAMPLES`,
default 300 per property); a soak runs them longer:

    RBLWATCH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/test_properties.py
"""

from __future__ import annotations

import ipaddress
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rblwatch import transitions
from rblwatch.lookup import Decoder
from rblwatch.model import (
    DnsList,
    Event,
    Outcome,
    OutcomeKind,
    PairState,
    Purpose,
    Reason,
    TargetKind,
    error,
    frozen_map,
)
from rblwatch.targets import expand, normalize_domain

EXAMPLES = int(os.environ.get("RBLWATCH_FUZZ_EXAMPLES", "300"))
PROPERTY = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# -- decoding (SPEC §2) ---------------------------------------------------------------------------

loopback = st.integers(0, 255).map(lambda n: bytes([127, 0, 0, n]))
anywhere = st.binary(min_size=4, max_size=4)
rdata = st.one_of(loopback, loopback, anywhere, st.binary(min_size=0, max_size=6))


@st.composite
def dns_lists(draw: st.DrawFn) -> DnsList:
    codes = draw(st.dictionaries(st.integers(1, 30), st.text(min_size=1, max_size=5), max_size=4))
    bits = draw(st.dictionaries(st.sampled_from([2, 4, 8, 16, 32, 64]), st.just("bit"), max_size=3))
    errors = draw(st.dictionaries(st.integers(200, 255), st.sampled_from(list(Reason)), max_size=2))
    use_bits = draw(st.booleans())
    return DnsList(
        name="bl",
        zone="bl.test",
        purpose=draw(st.sampled_from(list(Purpose))),
        codes=frozen_map({} if use_bits else {f"127.0.0.{k}": v for k, v in codes.items()}),
        bits=bits if use_bits else {},
        errors={f"127.0.0.{k}": v for k, v in errors.items() if v in _ERROR_REASONS},
        error_bits={1: Reason.BLOCKED} if use_bits and draw(st.booleans()) else {},
    )


_ERROR_REASONS = (Reason.BLOCKED, Reason.RATE_LIMITED)


@PROPERTY
@given(dns_lists(), st.sampled_from([0, 0, 0, 2, 3, 5, 4]), st.lists(rdata, max_size=5))
def test_every_reply_decodes_to_exactly_one_outcome_with_a_reason_iff_error(
    lst: DnsList, rcode: int, answers: list[bytes]
) -> None:
    outcome = Decoder(lst).decode(rcode, answers, ttl=60)
    assert (outcome.reason is not None) == (outcome.kind is OutcomeKind.ERROR)
    if outcome.kind is OutcomeKind.ERROR:
        assert outcome.codes == ()
    if outcome.kind in (OutcomeKind.LISTED, OutcomeKind.ALLOWLISTED):
        assert rcode == 0 and answers
        assert (outcome.kind is OutcomeKind.ALLOWLISTED) == (lst.purpose is Purpose.ALLOW)
        assert list(outcome.codes) == sorted(set(outcome.codes), key=ipaddress.IPv4Address)
        assert len(outcome.meanings) >= len(outcome.codes) or not (lst.codes or lst.bits)
    if any(len(a) != 4 or a[0] != 127 for a in answers) and rcode == 0:
        assert outcome.reason is Reason.BAD_ANSWER  # a rewritten NXDOMAIN is never a listing
    if rcode == 3:
        assert outcome.kind is OutcomeKind.CLEAN


@PROPERTY
@given(dns_lists(), st.lists(loopback, min_size=1, max_size=4), st.permutations(range(4)))
def test_decoding_ignores_the_order_of_answers_and_the_cache(
    lst: DnsList, answers: list[bytes], order: list[int]
) -> None:
    decoder = Decoder(lst)
    shuffled = [answers[i] for i in order if i < len(answers)]
    first = decoder.decode(0, answers, ttl=30)
    assert decoder.decode(0, shuffled, ttl=30) == first
    assert Decoder(lst).decode(0, shuffled, ttl=30) == first  # cached or not, the same


# -- transitions (SPEC §2 and §4): an error never changes what we believe ----------------------

observations = st.one_of(
    st.just(Outcome(OutcomeKind.CLEAN)),
    st.sampled_from([("127.0.0.2",), ("127.0.0.4",), ("127.0.0.2", "127.0.0.4")]).map(
        lambda codes: Outcome(OutcomeKind.LISTED, codes=codes, meanings=("m",) * len(codes))
    ),
)
errors = st.sampled_from(list(Reason)).map(error)


def replay(
    outcomes: list[Outcome], confirm: int
) -> tuple[PairState | None, list[tuple[str, tuple[str, ...], bool]]]:
    """Step a pair through outcomes as the engine does; its final row and its events."""
    row: PairState | None = None
    looked = False
    events: list[Event] = []
    for i, outcome in enumerate(outcomes):
        d = transitions.step(
            row,
            outcome,
            target="192.0.2.1",
            list_name="bl",
            group="mail",
            now=1000.0 + i,
            confirm=confirm,
            first_lookup=not looked,
        )
        row = d.row
        looked = looked or not outcome.is_error
        if d.event is not None:
            events.append(d.event)
    return row, [(e.kind.value, e.codes, e.initial) for e in events]


def _belief(row: PairState | None) -> tuple[object, ...]:
    if row is None:
        return ("clean",)
    return (row.status, row.codes, row.pending, row.pending_codes, row.pending_count)


@PROPERTY
@given(
    st.lists(st.tuples(observations, st.lists(errors, max_size=3)), max_size=12),
    st.integers(1, 3),
)
def test_errors_anywhere_in_a_history_change_no_event_and_no_belief(
    history: list[tuple[Outcome, list[Outcome]]], confirm: int
) -> None:
    without = [obs for obs, _ in history]
    with_errors = [o for obs, errs in history for o in (*errs, obs)]
    row_a, events_a = replay(without, confirm)
    row_b, events_b = replay(with_errors, confirm)
    assert events_b == events_a
    assert _belief(row_b) == _belief(row_a)


@PROPERTY
@given(st.lists(observations, max_size=12), st.integers(1, 4))
def test_a_change_needs_confirm_agreeing_observations_in_a_row(
    history: list[Outcome], confirm: int
) -> None:
    _, events = replay(history, confirm)
    for kind, codes, _initial in events:
        assert kind in ("listed", "delisted", "changed")
        if kind == "delisted":
            assert codes  # the codes of the listing that ended
    # every event needs `confirm` agreeing observations: at most one per `confirm` of them
    assert len(events) <= max(1, len(history) // confirm) if history else events == []


# -- targets (SPEC §6) ----------------------------------------------------------------------------

ipv4_nets = st.builds(
    lambda n, p: ipaddress.IPv4Network((n, p), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(20, 32),
)


@PROPERTY
@given(ipv4_nets, st.lists(ipv4_nets, max_size=3))
def test_a_network_expands_to_every_address_minus_the_excluded_ones(
    net: ipaddress.IPv4Network, holes: list[ipaddress.IPv4Network]
) -> None:
    got = expand([str(net)], [str(h) for h in holes], group="g")
    expected = [
        str(a)
        for a in (net.network_address + i for i in range(net.num_addresses))
        if not any(a in h for h in holes)
    ]
    assert [t.value for t in got] == expected
    assert all(t.kind is TargetKind.IPV4 and t.group == "g" for t in got)


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).filter(
    lambda s: not s.startswith("-") and not s.endswith("-") and "--" not in s[2:4]
)


@PROPERTY
@given(st.lists(labels, min_size=2, max_size=4), st.booleans(), st.booleans())
def test_domain_normalisation_is_idempotent_and_case_blind(
    parts: list[str], upper: bool, dot: bool
) -> None:
    if parts[-1].isdigit():
        parts = [*parts, "example"]  # an all-digit last label is an address, not a domain
    name = ".".join(parts)
    shown = (name.upper() if upper else name) + ("." if dot else "")
    once = normalize_domain(shown)
    assert once == normalize_domain(once) == normalize_domain(name)
