#!/usr/bin/env bash
# make bench-ingest: triggers (durable SQLite group commit) beside nginx
# `return 202` in the same run, with the shared 1 KiB workload
# (../shared/bench/post_event.lua), at 8 and 64 connections.
# Prints requests/s, p50, p99, the ratio triggers/nginx and the average number
# of events per group commit. Then batch ingest (POST /v1/events/batch, 500
# copies of the same 1 KiB event per request) at BATCH_CONNS connections,
# printed as events/s beside the single-event rps of the same run.
# The server's memory is sampled every 0.5 s from /proc/<pid>/status during
# all of it and printed at the end (VmRSS min/max, VmHWM).
# Everything listens on 127.0.0.1 only.
# Env: DURATION (10s; in seconds, with the "s"), CONNS ("8 64"), BATCH_CONNS ("1 8"; "" skips it),
# BATCH_ONLY=1 (only nginx and single events at 64 connections as references),
# GROW_RUNS (0; see below).
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
CONNS=${CONNS:-"8 64"}
BATCH_CONNS=${BATCH_CONNS-"1 8"}
[ "${BATCH_ONLY:-}" = 1 ] && CONNS=64
start_nginx 202 '{"ok":true}'
start_triggers --max-body 1MiB
KEY=$(make_key '["ingest"]')
# VmRSS in KiB every 0.5 s while the server runs (stopped with the others).
(while kill -0 $TPID 2>/dev/null; do
  awk '/^VmRSS/{print $2}' /proc/$TPID/status 2>/dev/null
  sleep 0.5
done > "$WORK/rss.txt") &
PIDS+=($!)

# The server's CPU time (user+sys, clock ticks) so far: per request it is
# less sensitive than the rate to what else the VM is doing.
TICKS=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$TPID/stat"; }

run() {  # name url conns
  API_KEY=$KEY wrk -t2 -c"$3" -d"$DURATION" --latency -s "$SHARED/post_event.lua" "$2" |
    grep '^rps=' | sed "s/^/$1 c=$3 /"
}

machine_line
echo "workload: $SHARED/post_event.lua (1 KiB event), wrk -t2 -d$DURATION"
declare -A RPS P99
for c in $CONNS; do
  n=$(run nginx "http://127.0.0.1:$NPORT/v1/events" "$c")
  t0=$(cpu_ticks)
  t=$(run triggers "$B/v1/events" "$c")
  t1=$(cpu_ticks)
  echo "$n"
  echo "$t"
  nr=$(echo "$n" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  tr=$(echo "$t" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  tp99=$(echo "$t" | sed -E 's/.*p99_us=([0-9]+).*/\1/')
  RPS[$c]=$tr
  python3 -c "print('ratio c=$c triggers/nginx = %.2f  (triggers p99 %.2f ms, server CPU %.1f us per request)' % ($tr/$nr, $tp99/1000, ($t1-$t0)/$TICKS*1e6/($tr*${DURATION%s})))"
done

# GROW_RUNS=N: N more back-to-back runs of triggers at 64 connections on the
# same data dir (ingest as the store grows), each with the store's size after it.
for i in $(seq 1 "${GROW_RUNS:-0}"); do
  g=$(run triggers "$B/v1/events" 64)
  size=$(du -cb "$WORK"/data/triggers.db* | tail -1 | cut -f1)
  echo "grow run $i: $g store=$(python3 -c "print('%.2f GB' % ($size/1e9))")"
done

# The batch body: {"events":[e,e,...]} with 500 copies of the shared event.
python3 - "$SHARED/event_1k.json" "$WORK/batch.json" <<'PY'
import sys
e = open(sys.argv[1]).read().strip()
open(sys.argv[2], "w").write('{"events":[' + ",".join([e] * 500) + "]}")
PY
for c in $BATCH_CONNS; do
  out=$(PAYLOAD_FILE="$WORK/batch.json" API_KEY=$KEY wrk -t1 -c"$c" -d"$DURATION" --latency \
    -s "$SHARED/post_event.lua" "$B/v1/events/batch" | grep '^rps=')
  echo "triggers batch500 c=$c $out"
  br=$(echo "$out" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  python3 -c "print('batch c=$c: %.0f events/s = %.2fx the single-event rps at c=64 (%s)' % ($br*500, $br*500/${RPS[64]:-1}, '${RPS[64]:-?}'))"
done

HWM=$(awk '/^VmHWM/{print $2}' /proc/$TPID/status)
python3 - "$WORK/rss.txt" "$HWM" <<'PY'
import sys
v = [int(x) for x in open(sys.argv[1]).read().split()]
print("RSS: VmRSS %.1f-%.1f MiB over %d samples (0.5 s apart), VmHWM %.1f MiB" %
      (min(v) / 1024, max(v) / 1024, len(v), int(sys.argv[2]) / 1024))
PY
kill -TERM $TPID
wait $TPID || true
python3 - "$WORK/triggers.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        o = json.loads(line)
    except ValueError:
        continue
    if o.get("msg") == "stopped":
        c, e, ms = o["ingest_commits"], o["ingest_events"], o["ingest_commit_ms"]
        print("group commit: %d events in %d commits = %.1f events per commit, %.2f ms per commit"
              % (e, c, e / max(c, 1), ms / max(c, 1)))
PY
