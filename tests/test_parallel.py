"""Big scans split over forked workers give exactly what one process gives."""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import pytest

from rblwatch import parallel
from rblwatch.model import DnsList, Kind, OutcomeKind, Reason
from rblwatch.parallel import _claimed, _claims, scan_split, worker_count
from rblwatch.resolver import Resolver
from rblwatch.scan import Report, plans_for, probe_health
from rblwatch.targets import parse_target
from tests.faultdns import Action, Fault, FaultDns
from tests.rbldnsd import Rbldnsd

LISTED = {f"192.0.2.{i}" for i in range(0, 256, 7)}


@pytest.fixture
def dns(rbldnsd: Rbldnsd) -> Rbldnsd:
    lines = [":127.0.0.2:Listed: $", "127.0.0.2"]
    lines += [f"{a} :127.0.0.4:spam from $" for a in sorted(LISTED)]
    rbldnsd.add_zone("bl.test", "ip4set", lines)
    rbldnsd.start()
    return rbldnsd


def run_split(workers: int, plans_of: object, fetch_txt: bool) -> Report:
    targets = parse_target("192.0.2.0/24")
    plans = plans_of()  # type: ignore[operator]

    def resolver(n: int) -> Resolver:
        return Resolver(timeout=0.3, attempts=1, max_in_flight=max(1, 32 // n))

    asyncio.run(probe_health(resolver(1), plans))
    return scan_split(resolver, targets, plans, workers=workers, fetch_txt=fetch_txt)


def outcomes(report: Report) -> list[tuple[str, str, object]]:
    return [(r.target.value, r.lst.name, r.outcome) for r in report.results]


@pytest.mark.parametrize("workers", [2, 3])
def test_split_scans_report_exactly_what_one_process_does(
    dns: Rbldnsd, faultdns: FaultDns, workers: int
) -> None:
    # one list on rbldnsd (listings with TXT), one on a server that fails some names
    faultdns.rule("2.0.0.127.flaky.test", Fault.ANSWER, a=["127.0.0.2"])
    for i in range(0, 256, 5):
        faultdns.rule(f"{i}.2.0.192.flaky.test", Fault.SERVFAIL)
    faultdns.default = Action(Fault.NXDOMAIN)

    def plans() -> object:
        return plans_for(
            [DnsList(name="bl", zone="bl.test", kind=Kind.IP)], (dns.address,)
        ) + plans_for([DnsList(name="flaky", zone="flaky.test", kind=Kind.IP)], (faultdns.address,))

    one = run_split(1, plans, fetch_txt=True)
    two = run_split(workers, plans, fetch_txt=True)
    assert outcomes(two) == outcomes(one)
    assert two.summary == one.summary
    listed = {r.target.value for r in two.results if r.outcome.kind is OutcomeKind.LISTED}
    assert listed == LISTED
    txts = {r.outcome.txt for r in two.results if r.outcome.kind is OutcomeKind.LISTED}
    assert all(t and t.startswith("spam from 192.0.2.") for t in txts)
    errors = [r.outcome for r in two.results if r.outcome.kind is OutcomeKind.ERROR]
    assert len(errors) == len(range(0, 256, 5))
    assert {e.reason for e in errors} == {Reason.SERVFAIL}
    assert two.summary.lookups == 2 * 256


def test_a_scan_is_split_only_when_it_is_big_enough() -> None:
    assert worker_count(1_000, cpus=2) == 1
    assert worker_count(262_144, cpus=2) == 2
    assert worker_count(262_144, cpus=1) == 1


@pytest.mark.parametrize("n", [1, 17, 1000, 65_536])
def test_claimed_ranges_cover_every_target_once_however_readers_interleave(n: int) -> None:
    fd, size = _claims(n, workers=2)
    try:
        first, second = _claimed(fd, size, n), _claimed(fd, size, n)
        got: list[range] = []
        for turn in itertools.count():  # two readers of one pipe, taking turns unevenly
            reader = first if turn % 3 else second
            claimed = next(reader, None)
            if claimed is None:
                got.extend(first)
                got.extend(second)
                break
            got.append(claimed)
    finally:
        os.close(fd)
    indices = [i for r in got for i in r]
    assert sorted(indices) == list(range(n))
    assert len(got) <= 2 * 64


def test_a_failing_parent_scan_stops_and_reaps_its_workers(
    dns: Rbldnsd, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = os.getpid()
    real_scan, real_fork = parallel.scan, parallel._fork
    forked: list[int] = []

    async def failing_in_parent(*args: Any, **kw: Any) -> Report:
        if os.getpid() == parent:
            raise RuntimeError("the parent's scan failed")
        return await real_scan(*args, **kw)

    def recording_fork(*args: Any) -> tuple[int, int]:
        pid, fd = real_fork(*args)
        forked.append(pid)
        return pid, fd

    monkeypatch.setattr(parallel, "scan", failing_in_parent)
    monkeypatch.setattr(parallel, "_fork", recording_fork)
    plans = plans_for([DnsList(name="bl", zone="bl.test", kind=Kind.IP)], (dns.address,))
    with pytest.raises(RuntimeError, match="parent's scan failed"):
        scan_split(
            lambda n: Resolver(timeout=0.3, attempts=1, max_in_flight=8),
            parse_target("192.0.2.0/24"),
            plans,
            workers=3,
        )
    assert len(forked) == 2
    for pid in forked:
        with pytest.raises(ChildProcessError):  # already reaped: no zombie left behind
            os.waitpid(pid, os.WNOHANG)
