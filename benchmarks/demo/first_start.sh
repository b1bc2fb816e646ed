#!/bin/bash
# The first start of `make run` without the installs: `woundscope demo --serve` on a
# fresh data dir, each line of its output with the seconds since the start; stopped
# (SIGTERM to its PID) once it says "serving at", after the keys.
#   benchmarks/demo/first_start.sh [PORT] [CHECKOUT]     (default 8731, this checkout)
set -euo pipefail
PORT=${1:-8731}
CHECKOUT=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
PYTHON=${PYTHON:-$CHECKOUT/.venv/bin/python}
DATA=$(mktemp -d /tmp/woundscope-first-start.XXXX)
cd "$CHECKOUT"
start=$(date +%s.%N)
WOUNDSCOPE_DATA_DIR=$DATA PYTHONPATH=$CHECKOUT "$PYTHON" -u -m service.cli demo --serve \
  --port "$PORT" >"$DATA/out.txt" 2>&1 &
pid=$!
tail -n +1 -F --pid=$pid "$DATA/out.txt" 2>/dev/null | while IFS= read -r line; do
  t=$(echo "$(date +%s.%N) - $start" | bc)
  printf '%6.1f %s\n' "$t" "$(echo "$line" | sed -E 's/[A-Za-z0-9_-]{30,}/<key>/')"
  case "$line" in *"serving at"*) kill -TERM $pid ;; esac
done
wait $pid || true
rm -rf "$DATA"
