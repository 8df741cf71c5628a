#!/usr/bin/env bash
# Fairness, issue 12 case 2: another tenant's webhook latency while one
# tenant's endpoints hang on the same host:port. One receiver on loopback
# (tests/integration/receiver.py, one port): tenant A's HANG_SUBS
# subscriptions (max_in_flight HANG_MIF each) point at paths that accept and
# never answer; tenant B's one subscription points at a path answered at
# once. B ingests one event every INTERVAL_MS for PHASE_S seconds, first with
# nothing hanging, then while A's endpoints hang (A's attempts time out after
# DELIVERY_TIMEOUT and come back after 1 s, again and again). Reported: B's
# ingest-to-arrival latency p50/p99/max in both phases, side by side, and how
# many of A's attempts were in progress at once. Reports only; never fails.
source "$(dirname "$0")/lib.sh"
export HANG_SUBS=${HANG_SUBS:-5}
export HANG_MIF=${HANG_MIF:-16}
export PHASE_S=${PHASE_S:-20}
export INTERVAL_MS=${INTERVAL_MS:-50}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-15s}
start_triggers --allow-private-destinations --delivery-timeout "$DELIVERY_TIMEOUT" \
  --retry-schedule "$(python3 -c 'print(",".join(["1s"] * 30))')"
machine_line
echo "tenant A: $HANG_SUBS hanging subscriptions x max_in_flight $HANG_MIF, delivery timeout $DELIVERY_TIMEOUT;" \
  "tenant B: 1 subscription on the same host:port, 1 event every $INTERVAL_MS ms for $PHASE_S s per phase"
BASE=$B ADMIN=$ADMIN python3 "$ROOT/bench/fanout_hanging.py"
