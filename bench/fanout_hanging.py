"""Driver of bench/fanout_hanging.sh (see there): the receiver, the two
tenants, the two phases and the report. Standard library only; the server is
at $BASE with the admin key in $ADMIN."""

import http.client
import json
import os
import sys
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from receiver import Receiver  # noqa: E402

BASE = urllib.parse.urlsplit(os.environ["BASE"])
ADMIN = os.environ["ADMIN"]
HANG_SUBS = int(os.environ.get("HANG_SUBS", "5"))
HANG_MIF = int(os.environ.get("HANG_MIF", "16"))
PHASE_S = float(os.environ.get("PHASE_S", "20"))
INTERVAL_S = float(os.environ.get("INTERVAL_MS", "50")) / 1000.0


class Client:
    def __init__(self, key):
        self.key = key
        self.conn = http.client.HTTPConnection(BASE.hostname, BASE.port, timeout=30)

    def post(self, path, body):
        self.conn.request("POST", path, json.dumps(body).encode(),
                          {"Authorization": "Bearer " + self.key,
                           "Content-Type": "application/json"})
        r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError("POST %s -> %d %s" % (path, r.status, data[:200]))
        return json.loads(data)


def tenant_key(name):
    return Client(ADMIN).post("/v1/keys", {"tenant": name, "scopes": ["ingest", "read", "manage"],
                                           "name": "bench"})["key"]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def phase(client, rcv, path, label):
    """B ingests one event every INTERVAL_S for PHASE_S; returns the latencies (s)."""
    sent = {}
    end = time.monotonic() + PHASE_S
    tick = time.monotonic()
    while time.monotonic() < end:
        t = time.monotonic()
        sent[client.post("/v1/events", {"type": "b.t", "data": {"label": label}})["id"]] = t
        tick += INTERVAL_S
        time.sleep(max(0.0, tick - time.monotonic()))
    missing = rcv.wait_for_ids(path, sent, 60)
    first = {}
    for r in rcv.requests(path):
        first.setdefault(r.headers.get("webhook-id"), r.t)
    lat = [first[i] - t for i, t in sent.items() if i in first]
    return lat, len(missing)


def report(label, lat, missing):
    ms = lambda s: "%.1f ms" % (s * 1000)  # noqa: E731
    print("%-36s p50 %10s  p99 %10s  max %10s  (%d deliveries%s)" % (
        label, ms(pct(lat, 0.5)), ms(pct(lat, 0.99)), ms(max(lat)), len(lat),
        ", %d never arrived within 60 s" % missing if missing else ""))


def main():
    rcv = Receiver().start()
    try:
        a, b = Client(tenant_key("bench-hang-a")), Client(tenant_key("bench-ok-b"))
        b.post("/v1/subscriptions", {"url": rcv.url("/b/ok")})
        base_lat, base_missing = phase(b, rcv, "/b/ok", "quiet")
        paths = set()
        for i in range(HANG_SUBS):
            p = "/a/hang%d" % i
            rcv.hang(p, 3600)  # bounded by the receiver (60 s) and the delivery timeout
            a.post("/v1/subscriptions", {"url": rcv.url(p), "max_in_flight": HANG_MIF})
            paths.add(p)
        a.post("/v1/events/batch",
               {"events": [{"type": "a.t", "data": i} for i in range(HANG_MIF * 4)]})
        want = HANG_SUBS * HANG_MIF
        got = rcv.wait_for(None, want, 10, pred=lambda r: r.path in paths)
        hang_lat, hang_missing = phase(b, rcv, "/b/ok", "hanging")
        print("tenant A's attempts in progress at once: %d of the %d its max_in_flight allows"
              " (waited at most 10 s)" % (len(got), want))
        report("B, nothing hanging:", base_lat, base_missing)
        report("B, while A's endpoints hang:", hang_lat, hang_missing)
        print("tenant A: %d attempts reached the receiver during the run"
              % len([r for r in rcv.requests() if r.path in paths]))
    finally:
        rcv.stop()


if __name__ == "__main__":
    main()
