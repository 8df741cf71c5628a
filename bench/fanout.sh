#!/usr/bin/env bash
# make bench-fanout (fairness case 1): other tenants' ingest latency while one
# tenant fans out, beside the same with no fan-out, in the same run.
# Tenant "fanout" has SUBS catch-all pull subscriptions and posts one batch of
# EVENTS events (SUBS x EVENTS deliveries); tenant "bench" meanwhile posts
# single 1 KiB events (../shared/bench/post_event.lua) on CONNS connections
# for DURATION. Prints the other tenant's requests/s, p50, p99 and max, how
# long the batch took to be answered and until every delivery existed.
# UNBOUNDED=1 adds the same run on a server whose commits are not bounded
# (TRIGGERS_TEST_FANOUT_ROWS_PER_COMMIT huge: every row in the batch's commit,
# as before the bound). ROWS="500 1000" adds a round per rows-per-commit value;
# HANGING=0 skips bench/fanout_hanging.sh. Everything listens on 127.0.0.1 only.
source "$(dirname "$0")/lib.sh"
SUBS=${SUBS:-1000}
EVENTS=${EVENTS:-500}
CONNS=${CONNS:-8}
DURATION=${DURATION:-25}
LOAD="python3 $ROOT/bench/fanout_load.py"

tenant_key() {  # tenant scopes_json
  curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"tenant\":\"$1\",\"scopes\":$2,\"name\":\"bench\"}" "$B/v1/keys" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}

other() {  # label: the other tenant's ingest for DURATION seconds
  # --timeout: a stalled request must count in the latency, not as a wrk timeout error.
  API_KEY=$KEY_B wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 60s --latency -s "$SHARED/post_event.lua" \
    "$B/v1/events" | grep '^rps=' |
    python3 -c '
import re, sys
line = sys.stdin.read().strip()
v = dict(re.findall(r"(\w+)=([0-9.]+)", line))
print("%-26s rps=%.0f p50=%.1f ms p99=%.1f ms max=%.1f ms errors=%s" % (sys.argv[1],
      float(v["rps"]), int(v["p50_us"]) / 1e3, int(v["p99_us"]) / 1e3,
      int(v["max_us"]) / 1e3, v["errors"]))' "$1"
}

round() {  # label [VAR=value: one environment variable for the server]
  local label=$1 fan wrk_pid
  rm -rf "$WORK/data"
  if [ $# -gt 1 ]; then export "$2"; fi
  start_triggers
  if [ $# -gt 1 ]; then unset "${2%%=*}"; fi
  KEY_A=$(tenant_key fanout '["ingest","manage","read"]')
  KEY_B=$(tenant_key bench '["ingest"]')
  $LOAD subs "$B" "$KEY_A" "$SUBS"
  other "$label: no fan-out"
  other "$label: during fan-out" &
  wrk_pid=$!
  sleep 1
  fan=$($LOAD batch "$B" "$KEY_A" "$EVENTS" $((SUBS * EVENTS)) $((DURATION - 1)))
  wait $wrk_pid
  echo "$label: fan-out $SUBS x $EVENTS: $fan"
  kill -TERM "$TPID"
  wait "$TPID" || true
}

machine_line
echo "workload: one tenant posts one batch of $EVENTS events to $SUBS catch-all pull subscriptions;"
echo "          another posts single 1 KiB events, wrk -t2 -c$CONNS -d${DURATION}s ($SHARED/post_event.lua)"
round bounded
# ROWS="500 1000": more rounds, each with that many rows per commit.
for r in ${ROWS:-}; do
  round "rows=$r" TRIGGERS_TEST_FANOUT_ROWS_PER_COMMIT=$r
done
if [ "${UNBOUNDED:-0}" = 1 ]; then
  round unbounded TRIGGERS_TEST_FANOUT_ROWS_PER_COMMIT=1000000000
fi
if [ "${HANGING:-1}" = 1 ] && [ -f "$ROOT/bench/fanout_hanging.sh" ]; then
  bash "$ROOT/bench/fanout_hanging.sh"
fi
