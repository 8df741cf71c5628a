#!/usr/bin/env bash
# make bench-growth: single-event ingest (64 connections, the shared 1 KiB
# workload) as the store grows from empty to EVENTS events, and then at that
# size while the retention purge deletes the oldest of them.
# Each measurement is a DURATION run of triggers beside nginx `return 202` in
# the same moment; the rows print rps, p99, the ratio to nginx, the events
# stored and the store's size (triggers.db and its WAL).
# Between measurements the store is filled with batch ingest (500 copies of
# the 1 KiB event per request, 8 connections) up to k*EVENTS/STEPS events,
# counted by triggers_events_ingested_total.
# The last row: the server is restarted on the same data dir with a
# --retention that the events of the first fill step have passed, so the
# purge (started at once, in passes of about 1 s, at most a quarter of the
# writer while ingest waits) deletes them while the row is measured.
# Env: EVENTS (10000000), STEPS (4), DURATION (10s, in seconds with the "s").
# Needs EVENTS x ~1.1 KiB of disk under /tmp. Everything on 127.0.0.1.
source "$(dirname "$0")/lib.sh"
EVENTS=${EVENTS:-10000000}
STEPS=${STEPS:-4}
DURATION=${DURATION:-10s}
start_nginx 202 '{"ok":true}'
start_triggers --max-body 1MiB
KEY=$(make_key '["ingest"]')
python3 - "$SHARED/event_1k.json" "$WORK/batch.json" <<'PY'
import sys
e = open(sys.argv[1]).read().strip()
open(sys.argv[2], "w").write('{"events":[' + ",".join([e] * 500) + "]}")
PY

wrk_rps() {  # url conns duration [batch]
  API_KEY=$KEY PAYLOAD_FILE=${4:-$SHARED/event_1k.json} wrk -t2 -c"$2" -d"$3" --latency \
    -s "$SHARED/post_event.lua" "$1" | grep '^rps='
}
ingested() {
  curl -s "$B/metrics" | awk '/^triggers_events_ingested_total/ {s += $2} END {printf "%d", s}'
}
store_gb() {
  du -cb "$WORK"/data/triggers.db* | tail -1 | awk '{printf "%.2f", $1 / 1e9}'
}
FIRST=""
FIRST_RATIO=""
measure() {  # label events
  local n t nr tr p99
  n=$(wrk_rps "http://127.0.0.1:$NPORT/v1/events" 64 "$DURATION")
  t=$(wrk_rps "$B/v1/events" 64 "$DURATION")
  nr=$(echo "$n" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  tr=$(echo "$t" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  p99=$(echo "$t" | sed -E 's/.*p99_us=([0-9]+).*/\1/')
  [ -z "$FIRST" ] && FIRST=$tr && FIRST_RATIO=$(python3 -c "print($tr/$nr)")
  python3 -c "print('growth %-22s triggers %6.0f rps p99 %6.2f ms = %.2fx nginx (%.0f rps); vs the empty store: %.2fx its rps, %.2fx its ratio; %s events stored before it, store %s GB after' % ('$1', $tr, $p99/1000, $tr/$nr, $nr, $tr/$FIRST, $tr/$nr/$FIRST_RATIO, '$2', '$(store_gb)'))"
}

machine_line
echo "workload: $SHARED/post_event.lua (1 KiB event), wrk -t2 -c64 -d$DURATION; fill: batches of 500, 8 connections"
measure empty 0
T_FIRST_STEP=""
for k in $(seq 1 "$STEPS"); do
  target=$((EVENTS * k / STEPS))
  t0=$(date +%s)
  while left=$((target - $(ingested))) && [ "$left" -gt 0 ]; do
    # ~50,000 events/s or more: 5 s chunks, shorter near the target.
    d=$((left / 50000)); d=$((d < 1 ? 1 : d > 5 ? 5 : d))
    wrk_rps "$B/v1/events/batch" 8 "${d}s" "$WORK/batch.json" >/dev/null
  done
  [ -z "$T_FIRST_STEP" ] && T_FIRST_STEP=$(date +%s)
  echo "fill to $target: $(($(date +%s) - t0)) s"
  measure "after fill $k/$STEPS" "$(ingested)"
done

# Restart with a retention that the first fill step's events have passed.
total=$(ingested)
kill -TERM "$TPID"
wait "$TPID" || true
age=$(($(date +%s) - T_FIRST_STEP))
cp "$WORK/triggers.log" "$WORK/triggers-fill.log"
port=${B##*:}
TRIGGERS_ADMIN_KEY=$ADMIN "$BIN" serve --listen 127.0.0.1:"$port" --data-dir "$WORK/data" \
  --max-body 1MiB --retention "${age}s" ${TRIGGERS_ARGS:-} 2>"$WORK/triggers.log" &
TPID=$!
PIDS+=($TPID)
wait_http "$B/health"
measure "purging (retention ${age}s)" "$total"
grep '"retention purge"' "$WORK/triggers.log" | tail -3 || echo "no purge pass logged yet"
kill -TERM "$TPID"
wait "$TPID" || true
