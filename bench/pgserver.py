"""A throwaway PostgreSQL cluster for the benchmarks: the tests' own (tests/postgres.py).

`initdb` and `pg_ctl` in a temporary directory, as the `postgres` OS user when run as root
(both refuse root), listening on 127.0.0.1 at a free port with a socket directory of its own,
stopped and removed at the end. RBLWATCH_BENCH_POSTGRES_URL names an existing server instead
(its role must be allowed to create databases).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.postgres import Cluster, local_cluster


@contextmanager
def postgres_server() -> Iterator[Cluster]:
    existing = os.environ.get("RBLWATCH_BENCH_POSTGRES_URL")
    if existing:
        yield Cluster(existing)
        return
    with ExitStack() as stack:
        try:
            cluster = stack.enter_context(local_cluster())
        except pytest.fail.Exception as exc:  # the tests' way to say PostgreSQL is missing
            sys.exit(str(exc))
        yield cluster
