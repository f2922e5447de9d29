"""Big scans on several cores: the targets split between forked worker processes.

One Python process spends most of a core on a DNSBL scan (the kernel's UDP work included);
a /16 on a dozen lists is done sooner on two. Each worker runs its own resolver, with its share
of `max_in_flight` so the total load on a list's servers stays what the configuration allows,
on the ranges of targets it claims as it goes. Workers send back only their summary and the
results that are kept (not `clean` unless asked), which for a scan are few.

Forking happens outside any event loop: call `scan_split` from synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import struct
from collections.abc import Callable, Iterator, Sequence

from rblwatch.model import DnsList, Outcome, OutcomeKind, Reason, Target, TargetKind
from rblwatch.resolver import Resolver
from rblwatch.scan import Plan, ProgressCallback, Report, Result, result_order, scan

MIN_LOOKUPS_PER_WORKER = 20_000


def worker_count(lookups: int, cpus: int | None = None) -> int:
    """How many processes a scan of `lookups` is worth on this machine (1 = no fork)."""
    env = os.environ.get("RBLWATCH_WORKERS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus, 4, lookups // MIN_LOOKUPS_PER_WORKER))


def scan_split(
    make_resolver: Callable[[int], Resolver],
    targets: Sequence[Target],
    plans: Sequence[Plan],
    *,
    workers: int,
    keep_clean: bool = False,
    fetch_txt: bool = False,
    progress: ProgressCallback | None = None,
) -> Report:
    """`scan` over `workers` processes; `make_resolver(workers)` builds each one's resolver.

    The targets are cut into small ranges that the processes claim as they go (from a pipe
    filled before forking), so one that gets less CPU does less of the work instead of
    making the others wait for it at the end.
    """
    if workers <= 1 or len(targets) < workers or not hasattr(os, "fork"):
        return asyncio.run(
            scan(
                make_resolver(1),
                targets,
                plans,
                keep_clean=keep_clean,
                fetch_txt=fetch_txt,
                progress=progress,
            )
        )
    claims, size = _claims(len(targets), workers)

    def resolver_of() -> Resolver:
        return make_resolver(workers)

    def share() -> Iterator[range]:
        return _claimed(claims, size, len(targets))

    def scaled(done: int, total: int) -> None:
        assert progress is not None
        progress(min(done * workers, total), total)

    children: list[tuple[int, int]] = []
    try:
        for _ in range(workers - 1):
            children.append(_fork(resolver_of, targets, share(), plans, keep_clean, fetch_txt))
        report = asyncio.run(
            scan(
                resolver_of(),
                targets,
                plans,
                keep_clean=keep_clean,
                fetch_txt=fetch_txt,
                progress=scaled if progress else None,
                share=share(),
            )
        )
    except BaseException:
        for pid, fd in children:  # their work is lost with ours: stop them and reap them
            _abandon(pid, fd)
        raise
    finally:
        os.close(claims)
    by_name = {p.lst.name: p.lst for p in plans}
    for pid, fd in children:
        summary, rows = _collect(pid, fd)
        for field in ("lookups", "listed", "clean", "error", "allowlisted"):
            setattr(report.summary, field, getattr(report.summary, field) + summary[field])
        report.results.extend(_unflat(row, by_name) for row in rows)
    report.results.sort(key=result_order)
    return report


_RANGES_PER_WORKER = 64
# at most 1,024 records of 4 bytes: 4 KiB, which even a one-page pipe holds (its writer
# would block on more, with nobody reading yet)
_MAX_RANGES = 1024
_CLAIM = struct.Struct("=I")


def _claims(n: int, workers: int) -> tuple[int, int]:
    """(a pipe's read end holding the start of every range of n targets, the range size).

    Every record is written before any process reads, and a read of one record from a pipe
    is atomic, so each range is claimed by exactly one process.
    """
    ranges = min(_MAX_RANGES, workers * _RANGES_PER_WORKER)
    size = max(16, -(-n // ranges))
    r, w = os.pipe()
    try:
        os.write(w, b"".join(_CLAIM.pack(start) for start in range(0, n, size)))
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    return r, size


def _claimed(fd: int, size: int, n: int) -> Iterator[range]:
    """The ranges this process claims from `_claims`' pipe, one read as each is needed."""
    while True:
        record = os.read(fd, _CLAIM.size)
        if not record:
            return
        (start,) = _CLAIM.unpack(record)
        yield range(start, min(start + size, n))


def _fork(
    make_resolver: Callable[[], Resolver],
    targets: Sequence[Target],
    share: Iterator[range],
    plans: Sequence[Plan],
    keep_clean: bool,
    fetch_txt: bool,
) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    # the child: never return into the caller's code
    os.close(r)
    code = 0
    try:
        report = asyncio.run(
            scan(
                make_resolver(),
                targets,
                plans,
                keep_clean=keep_clean,
                fetch_txt=fetch_txt,
                share=share,
            )
        )
        s = report.summary
        summary = {f: getattr(s, f) for f in ("lookups", "listed", "clean", "error", "allowlisted")}
        rows = [_flat(res) for res in report.results]
        payload = pickle.dumps(("ok", summary, rows), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # reported by the parent, which owns stderr's one line
        payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}", None))
        code = 1
    try:
        with os.fdopen(w, "wb") as f:
            f.write(payload)
    finally:
        os._exit(code)


def _abandon(pid: int, fd: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.close(fd)
    os.waitpid(pid, 0)


class WorkerError(RuntimeError):
    pass


# A worker's results cross the pipe as tuples of plain values: pickling enums and dataclasses
# costs the waiting parent several times as much, on the critical path of every big scan.
FlatResult = tuple[
    str,
    str,
    str,
    str,
    str,
    str,
    tuple[str, ...],
    tuple[str, ...],
    str | None,
    str | None,
    int | None,
    str,
]
_TARGET_KINDS = {k.value: k for k in TargetKind}
_OUTCOME_KINDS = {k.value: k for k in OutcomeKind}
_REASONS = {r.value: r for r in Reason}


def _flat(r: Result) -> FlatResult:
    t, o = r.target, r.outcome
    reason = o.reason.value if o.reason is not None else None
    return (
        t.value, t.kind.value, t.group, t.source, r.lst.name,
        o.kind.value, o.codes, o.meanings, reason, o.txt, o.ttl, o.detail,
    )  # fmt: skip


def _unflat(row: FlatResult, lists: dict[str, DnsList]) -> Result:
    value, kind, group, source, name, okind, codes, meanings, reason, txt, ttl, detail = row
    outcome = Outcome(
        _OUTCOME_KINDS[okind],
        codes,
        meanings,
        _REASONS[reason] if reason is not None else None,
        txt,
        ttl,
        detail,
    )
    return Result(Target(value, _TARGET_KINDS[kind], group, source), lists[name], outcome)


def _collect(pid: int, fd: int) -> tuple[dict[str, int], list[FlatResult]]:
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise WorkerError(f"scan worker {pid} died (wait status {status})")
    kind, summary, rows = pickle.loads(data)
    if kind != "ok":
        raise WorkerError(f"scan worker {pid} failed: {summary}")
    return summary, rows


__all__ = ["WorkerError", "scan_split", "worker_count"]
