#!/usr/bin/env bash
# rblwatch on a slow, lossy network (issue 14), in one command, as root:
#
#   bench/netbench.sh             # the /16 on one list, every cell; ~5-10 minutes
#   bench/netbench.sh --quick     # a /20 instead: under a minute, for trying it out
#   bench/netbench.sh --rounds 1  # short cells once instead of the median of 3
#
# This kernel has no netem, so bench/relay.c (built here with cc -O2) stands between the client
# and rbldnsd, adding a one-way delay and loss each way. Everything runs in a private network
# namespace (unshare -n) with a loopback of its own: rbldnsd, the relay, dnsperf and rblwatch;
# nothing touches the host's loopback or any network. bench_netbench.py runs the cells and
# prints the markdown table with the bars; the figures go to bench/results/netbench-*.json.
# Needs: rbldnsd, dnsperf, cc, ip (iproute2), unshare (util-linux); rblwatch in PY's venv.
# Env: PY (the venv's python; default .venv/bin/python, else /work/main/.venv/bin/python),
#      SHARED_BENCH (../shared/bench), ZONEDIR (/tmp/rblbench/zones), NETBENCH_TIMEOUT (1200 s).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SHARED_BENCH="${SHARED_BENCH:-$ROOT/../shared/bench}"
[[ -d "$SHARED_BENCH" ]] || SHARED_BENCH=/work/shared/bench
export ZONEDIR="${ZONEDIR:-/tmp/rblbench/zones}"

if [[ -z "${NETBENCH_IN_NS:-}" ]]; then
  if [[ $EUID -ne 0 ]]; then
    echo "netbench: must run as root (it makes a private network namespace with unshare -n)" >&2
    exit 2
  fi
  for tool in rbldnsd dnsperf cc ip unshare; do
    command -v "$tool" >/dev/null || { echo "netbench: $tool not found" >&2; exit 2; }
  done
  PY="${PY:-$ROOT/.venv/bin/python}"
  [[ -x "$PY" ]] || PY=/work/main/.venv/bin/python
  [[ -x "$PY" ]] || { echo "netbench: no python venv with rblwatch (set PY=)" >&2; exit 2; }
  BUILD="$(mktemp -d /tmp/netbench-build.XXXXXX)"
  trap 'rm -rf "$BUILD"' EXIT
  cc -O2 -Wall -o "$BUILD/relay" "$HERE/relay.c" || exit 1
  cc -O2 -o "$BUILD/udpblast" "$SHARED_BENCH/udpblast.c" || exit 1
  [[ -f "$ZONEDIR/truth.tsv" ]] || python3 "$SHARED_BENCH/make_zones.py" --out "$ZONEDIR" >/dev/null
  # the package's bytecode compiled first, as an installed package has it (see bench/run.sh)
  PYTHONPATH="$ROOT" "$PY" -m compileall -q "$ROOT/rblwatch"
  mkdir -p "$HERE/results"
  # timeout signals its whole process group when time is up: every process of the namespace
  NETBENCH_IN_NS=1 BUILD="$BUILD" PY="$PY" SHARED_BENCH="$SHARED_BENCH" \
    timeout -k 10 "${NETBENCH_TIMEOUT:-1200}" unshare -n -- bash "$0" "$@"
  exit $?
fi

# --- inside the namespace ---------------------------------------------------------------------
ip link set lo up || exit 1
export PORT=5300 PIDFILE="$BUILD/rbldnsd.pid" LOGFILE="$BUILD/rbldnsd.log"
stop() { "$SHARED_BENCH/serve.sh" stop >/dev/null; }
trap stop EXIT
trap 'exit 143' TERM INT
"$SHARED_BENCH/serve.sh" start >/dev/null || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" "$HERE/bench_netbench.py" --zonedir "$ZONEDIR" --port "$PORT" --relay "$BUILD/relay" \
  --udpblast "$BUILD/udpblast" --rblwatch "$(dirname "$PY")/rblwatch" \
  --json "$HERE/results/netbench-$(date +%Y%m%d-%H%M%S).json" "$@"
