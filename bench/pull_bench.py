#!/usr/bin/env python3
"""Pull-inbox throughput (standard library only, 127.0.0.1 only, bounded).

For each receive batch size B (default 10 and 100):
  1. ingest N events with POST /v1/events/batch (500 per request),
  2. loop POST /v1/subscriptions/{id}/receive {"max":B} + POST .../ack with the
     receipts, until all N are acked (or --timeout passes),
and print the events received-and-acked per second. One client, one
keep-alive connection, so this is the latency-bound rate of a single consumer.

Usage:
  pull_bench.py --url http://127.0.0.1:PORT --key trg_... --subscription sub_... \
      [--n 20000] [--batches 10,100] [--payload event.json] [--timeout 300]
The key needs the scopes ingest and consume; the subscription must be a pull
subscription of the key's tenant that matches the events (and has no backlog).
"""

import argparse
import http.client
import json
import sys
import time
import urllib.parse

INGEST_BATCH = 500
DEFAULT_EVENT = {"type": "bench.pull", "source": "pull-bench", "subject": "order/12345",
                 "data": {"order_id": 12345, "total": 129.99, "currency": "EUR",
                          "items": [{"sku": "W-1", "qty": 2}, {"sku": "W-7", "qty": 1}]}}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Client:
    def __init__(self, url, key, timeout):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or u.hostname not in LOOPBACK:
            raise SystemExit("pull_bench: --url must be http://127.0.0.1:PORT (loopback only)")
        self.host, self.port = u.hostname, u.port or 80
        self.headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
        self.timeout = timeout
        self.conn = None

    def post(self, path, body):
        data = json.dumps(body, separators=(",", ":")).encode()
        for attempt in (1, 2):  # one reconnect if the server closed the keep-alive connection
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", path, body=data, headers=self.headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.getheader("connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return resp.status, raw
        raise AssertionError("unreachable")


def fail(msg, status=None, raw=b""):
    sys.stderr.write("pull_bench: %s%s %s\n" % (msg, "" if status is None else " (HTTP %d)" % status,
                                                raw[:300].decode("utf-8", "replace")))
    raise SystemExit(1)


def ingest(cli, event, n, deadline):
    t0 = time.monotonic()
    done = 0
    while done < n:
        if time.monotonic() > deadline:
            fail("ingest did not finish before the deadline (%d of %d)" % (done, n))
        k = min(INGEST_BATCH, n - done)
        status, raw = cli.post("/v1/events/batch", {"events": [event] * k})
        if status != 200:
            fail("batch ingest failed", status, raw)
        body = json.loads(raw)
        if body.get("failed_count"):
            fail("batch ingest: %d entries failed" % body["failed_count"], status, raw)
        done += k
    return time.monotonic() - t0


def drain(cli, sub, n, batch, deadline):
    """receive(max=batch) + ack until n messages were acked. Returns (seconds,
    receives, redelivered, empty receives)."""
    recv_path = "/v1/subscriptions/%s/receive" % sub
    ack_path = "/v1/subscriptions/%s/ack" % sub
    acked = receives = redelivered = empties = 0
    t0 = time.monotonic()
    while acked < n:
        if time.monotonic() > deadline:
            fail("draining B=%d did not finish before the deadline (%d of %d acked)"
                 % (batch, acked, n))
        status, raw = cli.post(recv_path, {"max": batch, "visibility_timeout_s": 60})
        receives += 1
        if status != 200:
            fail("receive failed", status, raw)
        msgs = json.loads(raw)["data"]
        if not msgs:
            empties += 1
            if empties > 50:
                fail("receive returned nothing 50 times with %d of %d acked" % (acked, n))
            time.sleep(0.02)
            continue
        redelivered += sum(1 for m in msgs if m["attempt"] > 1)
        status, raw = cli.post(ack_path, {"receipts": [m["receipt"] for m in msgs]})
        if status != 200:
            fail("ack failed", status, raw)
        results = json.loads(raw)["results"]
        bad = [r for r in results if r["status"] != "acked"]
        if bad:
            fail("ack answered %r" % bad[:3])
        acked += len(results)
    return time.monotonic() - t0, receives, redelivered, empties


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--key", required=True, help="API key with ingest and consume")
    ap.add_argument("--subscription", required=True, help="pull subscription id")
    ap.add_argument("--n", type=int, default=20000, help="events per batch size (20000)")
    ap.add_argument("--batches", default="10,100", help="receive sizes B (10,100)")
    ap.add_argument("--payload", help="JSON file with the event to ingest (default: ~250 B)")
    ap.add_argument("--timeout", type=float, default=300.0, help="overall bound in seconds (300)")
    args = ap.parse_args()
    if not 1 <= args.n <= 1_000_000:
        raise SystemExit("pull_bench: --n must be 1..1000000")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not batches or any(not 1 <= b <= 100 for b in batches):
        raise SystemExit("pull_bench: --batches must be sizes from 1 to 100")
    event = DEFAULT_EVENT
    if args.payload:
        with open(args.payload, "rb") as f:
            event = json.loads(f.read())
    size = len(json.dumps(event, separators=(",", ":")))
    deadline = time.monotonic() + args.timeout
    cli = Client(args.url, args.key, timeout=30.0)
    print("pull bench: N=%d events of %d B per run, one consumer (receive max=B, "
          "visibility 60 s, then ack the receipts), ingest in batches of %d"
          % (args.n, size, INGEST_BATCH))
    for b in batches:
        t_ing = ingest(cli, event, args.n, deadline)
        secs, receives, redelivered, empties = drain(cli, args.subscription, args.n, b, deadline)
        print("B=%-3d ingest %d events in %.2f s (%.0f events/s); received+acked %d in %.2f s = "
              "%.0f events/s (%d receive calls, %.0f us per receive+ack, %d redelivered, %d empty)"
              % (b, args.n, t_ing, args.n / t_ing, args.n, secs, args.n / secs, receives,
                 secs / receives * 1e6, redelivered, empties))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
