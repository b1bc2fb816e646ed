#!/bin/bash
# The first `make run` on a fresh clone, as a new user runs it: clones CHECKOUT's HEAD
# into a new folder, runs `make run PORT=PORT` there (venv, install, service, demo),
# prefixes each line of its output with the seconds since the start, and stops it with
# TERM to make's PID once it says "serving at" (the keys are printed just before),
# then checks that the service stopped with it. Prints the load average beside the
# times (the machine is shared: the same run takes twice as long at load 8 as at 2).
#   benchmarks/demo/fresh_clone.sh [PORT] [CHECKOUT] [MAKE ARGS...]   (default 8735, this checkout)
# The clone (and its .venv) is removed afterwards; pip's and uv's caches are not
# (clear ~/.cache/uv and ~/.cache/pip first for a cold download).
set -euo pipefail
PORT=${1:-8735}
CHECKOUT=${2:-$(cd "$(dirname "$0")/../.." && pwd)}
shift $(( $# < 2 ? $# : 2 ))
WORK=$(mktemp -d /tmp/woundscope-fresh-clone.XXXX)
git clone -q "$CHECKOUT" "$WORK/woundscope"
cd "$WORK/woundscope"
echo "clone of $(git -C "$CHECKOUT" rev-parse --short HEAD) in $WORK/woundscope; load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s.%N)
# CPU seconds (user + system) of make and everything it ran: what the first start costs
# whatever else runs on the machine (the wall time depends on the load).
/usr/bin/time -o "$WORK/cpu.txt" -f '%U %S' make run PORT="$PORT" "$@" >"$WORK/out.txt" 2>&1 &
timer=$!
until pid=$(pgrep -P $timer -x make); do sleep 0.1; done
tail -n +1 -F --pid=$pid "$WORK/out.txt" 2>/dev/null | while IFS= read -r line; do
  t=$(echo "$(date +%s.%N) - $start" | bc)
  case "$line" in
    make:*|*"starting the service"*|*"using the virtual"*|*"simulat"*|*"uploaded"*|*"serving at"*|*"rror"*)
      printf '%6.1f  load %-5s %s\n' "$t" "$(cut -d' ' -f1 /proc/loadavg)" \
        "$(echo "$line" | sed -E 's/[A-Za-z0-9_-]{30,}/<key>/')" ;;
  esac
  case "$line" in *"serving at"*) echo "$t" >"$WORK/keys_s"; kill -TERM $pid ;; esac
done
wait $timer || true
if curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; then
  echo "the service still answers on port $PORT after TERM to make" >&2
fi
if [ -s "$WORK/keys_s" ]; then
  printf 'first start: %.1f s from make run to the keys, %s CPU s (user sys); load average now %s\n' \
    "$(cat "$WORK/keys_s")" "$(tail -1 "$WORK/cpu.txt")" "$(cut -d' ' -f1-3 /proc/loadavg)"
else
  echo "first start: no keys (see above)"; tail -20 "$WORK/out.txt"
fi
du -sh "$WORK/woundscope/.venv" | sed 's/^/venv: /'
rm -rf "$WORK"
