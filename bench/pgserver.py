"""A throwaway PostgreSQL cluster for the benchmarks: tests/postgres.py's, as a context manager.

The tests' fixture is pytest's (and fails a test when PostgreSQL is missing), so this is a
small copy of it: `initdb` and `pg_ctl` in a temporary directory, as the `postgres` OS user
when run as root (both refuse root), listening on 127.0.0.1 at a free port with a socket
directory of its own, stopped and removed at the end. RBLWATCH_BENCH_POSTGRES_URL names an
existing server instead (its role must be allowed to create databases).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_daemon import free_port

from tests.postgres import PASSWORD, ROLE, Cluster


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        sys.exit(f"PostgreSQL's {name} is missing (apt-get install -y postgresql)")
    return found


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _pg_run(argv: list[str]) -> None:
    done = subprocess.run(_as_owner(argv), check=False, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {done.stdout}{done.stderr}")


@contextmanager
def postgres_server() -> Iterator[Cluster]:
    """tests/postgres.py's throwaway cluster (its fixture is pytest's, so this is a copy)."""
    existing = os.environ.get("RBLWATCH_BENCH_POSTGRES_URL")
    if existing:
        yield Cluster(existing)
        return
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    top = tempfile.mkdtemp(prefix="rblwatch-bench-pg-")
    data, sock, pwfile = (os.path.join(top, x) for x in ("data", "sock", "pw"))
    os.mkdir(sock)
    Path(pwfile).write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (top, sock, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()
    _pg_run([initdb, "-D", data, "-U", ROLE, f"--pwfile={pwfile}", "--auth=scram-sha-256",
             "-E", "UTF8", "--no-sync"])  # fmt: skip
    # the tests' settings: a throwaway server need not survive a power cut
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -k {sock}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    _pg_run([pg_ctl, "-D", data, "-l", os.path.join(top, "log"), "-w", "-o", options, "start"])
    try:
        yield Cluster(f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{port}/postgres")
    finally:
        stop = [pg_ctl, "-D", data, "-m", "fast", "-w", "stop"]
        subprocess.run(_as_owner(stop), check=False, capture_output=True, timeout=60)
        shutil.rmtree(top, ignore_errors=True)
