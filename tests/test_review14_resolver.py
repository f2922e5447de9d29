"""Review of issue 14: a run that fails keeps its server's window honest (the Path outlives it)."""

from __future__ import annotations

import asyncio

import pytest

from rblwatch.resolver import Resolver
from tests.faultdns import FaultDns
from tests.test_resolver import jobs_for


def _raise_on_first(
    key: object, i: int, status: int, rcode: int, rdatas: list[bytes], ttl: int | None
) -> None:
    raise LookupError("callback failed")


def test_a_callback_failing_in_the_receive_loop_leaves_nothing_in_flight_on_the_path(
    faultdns: FaultDns,
) -> None:
    res = Resolver(timeout=1.0, attempts=2, max_in_flight=64)
    addresses = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(200)]
    with pytest.raises(LookupError):
        asyncio.run(
            asyncio.wait_for(res.run(jobs_for(addresses, [faultdns.address]), _raise_on_first), 5)
        )
    assert res.in_flight == 0
    (path,) = res.paths.values()
    assert path.in_flight == 0  # the Path is shared by every later run to this server
