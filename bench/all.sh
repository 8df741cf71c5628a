#!/usr/bin/env bash
# make bench-all: every row of the issue-12 table in one run, one script after
# the other (never two at once: they share the cores), each beside its own
# reference (nginx, pgbench, the single-event rate of the same script).
# Every script's whole output goes to $OUT/<name>.log; the lines that carry
# the figures are printed again at the end as one summary.
# Env: OUT (a new directory under /tmp), SKIP (names to leave out, e.g.
# "postgres fanout"); each script's own variables pass through.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/triggers-bench-all.XXXXXX)}
mkdir -p "$OUT"
SKIP=" ${SKIP:-} "

run() {  # name command...
  local name=$1
  shift
  if [[ $SKIP == *" $name "* ]]; then return 0; fi
  echo "== $name: $* ($(date -u +%H:%M:%S))"
  if ! "$@" >"$OUT/$name.log" 2>&1; then
    echo "   FAILED: see $OUT/$name.log" >&2
  fi
}

echo "bench-all: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u)"
echo "           binary ${TRIGGERS_BIN:-$ROOT/build/triggers}, logs in $OUT"
run ingest env GROW_RUNS="${GROW_RUNS:-3}" bash "$ROOT/bench/ingest.sh"
run delivery env CONNS="${DELIVERY_CONNS:-64}" bash "$ROOT/bench/delivery.sh"
run pull bash "$ROOT/bench/pull.sh"
run postgres bash "$ROOT/bench/postgres.sh"
run fanout env HANGING="${HANGING:-1}" bash "$ROOT/bench/fanout.sh"

# The figures again, one place (the patterns are the scripts' own lines).
echo
echo "== summary"
for name in ingest delivery pull postgres fanout; do
  [ -f "$OUT/$name.log" ] || continue
  echo "-- $name"
  grep -E '^(nginx|triggers|reference|ratio|batch|grow run|RSS|group commit|delivered|ingest-to-delivery|drain|  triggers CPU|B=|pgbench|triggers-pg|[0-9] node|tenant|other|  )' \
    "$OUT/$name.log" | grep -vE '^  *(Latency|Req/Sec|Thread|[0-9]+ requests)' || true
done
