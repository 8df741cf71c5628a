#!/usr/bin/env bash
# Pull-inbox throughput: a fresh server on a free loopback port with a temporary
# data dir, one key (ingest/read/manage/consume) and one pull subscription; then
# bench/pull_bench.py ingests N events (batches of 500) and drains them with one
# consumer (receive max=B + ack) for B = 10 and B = 100, printing events
# received-and-acked per second. The shared 1 KiB event is used when present
# (the server gets --max-body 1MiB so that 500 of them fit in one batch).
# Env: N (20000), BATCHES (10,100), TRIGGERS_BIN, TRIGGERS_ARGS, SHARED.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-$ROOT/../shared/bench}
N=${N:-20000}
BATCHES=${BATCHES:-10,100}
BIN=${TRIGGERS_BIN:-$ROOT/build/triggers}
WORK=$(mktemp -d /tmp/triggers-bench-pull.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
  for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "bench: $1 did not come up" >&2; return 1
}

TPORT=$(free_port)
ADMIN=trg_benchadmin$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
TRIGGERS_ADMIN_KEY=$ADMIN "$BIN" serve --listen 127.0.0.1:$TPORT --data-dir "$WORK/data" \
  --max-body 1MiB ${TRIGGERS_ARGS:-} 2>"$WORK/triggers.log" &
TPID=$!
PIDS+=($TPID)
wait_http "http://127.0.0.1:$TPORT/health"
B="http://127.0.0.1:$TPORT"
KEY=$(curl -s -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"tenant":"bench","scopes":["ingest","read","manage","consume"],"name":"pull-bench"}' "$B/v1/keys" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
SUB=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"kind":"pull","description":"pull bench"}' "$B/v1/subscriptions" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

PAYLOAD=()
[ -f "$SHARED/event_1k.json" ] && PAYLOAD=(--payload "$SHARED/event_1k.json")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
python3 "$ROOT/bench/pull_bench.py" --url "$B" --key "$KEY" --subscription "$SUB" \
  --n "$N" --batches "$BATCHES" "${PAYLOAD[@]}"

kill -TERM $TPID
wait $TPID || true
