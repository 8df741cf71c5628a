#!/usr/bin/env bash
# Pull-inbox throughput: a fresh server on a free loopback port with a temporary
# data dir, one key (ingest/read/manage/consume) and one pull subscription; then
# bench/pull_bench.py ingests N events (batches of 500) and drains them with C
# consumer processes (receive max=B + ack) for B = 10 and B = 100 and C = 1
# and 4, printing events received-and-acked per second and the server's CPU
# per message. The shared 1 KiB event is used when present (the server gets
# --max-body 1MiB so that 500 of them fit in one batch).
# Env: N (20000), BATCHES (10,100), CONSUMERS (1,4), TRIGGERS_BIN, TRIGGERS_ARGS, SHARED.
source "$(dirname "$0")/lib.sh"
N=${N:-20000}
BATCHES=${BATCHES:-10,100}
CONSUMERS=${CONSUMERS:-1,4}
start_triggers --max-body 1MiB
KEY=$(make_key '["ingest","read","manage","consume"]')
SUB=$(curl -s -X POST -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
  -d '{"kind":"pull","description":"pull bench"}' "$B/v1/subscriptions" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

PAYLOAD=()
[ -f "$SHARED/event_1k.json" ] && PAYLOAD=(--payload "$SHARED/event_1k.json")
machine_line
python3 "$ROOT/bench/pull_bench.py" --url "$B" --key "$KEY" --subscription "$SUB" \
  --n "$N" --batches "$BATCHES" --consumers "$CONSUMERS" --server-pid "$TPID" "${PAYLOAD[@]}"

kill -TERM $TPID
wait $TPID || true
