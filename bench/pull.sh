#!/usr/bin/env bash
# Pull-inbox throughput: a fresh server on a free loopback port with a temporary
# data dir, one key (ingest/read/manage/consume) and one pull subscription; then
# the load generator ingests N events (batches of 500) and drains them with C
# consumers (receive max=B + ack) for B = 10 and B = 100 and C = 1 and 4,
# printing events received-and-acked per second and the server's CPU per
# message. The shared 1 KiB event is used when present (the server gets
# --max-body 1MiB so that 500 of them fit in one batch).
# The load generator is bench/pull_load (C++, the CMake target pull_load, built
# here when missing), which costs a few us of CPU per message, so that the
# figure is the server's; CLIENT=python runs bench/pull_bench.py instead (the
# same semantics, but it parses every answer as JSON and takes more CPU than
# the server on a 2-core machine), CLIENT=both runs both on the same server.
# Env: N (20000), BATCHES (10,100), CONSUMERS (1,4), CLIENT (lean), TRIGGERS_BIN,
# TRIGGERS_ARGS, SHARED, BUILD (build: where pull_load is).
source "$(dirname "$0")/lib.sh"
N=${N:-20000}
BATCHES=${BATCHES:-10,100}
CONSUMERS=${CONSUMERS:-1,4}
CLIENT=${CLIENT:-lean}
LOAD=$ROOT/${BUILD:-build}/pull_load
if [ "$CLIENT" != python ] && [ ! -x "$LOAD" ]; then
  cmake --build "$ROOT/${BUILD:-build}" --target pull_load >&2
fi
start_triggers --max-body 1MiB
KEY=$(make_key '["ingest","read","manage","consume"]')
SUB=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"kind":"pull","description":"pull bench"}' "$B/v1/subscriptions" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

PAYLOAD=()
[ -f "$SHARED/event_1k.json" ] && PAYLOAD=(--payload "$SHARED/event_1k.json")
machine_line
echo "reference: issue 12 asks >= 50000 events/s received+acked at B=100"
ARGS=(--url "$B" --key "$KEY" --subscription "$SUB" --n "$N" --batches "$BATCHES"
  --consumers "$CONSUMERS" --server-pid "$TPID" "${PAYLOAD[@]}")
if [ "$CLIENT" != python ]; then "$LOAD" "${ARGS[@]}"; fi
if [ "$CLIENT" != lean ]; then python3 "$ROOT/bench/pull_bench.py" "${ARGS[@]}"; fi

kill -TERM $TPID
wait $TPID || true
