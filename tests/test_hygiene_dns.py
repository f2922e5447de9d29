"""CachingDns, the hygiene checks' one DNS path: one query per (name, type) per pass, even
when worker threads ask the same question at the same moment, and errors cached with it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from rblwatch.hygiene.dns import CachingDns, DnsTempError, Records


class SlowDns(CachingDns):
    """A CachingDns whose server answers after a pause, counting what it is asked."""

    def __init__(self, answer: Records | DnsTempError) -> None:
        super().__init__([("127.0.0.1", 9)], timeout=0.1)
        self.answer = answer
        self.asked: list[tuple[str, str]] = []
        self._count = threading.Lock()

    def _ask(self, name: str, rdtype: str) -> Records | DnsTempError:
        with self._count:
            self.asked.append((name, rdtype))
        time.sleep(0.05)
        return self.answer


def test_threads_asking_one_question_at_once_send_one_query() -> None:
    dns = SlowDns(Records(("192.0.2.1",)))
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: dns.lookup("Mail.Example.com.", "A"), range(16)))
    assert got == [Records(("192.0.2.1",))] * 16
    assert dns.asked == [("mail.example.com", "A")]


def test_an_error_is_asked_once_and_raised_to_every_asker() -> None:
    dns = SlowDns(DnsTempError("DNS timeout"))
    errors = []

    def ask(_: int) -> None:
        try:
            dns.lookup("example.com", "TXT")
        except DnsTempError as exc:
            errors.append(str(exc))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(ask, range(8)))
    assert errors == ["DNS timeout"] * 8
    assert len(dns.asked) == 1


def test_an_unexpected_failure_leaves_no_thread_waiting() -> None:
    class Broken(SlowDns):
        def _ask(self, name: str, rdtype: str) -> Records | DnsTempError:
            super()._ask(name, rdtype)
            if len(self.asked) == 1:
                raise RuntimeError("boom")
            return Records(("192.0.2.9",))

    dns = Broken(Records(()))
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(dns.lookup, "example.com", "A") for _ in range(4)]
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result(timeout=5))
        except RuntimeError:
            outcomes.append("boom")
    assert outcomes.count("boom") == 1
    assert outcomes.count(Records(("192.0.2.9",))) == 3
    assert len(dns.asked) == 2  # the one that failed, then one waiter asked in its place


@pytest.mark.parametrize("name", ["a" * 300 + ".example", "x" * 64 + ".example", "a..b"])
def test_a_name_that_cannot_exist_is_not_asked_and_does_not_exist(name: str) -> None:
    dns = CachingDns([("127.0.0.1", 9)], timeout=0.1)
    assert dns.lookup(name, "TXT") == Records((), exists=False)
    assert dns.queries == 0
