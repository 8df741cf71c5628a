#!/usr/bin/env bash
# make bench-delivery: push-delivery throughput and ingest-to-delivery latency.
# MODES (default "ingest drain"):
#  ingest: one webhook subscription points at nginx (one worker, `return 200`)
#    on loopback; wrk ingests the shared 1 KiB event for DURATION at CONNS
#    connections; then we wait until every delivery has succeeded and report
#    deliveries/s (events delivered / time from first ingest to last delivery)
#    and the latency from `received_at` to the end of the successful attempt
#    (p50/p99), read from the store with sqlite3 after a clean shutdown.
#  drain: a backlog of BACKLOG (100000) pending deliveries of the 1 KiB event,
#    written by SQL into a stopped server's store, split evenly over SUBS
#    webhook subscriptions (for each count in SUBS_LIST, default "1 8"), is
#    drained by a restarted server: deliveries/s = BACKLOG / (start of the
#    first attempt to the end of the last). Ingest does not compete here.
# Both print, as the reference of the same run, what nginx itself answers:
# wrk posting the 1 KiB event to the sink at 64 connections. The drain also
# prints the server's CPU time per delivery.
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-64}
MODES=${MODES:-ingest drain}
BACKLOG=${BACKLOG:-100000}
SUBS_LIST=${SUBS_LIST:-1 8}
start_nginx 200 ok
machine_line
echo "reference: nginx return 200, wrk -t2 -c64 -d5s posting the 1 KiB event"
NGINX=$(wrk -t2 -c64 -d5s --latency -s "$SHARED/post_event.lua" "http://127.0.0.1:$NPORT/hook" |
  grep '^rps=')
echo "nginx (the sink) $NGINX"
NGINX_RPS=$(echo "$NGINX" | sed -E 's/.*rps=([0-9.]+).*/\1/')

TICKS=$(getconf CLK_TCK)
# CPU time (user+sys, in clock ticks) the server has used so far: per
# delivery, less sensitive than the rate to what else the VM is doing.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$TPID/stat"; }
# The same per thread ("name=ticks:waitns ..."): which stage of the pipeline
# is busy, and how long it stood runnable waiting for a core (schedstat's
# second field): on 2 cores shared with nginx, a thread that is neither busy
# nor blocked is often waiting for a CPU.
thread_ticks() {
  for t in /proc/$TPID/task/*; do
    printf '%s=%s:%s ' "$(cat "$t/comm")" "$(awk '{print $14 + $15}' "$t/stat")" \
      "$(awk '{print $2}' "$t/schedstat")"
  done
}

stop_triggers() {
  kill -TERM $TPID
  wait $TPID || true
}

# Waits (bounded) until the tenant has no unfinished delivery.
# Waits (bounded) until the tenant has no unfinished delivery (GET /v1/stats,
# read without a Python start per poll: the poll must not compete for CPU).
wait_drained() {
  local stats
  for _ in $(seq 1 2400); do
    stats=$(curl -s -H "Authorization: Bearer $KEY" "$B/v1/stats")
    if [[ $stats =~ \"pending\":0,\"in_flight\":0,\"succeeded\":[0-9]+,\"retrying\":0 ]]; then
      return 0
    fi
    sleep 0.25
  done
  echo "bench: deliveries still unfinished" >&2
}

run_ingest() {
  start_triggers --allow-private-destinations
  KEY=$(make_key '["ingest","read","manage"]')
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"url\":\"http://127.0.0.1:$NPORT/hook\",\"max_in_flight\":$MAX_IN_FLIGHT}" "$B/v1/subscriptions"
  echo "ingest: wrk -t2 -c$CONNS -d$DURATION (1 KiB event), one subscription -> nginx return 200, max_in_flight $MAX_IN_FLIGHT"
  local out
  out=$(API_KEY=$KEY wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$SHARED/post_event.lua" \
    "$B/v1/events" | grep '^rps=')
  echo "ingest (while delivering) $out"
  python3 -c "print('ingest/nginx = %.2f' % ($(echo "$out" | sed -E 's/.*rps=([0-9.]+).*/\1/') / $NGINX_RPS))"
  wait_drained
  stop_triggers
  sqlite3 "$WORK/data/triggers.db" <<'SQL' | python3 -c '
import sys
rows = [l.split("|") for l in sys.stdin.read().split()]
lat = sorted(int(r[0]) for r in rows)
first = min(int(r[1]) for r in rows); last = max(int(r[2]) for r in rows)
n = len(lat); span = (last - first) / 1000.0
pct = lambda p: lat[min(n - 1, int(p * n))]
print("delivered %d events in %.1f s (first ingest to last delivery) = %.0f deliveries/s" % (n, span, n / span))
print("ingest-to-delivery latency: p50 %d ms, p99 %d ms, max %d ms" % (pct(0.5), pct(0.99), lat[-1]))
'
SELECT (a.at + a.latency_ms) - e.received_at, e.received_at, a.at + a.latency_ms
FROM deliveries d JOIN events e ON e.id = d.event_id AND e.tenant = d.tenant
JOIN delivery_attempts a ON a.delivery_id = d.id AND a.n = d.attempts
WHERE d.status = 'succeeded';
SQL
  rm -rf "$WORK/data"
}

run_drain() {  # SUBS
  local subs=$1 db="$WORK/data/triggers.db" now
  start_triggers --allow-private-destinations
  KEY=$(make_key '["ingest","read","manage"]')
  for _ in $(seq 1 "$subs"); do
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
      -d "{\"url\":\"http://127.0.0.1:$NPORT/hook\",\"max_in_flight\":$MAX_IN_FLIGHT}" "$B/v1/subscriptions"
  done
  stop_triggers
  now=$(($(date +%s) * 1000))
  python3 - "$SHARED/event_1k.json" "$BACKLOG" "$subs" "$now" >"$WORK/backlog.sql" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1])); n, subs, now = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
q = lambda v: "'" + v.replace("'", "''") + "'"
data = json.dumps(ev["data"], separators=(",", ":"))
print("BEGIN;")
print("CREATE TEMP TABLE subs AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM subscriptions;")
print("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %d) "
      "INSERT INTO events(id,tenant,type,source,subject,data,received_at) SELECT "
      "printf('evt_bk%%020d', i),'bench',%s,%s,%s,%s,%d FROM n;"
      % (n, q(ev["type"]), q(ev["source"]), q(ev["subject"]), q(data), now))
print("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < %d) "
      "INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,attempts,next_attempt_at,"
      "created_at,updated_at) SELECT printf('dlv_bk%%020d', i),'bench',printf('evt_bk%%020d', i),"
      "(SELECT id FROM subs WHERE k = i %% %d),'pending',0,%d,%d,%d FROM n;"
      % (n, subs, now, now, now))
print("COMMIT;")
PY
  sqlite3 "$db" <"$WORK/backlog.sql"
  start_triggers --allow-private-destinations
  wait_drained
  cpu=$(cpu_ticks)
  threads=$(thread_ticks)
  stop_triggers
  sqlite3 "$db" "SELECT count(*), min(a.at), max(a.at + a.latency_ms), sum(d.attempts > 1)
    FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id AND a.n = d.attempts
    WHERE d.status = 'succeeded'" | python3 -c "
import sys
n, first, last, again = (int(x or 0) for x in sys.stdin.read().strip().split('|'))
span = (last - first) / 1000.0
print('drain, $subs subscription(s), max_in_flight $MAX_IN_FLIGHT each: %d of $BACKLOG deliveries in %.2f s (first attempt to last) = %.0f deliveries/s, attempted more than once: %d' % (n, span, n / span, again))
print('  triggers CPU (user+sys, start included): %.2f s = %.0f us per delivery' % ($cpu / $TICKS, $cpu / $TICKS / n * 1e6))
busy = [(k, int(v), int(w)) for k, v, w in (x.replace(':', '=').split('=') for x in '$threads'.split()) if int(v) * 20 > $cpu]
print('  of which, per delivery: ' + ', '.join('%s %.0f us' % (k, v / $TICKS / n * 1e6) for k, v, w in busy))
print('  waiting for a core (runnable, not running), per delivery: ' + ', '.join('%s %.0f us' % (k, w / 1e3 / n) for k, v, w in busy))"
  rm -rf "$WORK/data"
}

for mode in $MODES; do
  case $mode in
    ingest) run_ingest ;;
    drain) for s in $SUBS_LIST; do run_drain "$s"; done ;;
    *) echo "bench: unknown mode $mode" >&2; exit 2 ;;
  esac
done
