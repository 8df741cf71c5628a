#!/usr/bin/env bash
# Cost of the monitoring and due-work queries with a large backlog (issue 12):
# a store with ROWS deliveries (UNFINISHED of them pending and due, in SUBS
# pull subscriptions; the rest succeeded) is built by SQL inserts into a
# stopped server's SQLite file, then: the time of a /metrics scrape (median
# of 5), and the time of the dispatcher's due-work query and of the
# oldest-due query as each binary runs them (sqlite3 on the same file).
# With TRIGGERS_BIN_AFTER set, the store is then opened by that binary
# (its migrations run; their time is printed) and measured again.
# Env: ROWS (1000000), UNFINISHED (666000), SUBS (10), TRIGGERS_BIN, TRIGGERS_BIN_AFTER.
source "$(dirname "$0")/lib.sh"
ROWS=${ROWS:-1000000}
UNFINISHED=${UNFINISHED:-666000}
SUBS=${SUBS:-10}
start_triggers
KEY=$(make_key '["ingest","read","manage","consume"]')
for _ in $(seq 1 "$SUBS"); do
  curl -s -o /dev/null -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"kind":"pull"}' "$B/v1/subscriptions"
done
kill -TERM $TPID
wait $TPID || true
DB="$WORK/data/triggers.db"
NOW=$(($(date +%s) * 1000))
t0=$(date +%s.%N)
sqlite3 "$DB" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
CREATE TEMP TABLE subs AS SELECT row_number() OVER (ORDER BY id) - 1 AS k, id FROM subscriptions;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $ROWS)
INSERT INTO events(id, tenant, type, data, received_at)
  SELECT printf('evt_bk%020d', i), 'bench', 'order.created', '{}', $NOW - 3600000 FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $ROWS)
INSERT INTO deliveries(id, tenant, event_id, subscription_id, status, attempts, next_attempt_at,
                       created_at, updated_at)
  SELECT printf('dlv_bk%020d', i), 'bench', printf('evt_bk%020d', i),
         (SELECT id FROM subs WHERE k = i % $SUBS),
         CASE WHEN i < $UNFINISHED THEN 'pending' ELSE 'succeeded' END, 0,
         CASE WHEN i < $UNFINISHED THEN $NOW - 3600000 + i ELSE NULL END,
         $NOW - 3600000, $NOW - 3600000 FROM n;
COMMIT;
SQL
echo "backlog: $ROWS deliveries ($UNFINISHED pending and due) in $SUBS subscriptions, built in $(echo "$(date +%s.%N) - $t0" | bc) s"

OLD_DUE="SELECT DISTINCT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL AND next_attempt_at<=$NOW;"
NEW_DUE="WITH RECURSIVE s(id) AS (SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL ORDER BY subscription_id LIMIT 1) UNION ALL SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL AND subscription_id>s.id ORDER BY subscription_id LIMIT 1) FROM s WHERE s.id IS NOT NULL) SELECT s.id FROM s WHERE s.id IS NOT NULL AND (SELECT min(next_attempt_at) FROM deliveries d WHERE d.subscription_id=s.id AND d.next_attempt_at IS NOT NULL)<=$NOW;"
OLD_OLDEST="SELECT min(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL AND status IN ('pending','retrying') AND next_attempt_at<=$NOW;"
NEW_OLDEST="WITH RECURSIVE s(id) AS (SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL ORDER BY subscription_id LIMIT 1) UNION ALL SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL AND subscription_id>s.id ORDER BY subscription_id LIMIT 1) FROM s WHERE s.id IS NOT NULL) SELECT min((SELECT next_attempt_at FROM deliveries d WHERE d.subscription_id=s.id AND d.next_attempt_at IS NOT NULL AND d.status IN ('pending','retrying') ORDER BY d.next_attempt_at LIMIT 1)) FROM s WHERE s.id IS NOT NULL;"
query_ms() {  # SQL -> median ms of 5 runs
  for _ in 1 2 3 4 5; do
    printf '.timer on\n%s\n' "$1" | sqlite3 "$DB" | sed -n 's/^Run Time: real \([0-9.]*\).*/\1/p'
  done | sort -n | sed -n 3p | awk '{printf "%.2f", $1 * 1000}'
}
echo "due-work query: before (DISTINCT over the due index) $(query_ms "$OLD_DUE") ms, after (loose index scan) $(query_ms "$NEW_DUE") ms"
echo "oldest-due query: before $(query_ms "$OLD_OLDEST") ms, after $(query_ms "$NEW_OLDEST") ms"

scrape() {  # label: median of 5 /metrics scrapes
  local port=$(free_port) t
  t0=$(date +%s.%N)
  TRIGGERS_ADMIN_KEY=$ADMIN "$1" serve --listen 127.0.0.1:$port --data-dir "$WORK/data" 2>>"$WORK/triggers.log" &
  TPID=$!
  PIDS+=($TPID)
  wait_http "http://127.0.0.1:$port/health"
  echo "$2: started (migrations included) in $(echo "$(date +%s.%N) - $t0" | bc) s"
  t=$(for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/metrics"; done |
    sort -n | sed -n 3p)
  echo "$2: /metrics scrape $(echo "$t * 1000" | bc) ms (median of 5)"
  kill -TERM $TPID
  wait $TPID || true
}
scrape "$BIN" "$(basename "$BIN")"
[ -n "${TRIGGERS_BIN_AFTER:-}" ] && scrape "$TRIGGERS_BIN_AFTER" "$(basename "$TRIGGERS_BIN_AFTER")"
true
