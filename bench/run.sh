#!/usr/bin/env bash
# The benchmarks in one command: generate the shared /16 x 4 workload, serve it with rbldnsd on
# 127.0.0.1, run dnsperf and `rblwatch check` in the same session and verify them
# (bench_check.py), then a daemon cycle against check, the daemon's RSS and /metrics with 10,000
# listings (bench_daemon.py), and stop rbldnsd.
# Several instances on SQLite and PostgreSQL, with a takeover: bench/cluster.sh.
#
#   bench/run.sh                 # CHECK_ROUNDS=5 DAEMON_ROUNDS=3 PORT=5300 SHARED_BENCH=../shared/bench
# Needs: rbldnsd, dnsperf (apt-get install -y rbldnsd dnsperf) and rblwatch in .venv.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SHARED_BENCH="${SHARED_BENCH:-$ROOT/../shared/bench}"
export PORT="${PORT:-5300}"
export ZONEDIR="${ZONEDIR:-/tmp/rblbench/zones}"
PY="${PY:-$ROOT/.venv/bin/python}"
[[ -f "$ZONEDIR/truth.tsv" ]] || python3 "$SHARED_BENCH/make_zones.py" --out "$ZONEDIR" >/dev/null
# An installed package carries compiled bytecode (pip writes it at install time); an editable
# one only gets it on first import, which PYTHONDONTWRITEBYTECODE (set in some environments)
# forbids: every run would then compile the whole package again, ~25 ms of each check.
"$PY" -m compileall -q "$("$PY" -c 'import os, rblwatch; print(os.path.dirname(rblwatch.__file__))')"
"$SHARED_BENCH/serve.sh" start
trap '"$SHARED_BENCH/serve.sh" stop' EXIT
# dnsperf's rate moves by ~10% from one pass to the next here: medians of 5 for the ratio
"$PY" "$HERE/bench_check.py" --zonedir "$ZONEDIR" --port "$PORT" --rounds "${CHECK_ROUNDS:-5}" \
  --rblwatch "$(dirname "$PY")/rblwatch"
check_rc=$?
"$PY" "$HERE/bench_daemon.py" --zonedir "$ZONEDIR" --port "$PORT" --rounds "${DAEMON_ROUNDS:-3}" \
  --rblwatch "$(dirname "$PY")/rblwatch"
daemon_rc=$?
exit $(( check_rc || daemon_rc ))
