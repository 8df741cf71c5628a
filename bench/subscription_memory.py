#!/usr/bin/env python3
"""What one subscription costs in the server's memory (RSS), with the largest
filter --max-filter-size lets through, so the default limits can be checked
against a bound: a tenant at --max-subscriptions-per-tenant costs about
N x this on every node (each node caches every subscription, compiled).

    python3 bench/subscription_memory.py [path/to/triggers] [N]

Starts `triggers serve` on SQLite in a temporary directory (127.0.0.1, any
port), creates N pull subscriptions (default 1000) of each shape below for
one tenant, and prints the RSS growth per subscription. The shapes are the
worst cases within the defaults: a 4 KiB filter made of as many values as a
pattern may hold (256), or of one long string, or of numeric ranges; and the
same with the largest `event_types` (100 globs of 128 characters) and
`description` (512), which no flag bounds.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "triggers")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
FILTER_BYTES = 4096


def compact(v):
    return json.dumps(v, separators=(",", ":"))


def many_values():
    """255 short string values under 32 keys and one long one: 256 values, 4 KiB."""
    keys = {}
    for i in range(255):
        keys.setdefault("k%02d" % (i % 32), []).append("v%03d" % i)
    f = {"data": keys}
    pad = FILTER_BYTES - len(compact(f)) - len(',"p":[""]')
    f["data"]["p"] = ["x" * max(0, pad)]
    return f


def one_string():
    base = compact({"data": {"k": [""]}})
    return {"data": {"k": ["y" * (FILTER_BYTES - len(base))]}}


def numeric_ranges():
    ranges = []
    f = {"data": {"n": ranges}}
    while True:
        ranges.append({"numeric": [">", len(ranges), "<=", len(ranges) + 1000000]})
        if len(compact(f)) > FILTER_BYTES or len(ranges) * 3 > 255:
            ranges.pop()
            return f


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def request(base, method, path, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise SystemExit("%s %s: %d %s" % (method, path, e.code, e.read()[:300]))


def main():
    work = tempfile.mkdtemp(prefix="trg-submem-")
    admin = "trg_" + secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERS_")}
    env["TRIGGERS_ADMIN_KEY"] = admin
    err = open(os.path.join(work, "stderr"), "w+")
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir",
                             os.path.join(work, "data"), "--max-subscriptions-per-tenant",
                             str(N)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=err, env=env)
    try:
        base = None
        deadline = time.monotonic() + 20
        while base is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start")
            err.seek(0)
            for line in err:
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if obj.get("msg") == "listening":
                    base = "http://" + obj["addr"]
            time.sleep(0.05)
        types = ["t%03d.%s" % (i, "z" * 123) for i in range(100)]
        shapes = [("256 values", many_values(), {}), ("one string", one_string(), {}),
                  ("numeric ranges", numeric_ranges(), {}),
                  ("256 values + 100 x 128-char event_types + 512-char description",
                   many_values(), {"event_types": types, "description": "d" * 512})]
        print("triggers: %s; %d subscriptions per shape, one tenant each, SQLite" % (BIN, N))
        for name, flt, extra in shapes:
            assert len(compact(flt)) <= FILTER_BYTES, name
            tenant = "mem-%s" % secrets.token_hex(4)
            key = request(base, "POST", "/v1/keys", admin,
                          {"tenant": tenant, "scopes": ["manage"]})["key"]
            request(base, "POST", "/v1/subscriptions", key, dict({"kind": "pull", "filter": flt},
                                                                 **extra))
            time.sleep(0.5)
            before = rss_kib(proc.pid)
            for _ in range(N - 1):
                request(base, "POST", "/v1/subscriptions", key,
                        dict({"kind": "pull", "filter": flt}, **extra))
            time.sleep(1.5)  # the cache's refresh pass has run
            after = rss_kib(proc.pid)
            per = (after - before) * 1024 / (N - 1)
            print("%-66s filter %4d B: RSS %6.1f -> %6.1f MiB, %5.1f KiB per subscription, "
                  "%5.1f MiB per tenant at %d" % (name, len(compact(flt)), before / 1024,
                                                  after / 1024, per / 1024, per * N / 2**20, N))
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
