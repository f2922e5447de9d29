#!/usr/bin/env bash
# The sender hygiene benchmark in one command: a local NSD (started and stopped by
# bench_hygiene.py, the tests' own wrapper) serving 10 domains and 20 sending IPs, one pass of
# every check timed in process and through `rblwatch hygiene`, against dnsperf asking the same
# queries. Under a minute.
#
#   bench/hygiene.sh            # ROUNDS=7
# Needs: nsd and dnsperf (apt-get install -y nsd dnsperf) and rblwatch in .venv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
PY="${PY:-$ROOT/.venv/bin/python}"
"$PY" "$HERE/bench_hygiene.py" --rounds "${ROUNDS:-7}" --rblwatch "$(dirname "$PY")/rblwatch"
