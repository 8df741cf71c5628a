"""Helper of bench/fanout.sh (one tenant's large fan-out; standard library only).

  fanout_load.py subs BASE KEY N          create N catch-all pull subscriptions
  fanout_load.py batch BASE KEY EVENTS TOTAL TIMEOUT_S
        post one batch of EVENTS events, then wait until the tenant has TOTAL
        pending deliveries (GET /v1/stats, every 2 s); prints
        "batch_answered_s=... all_deliveries_s=..." (all_deliveries_s=timeout
        when they were not all there in time)
"""

import http.client
import json
import sys
import time
import urllib.parse


def conn(base):
    u = urllib.parse.urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=300)


def call(c, method, path, key, body=None):
    headers = {"Authorization": "Bearer " + key}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    raw = r.read()
    if r.status >= 300:
        raise SystemExit("fanout_load: %s %s -> %d %s" % (method, path, r.status, raw[:200]))
    return json.loads(raw) if raw else None


def main():
    cmd, base, key = sys.argv[1], sys.argv[2], sys.argv[3]
    c = conn(base)
    if cmd == "subs":
        for _ in range(int(sys.argv[4])):
            call(c, "POST", "/v1/subscriptions", key, {"kind": "pull"})
        return
    events, total, timeout = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
    body = {"events": [{"type": "fan.out", "data": {"i": i, "pad": "x" * 200}}
                       for i in range(events)]}
    t0 = time.monotonic()
    call(c, "POST", "/v1/events/batch", key, body)
    answered = time.monotonic() - t0
    done = "timeout"
    while time.monotonic() - t0 < timeout:
        pending = call(c, "GET", "/v1/stats", key)["deliveries"]["pending"]
        if pending >= total:
            done = "%.2f" % (time.monotonic() - t0)
            break
        time.sleep(2.0)  # a GROUP BY over every delivery: not too often
    print("batch_answered_s=%.2f all_deliveries_s=%s" % (answered, done))


if __name__ == "__main__":
    main()
