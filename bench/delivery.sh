#!/usr/bin/env bash
# make bench-delivery: push-delivery throughput and ingest-to-delivery latency.
# One webhook subscription points at nginx (one worker, `return 200`) on
# loopback; wrk ingests the shared 1 KiB event for DURATION at CONNS
# connections; then we wait until every delivery has succeeded and report
# deliveries/s (events delivered / time from first ingest to last delivery)
# and the latency from `received_at` to the end of the successful attempt
# (p50/p99), read from the store with sqlite3 after a clean shutdown.
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-64}
start_nginx 200 ok
start_triggers --allow-private-destinations
KEY=$(make_key '["ingest","read","manage"]')
curl -s -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d "{\"url\":\"http://127.0.0.1:$NPORT/hook\",\"max_in_flight\":$MAX_IN_FLIGHT}" "$B/v1/subscriptions"

machine_line
echo "ingest: wrk -t2 -c$CONNS -d$DURATION (1 KiB event), one subscription -> nginx return 200, max_in_flight $MAX_IN_FLIGHT"
API_KEY=$KEY wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$SHARED/post_event.lua" "$B/v1/events" |
  grep '^rps=' | sed 's/^/ingest (while delivering) /'
# Wait until nothing is pending (bounded).
for _ in $(seq 1 600); do
  left=$(curl -s -H "Authorization: Bearer $KEY" "$B/v1/deliveries?status=pending&limit=1" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
  retrying=$(curl -s -H "Authorization: Bearer $KEY" "$B/v1/deliveries?status=in_flight&limit=1" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))')
  [ "$left" = 0 ] && [ "$retrying" = 0 ] && break
  sleep 0.5
done
kill -TERM $TPID
wait $TPID || true
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
