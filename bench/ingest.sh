#!/usr/bin/env bash
# make bench-ingest: triggers (durable SQLite group commit) beside nginx
# `return 202` in the same run, with the shared 1 KiB workload
# (../shared/bench/post_event.lua), at 8 and 64 connections.
# Prints requests/s, p50, p99, the ratio triggers/nginx and the average number
# of events per group commit. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-$ROOT/../shared/bench}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-"8 64"}
BIN=${TRIGGERS_BIN:-$ROOT/build/triggers}
WORK=$(mktemp -d /tmp/triggers-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # url
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

# nginx, one worker, answering 202: the HTTP ceiling of this machine.
NPORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  client_max_body_size 1m;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:$NPORT;
    location / { return 202 '{"ok":true}'; }
  }
}
NGX
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx/stderr" &
PIDS+=($!)

TPORT=$(free_port)
ADMIN=trg_benchadmin$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TRIGGERS_ADMIN_KEY=$ADMIN "$BIN" serve --listen 127.0.0.1:$TPORT --data-dir "$WORK/data" \
  ${TRIGGERS_ARGS:-} 2>"$WORK/triggers.log" &
TPID=$!
PIDS+=($TPID)
wait_http "http://127.0.0.1:$NPORT/"
wait_http "http://127.0.0.1:$TPORT/health"
KEY=$(curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"tenant":"bench","scopes":["ingest"],"name":"bench"}' "http://127.0.0.1:$TPORT/v1/keys" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

run() {  # name url conns
  API_KEY=$KEY wrk -t2 -c"$3" -d"$DURATION" --latency -s "$SHARED/post_event.lua" "$2" |
    grep '^rps=' | sed "s/^/$1 c=$3 /"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "workload: $SHARED/post_event.lua (1 KiB event), wrk -t2 -d$DURATION"
declare -A RPS P99
for c in $CONNS; do
  n=$(run nginx "http://127.0.0.1:$NPORT/v1/events" "$c")
  t=$(run triggers "http://127.0.0.1:$TPORT/v1/events" "$c")
  echo "$n"
  echo "$t"
  nr=$(echo "$n" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  tr=$(echo "$t" | sed -E 's/.*rps=([0-9.]+).*/\1/')
  tp99=$(echo "$t" | sed -E 's/.*p99_us=([0-9]+).*/\1/')
  python3 -c "print('ratio c=$c triggers/nginx = %.2f  (triggers p99 %.2f ms)' % ($tr/$nr, $tp99/1000))"
done

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
        c, e = o["ingest_commits"], o["ingest_events"]
        print("group commit: %d events in %d commits = %.1f events per commit" % (e, c, e / max(c, 1)))
PY
