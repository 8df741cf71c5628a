#!/usr/bin/env bash
# make bench-postgres (bash bench/postgres.sh): triggers on PostgreSQL, one node and two nodes on one
# database, beside nginx `return 202` and beside pgbench inserting the same
# event rows into the same table (one row per fsync'd transaction, the way a
# naive service would) on the same private PostgreSQL server, in the same run.
# Then push deliveries per second with one and with two nodes (a webhook
# subscription to nginx `return 200`).
# A private PostgreSQL 15 cluster is started in $WORK (scripts/test-pg) on a
# free 127.0.0.1 port and stopped at exit.
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PGBIN=/usr/lib/postgresql/15/bin
PGDIR="$WORK/pg"
# PG_STATS=1: pg_stat_statements on the server; each drain prints its top
# statements (calls, mean ms, total ms, rows, plans, mean planning ms), for profiling, not for the figures.
if [ "${PG_STATS:-}" = 1 ]; then
  export TRIGGERS_PG_OPTS="${TRIGGERS_PG_OPTS:-} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
fi
"$ROOT/scripts/test-pg" start "$PGDIR" >/dev/null
stop_pg() { "$ROOT/scripts/test-pg" stop "$PGDIR" >/dev/null 2>&1 || true; cleanup; }
trap stop_pg EXIT
PGURL=$(cat "$PGDIR/url")
PGBASE=${PGURL%/*}
N_DB=0
new_db() {  # sets DBURL to the URL of a fresh database (not in $(...): N_DB must count)
  N_DB=$((N_DB + 1))
  psql -q "$PGURL" -c "CREATE DATABASE bench$N_DB" >/dev/null
  DBURL="$PGBASE/bench$N_DB"
}

# start_node URL [args...]: one more triggers node on the database URL.
NODE_PIDS=()
NODE_URLS=()
start_node() {
  local url=$1 port dir
  shift
  port=$(free_port)
  dir="$WORK/node-$port"
  mkdir -p "$dir"
  TRIGGERS_ADMIN_KEY=$ADMIN "$BIN" serve --listen 127.0.0.1:$port --data-dir "$dir" \
    --store postgres --postgres-url "$url" "$@" 2>"$dir/log" &
  NODE_PIDS+=($!)
  PIDS+=($!)
  NODE_URLS+=("http://127.0.0.1:$port")
  wait_http "http://127.0.0.1:$port/health"
}
stop_nodes() {
  for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  NODE_PIDS=()
  NODE_URLS=()
}
ADMIN=trg_benchadmin$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

# wrk against each URL at once, CONNS split between them; prints the sum.
ingest() {  # name conns url...
  local name=$1 conns=$2
  shift 2
  local per=$((conns / $#)) i=0 outs=() wrks=() threads=$((2 / $#))
  [ "$threads" -ge 1 ] || threads=1
  for u in "$@"; do
    API_KEY=$KEY wrk -t"$threads" -c"$per" -d"$DURATION" --latency -s "$SHARED/post_event.lua" \
      "$u/v1/events" >"$WORK/wrk.$i" &
    wrks+=($!)
    outs+=("$WORK/wrk.$i")
    i=$((i + 1))
  done
  for p in "${wrks[@]}"; do wait "$p"; done
  python3 - "$name" "$conns" "${outs[@]}" <<'PY'
import re, sys
name, conns, files = sys.argv[1], sys.argv[2], sys.argv[3:]
rps = p99 = errors = 0.0
for f in files:
    m = re.search(r"rps=([0-9.]+) p50_us=(\d+) p99_us=(\d+) max_us=(\d+) errors=(\d+)", open(f).read())
    rps += float(m.group(1)); p99 = max(p99, int(m.group(3))); errors += int(m.group(5))
print("%s c=%s rps=%.1f p99_us(max over wrk runs)=%d errors=%d" % (name, conns, rps, p99, errors))
PY
}

machine_line
echo "postgres: $($PGBIN/postgres --version), fsync=on, synchronous_commit=on, private cluster on 127.0.0.1"
echo "workload: $SHARED/post_event.lua (1 KiB event), wrk -d$DURATION, $CONNS connections in total"

# ONLY=drain: the delivery drain alone (comparing two binaries' drain).
if [ "${ONLY:-}" != drain ]; then
start_nginx 202 '{"ok":true}'
NGINX_INGEST=$NPORT
KEY=unused
ingest nginx "$CONNS" "http://127.0.0.1:$NGINX_INGEST"

# --- one node ---------------------------------------------------------------
new_db
start_node "$DBURL"
B=${NODE_URLS[0]}
KEY=$(make_key '["ingest","read","manage"]')
ingest "triggers-pg 1 node" "$CONNS" "$B"
stop_nodes

# --- two nodes on one database ----------------------------------------------
new_db
DB2=$DBURL
start_node "$DB2"
start_node "$DB2"
B=${NODE_URLS[0]}
KEY=$(make_key '["ingest","read","manage"]')
ingest "triggers-pg 2 nodes" "$CONNS" "${NODE_URLS[@]}"
stop_nodes

# --- pgbench: the same rows, one INSERT per transaction ------------------------
python3 - "$SHARED/event_1k.json" >"$WORK/insert.sql" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
data = json.dumps(ev["data"], separators=(",", ":")).replace("'", "''")
print("INSERT INTO events(id,tenant,type,source,subject,ordering_key,data,received_at) VALUES "
      "('evt_' || :client_id || '_' || nextval('pgb'), 'bench', '%s', '%s', '%s', NULL, '%s', "
      "(extract(epoch from now())*1000)::bigint);"
      % (ev["type"], ev["source"], ev["subject"], data))
PY
psql -q "$DB2" -c "CREATE SEQUENCE pgb" >/dev/null
"$PGBIN/pgbench" -n -M prepared -c "$CONNS" -j 2 -T "${DURATION%s}" -f "$WORK/insert.sql" "$DB2" \
  2>/dev/null | grep -E "^tps|latency average" | sed 's/^/pgbench insert (same row, same table, c='"$CONNS"'): /'
fi

# --- deliveries per second, 1 and 2 nodes --------------------------------------
# A backlog of BACKLOG events (the shared 1 KiB event's data) with a pending
# delivery each is written straight into the database for a disabled
# subscription; then the subscription is enabled and the time until every
# delivery has succeeded is measured: the drain rate of N nodes, without
# ingest competing for the same two cores.
BACKLOG=${BACKLOG:-50000}
# CPU time (clock ticks) of the PostgreSQL server: the postmaster, its live
# processes and the ones it reaped (the nodes' backends, once they exit).
pg_ticks() {
  local pm t=0 p
  pm=$(head -1 "$(cat "$PGDIR/root")/data/postmaster.pid")
  t=$(awk '{print $14+$15+$16+$17}' "/proc/$pm/stat")
  for p in $(pgrep -P "$pm"); do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done
  echo "$t"
}
start_nginx 200 ok
HOOK=$NPORT
deliveries() {  # nodes
  local n=$1 db sub t0
  new_db
  db=$DBURL
  for _ in $(seq 1 "$n"); do start_node "$db" --allow-private-destinations; done
  B=${NODE_URLS[0]}
  KEY=$(make_key '["ingest","read","manage"]')
  sub=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"url\":\"http://127.0.0.1:$HOOK/hook\",\"max_in_flight\":64,\"enabled\":false}" \
    "$B/v1/subscriptions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  python3 - "$SHARED/event_1k.json" "$sub" "$BACKLOG" >"$WORK/backlog.sql" <<'PY'
import json, sys, time
ev = json.load(open(sys.argv[1])); sub = sys.argv[2]; n = int(sys.argv[3])
data = json.dumps(ev["data"], separators=(",", ":")).replace("'", "''")
now = int(time.time() * 1000)
print("INSERT INTO events(id,tenant,type,source,subject,data,received_at) SELECT "
      "'evt_b'||lpad(g::text,21,'0'),'bench','%s','%s','%s','%s',%d FROM generate_series(1,%d) g;"
      % (ev["type"], ev["source"], ev["subject"], data, now, n))
print("INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,next_attempt_at,created_at,"
      "updated_at) SELECT 'dlv_b'||lpad(g::text,21,'0'),'bench','evt_b'||lpad(g::text,21,'0'),"
      "'%s','pending',%d,%d,%d FROM generate_series(1,%d) g;" % (sub, now, now, now, n))
print("ANALYZE;")
PY
  psql -q "$db" -f "$WORK/backlog.sql" >/dev/null
  if [ "${PG_STATS:-}" = 1 ]; then
    psql -q "$db" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" -c "SELECT pg_stat_statements_reset()" >/dev/null
  fi
  local node0=0 p
  for p in "${NODE_PIDS[@]}"; do node0=$((node0 + $(awk '{print $14+$15}' "/proc/$p/stat"))); done
  pg0=$(pg_ticks)
  t0=$(python3 -c 'import time; print(int(time.time()*1000))')
  curl -s -o /dev/null -X PATCH -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d '{"enabled":true}' "$B/v1/subscriptions/$sub"
  for _ in $(seq 1 1200); do
    left=$(psql -qtA "$db" -c "SELECT count(*) FROM deliveries WHERE status<>'succeeded'")
    [ "$left" = 0 ] && break
    sleep 0.5
  done
  psql -qtA -F' ' "$db" -c "
    SELECT count(*), max(a.at + a.latency_ms)
    FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id AND a.n = d.attempts
    WHERE d.status = 'succeeded'" | python3 -c "
import sys
n, last = sys.stdin.read().split()
n = int(n); span = (int(last) - $t0) / 1000.0
print('$n node(s): drained %d deliveries (webhooks to nginx, 1 KiB events) in %.1f s after enabling = %.0f deliveries/s' % (n, span, n / span))"
  echo "$n node(s): deliveries attempted more than once: $(psql -qtA "$db" -c "SELECT count(*) FROM deliveries WHERE attempts>1")"
  local node_ticks=$((-node0))
  for p in "${NODE_PIDS[@]}"; do node_ticks=$((node_ticks + $(awk '{print $14+$15}' "/proc/$p/stat"))); done
  stop_nodes
  sleep 0.5  # the nodes' backends exit and are reaped
  python3 -c "
hz = $(getconf CLK_TCK)
print('$n node(s): CPU per 1,000 deliveries (enable to drained, polling included): postgres %.0f ms, triggers %.0f ms' % (($(pg_ticks) - $pg0) * 1000.0 / hz / ($BACKLOG / 1000.0), $node_ticks * 1000.0 / hz / ($BACKLOG / 1000.0)))"
  if [ "${PG_STATS:-}" = 1 ]; then
    psql -qtA -F' | ' "$db" -c "SELECT calls, round(mean_exec_time::numeric,3), round(total_exec_time::numeric), rows, plans, round(mean_plan_time::numeric,3), left(regexp_replace(query,'\s+',' ','g'),90) FROM pg_stat_statements WHERE dbid=(SELECT oid FROM pg_database WHERE datname=current_database()) ORDER BY total_exec_time DESC LIMIT 8" | sed "s/^/$n node(s) pg_stat_statements: /"
  fi
}
deliveries 1
deliveries 2
