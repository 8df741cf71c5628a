#!/usr/bin/env python3
"""Pull-inbox throughput (standard library only, 127.0.0.1 only, bounded).

For each receive batch size B (default 10 and 100) and consumer count C
(default 1):
  1. ingest N events with POST /v1/events/batch (500 per request),
  2. C consumer processes, each on its own keep-alive connection, loop
     POST /v1/subscriptions/{id}/receive {"max":B} + POST .../ack with the
     receipts, until all N are acked together (or --timeout passes),
and print the events received-and-acked per second. One consumer is the
latency-bound rate of a single client; several show what the server does
when the client is not the limit. With --server-pid, the server's CPU time
(user+sys from /proc) per message of the drain is printed too.

Usage:
  pull_bench.py --url http://127.0.0.1:PORT --key trg_... --subscription sub_... \
      [--n 20000] [--batches 10,100] [--consumers 1,4] [--payload event.json] \
      [--server-pid PID] [--timeout 300]
The key needs the scopes ingest and consume; the subscription must be a pull
subscription of the key's tenant that matches the events (and has no backlog).
"""

import argparse
import http.client
import json
import multiprocessing
import os
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


def consume(cli, sub, n, batch, deadline, total):
    """One consumer: receive(max=batch) + ack until total (shared by every
    consumer) reaches n. Returns (receives, redelivered, empty receives)."""
    recv_path = "/v1/subscriptions/%s/receive" % sub
    ack_path = "/v1/subscriptions/%s/ack" % sub
    receives = redelivered = empties = 0
    while 0 <= total.value < n:
        if time.monotonic() > deadline:
            fail("draining B=%d did not finish before the deadline (%d of %d acked)"
                 % (batch, total.value, n))
        status, raw = cli.post(recv_path, {"max": batch, "visibility_timeout_s": 60})
        receives += 1
        if status != 200:
            fail("receive failed", status, raw)
        msgs = json.loads(raw)["data"]
        if not msgs:
            empties += 1
            if empties > 200:
                fail("receive returned nothing 200 times with %d of %d acked"
                     % (total.value, n))
            time.sleep(0.005)
            continue
        redelivered += sum(1 for m in msgs if m["attempt"] > 1)
        status, raw = cli.post(ack_path, {"receipts": [m["receipt"] for m in msgs]})
        if status != 200:
            fail("ack failed", status, raw)
        results = json.loads(raw)["results"]
        bad = [r for r in results if r["status"] != "acked"]
        if bad:
            fail("ack answered %r" % bad[:3])
        with total.get_lock():
            if total.value >= 0:
                total.value += len(results)
    return receives, redelivered, empties


def consumer_process(url, key, sub, n, batch, deadline, total, out):
    try:
        out.put(consume(Client(url, key, timeout=30.0), sub, n, batch, deadline, total))
    except BaseException:
        # The others stop at once instead of waiting for this one's unacked
        # messages to become visible again: a negative total ends them.
        with total.get_lock():
            total.value = -1 - n
        raise


def drain(url, key, sub, n, batch, consumers, deadline):
    """C consumer processes until n messages were acked. Returns (seconds,
    receives, redelivered, empty receives), summed over the consumers."""
    ctx = multiprocessing.get_context("fork")
    total, out = ctx.Value("q", 0), ctx.Queue()
    procs = [ctx.Process(target=consumer_process,
                         args=(url, key, sub, n, batch, deadline, total, out))
             for _ in range(consumers)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic() + 5))
    secs = time.monotonic() - t0
    if any(p.exitcode != 0 for p in procs):
        for p in procs:
            if p.is_alive():
                p.kill()
        fail("a consumer failed (exit codes %r)" % [p.exitcode for p in procs])
    sums = [0, 0, 0]
    for _ in procs:
        for i, v in enumerate(out.get(timeout=5)):
            sums[i] += v
    return (secs, *sums)


def cpu_seconds(pid):
    """user+sys CPU seconds of pid so far (None without a pid)."""
    if not pid:
        return None
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--key", required=True, help="API key with ingest and consume")
    ap.add_argument("--subscription", required=True, help="pull subscription id")
    ap.add_argument("--n", type=int, default=20000, help="events per batch size (20000)")
    ap.add_argument("--batches", default="10,100", help="receive sizes B (10,100)")
    ap.add_argument("--consumers", default="1", help="consumer processes C (1); a list runs each")
    ap.add_argument("--server-pid", type=int, help="the server's PID, for its CPU per message")
    ap.add_argument("--payload", help="JSON file with the event to ingest (default: ~250 B)")
    ap.add_argument("--timeout", type=float, default=300.0, help="overall bound in seconds (300)")
    args = ap.parse_args()
    if not 1 <= args.n <= 1_000_000:
        raise SystemExit("pull_bench: --n must be 1..1000000")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    consumers = [int(c) for c in args.consumers.split(",") if c.strip()]
    if not consumers or any(not 1 <= c <= 32 for c in consumers):
        raise SystemExit("pull_bench: --consumers must be counts from 1 to 32")
    if not batches or any(not 1 <= b <= 100 for b in batches):
        raise SystemExit("pull_bench: --batches must be sizes from 1 to 100")
    event = DEFAULT_EVENT
    if args.payload:
        with open(args.payload, "rb") as f:
            event = json.loads(f.read())
    size = len(json.dumps(event, separators=(",", ":")))
    deadline = time.monotonic() + args.timeout
    cli = Client(args.url, args.key, timeout=30.0)
    print("pull bench: N=%d events of %d B per run, C consumers (receive max=B, "
          "visibility 60 s, then ack the receipts), ingest in batches of %d"
          % (args.n, size, INGEST_BATCH))
    for b in batches:
        for c in consumers:
            t_ing = ingest(cli, event, args.n, deadline)
            cpu0 = cpu_seconds(args.server_pid)
            secs, receives, redelivered, empties = drain(
                args.url, args.key, args.subscription, args.n, b, c, deadline)
            cpu = "" if cpu0 is None else ", server CPU %.0f us per message" % (
                (cpu_seconds(args.server_pid) - cpu0) / args.n * 1e6)
            print("B=%-3d C=%-2d ingest %d events in %.2f s (%.0f events/s); received+acked %d in "
                  "%.2f s = %.0f events/s (%d receive calls, %d redelivered, %d empty%s)"
                  % (b, c, args.n, t_ing, args.n / t_ing, args.n, secs, args.n / secs, receives,
                     redelivered, empties, cpu))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
