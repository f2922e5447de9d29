#!/usr/bin/env bash
# The multi-instance benchmark in one command: the shared /16 x 4 workload served by rbldnsd on
# 127.0.0.1, a throwaway PostgreSQL cluster (unless RBLWATCH_BENCH_POSTGRES_URL names a server),
# and bench_cluster.py: 1 `rblwatch run` on SQLite, 1 on PostgreSQL, 2 on one PostgreSQL
# database, and 2 with one killed -9 mid-round, against `rblwatch check` in the same run; then
# rbldnsd is stopped. About 5 minutes.
#
#   bench/cluster.sh             # PORT=5300 SHARED_BENCH=../shared/bench INTERVAL=40 LEASE=(default)
# Needs: rbldnsd and postgresql (apt-get install -y rbldnsd postgresql) and rblwatch in .venv.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SHARED_BENCH="${SHARED_BENCH:-$ROOT/../shared/bench}"
export PORT="${PORT:-5300}"
export ZONEDIR="${ZONEDIR:-/tmp/rblbench/zones}"
PY="${PY:-$ROOT/.venv/bin/python}"
[[ -f "$ZONEDIR/truth.tsv" ]] || python3 "$SHARED_BENCH/make_zones.py" --out "$ZONEDIR" >/dev/null
# as in run.sh: an installed package has its bytecode compiled, an editable one may not
"$PY" -m compileall -q "$("$PY" -c 'import os, rblwatch; print(os.path.dirname(rblwatch.__file__))')"
"$SHARED_BENCH/serve.sh" start || exit 1
trap '"$SHARED_BENCH/serve.sh" stop' EXIT
"$PY" "$HERE/bench_cluster.py" --zonedir "$ZONEDIR" --port "$PORT" \
  --interval "${INTERVAL:-40}" ${LEASE:+--lease "$LEASE"} --rblwatch "$(dirname "$PY")/rblwatch"
