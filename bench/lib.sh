# Shared by the bench scripts (sourced): a work dir removed at exit, every
# process started here stopped by its PID, loopback ports only.
# Sets: ROOT, SHARED, BIN, WORK; provides free_port, wait_http, start_nginx,
# start_triggers (sets TPID, B, ADMIN), make_key, machine_line.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
BIN=${TRIGGERS_BIN:-$ROOT/build/triggers}
WORK=$(mktemp -d /tmp/triggers-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# Dirty pages left by an earlier run (a deleted multi-GB data dir) stall the
# fsyncs of this one (p99 of 0.3-1 s seen): write them out first.
sync

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() {  # url
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2
  return 1
}

machine_line() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}

# start_nginx STATUS BODY: one worker answering every request; sets NPORT.
# (Not to be called inside $(...): the PID must reach this shell's PIDS.)
start_nginx() {
  local port dir
  port=$(free_port)
  dir="$WORK/nginx-$port"
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  client_max_body_size 1m;
  client_body_buffer_size 64k;
  server {
    listen 127.0.0.1:$port;
    location / { return $1 '$2'; }
  }
}
NGX
  nginx -c "$dir/nginx.conf" -p "$dir" >/dev/null 2>"$dir/stderr" &
  PIDS+=($!)
  NPORT=$port
  wait_http "http://127.0.0.1:$port/"
}

# start_triggers [extra serve args...]: a fresh data dir, an admin key in the
# environment; sets TPID, B (base URL) and ADMIN.
start_triggers() {
  local port
  port=$(free_port)
  ADMIN=trg_benchadmin$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  TRIGGERS_ADMIN_KEY=$ADMIN "$BIN" serve --listen 127.0.0.1:$port --data-dir "$WORK/data" \
    "$@" ${TRIGGERS_ARGS:-} 2>"$WORK/triggers.log" &
  TPID=$!
  PIDS+=($TPID)
  B="http://127.0.0.1:$port"
  wait_http "$B/health"
}

# make_key SCOPES_JSON -> prints a tenant key of tenant "bench".
make_key() {
  curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"tenant\":\"bench\",\"scopes\":$1,\"name\":\"bench\"}" "$B/v1/keys" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}
