"""A throwaway PostgreSQL cluster for the tests, and a fresh database per test.

`postgres_cluster` (session scope) runs `initdb` and `pg_ctl` in a temporary directory, as the
`postgres` OS user when the tests run as root (both refuse root), listening on 127.0.0.1 at a
free port only, with a socket directory of its own; the package's own service is never used.
A test role with a password (scram) may create databases; the cluster is stopped at the end.
`RBLWATCH_TEST_POSTGRES_URL` names an existing server instead (its role must be allowed to
create databases). PostgreSQL missing is a failure, never a skip: the store must be tested.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

ROLE, PASSWORD = "rblwatch_test", "s3cret-Pw-4-tests"


@dataclass(frozen=True)
class Cluster:
    """Where a test database can be created: `url(db)` is that database's store URL."""

    base: str  # a conninfo URL of the server, database part free

    def url(self, database: str) -> str:
        parts = urlsplit(self.base)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url("postgres"), autocommit=True)

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self.admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        pytest.fail(
            f"PostgreSQL's {name} is missing: the PostgreSQL store tests need it"
            " (apt-get install -y postgresql)",
            pytrace=False,
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str]) -> None:
    done = subprocess.run(_as_owner(argv), check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}", pytrace=False)


@dataclass(frozen=True)
class LocalCluster(Cluster):
    """A cluster this process started, which a test may stop and start again (an outage)."""

    pg_ctl: str = ""
    data: str = ""
    log: str = ""
    options: str = ""

    def stop(self) -> None:
        _run([self.pg_ctl, "-D", self.data, "-m", "fast", "-w", "stop"])

    def start(self) -> None:
        _run([self.pg_ctl, "-D", self.data, "-l", self.log, "-w", "-o", self.options, "start"])


@contextlib.contextmanager
def local_cluster() -> Iterator[LocalCluster]:
    """initdb + pg_ctl start in a temporary directory; stopped and removed at the end."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    top = tempfile.mkdtemp(prefix="rblwatch-pg-")
    data, sock = os.path.join(top, "data"), os.path.join(top, "sock")
    os.mkdir(sock)
    pwfile = os.path.join(top, "pw")
    with open(pwfile, "w") as f:
        f.write(PASSWORD + "\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (top, sock, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    _run([initdb, "-D", data, "-U", ROLE, f"--pwfile={pwfile}", "--auth=scram-sha-256",
          "-E", "UTF8", "--no-sync"])  # fmt: skip
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -k {sock}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    cluster = LocalCluster(
        f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/postgres",
        pg_ctl,
        data,
        os.path.join(top, "log"),
        options,
    )
    cluster.start()
    try:
        yield cluster
    finally:
        stop = [pg_ctl, "-D", data, "-m", "fast", "-w", "stop"]
        subprocess.run(_as_owner(stop), check=False, capture_output=True, timeout=60)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    existing = os.environ.get("RBLWATCH_TEST_POSTGRES_URL")
    if existing:
        yield Cluster(existing)
        return
    with local_cluster() as cluster:
        yield cluster
